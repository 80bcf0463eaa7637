/**
 * Secure aggregation beside plain FedAvg (issue 14, "Performance of privacy"): for each N, the
 * same study run twice in one invocation, each with its own coordinator and N protocol-level
 * clinics in worker processes (the load harness): plain FedAvg, then with
 * privacy.secureAggregation (SecAgg+ v2: keys, shares, masked input, consistency, unmask).
 *
 *   npm run bench:secagg -- --clinics 10,50 [--params 100000] [--rounds 3] [--workers 1]
 *     [--value-bits 16] [--neighbours k] [--order plain-first|secagg-first] [--pin] [--cpu-prof] [--tag t]
 *
 * Bytes are the serialized protobuf sizes of every Federation message a clinic sends and
 * receives (wire-meter.ts: model downloads, uploads, stage tasks and reports, evaluation, the
 * control session), per clinic per round. Round time is the coordinator's round record
 * (start to commit, evaluation included), median over rounds 2.. as the load bench. Ratios are
 * measured in one run on a shared machine, never asserted. Writes artifacts/bench/secagg-<N>[-<tag>].json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { quantizationParams } from '@fedlhs/core';
import { repoRoot } from '@fedlhs/simulator';
import { medianRoundSeconds } from '../load/report.js';
import { runLoad, type LoadResult } from '../load/orchestrator.js';
import { loadModelParameters } from '../load/model.js';
import type { SecAggRoundConfig } from '../load/secagg-stages.js';
import type { SecAggBenchWorkerConfig, WorkerBytesFile } from '../load/secagg-extension.js';
import { addWireBytes, emptyWireBytes, type WireBytes } from '../load/wire-meter.js';
import { modelError, roundTraffic, stageFigures, table, type ModeFigures } from './secagg-report.js';

// --agents: the same comparison over a real coordinator and real agent processes (secagg-agents.ts).
if (process.argv.includes('--agents')) {
  const { runAgentsBench } = await import('./secagg-agents.js');
  await runAgentsBench(process.argv.slice(2).filter((a) => a !== '--agents'));
  process.exit(0);
}
const { values } = parseArgs({
  options: {
    clinics: { type: 'string', default: '10,50' },
    params: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1' },
    'value-bits': { type: 'string', default: '16' },
    neighbours: { type: 'string' },
    order: { type: 'string', default: 'plain-first' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    pin: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    tag: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench:secagg -- [--clinics 10,50] [--params 100000] [--rounds 3] [--workers 1] [--value-bits 16] [--neighbours k] [--order plain-first|secagg-first] [--heartbeat-ms 5000] [--pin] [--cpu-prof] [--tag t]\n' +
      '  --neighbours: default N − 2 up to N = 10 (8 at N = 10), else 10; threshold is the default strict majority\n' +
      '  --agents: over real coordinator and agent processes instead (npm run bench:secagg -- --agents --help)\n',
  );
  process.exit(0);
}

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}
const sizes = String(values.clinics).split(',').map((x) => positive('clinics', x.trim()));
for (const n of sizes) if (n < 4) throw new Error(`--clinics: ${n} clinics are too few for secure aggregation (neighbours must be below clients.min)`);
const params = positive('params', values.params);
const rounds = positive('rounds', values.rounds);
const workers = positive('workers', values.workers);
const valueBits = positive('value-bits', values['value-bits']);
const heartbeatMs = positive('heartbeat-ms', values['heartbeat-ms']);
if (values.order !== 'plain-first' && values.order !== 'secagg-first') throw new Error(`--order must be plain-first or secagg-first, got ${JSON.stringify(values.order)}`);
if (values.tag !== undefined && !/^[A-Za-z0-9_.-]+$/.test(values.tag)) throw new Error(`--tag must be letters, digits, '.', '_' or '-', got ${JSON.stringify(values.tag)}`);
// The load model Dense(100 → h) → Dense(1): h chosen so that its size is nearest --params.
const features = 100;
const hidden = Math.max(1, Math.round((params - 1) / (features + 2)));
const parameters = loadModelParameters({ features, hidden });
/** The clinics' synthetic change is within ±1e-3 per value (model.ts): ±0.01 never clips. */
const clipRange = 0.01;
const extensionModule = join(dirname(fileURLToPath(import.meta.url)), '..', 'load', 'secagg-extension.js');
const out = join(repoRoot, 'artifacts', 'bench');
mkdirSync(out, { recursive: true });

async function runMode(n: number, secagg: SecAggRoundConfig | undefined): Promise<ModeFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fedlhs-secagg-bench-'));
  const bytesDir = join(dataDir, 'bytes');
  mkdirSync(bytesDir);
  const mode = secagg === undefined ? 'plain' : 'secagg';
  // Forked workers inherit the environment: it carries the extension and its configuration.
  const config: SecAggBenchWorkerConfig = { outDir: bytesDir, ...(secagg === undefined ? {} : { secagg }) };
  process.env.FEDLHS_LOAD_EXTENSION = extensionModule;
  process.env.FEDLHS_SECAGG_BENCH = JSON.stringify(config);
  const progress = (line: string): void => void process.stderr.write(`[N=${n} ${mode}] ${line}\n`);
  try {
    const cpuProfileDir = values['cpu-prof'] ? join(out, `secagg-${n}-${mode}${values.tag === undefined ? '' : `-${values.tag}`}.cpuprofile-dir`) : undefined;
    const r: LoadResult = await runLoad({
      clinics: n, workers, rounds, heartbeatMs, dataDir, features, hidden, pin: values.pin, fetchModels: true, progress,
      ...(cpuProfileDir === undefined ? {} : { cpuProfileDir }),
      ...(secagg === undefined ? {} : {
        manifest: (m) => ({
          ...m,
          privacy: { secureAggregation: { neighbours: secagg.neighbours, graph: secagg.graph, valueBits: secagg.valueBits, clipRange: secagg.clipRange } },
        }),
      }),
    });
    const bytes = emptyWireBytes();
    const compute: ModeFigures['clinicComputeMs'] = {};
    let counted = 0;
    for (const f of readdirSync(bytesDir)) {
      const w = JSON.parse(readFileSync(join(bytesDir, f), 'utf8')) as WorkerBytesFile;
      addWireBytes(bytes, w.bytes);
      counted += w.clinics;
      for (const [k, c] of Object.entries(w.computeMs)) {
        const x = (compute[k] ??= { perClinicRoundMs: 0, maxMs: 0 });
        x.perClinicRoundMs += c.sumMs / n / rounds;
        x.maxMs = Math.max(x.maxMs, c.maxMs);
      }
    }
    if (counted !== n) throw new Error(`${mode} N=${n}: byte counts from ${counted} clinics, expected ${n} (a worker did not write its counts)`);
    return { ...figures(r, bytes, secagg === undefined ? undefined : quantizationParams({ clip: clipRange, valueBits, clients: n }).step), clinicComputeMs: compute };
  } finally {
    delete process.env.FEDLHS_LOAD_EXTENSION;
    delete process.env.FEDLHS_SECAGG_BENCH;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function figures(r: LoadResult, bytes: WireBytes, step: number | undefined): Omit<ModeFigures, 'clinicComputeMs'> {
  const perClinicRound = r.clinics * r.rounds;
  const traffic = roundTraffic(bytes);
  return {
    studyState: r.studyState, committed: r.commits.length, updates: r.commits.map((c) => c.updates), failures: r.failures,
    clinicErrors: r.clinicsTotals.errors, sessionDrops: r.clinicsTotals.sessionDrops,
    upBytes: traffic.up / perClinicRound, downBytes: traffic.down / perClinicRound,
    allBytes: (traffic.up + traffic.down + traffic.excluded) / perClinicRound,
    byCategory: Object.fromEntries([
      ...Object.entries(bytes.up).map(([k, v]) => [`up ${k}`, v / perClinicRound]),
      ...Object.entries(bytes.down).map(([k, v]) => [`down ${k}`, v / perClinicRound]),
    ].sort()),
    messagesPerClinicRound: Object.fromEntries(Object.entries(bytes.messages).map(([k, v]) => [k, v / perClinicRound]).sort()),
    roundSeconds: r.roundSeconds, medianRoundSeconds: medianRoundSeconds(r), studySeconds: r.studySeconds,
    cpuMsPerClinicRound: r.cpuMsPerClinicRound, peakRssMiB: r.peakRssMiB,
    coordinatorLoopMaxMs: r.coordinatorLoopMaxMs, workerLoopMaxMs: r.clinicsTotals.loopMaxMs,
    loadAverage: r.loadAverage, coordinatorWarnings: Object.fromEntries(Object.entries(r.coordinatorWarnings).map(([k, v]) => [k, v.count])),
    modelError: modelError(r, step),
    ...stageFigures(r, bytes),
  };
}

const started = new Date().toISOString();
// The tree moves while benchmarks run: which commit, and when the coordinator's dist was built.
const gitHead = (() => {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
const coordinatorBuiltAt = (() => {
  const dist = join(repoRoot, 'coordinator', 'dist');
  try {
    const newest = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js')).reduce((t, f) => Math.max(t, statSync(join(dist, f)).mtimeMs), 0);
    return new Date(newest).toISOString();
  } catch {
    return 'unknown';
  }
})();
for (const n of sizes) {
  const neighbours = values.neighbours !== undefined ? positive('neighbours', values.neighbours) : n <= 10 ? n - 2 : 10;
  if (neighbours >= n) throw new Error(`--neighbours ${neighbours} must be below N = ${n}`);
  const secagg: SecAggRoundConfig = { neighbours, graph: 'random-regular', valueBits, clipRange, vectorLength: parameters, minSurvivors: n };
  const first = values.order === 'plain-first' ? undefined : secagg;
  const second = values.order === 'plain-first' ? secagg : undefined;
  const a = await runMode(n, first);
  const b = await runMode(n, second);
  const plain = first === undefined ? a : b;
  const secure = first === undefined ? b : a;
  const bits = quantizationParams({ clip: clipRange, valueBits, clients: n }).bits;
  const shape = { clinics: n, parameters, rounds, workers, heartbeatMs, neighbours, threshold: 'majority', valueBits, modulusBits: bits, clipRange, order: values.order, pinned: values.pin };
  // The load clinic evaluates without downloading the model; a real agent downloads it (one
  // model's bytes per round in either mode, the same as the training download).
  const evaluationDownload = plain.byCategory['down download.TRAIN'] ?? Number.NaN;
  const withEvaluationDownload = (secure.upBytes + secure.downBytes + evaluationDownload) / (plain.upBytes + plain.downBytes + evaluationDownload);
  process.stdout.write(`\n${table(shape, plain, secure)}\nbytes × plain with a real agent's evaluation download added to both (${evaluationDownload} B/clinic/round): ${withEvaluationDownload.toFixed(3)}×\n`);
  const file = join(out, `secagg-${n}${values.tag === undefined ? '' : `-${values.tag}`}.json`);
  writeFileSync(file, `${JSON.stringify({ started, gitHead, coordinatorBuiltAt, machine: { cpus: cpus().length, loadAverage: loadavg() }, ...shape, plain, secagg: secure, ratio: {
    bytes: (secure.upBytes + secure.downBytes) / (plain.upBytes + plain.downBytes), up: secure.upBytes / plain.upBytes, down: secure.downBytes / plain.downBytes,
    allBytes: secure.allBytes / plain.allBytes, withEvaluationDownload, roundTime: secure.medianRoundSeconds / plain.medianRoundSeconds, coordinatorCpu: secure.cpuMsPerClinicRound / plain.cpuMsPerClinicRound,
  } }, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}
