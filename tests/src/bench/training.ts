/**
 * `npm run bench:training` (not part of the test run). Local training throughput of the model
 * runtime (what the agent's TRAIN task calls: createModelRuntime + fit with a seeded shuffle and
 * a per-epoch progress callback) beside a bare tfjs-layers `model.fit` of the same topology,
 * optimizer, initial weights, batch size and epochs, on the same backend and the same learnable
 * data, in one process. Repetitions alternate which side runs first; the figure is the median of
 * the per-repetition ratios (ours / bare examples per second), so drift on a shared machine
 * cancels out; the same ratio by process CPU time is printed beside it (steadier under load).
 * Usage: npm run bench:training [-- --rows 4000 --epochs 5 --reps 11]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mulberry32 } from '@fedlhs/core';
import { createModelRuntime, initBackend, type ModelSpec } from '@fedlhs/model';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { t2dManifest } from '@fedlhs/simulator';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
};
const ROWS = arg('rows', 4000);
const EPOCHS = arg('epochs', 5);
const REPS = arg('reps', 11);
const say = (s: string): void => void process.stdout.write(`${s}\n`);

interface Study {
  name: string;
  spec: ModelSpec;
  batchSize: number;
  x: Float32Array;
  y: Float32Array;
}

/** A study's model and training settings as the agent reads them from its manifest. */
function specOf(manifest: Record<string, unknown>): { spec: ModelSpec; batchSize: number; features: number } {
  const m = manifest as { model: { topology: Record<string, unknown> }; training: { loss: ModelSpec['loss']; optimizer: ModelSpec['optimizer']; batchSize: number }; seed?: number };
  const layers = (m.model.topology['config'] as { layers: { config: { batch_input_shape?: [null, number] } }[] }).layers;
  const features = layers[0]!.config.batch_input_shape![1];
  return { spec: { topology: m.model.topology, loss: m.training.loss, optimizer: m.training.optimizer, seed: m.seed ?? 7 }, batchSize: m.training.batchSize, features };
}

/** The repo's learnable generator (a logistic label of Gaussian features), read back as arrays. */
function learnableData(dir: string, features: number): { x: Float32Array; y: Float32Array } {
  const path = join(dir, `learnable-${features}.csv`);
  writeLearnableCsv(path, { rows: ROWS, seed: 11, features });
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(1);
  const x = new Float32Array(lines.length * features);
  const y = new Float32Array(lines.length);
  lines.forEach((line, i) => {
    const cells = line.split(',');
    for (let j = 0; j < features; j++) x[i * features + j] = Number(cells[j + 1]);
    y[i] = Number(cells[features + 1]);
  });
  return { x, y };
}

/** Wall and process CPU seconds of one fit (CPU time is steadier when the machine is shared). */
interface Timing {
  wall: number;
  cpu: number;
}

function timer(): () => Timing {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { wall: (performance.now() - wall) / 1000, cpu: (used.user + used.system) / 1e6 };
  };
}

/** Time of the runtime's fit, as the agent calls it (seeded shuffle, per-epoch progress). */
async function ours(study: Study, initial: Float32Array, seed: number): Promise<Timing> {
  const runtime = await createModelRuntime(study.spec);
  try {
    runtime.setWeights(initial);
    let progress = 0;
    const stop = timer();
    await runtime.fit(study.x, study.y, {
      epochs: EPOCHS,
      batchSize: study.batchSize,
      shuffleSeed: seed,
      // The agent logs each epoch and reports progress; this stands in for that cheap work.
      onEpochEnd: (epoch) => {
        progress = (epoch + 1) / EPOCHS;
      },
    });
    const timing = stop();
    if (progress !== 1) throw new Error('the runtime did not report every epoch');
    return timing;
  } finally {
    runtime.dispose();
  }
}

/** A bare tfjs-layers model of the study's topology and optimizer, with the given weights. */
async function bareModel(study: Study, initial: Float32Array): Promise<{ model: tfl.LayersModel; optimizer: tf.Optimizer }> {
  const model = await tfl.models.modelFromJSON({ modelTopology: structuredClone(study.spec.topology) } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
  const { name, learningRate } = study.spec.optimizer;
  const optimizer = name === 'sgd' ? tf.train.sgd(learningRate) : name === 'adam' ? tf.train.adam(learningRate) : name === 'rmsprop' ? tf.train.rmsprop(learningRate) : tf.train.adagrad(learningRate);
  model.compile({ optimizer, loss: study.spec.loss });
  let offset = 0;
  model.setWeights(
    model.weights.map((w) => {
      const n = w.shape.reduce((a: number, b) => a * (b ?? 1), 1);
      const t = tf.tensor(initial.slice(offset, offset + n), w.shape as number[]);
      offset += n;
      return t;
    }),
  );
  return { model, optimizer };
}

/**
 * Time of a bare tfjs-layers fit of the same topology, optimizer and weights; with `seed`, the
 * runtime's loop before it had its own (one fit(shuffle: false) per epoch over rows put in a
 * seeded order in JavaScript), for a before/after figure in the same run.
 */
async function bare(study: Study, initial: Float32Array, seed?: number): Promise<Timing> {
  const { model, optimizer } = await bareModel(study, initial);
  const n = study.y.length;
  const inputDim = study.x.length / n;
  try {
    const stop = timer();
    if (seed === undefined) {
      const xs = tf.tensor2d(study.x, [n, inputDim]);
      const ys = tf.tensor2d(study.y, [n, 1]);
      await model.fit(xs, ys, { epochs: EPOCHS, batchSize: study.batchSize, shuffle: true, verbose: 0 });
      tf.dispose([xs, ys]);
    } else {
      const random = mulberry32(seed);
      for (let epoch = 0; epoch < EPOCHS; epoch++) {
        const order = Uint32Array.from({ length: n }, (_, i) => i);
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        const x = new Float32Array(n * inputDim);
        const y = new Float32Array(n);
        order.forEach((row, i) => {
          x.set(study.x.subarray(row * inputDim, (row + 1) * inputDim), i * inputDim);
          y[i] = study.y[row]!;
        });
        const xs = tf.tensor2d(x, [n, inputDim]);
        const ys = tf.tensor2d(y, [n, 1]);
        await model.fit(xs, ys, { epochs: 1, batchSize: study.batchSize, shuffle: false, verbose: 0 });
        tf.dispose([xs, ys]);
      }
    }
    return stop();
  } finally {
    model.dispose();
    optimizer.dispose();
  }
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  const selection = await initBackend();
  const passed = selection.attempts.map((a) => `${a.backend}: ${a.error.split('\n')[0]!.slice(0, 100)}`).join('; ');
  say(`backend: ${selection.backend}${passed.length > 0 ? ` (passed over ${passed})` : ''}`);
  say(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-bench-training-'));
  try {
    const studies: Study[] = [];
    for (const [name, manifest] of [
      ['learnable (6-8-1, sgd)', learnableManifest()],
      ['t2d (15-16-1, adam)', t2dManifest({ rounds: 1, clinics: 3, quorum: 2, seed: 7 })],
    ] as const) {
      const { spec, batchSize, features } = specOf(manifest);
      studies.push({ name, spec, batchSize, ...learnableData(dir, features) });
    }
    say(`${ROWS} rows × ${EPOCHS} epochs per fit, ${REPS} repetitions in rotating order; examples per second and ratio to bare model.fit, median:`);
    for (const study of studies) {
      const probe = await createModelRuntime(study.spec);
      const initial = probe.getWeights();
      probe.dispose();
      // One untimed run each: wasm compiles kernels and tfjs caches on first use.
      await ours(study, initial, 1);
      await bare(study, initial);
      await bare(study, initial, 1);
      const rates = { ours: [] as number[], bare: [] as number[], before: [] as number[] };
      const ratios = { ours: [] as number[], before: [] as number[], oursCpu: [] as number[], beforeCpu: [] as number[] };
      const examples = study.y.length * EPOCHS;
      for (let r = 0; r < REPS; r++) {
        // Rotate the order of the three runs so none always follows the same one.
        const runs: (() => Promise<Timing>)[] = [() => ours(study, initial, r + 1), () => bare(study, initial), () => bare(study, initial, r + 1)];
        const timings: Timing[] = [];
        for (let k = 0; k < 3; k++) {
          const which = (k + r) % 3;
          timings[which] = await runs[which]!();
        }
        const [o, b, p] = timings as [Timing, Timing, Timing];
        rates.ours.push(examples / o.wall);
        rates.bare.push(examples / b.wall);
        rates.before.push(examples / p.wall);
        ratios.ours.push(b.wall / o.wall);
        ratios.before.push(b.wall / p.wall);
        ratios.oursCpu.push(b.cpu / o.cpu);
        ratios.beforeCpu.push(b.cpu / p.cpu);
      }
      const range = (v: number[]): string => `${Math.min(...v).toFixed(3)}-${Math.max(...v).toFixed(3)}`;
      say(`  ${study.name}, batch ${study.batchSize}: bare model.fit ${median(rates.bare).toFixed(0)}/s`);
      say(`    runtime now:    ${median(rates.ours).toFixed(0).padStart(7)}/s  ratio ${median(ratios.ours).toFixed(3)} (range ${range(ratios.ours)}; by CPU time ${median(ratios.oursCpu).toFixed(3)})`);
      say(`    runtime before: ${median(rates.before).toFixed(0).padStart(7)}/s  ratio ${median(ratios.before).toFixed(3)} (range ${range(ratios.before)}; by CPU time ${median(ratios.beforeCpu).toFixed(3)})`);
    }
    say(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
