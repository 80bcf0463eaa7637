/**
 * A load worker process (child_process.fork): enrols and runs M protocol-level clinics, measures
 * its own event-loop delay (so a drop can be blamed on the right side) and reports its counters
 * to the orchestrator over IPC every second.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOAD_CLINIC_CAPABILITIES, LoadClinic, emptyCounters, enrolClinic } from './clinic.js';
import type { LoadFaults, ParentMessage, WorkerMessage, WorkerStats } from './ipc.js';
import type { WorkerExtension } from './worker-extension.js';

/**
 * A benchmark's additions to every clinic of this worker (worker-extension.ts): the module named
 * by FEDLHS_LOAD_EXTENSION (an absolute path), if set.
 */
const extension: WorkerExtension | undefined = process.env.FEDLHS_LOAD_EXTENSION === undefined
  ? undefined
  : ((await import(process.env.FEDLHS_LOAD_EXTENSION)) as { createWorkerExtension: () => WorkerExtension }).createWorkerExtension();

const counters = emptyCounters();
/**
 * Hello.capabilities of every clinic of this worker: FEDLHS_LOAD_CAPABILITIES as a comma list
 * ("" = none, to measure agents that get full re-announcements), else the load clinic's default.
 */
const capabilities: readonly string[] = process.env.FEDLHS_LOAD_CAPABILITIES === undefined
  ? LOAD_CLINIC_CAPABILITIES
  : process.env.FEDLHS_LOAD_CAPABILITIES.split(',').map((c) => c.trim()).filter((c) => c !== '');
const clinics: LoadClinic[] = [];
/** First session connections in flight per worker (FEDLHS_LOAD_CONNECT_WINDOW, default 32). */
const connectWindow = Math.max(1, Number(process.env.FEDLHS_LOAD_CONNECT_WINDOW ?? 32) || 32);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let loopMaxMs = 0;
let loopP99Ms = 0;
let heartbeatLagMaxMs = 0;

function send(m: WorkerMessage): void {
  if (process.connected) process.send?.(m);
}

// Without the orchestrator there is nobody to report to: end with it.
process.on('disconnect', () => {
  for (const c of clinics) c.close();
  setTimeout(() => process.exit(0), 2000).unref();
});

function stats(): WorkerStats {
  const loopRecentMaxMs = loop.max / 1e6;
  const heartbeatLagMs = counters.heartbeatLagMs;
  counters.heartbeatLagMs = 0;
  heartbeatLagMaxMs = Math.max(heartbeatLagMaxMs, heartbeatLagMs);
  loopMaxMs = Math.max(loopMaxMs, loopRecentMaxMs);
  loopP99Ms = Math.max(loopP99Ms, loop.percentile(99) / 1e6);
  loop.reset();
  return { ...counters, errors: { ...counters.errors }, clinics: clinics.length, welcomed: clinics.filter((c) => c.welcomed).length, loopMaxMs, loopP99Ms, loopRecentMaxMs, heartbeatLagMs, heartbeatLagMaxMs };
}

async function start(address: string, tokens: { token: string; site: string }[], concurrency: number): Promise<void> {
  const nodes: { nodeId: string; credential: string }[] = new Array(tokens.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, tokens.length) }, async () => {
    while (next < tokens.length) {
      const i = next++;
      const t = tokens[i]!;
      nodes[i] = await enrolClinic(address, t.token, t.site);
    }
  }));
  send({ type: 'enrolled', nodeIds: nodes.map((n) => n.nodeId) });
  let welcomed = 0;
  let failedFirst = 0;
  let announced = false;
  // At most CONNECT_WINDOW first connections of this worker in flight: thousands of simultaneous
  // connects overflow the coordinator's listen backlog (SYNs dropped, calls UNAVAILABLE).
  let wakeConnector: (() => void) | undefined;
  const settled = (): void => {
    wakeConnector?.();
    wakeConnector = undefined;
  };
  const onWelcome = (): void => {
    welcomed++;
    settled();
    if (!announced && welcomed >= nodes.length) {
      announced = true;
      send({ type: 'connected' });
    }
  };
  const onConnectFailed = (): void => {
    failedFirst++;
    settled();
  };
  for (const n of nodes) {
    while (clinics.length - welcomed - failedFirst >= connectWindow) await new Promise<void>((r) => (wakeConnector = r));
    const clinic = new LoadClinic(address, n.nodeId, n.credential, counters, onWelcome, capabilities, onConnectFailed, extension?.forClinic(address, n.nodeId, n.credential, counters));
    clinics.push(clinic);
    clinic.connect();
  }
}

let faults: LoadFaults | undefined;
const timer = setInterval(() => {
  // Faults (checking the drop checks), once this worker's clinics have trained.
  if (faults !== undefined && counters.trainOk > 0) {
    const live = clinics.filter((x) => x.welcomed);
    for (const c of live.slice(0, faults.cancel)) c.cutSession();
    for (const c of live.slice(faults.cancel, faults.cancel + faults.silence)) c.silence();
    faults = undefined;
  }
  send({ type: 'stats', stats: stats() });
}, 1000);

process.on('message', (m: ParentMessage) => {
  if (m.type === 'start') {
    faults = m.faults.cancel + m.faults.silence > 0 ? m.faults : undefined;
    start(m.address, m.tokens, m.enrolConcurrency).catch((err: unknown) => {
      send({ type: 'failed', message: String((err as Error).stack ?? err) });
    });
  } else if (m.type === 'stop') {
    clearInterval(timer);
    for (const c of clinics) c.close();
    extension?.finish();
    send({ type: 'final', stats: stats() });
    process.disconnect?.();
    // Closed channels let the process end; exit anyway if something lingers.
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
