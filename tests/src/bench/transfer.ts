/**
 * Transfer benchmark (not part of the test run): one round of a ~1 GiB model (268M float32
 * parameters: Dense 8192→32768, then Dense 32768→1) with two real agent processes. Reports
 * peak RSS of the coordinator and of each agent as a multiple of the model size, and fedlhs'
 * download/upload throughput beside raw grpc-js streaming of the same number of bytes over
 * loopback, measured in the same run. Usage: npm run bench:transfer [-- --units 16384 --backend cpu]
 *
 * With `--downloads 1,16,64` it measures instead how the coordinator's memory grows with
 * concurrent downloads of a 4M-parameter model (16 MiB) by clients that stop reading after the
 * header (the worst case: slow clinics): for each count, a fresh coordinator, peak RSS growth
 * while every stream is stalled, divided by the count and by the model size.
 */
import { readFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '@fedlhs/testing';
import { rawGrpc } from './raw-grpc.js';
import { downloadConcurrency } from './download-concurrency.js';
import { enrolAgent, repoRoot, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/simulator';

const unitsArg = process.argv.indexOf('--units');
const UNITS = unitsArg > 0 ? Number(process.argv[unitsArg + 1]) : 16384;
const ROWS = 32;
// The wasm backend's 32-bit heap cannot hold a 1 GiB model with its gradients (it aborts), so
// the benchmark trains on tfjs-node where installed and otherwise on the JS cpu backend.
const backendArg = process.argv.indexOf('--backend');
const BACKEND = backendArg > 0 ? process.argv[backendArg + 1]! : 'cpu';
// Inputs stay under the manifest's 10 000-feature limit; the hidden layer carries the bulk.
const INPUTS = UNITS / 2;
const HIDDEN = UNITS * 2;
const PARAMS = INPUTS * HIDDEN + HIDDEN + HIDDEN + 1;
const MODEL_BYTES = PARAMS * 4;
const MiB = 1048576;

/** Resident set size of a process, from /proc (Linux). */
function rss(pid: number): number {
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return pages * 4096;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const root = join(repoRoot, 'bench-run');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  say(`model: Dense ${INPUTS}→${HIDDEN}→1, ${PARAMS.toLocaleString()} float32 parameters = ${(MODEL_BYTES / MiB).toFixed(0)} MiB`);

  const c = await startCoordinator({ dataDir: join(root, 'coordinator'), heartbeatIntervalMs: 5000, env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_BACKEND: BACKEND } });
  const agents: ReturnType<typeof startAgent>[] = [];
  const features = Array.from({ length: INPUTS }, (_, i) => `f${i}`);
  for (const name of ['bench-a', 'bench-b']) {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const random = mulberry32(name.length);
    const rows = [['record_id', ...features, 'label'].join(',')];
    for (let r = 0; r < ROWS; r++) rows.push([`${name}-${r}`, ...features.map(() => random().toFixed(2)), r % 2].join(','));
    writeFileSync(join(dir, 'data.csv'), `${rows.join('\n')}\n`);
    const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true, env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_BACKEND: BACKEND } };
    await enrolAgent(c, o);
    agents.push(startAgent(o));
  }
  const peaks = new Map<string, number>([['coordinator', 0], ['bench-a', 0], ['bench-b', 0]]);
  // Where each process was when it peaked: its last log line then (the stage, e.g. after the download).
  const peakAt = new Map<string, string>();
  let sampling = false;
  const sample = (name: string, proc: { pid: number; lines: readonly Record<string, unknown>[] }): void => {
    const now = rss(proc.pid);
    if (now <= peaks.get(name)!) return;
    peaks.set(name, now);
    const last = proc.lines.at(-1);
    peakAt.set(name, String(last?.['event'] ?? last?.['msg'] ?? 'start'));
  };
  const sampler = setInterval(() => {
    if (!sampling) return;
    sample('coordinator', c.proc);
    agents.forEach((a, i) => sample(`bench-${'ab'[i]}`, a));
  }, 100);
  try {
    const manifest = {
      apiVersion: 'fedlhs.v1', kind: 'Study', name: 'bench-1gib',
      model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'bench', layers: [
        { class_name: 'Dense', config: { name: 'wide', units: HIDDEN, activation: 'relu', batch_input_shape: [null, INPUTS] } },
        { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
      ] } } },
      training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.001 }, localEpochs: 1, batchSize: ROWS },
      rounds: 1, clients: { min: 2, max: 2, quorum: 2 }, deadlines: { roundSeconds: 3600, evaluationSeconds: 3600 },
      data: { featureSpec: 'flat-table/v1', features, label: 'label', holdoutFraction: 0.5, minCellCount: 0 }, aggregation: { strategy: 'fedavg' }, seed: 1,
    };
    say('starting study (the coordinator builds and checkpoints the initial model)…');
    const study = await startStudy(c, manifest);
    await c.proc.waitForEvent('round.phase', { round: 1, state: 'TRAINING' }, 3_600_000);
    sampling = true; // measure the round itself, not the one-off initial model build
    say('round 1 training…');
    const detail = await waitForStudyEnd(c, study.id, 3_600_000);
    sampling = false;
    const downloads = agents.flatMap((a) => a.events('model.downloaded', { kind: 'train' }));
    const uploads = agents.flatMap((a) => a.events('update.sent'));
    say(`study ${detail.state}; measuring raw grpc-js streaming of ${(MODEL_BYTES / MiB).toFixed(0)} MiB for comparison…`);
    const raw = await rawGrpc(MODEL_BYTES);
    const fmt = (x: number): string => x.toFixed(1);
    say('\npeak RSS during the round (÷ model size):');
    for (const [name, peak] of peaks) say(`  ${name.padEnd(12)} ${fmt(peak / MiB)} MiB  = ${(peak / MODEL_BYTES).toFixed(2)} × model  (peak after its log line "${peakAt.get(name) ?? '-'}")`);
    say('\nthroughput, MiB/s (fedlhs per agent, two agents concurrently | raw grpc-js, one stream alone):');
    say(`  download  ${downloads.map((l) => fmt(l.mbPerS as number)).join(', ')}  | raw ${fmt(raw.downloadMBs)}  → ratio ${(downloads.reduce((s, l) => s + (l.mbPerS as number), 0) / raw.downloadMBs).toFixed(2)} (sum of agents ÷ raw)`);
    say(`  upload    ${uploads.map((l) => fmt(l.mbPerS as number)).join(', ')}  | raw ${fmt(raw.uploadMBs)}  → ratio ${(uploads.reduce((s, l) => s + (l.mbPerS as number), 0) / raw.uploadMBs).toFixed(2)} (sum of agents ÷ raw)`);
    say('  (fedlhs upload time includes the coordinator checking, spooling and averaging the update before it answers)');
  } finally {
    clearInterval(sampler);
    await Promise.all(agents.map((a) => a.stop()));
    await c.stop();
  }
}

(process.argv.includes('--downloads') ? downloadConcurrency(process.argv[process.argv.indexOf('--downloads') + 1] ?? '1,16,64') : main()).catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
