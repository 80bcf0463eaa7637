/**
 * `npm run bench` (not part of the test run). From one run on this machine:
 * 1. aggregation throughput (parameters × clinics per second) of each strategy, and of the
 *    coordinator's streaming FedAvg accumulator, beside a plain typed-array copy of the same
 *    buffers (the memory-bandwidth bound);
 * 2. coordinator update ingest (MiB/s: an UploadUpdate of a large model through a real
 *    coordinator process, checked, spooled and averaged) beside raw grpc-js client streaming
 *    of the same bytes.
 * Usage: npm run bench [-- --params 4000000 --clinics 8 --ingest-units 4096]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { WeightedSum, createStrategy, mulberry32, type ClientUpdate, type StrategyConfig } from '@fedlhs/core';
import { loadFedlhsProto, type EnrolResponse__Output } from '@fedlhs/proto';
import { startCoordinator, startStudy } from '@fedlhs/simulator';
import { RogueNode } from '../rogue-node.js';
import { rawGrpc } from './raw-grpc.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const PARAMS = arg('params', 4_000_000);
const CLINICS = arg('clinics', 8);
const INGEST_UNITS = arg('ingest-units', 4096);
const MiB = 1048576;
const say = (s: string): void => void process.stdout.write(`${s}\n`);

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

async function ingest(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-bench-'));
  const profileDir = process.env.FEDLHS_PROFILE_DIR;
  const c = await startCoordinator({
    dataDir: join(dir, 'coordinator'), heartbeatIntervalMs: 5000, env: { FEDLHS_LOG_LEVEL: 'info' },
    ...(profileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] }),
  });
  try {
    const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'bench', ttlSeconds: 600 })).body.token;
    const client = new (loadFedlhsProto().fedlhs.v1.Enrolment)(c.address, grpc.credentials.createInsecure());
    const creds = await new Promise<EnrolResponse__Output>((resolve, reject) =>
      client.Enrol({ joinToken: token, siteName: 'bench', agent: { agentVersion: 'bench', trainingBackend: 'none', platform: 'bench' } }, (e, r) => (e === null ? resolve(r!) : reject(e))),
    );
    client.close();
    const node = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
    await node.connect();
    const features = Array.from({ length: INGEST_UNITS }, (_, i) => `f${i}`);
    const study = await startStudy(c, {
      apiVersion: 'fedlhs.v1', kind: 'Study', name: 'bench-ingest',
      model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'bench', layers: [
        { class_name: 'Dense', config: { name: 'wide', units: INGEST_UNITS, activation: 'relu', batch_input_shape: [null, INGEST_UNITS] } },
        { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
      ] } } },
      training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.01 }, localEpochs: 1, batchSize: 8 },
      rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 3600, evaluationSeconds: 60 },
      data: { featureSpec: 'flat-table/v1', features, label: 'label' }, aggregation: { strategy: 'fedavg' }, seed: 1,
    });
    const task = await node.trainTask(1, study.id);
    const model = await node.download(task.taskId);
    const weights = Float32Array.from(model.weights, (v) => v * 0.99);
    const bytes = weights.byteLength;
    const start = performance.now();
    await node.upload({ taskId: task.taskId, studyId: study.id, round: 1, nodeId: creds.nodeId, baseModelSha256: task.modelSha256, numExamples: 10, specs: model.specs, weights });
    const ingestRate = bytes / MiB / ((performance.now() - start) / 1000);
    node.close();
    const raw = await rawGrpc(bytes);
    say(`\nupdate ingest of ${(bytes / MiB).toFixed(0)} MiB (header, chunks, shape/finiteness/SHA-256 checks, spool, norm, running sum, receipt):`);
    say(`  coordinator UploadUpdate   ${ingestRate.toFixed(1).padStart(7)} MiB/s`);
    say(`  raw grpc-js client stream  ${raw.uploadMBs.toFixed(1).padStart(7)} MiB/s   → ratio ${(ingestRate / raw.uploadMBs).toFixed(2)}`);
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

aggregation();
ingest().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
