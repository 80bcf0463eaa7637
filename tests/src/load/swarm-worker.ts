/**
 * A load worker process (child_process.fork): enrols and runs M protocol-level clinics, measures
 * its own event-loop delay (so a drop can be blamed on the right side) and reports its counters
 * to the orchestrator over IPC every second.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LOAD_CLINIC_CAPABILITIES, LoadClinic, emptyCounters, enrolClinic } from './clinic.js';
import type { ParentMessage, WorkerMessage, WorkerStats } from './ipc.js';

const counters = emptyCounters();
/**
 * Hello.capabilities of every clinic of this worker: FEDLHS_LOAD_CAPABILITIES as a comma list
 * ("" = none, to measure agents that get full re-announcements), else the load clinic's default.
 */
const capabilities: readonly string[] = process.env.FEDLHS_LOAD_CAPABILITIES === undefined
  ? LOAD_CLINIC_CAPABILITIES
  : process.env.FEDLHS_LOAD_CAPABILITIES.split(',').map((c) => c.trim()).filter((c) => c !== '');
const clinics: LoadClinic[] = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let loopMaxMs = 0;
let loopP99Ms = 0;

function send(m: WorkerMessage): void {
  if (process.connected) process.send?.(m);
}

// Without the orchestrator there is nobody to report to: end with it.
process.on('disconnect', () => {
  for (const c of clinics) c.close();
  setTimeout(() => process.exit(0), 2000).unref();
});

function stats(): WorkerStats {
  loopMaxMs = Math.max(loopMaxMs, loop.max / 1e6);
  loopP99Ms = Math.max(loopP99Ms, loop.percentile(99) / 1e6);
  loop.reset();
  return { ...counters, errors: { ...counters.errors }, clinics: clinics.length, welcomed: clinics.filter((c) => c.welcomed).length, loopMaxMs, loopP99Ms };
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
  let announced = false;
  const onWelcome = (): void => {
    welcomed++;
    if (!announced && welcomed >= nodes.length) {
      announced = true;
      send({ type: 'connected' });
    }
  };
  for (const n of nodes) {
    const clinic = new LoadClinic(address, n.nodeId, n.credential, counters, onWelcome, capabilities);
    clinics.push(clinic);
    clinic.connect();
    // Let the connection attempts interleave with answers instead of opening all at once.
    if (clinics.length % 50 === 0) await new Promise((r) => setImmediate(r));
  }
}

const timer = setInterval(() => send({ type: 'stats', stats: stats() }), 1000);

process.on('message', (m: ParentMessage) => {
  if (m.type === 'start') {
    start(m.address, m.tokens, m.enrolConcurrency).catch((err: unknown) => {
      send({ type: 'failed', message: String((err as Error).stack ?? err) });
    });
  } else if (m.type === 'stop') {
    clearInterval(timer);
    for (const c of clinics) c.close();
    send({ type: 'final', stats: stats() });
    process.disconnect?.();
    // Closed channels let the process end; exit anyway if something lingers.
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
