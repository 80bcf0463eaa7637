/**
 * `npm run bench` (not part of the test run). From one run on this machine:
 * 1. aggregation throughput (parameters × clinics per second) of each strategy, and of the
 *    coordinator's streaming FedAvg accumulator, beside a plain typed-array copy of the same
 *    buffers (the memory-bandwidth bound);
 * 2. coordinator update ingest (MiB/s: an UploadUpdate of a large model through a real
 *    coordinator process, checked, spooled and averaged) beside raw grpc-js client streaming
 *    of the same bytes in the same chunks to a server in a process of its own, round by round
 *    in alternating order, with the coordinator's and the raw server's CPU per upload;
 * 3. sustained ingest: `--ingest-clinics` clinics (default 4) upload a round each, one after
 *    another and all at once in alternate rounds, beside the same number of raw uploads made the
 *    same way (GC and page-cache costs show over several uploads, not in one).
 * Usage: npm run bench [-- --params 4000000 --clinics 8 --ingest-units 4096 --ingest-reps 3 --chunk-bytes 1048576 --ingest-clinics 4]
 *        [--ingest-only | --sustained-only | --aggregation-only] [--coordinator /path/to/coordinator/dist/main.js]
 * The load average is printed with each ingest run: compare runs made under similar load.
 * FEDLHS_PROFILE_DIR=dir: the coordinator writes a CPU profile there; FEDLHS_BENCH_PIDS=1: the
 * process ids are printed (for `perf record -p`), and the coordinator's heap and GC figures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { WeightedSum, createStrategy, mulberry32, type ClientUpdate, type StrategyConfig } from '@fedlhs/core';
import type { UpdateChunk } from '@fedlhs/proto';
import { createClients } from '@fedlhs/node-agent';
import { startCoordinator } from '@fedlhs/simulator';
import { RogueNode, enrolOverProtocol } from '../rogue-node.js';
import { cpuDuring, rawGrpc, rawUpload, startRawServer } from './raw-grpc.js';
import { agentUpload, startBenchStudy, sustainedIngest } from './sustained-ingest.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PARAMS = arg('params', 4_000_000);
const CLINICS = arg('clinics', 8);
const INGEST_UNITS = arg('ingest-units', 4096);
const INGEST_REPS = arg('ingest-reps', 3);
/** Upload chunk size of both sides: the agent's default (node-agent config chunkBytes). */
const CHUNK = arg('chunk-bytes', 1048576);
/** Another coordinator build to measure (its dist/main.js), e.g. the code before a change. */
const COORDINATOR_MAIN = (() => {
  const i = process.argv.indexOf('--coordinator');
  return i > 0 ? process.argv[i + 1] : undefined;
})();
/** Clinics of the sustained-ingest part (0: skip it). */
const INGEST_CLINICS = arg('ingest-clinics', 4);
const PART = process.argv.includes('--ingest-only') ? 'ingest' : process.argv.includes('--sustained-only') ? 'sustained' : process.argv.includes('--aggregation-only') ? 'aggregation' : 'all';
const MiB = 1048576;
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Best of `reps` timings of `fn`, in seconds (the least disturbed run on a shared machine). */
function best(reps: number, fn: () => void): number {
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    fn();
    t = Math.min(t, (performance.now() - start) / 1000);
  }
  return t;
}

function aggregation(): void {
  const random = mulberry32(7);
  const global = [{ shape: [PARAMS], data: Float32Array.from({ length: PARAMS }, () => random() - 0.5) }];
  const updates: ClientUpdate[] = Array.from({ length: CLINICS }, (_, k) => ({
    weights: [{ shape: [PARAMS], data: Float32Array.from(global[0]!.data, (v) => v + (random() - 0.5) * 0.01) }],
    numExamples: 100 + k,
  }));
  const dest = new Float32Array(PARAMS);
  const copy = best(5, () => {
    for (const u of updates) dest.set(u.weights[0]!.data);
  });
  const copyRate = (PARAMS * CLINICS) / copy;
  say(`aggregation of ${CLINICS} updates × ${(PARAMS / 1e6).toFixed(1)}M parameters (parameters × clinics per second; ratio to the copy bound):`);
  say(`  plain typed-array copy of the same buffers     ${(copyRate / 1e6).toFixed(0).padStart(6)} M/s   1.00`);
  const sum = new WeightedSum(PARAMS);
  const streaming = best(5, () => {
    for (const u of updates) sum.addChunk(0, u.weights[0]!.data, u.numExamples);
  });
  say(`  coordinator streaming FedAvg (WeightedSum)     ${((PARAMS * CLINICS) / streaming / 1e6).toFixed(0).padStart(6)} M/s   ${(copy / streaming).toFixed(2)}`);
  const configs: StrategyConfig[] = [
    { name: 'fedavg' },
    { name: 'fedadam', eta: 0.01 },
    { name: 'fedmedian' },
    { name: 'trimmed-mean', beta: 0.2 },
    { name: 'krum', byzantine: 1 },
    { name: 'bulyan', byzantine: 1 },
  ];
  for (const config of configs) {
    const strategy = createStrategy(config);
    if (updates.length < strategy.minUpdates) continue;
    // Best of 3 even for the order statistics: their first call includes compiling the loops.
    const reps = strategy.input === 'weighted-mean' ? 5 : 3;
    const t = best(reps, () => void strategy.aggregate(global, updates, 1));
    say(`  ${`createStrategy(${config.name})`.padEnd(46)} ${((PARAMS * CLINICS) / t / 1e6).toFixed(0).padStart(6)} M/s   ${(copy / t).toFixed(2)}`);
  }
}

/**
 * Update ingest beside raw grpc-js client streaming of the same bytes in the same chunks, in
 * alternating order, `INGEST_REPS` times (a round each). The raw server runs in a process of its
 * own with the coordinator's server options and windows, and both clients ride a channel with
 * the agent's options: the same topology and transport settings, so the ratio is what fedlhs
 * costs. The digest is computed before the clock starts for both (the agent hashes before it
 * opens the stream). The single-process raw figure of earlier sessions is printed for reference.
 */
async function ingest(): Promise<void> {
  const loadAtStart = load();
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-bench-'));
  const profileDir = process.env.FEDLHS_PROFILE_DIR;
  const c = await startCoordinator({
    dataDir: join(dir, 'coordinator'), heartbeatIntervalMs: 5000, env: { FEDLHS_LOG_LEVEL: 'info' },
    ...(COORDINATOR_MAIN === undefined ? {} : { main: COORDINATOR_MAIN }),
    ...(profileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] }),
  });
  const rawServer = await startRawServer();
  if (process.env.FEDLHS_BENCH_PIDS === '1') say(`coordinator pid ${c.proc.pid}, raw server pid ${rawServer.pid}`);
  const plaintext = { mode: 'plaintext' as const, ca: '', cert: '', key: '', serverName: '' };
  const agent = createClients(c.address, plaintext);
  const rawChannel = createClients(rawServer.address, plaintext);
  const rawClient = new grpc.Client(rawServer.address, grpc.credentials.createInsecure(), { channelOverride: rawChannel.federation.getChannel() });
  try {
    const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'bench', ttlSeconds: 600 })).body.token;
    const creds = await enrolOverProtocol(c.address, token, 'bench');
    const node = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
    await node.connect();
    // A round more than measured: the round after each measured one opens, so waiting for its task
    // waits until the coordinator has aggregated (see below).
    const study = await startBenchStudy(c, INGEST_UNITS, INGEST_REPS + 1, 1);
    const pairs: { ours: number; raw: number; oursCpu: string; rawCpu: string }[] = [];
    const cpuText = (c: { user: number; system: number }): string => `${(c.user + c.system).toFixed(0)} ms: user ${c.user.toFixed(0)}, sys ${c.system.toFixed(0)}`;
    let bytes = 0;
    for (let round = 1; round <= INGEST_REPS; round++) {
      const task = await node.trainTask(round, study.id);
      const model = await node.download(task.taskId);
      const weights = Float32Array.from(model.weights, (v) => v * 0.99);
      const payload = Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
      bytes = payload.length;
      const header: UpdateChunk['header'] = {
        taskId: task.taskId, studyId: study.id, round, nodeId: creds.nodeId, baseModelSha256: task.modelSha256, numExamples: 10,
        trainMetrics: { numExamples: 10, loss: 0.5, accuracy: 0.7 },
        weights: { tensors: model.specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: bytes, sha256: createHash('sha256').update(payload).digest(), chunkSize: CHUNK },
      };
      // Alternating order: neither side always runs first (warm-up, page cache, other load).
      let raw = 0;
      let rawCpu = '';
      const measureRaw = async (): Promise<void> => {
        const m = await cpuDuring(rawServer.pid, () => rawUpload(rawClient, bytes, CHUNK));
        raw = m.result;
        rawCpu = cpuText(m);
      };
      if (round % 2 === 1) await measureRaw();
      const m = await cpuDuring(c.proc.pid, () => agentUpload(agent.federation, node.metadata(), header, payload, CHUNK));
      const ours = m.result;
      const oursCpu = cpuText(m);
      if (round % 2 === 0) {
        // The receipt comes before the round is aggregated and the next opened: raw measured at
        // once would share the machine with that work (it read 30-50 % slower than when first).
        await node.trainTask(round + 1, study.id);
        await measureRaw();
      }
      pairs.push({ ours: bytes / MiB / ours, raw: bytes / MiB / raw, oursCpu, rawCpu });
    }
    if (process.env.FEDLHS_BENCH_PIDS === '1') {
      const m = await fetch(`http://127.0.0.1:${c.adminPort}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } }).then((r) => r.text());
      say(m.split('\n').filter((l) => /heap_size_used|external_memory|gc_duration_seconds_(sum|count)|fedlhs_gc/.test(l) && !l.startsWith('#')).join('\n'));
    }
    node.close();
    const single = await rawGrpc(bytes);
    const fmt = (x: number): string => x.toFixed(1).padStart(7);
    say(`\nupdate ingest of ${(bytes / MiB).toFixed(0)} MiB in ${CHUNK / MiB} MiB chunks (header, chunks, shape/finiteness/SHA-256 checks, spool, norm, running sum, receipt); load average ${loadAtStart} at the start, ${load()} at the end:`);
    pairs.forEach((p, i) => say(`  round ${i + 1}: coordinator UploadUpdate ${fmt(p.ours)} MiB/s (server CPU ${p.oursCpu})   raw grpc-js client stream (own process) ${fmt(p.raw)} MiB/s (server CPU ${p.rawCpu})   → ratio ${(p.ours / p.raw).toFixed(2)}`));
    const bestOurs = Math.max(...pairs.map((p) => p.ours));
    const bestRaw = Math.max(...pairs.map((p) => p.raw));
    const ratios = pairs.map((p) => p.ours / p.raw);
    say(`  best of ${pairs.length}: coordinator ${fmt(bestOurs)} MiB/s   raw ${fmt(bestRaw)} MiB/s   → ratio ${(bestOurs / bestRaw).toFixed(2)} (per round ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
    say(`  for reference, raw with client and server in one process (earlier sessions' baseline): ${fmt(single.uploadMBs)} MiB/s → ratio ${(bestOurs / single.uploadMBs).toFixed(2)}`);
  } finally {
    rawClient.close();
    rawChannel.close();
    agent.close();
    rawServer.stop();
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (PART === 'all' || PART === 'aggregation') aggregation();
(async () => {
  if (PART === 'all' || PART === 'ingest') await ingest();
  if ((PART === 'all' || PART === 'sustained') && INGEST_CLINICS > 0) await sustainedIngest({ clinics: INGEST_CLINICS, reps: INGEST_REPS, units: INGEST_UNITS, chunkBytes: CHUNK, coordinatorMain: COORDINATOR_MAIN });
})().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
