import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { fetchCommittedModel, startCoordinator, startStudy, type CoordinatorHandle, type StudyDetail } from '@fedlhs/simulator';
import type { LogLine } from '@fedlhs/testing';
import { emptyCounters } from './clinic.js';
import type { LoadFaults, ParentMessage, WorkerMessage, WorkerStats } from './ipc.js';
import { loadManifest, loadModelParameters } from './model.js';
import {
  cpuSeconds, ensureOpenFiles, histogramDelta, histogramQuantile, percentile, pinToCpus, promHistogram, promSum, promValue, rssMiB, sampleEvery, timedGet,
  type PromHistogram,
} from './probes.js';

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
  /**
   * Pin the coordinator (all its threads) to CPU 0 and the workers and this process to the other
   * CPUs (taskset), so clinics and coordinator do not take turns on one core (design §7).
   */
  pin?: boolean;
  /** Write a V8 CPU profile of the coordinator into this directory (node --cpu-prof). */
  cpuProfileDir?: string;
  /**
   * Fetch the committed models (rounds 0..last committed) through the admin API before the
   * coordinator stops, whatever store holds them, into `LoadResult.models`.
   */
  fetchModels?: boolean;
  /** For checking the checks: drops on purpose, injected by the first worker (see LoadFaults). */
  faults?: LoadFaults;
  /** Changes the load manifest before the study starts (e.g. privacy.secureAggregation for its bench). */
  manifest?: (base: Record<string, unknown>) => Record<string, unknown>;
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
  /** Size of the model payload (parameters × 4 bytes). */
  modelBytes: number;
  /** (peak RSS − 3 × model) / N in KiB: the per-clinic memory the issue bounds at O(1 KiB). */
  rssPerClinicKiB: number;
  /**
   * Store group commits during the study, from fedlhs_store_batch_size / fedlhs_store_commit_seconds
   * (bucket upper bounds; undefined on code without them).
   */
  storeBatch: {
    batches: number; unitsP50: number; opsP50: number; unitsMax: number; commitP50Ms: number; commitP99Ms: number;
    /** Commits per duration bucket (upper bound in ms, non-cumulative; Infinity past the last bucket). */
    commitMsBuckets: { leMs: number | null; count: number }[];
  } | undefined;
  /** Share of the study's wall time the coordinator spent in GC pauses (fedlhs_gc_seconds_total). */
  gcShare: number | undefined;
  /** The machine's 1/5/15-minute load averages when the run started and when the study ended. */
  loadAverage: { start: number[]; end: number[] };
  /** Committed models by round (index 0 = the initial model), with `fetchModels`; else empty. */
  models: Float32Array[];
  /** Why the study or a round attempt failed (the admin API's reasons), empty when none did. */
  failures: string[];
  /** The coordinator's warn and error log lines by event key (before the harness stopped the clinics), with one example each. */
  coordinatorWarnings: Record<string, { count: number; example: string }>;
  /** Whether the processes were pinned (taskset). */
  pinned: boolean;
  /**
   * Per-second event-loop delay during the study (s since study start, ms): the coordinator's
   * p99 and max, the largest recent max over the workers, the largest delay of the coordinator's
   * heartbeats as the clinics received them (coordinator send side + worker read side), and the
   * coordinator's session drops
   * logged in that second, so a drop can be put next to the stall that caused it.
   */
  loopTimeline: { t: number; p99Ms: number; maxMs: number; workerMaxMs: number; heartbeatLagMs: number; drops: number }[];
  /** Where the coordinator's CPU profile went (with cpuProfileDir). */
  cpuProfileDir: string | undefined;
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
  const total: WorkerStats = { ...emptyCounters(), clinics: 0, welcomed: 0, loopMaxMs: 0, loopP99Ms: 0, loopRecentMaxMs: 0, heartbeatLagMaxMs: 0 };
  for (const s of all) {
    if (s === undefined) continue;
    total.sessionDrops += s.sessionDrops;
    total.connectFailures += s.connectFailures;
    total.reconnects += s.reconnects;
    total.trainOk += s.trainOk;
    total.evalOk += s.evalOk;
    total.clinics += s.clinics;
    total.welcomed += s.welcomed;
    total.loopMaxMs = Math.max(total.loopMaxMs, s.loopMaxMs);
    total.loopP99Ms = Math.max(total.loopP99Ms, s.loopP99Ms);
    total.loopRecentMaxMs = Math.max(total.loopRecentMaxMs, s.loopRecentMaxMs);
    total.heartbeatLagMs = Math.max(total.heartbeatLagMs, s.heartbeatLagMs);
    total.heartbeatLagMaxMs = Math.max(total.heartbeatLagMaxMs, s.heartbeatLagMaxMs);
    for (const [k, v] of Object.entries(s.errors)) total.errors[k] = (total.errors[k] ?? 0) + v;
  }
  return total;
}

/** Polls the study summary list (cheap at any N) until the study has ended. */
export async function studyEnded(c: CoordinatorHandle, studyId: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.admin<{ studies?: { id: string; state: string }[] }>('GET', '/api/v1/studies');
    if (r.status !== 200 || r.body.studies === undefined) throw new Error(`GET /api/v1/studies answered ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
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
  const loadAverageStart = loadavg();
  const c: CoordinatorHandle = await startCoordinator({
    dataDir: o.dataDir, heartbeatIntervalMs: o.heartbeatMs, name: 'load-coordinator',
    ...(o.cpuProfileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] }),
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
  const cpuCount = cpus().length;
  const pinned = o.pin === true && cpuCount >= 2;
  const clinicCpus = `1-${cpuCount - 1}`;
  try {
    // One HTTP/2 connection per clinic: the coordinator holds N sockets, a worker its share.
    ensureOpenFiles(c.proc.pid, o.clinics + 1024, 'the coordinator');
    if (pinned) {
      pinToCpus(c.proc.pid, '0');
      pinToCpus(process.pid, clinicCpus);
    }
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
      if (child.pid === undefined) throw new Error('could not fork a load worker');
      ensureOpenFiles(child.pid, per + 1024, 'a load worker');
      if (pinned) pinToCpus(child.pid, clinicCpus);
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
      const start: ParentMessage = { type: 'start', address: c.address, tokens: tokens.slice(k * per, (k + 1) * per), enrolConcurrency: o.enrolConcurrency ?? 16,
        faults: k === 0 ? o.faults ?? { cancel: 0, silence: 0 } : { cancel: 0, silence: 0 },
      };
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
        // The first page, as a dashboard asks for it (design §7): its cost must not grow with N.
        statusMs.push(await timedGet(`${admin}/api/v1/status?limit=100`, c.adminToken));
      } catch (err) {
        statusFailures++;
        throw err;
      }
    });
    const loopTimeline: LoadResult['loopTimeline'] = [];
    let studyT0: number | undefined;
    const metricsSampler = sampleEvery(1000, async () => {
      const text = await (await fetch(`${admin}/metrics`)).text();
      // fedlhs_event_loop_delay_seconds covers the time since the previous scrape (this sampler
      // is the only scraper); older code has only prom-client's default lag gauges.
      const max = promValue(text, 'fedlhs_event_loop_delay_seconds', { quantile: 'max' }) ?? promValue(text, 'fedlhs_coordinator_nodejs_eventloop_lag_max_seconds') ?? 0;
      const p99 = promValue(text, 'fedlhs_event_loop_delay_seconds', { quantile: '0.99' }) ?? promValue(text, 'fedlhs_coordinator_nodejs_eventloop_lag_p99_seconds') ?? 0;
      loopMax = Math.max(loopMax, max * 1000);
      loopP99 = Math.max(loopP99, p99 * 1000);
      if (studyT0 !== undefined) {
        const workerMaxMs = Math.round(Math.max(0, ...workers.map((w) => w.stats?.loopRecentMaxMs ?? 0)) * 10) / 10;
        const heartbeatLagMs = Math.max(0, ...workers.map((w) => w.stats?.heartbeatLagMs ?? 0));
        loopTimeline.push({ t: Math.round(performance.now() - studyT0) / 1000, p99Ms: Math.round(p99 * 1e4) / 10, maxMs: Math.round(max * 1e4) / 10, workerMaxMs, heartbeatLagMs, drops: 0 });
      }
    });
    let lastProgress = 0;
    const progressSampler = sampleEvery(1000, async () => {
      if (performance.now() - lastProgress < 10_000) return;
      lastProgress = performance.now();
      const s = sumStats(workers.map((w) => w.stats));
      log(`  … welcomed ${s.welcomed}/${o.clinics}, train ${s.trainOk}, eval ${s.evalOk}, clinic drops ${s.sessionDrops}, coordinator RSS ${rssMiB(c.proc.pid).current.toFixed(0)} MiB`);
    });

    const metricsBefore = await (await fetch(`${admin}/metrics`)).text().catch(() => '');
    const cpu0 = cpuSeconds(c.proc.pid);
    const s0 = performance.now();
    studyT0 = s0;
    const studyStartWall = Date.now();
    const baseManifest = loadManifest({ clinics: o.clinics, rounds: o.rounds, features, hidden });
    const study = await startStudy(c, o.manifest === undefined ? baseManifest : o.manifest(baseManifest));
    // The end of the study is read from the admin API, not waited for in the log: at a few
    // thousand clinics pino's asynchronous stdout falls minutes behind (a finding of its own).
    await studyEnded(c, study.id, o.timeoutMs ?? 120_000 + 100 * o.clinics * o.rounds);
    const cpu1 = cpuSeconds(c.proc.pid);
    const studySeconds = (performance.now() - s0) / 1000;
    const peakRssMiB = rssMiB(c.proc.pid).peak;
    const loadAverageEnd = loadavg();
    await Promise.all([statusSampler.stop(), metricsSampler.stop(), progressSampler.stop()]);

    // Counters that do not depend on the log (which may drop lines under load).
    const finalMetrics = await (await fetch(`${admin}/metrics`)).text().catch(() => '');
    const metricDrops = promSum(finalMetrics, 'fedlhs_session_drops_total');
    const logLinesDropped = promSum(finalMetrics, 'fedlhs_log_lines_dropped_total');
    const during = (name: string, labels?: Record<string, string>): PromHistogram | undefined =>
      histogramDelta(promHistogram(metricsBefore, name, labels), promHistogram(finalMetrics, name, labels));
    const units = during('fedlhs_store_batch_size', { of: 'units' });
    const ops = during('fedlhs_store_batch_size', { of: 'ops' });
    const commit = during('fedlhs_store_commit_seconds');
    const storeBatch = units === undefined || commit === undefined ? undefined : {
      batches: units.count, unitsP50: histogramQuantile(units, 0.5), opsP50: histogramQuantile(ops, 0.5), unitsMax: histogramQuantile(units, 1),
      commitP50Ms: histogramQuantile(commit, 0.5) * 1000, commitP99Ms: histogramQuantile(commit, 0.99) * 1000,
      // JSON has no Infinity: the +Inf bucket's bound is null.
      commitMsBuckets: commit.buckets.map((b, i) => ({ leMs: Number.isFinite(b.le) ? b.le * 1000 : null, count: b.count - (commit.buckets[i - 1]?.count ?? 0) })).filter((b) => b.count > 0),
    };
    const gc0 = promSum(metricsBefore, 'fedlhs_gc_seconds_total');
    const gc1 = promSum(finalMetrics, 'fedlhs_gc_seconds_total');
    const gcShare = gc0 === undefined || gc1 === undefined ? undefined : (gc1 - gc0) / studySeconds;

    // How far behind the log was: the line ending the study, if it comes within a minute.
    const endLine = await c.proc
      .waitFor(
        (l) => l.studyId === study.id && (['study.completed', 'study.failed', 'study.stopped'].includes(String(l.event)) || (typeof l.msg === 'string' && /^study (completed|failed|stopped)$/.test(l.msg))),
        60_000, `the log line ending study ${study.id}`,
      )
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
    const models: Float32Array[] = [];
    if (o.fetchModels === true) for (let round = 0; round <= committed.length; round++) models.push(await fetchCommittedModel(c, study.id, round));

    // Stop the clinics first (their ends are not drops), then read the workers' final counters.
    const stopAt = Date.now();
    for (const w of workers) w.child.send({ type: 'stop' } satisfies ParentMessage);
    await until(workers, (w) => w.final !== undefined, 60_000, 'final counters');
    const clinicsTotals = sumStats(workers.map((w) => w.final));
    // Once the coordinator has exited its log is complete: every session it ended before the
    // harness stopped the clinics is a drop (pino's own timestamps, so log lag does not matter).
    await c.stop();
    const offline: Record<string, number> = {};
    const coordinatorWarnings: LoadResult['coordinatorWarnings'] = {};
    for (const l of c.proc.lines) {
      // pino levels: 40 warn, 50 error, 60 fatal.
      if (typeof l.level === 'number' && l.level >= 40 && logTime(l) < stopAt) {
        const k = String(l.event ?? l.msg);
        const w = (coordinatorWarnings[k] ??= { count: 0, example: JSON.stringify(l).slice(0, 400) });
        w.count++;
      }
      const drop = l.event === 'session.dropped' || (l.event === undefined && l.msg === 'node offline');
      // `reason` is the drop's class (heartbeat_timeout, stream_error, …); older lines had `why`.
      const why = String(l.reason ?? l.why);
      if (drop && logTime(l) < stopAt) {
        offline[why] = (offline[why] ?? 0) + 1;
        // The scrape that covers the second in which the coordinator logged the drop.
        const t = (logTime(l) - studyStartWall) / 1000;
        const slot = loopTimeline.find((x) => x.t >= t);
        if (slot !== undefined && t >= 0) slot.drops++;
      }
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
      modelBytes: loadModelParameters({ features, hidden }) * 4,
      rssPerClinicKiB: (peakRssMiB * 1024 * 1024 - 3 * loadModelParameters({ features, hidden }) * 4) / o.clinics / 1024,
      models, storeBatch, gcShare, loadAverage: { start: loadAverageStart, end: loadAverageEnd }, pinned, loopTimeline, coordinatorWarnings,
      failures: [
        ...(detail.state === 'FAILED' ? [`study: ${String((detail as { reason?: unknown }).reason ?? 'no reason given')}`] : []),
        ...detail.rounds.filter((x) => x.state === 'FAILED').map((x) => `round ${x.round} attempt ${x.attempt}: ${x.reason ?? 'no reason given'}`),
      ],
      cpuProfileDir: o.cpuProfileDir,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await c.stop();
  }
}
