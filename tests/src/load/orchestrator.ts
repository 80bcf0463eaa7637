import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startCoordinator, startStudy, type CoordinatorHandle, type StudyDetail } from '@fedlhs/simulator';
import type { LogLine } from '@fedlhs/testing';
import { emptyCounters } from './clinic.js';
import type { ParentMessage, WorkerMessage, WorkerStats } from './ipc.js';
import { loadManifest, loadModelParameters } from './model.js';
import { cpuSeconds, percentile, promSum, promValue, rssMiB, sampleEvery, timedGet } from './probes.js';

/** tests/dist/load, also when this module runs from tests/src/load under vitest. */
const WORKER_MAIN = join(dirname(fileURLToPath(import.meta.url)).replace(/([/\\])src([/\\]load)$/, '$1dist$2'), 'swarm-worker.js');

export interface LoadOptions {
  clinics: number;
  workers: number;
  rounds: number;
  /** The coordinator's heartbeat interval (the clinics follow Welcome's). */
  heartbeatMs: number;
  /** Coordinator data directory (kept afterwards, for the committed models). */
  dataDir: string;
  /** The coordinator's store: SQLite in dataDir (default), or PostgreSQL at `storeUrl` (a secret: never printed). */
  store?: 'sqlite' | 'postgres';
  storeUrl?: string;
  /** Model size: Dense(features → hidden) → Dense(1). */
  features?: number;
  hidden?: number;
  /** Enrolments in flight per worker (default 16). */
  enrolConcurrency?: number;
  /** Status API samples per second during the study (default 4). */
  statusPerSecond?: number;
  /** Progress lines go here (default: none). */
  progress?: (line: string) => void;
  /** The study must end within this many ms (default 120 s + 100 ms per clinic-round). */
  timeoutMs?: number;
}

export interface CommittedRound {
  round: number;
  updates: number;
  evaluatedSites: number;
}

export interface LoadResult {
  /** The coordinator's store kind. */
  store: 'sqlite' | 'postgres';
  clinics: number;
  workers: number;
  rounds: number;
  heartbeatMs: number;
  parameters: number;
  studyId: string;
  studyState: string;
  detail: StudyDetail;
  /** Node ids of all clinics, in enrolment order. */
  nodeIds: string[];
  /** Committed rounds as the admin API shows them: accepted updates and evaluating sites. */
  commits: CommittedRound[];
  enrolSeconds: number;
  connectSeconds: number;
  studySeconds: number;
  /** How far behind the coordinator's log was when the study ended (s). */
  logLagSeconds: number;
  /** Wall time of each committed round, as the coordinator recorded it. */
  roundSeconds: number[];
  /** Coordinator CPU (user + system) from study start to study end, per clinic per round. */
  cpuMsPerClinicRound: number;
  /** Coordinator CPU while idle with all sessions open, per clinic per second (heartbeats). */
  idleCpuMsPerClinicSecond: number;
  peakRssMiB: number;
  status: { samples: number; failures: number; p50: number; p95: number; p99: number; max: number };
  /** Largest event-loop lag the coordinator's /metrics reported (max and per-scrape p99), ms. */
  coordinatorLoopMaxMs: number;
  coordinatorLoopP99Ms: number;
  /**
   * Session drops the coordinator logged before the harness stopped the clinics, by `why`:
   * `session.dropped` lines, or on older code "node offline" lines without an event key.
   */
  coordinatorDrops: Record<string, number>;
  /** `fedlhs_session_drops_total` when the study ended (undefined on code without it). */
  coordinatorDropMetric: number | undefined;
  /** `fedlhs_log_lines_dropped_total` when the study ended (undefined on code without it). */
  logLinesDropped: number | undefined;
  /** Summed over the workers. */
  clinicsTotals: WorkerStats;
}

/** A log line's own timestamp (pino ISO time) in ms since the epoch. */
function logTime(l: LogLine): number {
  return typeof l.time === 'number' ? l.time : Date.parse(String(l.time));
}

interface Worker {
  child: ChildProcess;
  nodeIds: string[] | undefined;
  connected: boolean;
  stats: WorkerStats | undefined;
  final: WorkerStats | undefined;
  failed: string | undefined;
}

/** Checks waiting for a change in any worker; each stays registered until it settles. */
const listeners = new Set<() => void>();

function wake(): void {
  for (const f of [...listeners]) f();
}

function until(workers: Worker[], done: (w: Worker) => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => {
      clearTimeout(timer);
      listeners.delete(check);
      if (err === undefined) resolve();
      else reject(err);
    };
    const timer = setTimeout(() => settle(new Error(`timed out after ${timeoutMs} ms waiting for workers: ${what}`)), timeoutMs);
    function check(): void {
      const failed = workers.find((w) => w.failed !== undefined);
      if (failed !== undefined) settle(new Error(`a load worker failed: ${failed.failed}`));
      else if (workers.every(done)) settle();
    }
    listeners.add(check);
    check();
  });
}

function sumStats(all: readonly (WorkerStats | undefined)[]): WorkerStats {
  const total: WorkerStats = { ...emptyCounters(), clinics: 0, welcomed: 0, loopMaxMs: 0, loopP99Ms: 0 };
  for (const s of all) {
    if (s === undefined) continue;
    total.sessionDrops += s.sessionDrops;
    total.reconnects += s.reconnects;
    total.trainOk += s.trainOk;
    total.evalOk += s.evalOk;
    total.clinics += s.clinics;
    total.welcomed += s.welcomed;
    total.loopMaxMs = Math.max(total.loopMaxMs, s.loopMaxMs);
    total.loopP99Ms = Math.max(total.loopP99Ms, s.loopP99Ms);
    for (const [k, v] of Object.entries(s.errors)) total.errors[k] = (total.errors[k] ?? 0) + v;
  }
  return total;
}

/** Polls the study summary list (cheap at any N) until the study has ended. */
async function studyEnded(c: CoordinatorHandle, studyId: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.admin<{ studies: { id: string; state: string }[] }>('GET', '/api/v1/studies');
    const state = r.body.studies.find((s) => s.id === studyId)?.state;
    if (state !== undefined && !['PENDING', 'RUNNING'].includes(state)) return;
    if (Date.now() > until) throw new Error(`study ${studyId} still ${String(state)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await job(i);
    }
  }));
  return out;
}

/**
 * Runs one load experiment: a coordinator (the existing process helper, SQLite or PostgreSQL store), N
 * protocol-level clinics in W forked workers, one study of R rounds in which every clinic takes
 * part, with the coordinator's CPU, memory, event-loop lag and status API latency sampled
 * throughout. Measures; asserts nothing.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const log = o.progress ?? ((): void => undefined);
  const features = o.features ?? 6;
  const hidden = o.hidden ?? 8;
  const store = o.store ?? 'sqlite';
  if (store === 'postgres' && !o.storeUrl) throw new Error("runLoad: store 'postgres' needs storeUrl");
  const c: CoordinatorHandle = await startCoordinator({
    dataDir: o.dataDir, heartbeatIntervalMs: o.heartbeatMs, name: 'load-coordinator',
    // Info, not debug: the harness needs the commit and session lines, not per-message detail.
    // The URL goes by environment, not argv, so it stays out of `ps`.
    env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_STORE: store, ...(store === 'postgres' ? { FEDLHS_STORE_URL: o.storeUrl } : {}) },
  });
  const workers: Worker[] = [];
  // Interrupted (Ctrl-C, timeout): take the coordinator and the workers down too.
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const w of workers) w.child.kill('SIGKILL');
    c.proc.kill('SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Join tokens through the admin API, as an operator would issue them.
    const t0 = performance.now();
    const tokens = await pool(o.clinics, 16, async (i) => {
      const site = `load-${String(i).padStart(5, '0')}`;
      const r = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 3600 });
      if (r.status !== 201) throw new Error(`join token: ${JSON.stringify(r.body)}`);
      return { token: r.body.token, site };
    });
    log(`issued ${o.clinics} join tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const per = Math.ceil(o.clinics / o.workers);
    for (let k = 0; k < o.workers && k * per < o.clinics; k++) {
      const child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
      const w: Worker = { child, nodeIds: undefined, connected: false, stats: undefined, final: undefined, failed: undefined };
      child.on('message', (m: WorkerMessage) => {
        if (m.type === 'enrolled') w.nodeIds = m.nodeIds;
        else if (m.type === 'connected') w.connected = true;
        else if (m.type === 'stats') w.stats = m.stats;
        else if (m.type === 'final') w.final = m.stats;
        else w.failed = m.message;
        wake();
      });
      child.on('exit', (code) => {
        if (w.final === undefined && w.failed === undefined) w.failed = `worker exited with code ${code}`;
        wake();
      });
      const start: ParentMessage = { type: 'start', address: c.address, tokens: tokens.slice(k * per, (k + 1) * per), enrolConcurrency: o.enrolConcurrency ?? 16 };
      child.send(start);
      workers.push(w);
    }
    const t1 = performance.now();
    await until(workers, (w) => w.nodeIds !== undefined, 600_000, 'enrolment');
    const enrolSeconds = (performance.now() - t1) / 1000;
    log(`enrolled ${o.clinics} clinics in ${workers.length} workers in ${enrolSeconds.toFixed(1)} s`);
    await until(workers, (w) => w.connected, 600_000, 'sessions');
    const connectSeconds = (performance.now() - t1) / 1000 - enrolSeconds;
    log(`all ${o.clinics} sessions welcomed after ${connectSeconds.toFixed(1)} s`);
    const nodeIds = workers.flatMap((w) => w.nodeIds ?? []);

    // Idle cost: a few seconds with every session open and nothing else to do.
    const idleStart = cpuSeconds(c.proc.pid);
    const idleT = performance.now();
    await new Promise((r) => setTimeout(r, 3000));
    const idleCpuMsPerClinicSecond = ((cpuSeconds(c.proc.pid) - idleStart) * 1000) / o.clinics / ((performance.now() - idleT) / 1000);

    const statusMs: number[] = [];
    let statusFailures = 0;
    let loopMax = 0;
    let loopP99 = 0;
    const admin = `http://127.0.0.1:${c.adminPort}`;
    const statusSampler = sampleEvery(1000 / (o.statusPerSecond ?? 4), async () => {
      try {
        statusMs.push(await timedGet(`${admin}/api/v1/status`, c.adminToken));
      } catch (err) {
        statusFailures++;
        throw err;
      }
    });
    const metricsSampler = sampleEvery(1000, async () => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      loopMax = Math.max(loopMax, (promValue(text, 'fedlhs_coordinator_nodejs_eventloop_lag_max_seconds') ?? 0) * 1000);
      loopP99 = Math.max(loopP99, (promValue(text, 'fedlhs_coordinator_nodejs_eventloop_lag_p99_seconds') ?? 0) * 1000);
    });
    let lastProgress = 0;
    const progressSampler = sampleEvery(1000, async () => {
      if (performance.now() - lastProgress < 10_000) return;
      lastProgress = performance.now();
      const s = sumStats(workers.map((w) => w.stats));
      log(`  … welcomed ${s.welcomed}/${o.clinics}, train ${s.trainOk}, eval ${s.evalOk}, clinic drops ${s.sessionDrops}, coordinator RSS ${rssMiB(c.proc.pid).current.toFixed(0)} MiB`);
    });

    const cpu0 = cpuSeconds(c.proc.pid);
    const s0 = performance.now();
    const study = await startStudy(c, loadManifest({ clinics: o.clinics, rounds: o.rounds, features, hidden }));
    // The end of the study is read from the admin API, not waited for in the log: at a few
    // thousand clinics pino's asynchronous stdout falls minutes behind (a finding of its own).
    await studyEnded(c, study.id, o.timeoutMs ?? 120_000 + 100 * o.clinics * o.rounds);
    const cpu1 = cpuSeconds(c.proc.pid);
    const studySeconds = (performance.now() - s0) / 1000;
    const peakRssMiB = rssMiB(c.proc.pid).peak;
    await Promise.all([statusSampler.stop(), metricsSampler.stop(), progressSampler.stop()]);

    // Counters that do not depend on the log (which may drop lines under load).
    const finalMetrics = await (await fetch(`${admin}/metrics`)).text().catch(() => '');
    const metricDrops = promSum(finalMetrics, 'fedlhs_session_drops_total');
    const logLinesDropped = promSum(finalMetrics, 'fedlhs_log_lines_dropped_total');

    // How far behind the log was: the line ending the study, if it comes within a minute.
    const endLine = await c.proc
      .waitFor((l) => l.studyId === study.id && typeof l.msg === 'string' && /^study (completed|failed|stopped)$/.test(l.msg), 60_000, `the log line ending study ${study.id}`)
      .catch(() => undefined);
    const logLagSeconds = endLine === undefined ? Number.POSITIVE_INFINITY : (Date.now() - logTime(endLine)) / 1000;
    log(endLine === undefined ? 'the log line ending the study did not arrive within 60 s' : `the coordinator's log line ending the study arrived ${logLagSeconds.toFixed(1)} s after it was logged`);
    type Timeline = { round: number; state: string; durationMs: number | null; accepted: number };
    const detail = (await c.admin<StudyDetail & { timeline: Timeline[] }>('GET', `/api/v1/studies/${study.id}`)).body;
    const committed = detail.timeline.filter((x) => x.round >= 1 && x.state === 'COMMITTED');
    const commits: CommittedRound[] = committed.map((x) => ({
      round: x.round, updates: x.accepted,
      evaluatedSites: detail.metrics.filter((m) => m.round === x.round && m.phase === 'evaluation' && m.nodeId !== null).length,
    }));
    const roundSeconds = committed.map((x) => (x.durationMs ?? Number.NaN) / 1000);

    // Stop the clinics first (their ends are not drops), then read the workers' final counters.
    const stopAt = Date.now();
    for (const w of workers) w.child.send({ type: 'stop' } satisfies ParentMessage);
    await until(workers, (w) => w.final !== undefined, 60_000, 'final counters');
    const clinicsTotals = sumStats(workers.map((w) => w.final));
    // Once the coordinator has exited its log is complete: every session it ended before the
    // harness stopped the clinics is a drop (pino's own timestamps, so log lag does not matter).
    await c.stop();
    const offline: Record<string, number> = {};
    for (const l of c.proc.lines) {
      const drop = l.event === 'session.dropped' || (l.event === undefined && l.msg === 'node offline');
      if (drop && logTime(l) < stopAt) offline[String(l.why)] = (offline[String(l.why)] ?? 0) + 1;
    }
    return {
      store, clinics: o.clinics, workers: workers.length, rounds: o.rounds, heartbeatMs: o.heartbeatMs, parameters: loadModelParameters({ features, hidden }),
      studyId: study.id, studyState: detail.state, detail, nodeIds, commits,
      enrolSeconds, connectSeconds, studySeconds, roundSeconds, logLagSeconds,
      cpuMsPerClinicRound: ((cpu1 - cpu0) * 1000) / o.clinics / o.rounds,
      idleCpuMsPerClinicSecond,
      peakRssMiB,
      status: { samples: statusMs.length, failures: statusFailures, p50: percentile(statusMs, 50), p95: percentile(statusMs, 95), p99: percentile(statusMs, 99), max: percentile(statusMs, 100) },
      coordinatorLoopMaxMs: loopMax, coordinatorLoopP99Ms: loopP99,
      coordinatorDrops: offline, coordinatorDropMetric: metricDrops, logLinesDropped,
      clinicsTotals,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await c.stop();
  }
}
