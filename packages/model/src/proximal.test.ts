import { beforeAll, describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { isFedlhsError } from '@fedlhs/core';
import { initBackend } from './backend.js';
import { createModelRuntime, type FitOptions, type ModelRuntime, type ModelSpec } from './model.js';
import { mulberry32 } from './shuffle.js';

const FEATURES = 4;

function spec(layers: Record<string, unknown>[], optimizer: ModelSpec['optimizer'] = { name: 'adam', learningRate: 0.05 }): ModelSpec {
  return { topology: { class_name: 'Sequential', config: { layers } }, loss: 'binaryCrossentropy', optimizer };
}

const dense = (optimizer?: ModelSpec['optimizer']): ModelSpec =>
  spec(
    [
      { class_name: 'Dense', config: { name: 'hidden', units: 8, activation: 'relu', batch_input_shape: [null, FEATURES] } },
      { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
    ],
    optimizer,
  );

/** Has non-trainable weights (moving mean and variance) and a kernel regularizer. */
const withBatchNorm = (): ModelSpec =>
  spec([
    {
      class_name: 'Dense',
      config: { name: 'hidden', units: 6, activation: 'linear', batch_input_shape: [null, FEATURES], kernel_regularizer: { class_name: 'L1L2', config: { l1: 0, l2: 0.01 } } },
    },
    { class_name: 'BatchNormalization', config: { name: 'norm' } },
    { class_name: 'Activation', config: { name: 'act', activation: 'relu' } },
    { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
  ]);

function dataset(n: number, seed: number): { x: Float32Array; y: Float32Array } {
  const random = mulberry32(seed);
  const w = [1.5, -2, 0.75, 1];
  const x = new Float32Array(n * FEATURES);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < FEATURES; j++) {
      const v = random() * 2 - 1;
      x[i * FEATURES + j] = v;
      s += v * w[j]!;
    }
    y[i] = s + (random() - 0.5) * 0.2 > 0 ? 1 : 0;
  }
  return { x, y };
}

function distance(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

/** Trains a fresh runtime from `start` and returns its weights and per-epoch losses. */
async function train(model: ModelSpec, start: Float32Array | undefined, data: { x: Float32Array; y: Float32Array }, options: FitOptions) {
  const rt = await createModelRuntime(model);
  try {
    if (start !== undefined) rt.setWeights(start);
    const initial = rt.getWeights();
    const losses: number[] = [];
    const result = await rt.fit(data.x, data.y, { ...options, onEpochEnd: (_, loss) => losses.push(loss) });
    return { initial, weights: rt.getWeights(), losses, result, specs: rt.specs };
  } finally {
    rt.dispose();
  }
}

/** Offset of the weight named `name` in the flat vector. */
function offsetOf(rt: Pick<ModelRuntime, 'specs'>, name: string): { from: number; to: number } {
  let offset = 0;
  for (const s of rt.specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.name === name) return { from: offset, to: offset + n };
    offset += n;
  }
  throw new Error(`no weight ${name}`);
}

describe('fit with a FedProx proximal term', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('trains exactly as without the term when mu = 0', async () => {
    const data = dataset(50, 1);
    const base = await train(dense(), undefined, data, { epochs: 3, batchSize: 16, shuffleSeed: 9 });
    const zero = await train(dense(), base.initial, data, { epochs: 3, batchSize: 16, shuffleSeed: 9, proximal: { mu: 0, reference: new Float32Array(base.initial.length) } });
    expect(zero.weights).toEqual(base.weights);
    expect(zero.losses).toEqual(base.losses);
  });

  it.each([
    ['epochs with a partial last batch', { epochs: 3, batchSize: 16 }],
    ['steps across shuffles', { epochs: 1, batchSize: 16, steps: 7 }],
  ] as const)('draws the same batches as tfjs fit(): %s', async (_, options) => {
    // A vanishing mu leaves the custom loop computing what fit() computes, step for step:
    // same rows per batch, same optimizer, BatchNormalization statistics and regularizer.
    const data = dataset(50, 2);
    const base = await train(withBatchNorm(), undefined, data, { ...options, shuffleSeed: 4 });
    const prox = await train(withBatchNorm(), base.initial, data, { ...options, shuffleSeed: 4, proximal: { mu: 1e-20, reference: base.initial } });
    expect(prox.losses).toHaveLength(base.losses.length);
    prox.losses.forEach((loss, i) => expect(loss).toBeCloseTo(base.losses[i]!, 5));
    expect(prox.result.loss).toBe(prox.losses.at(-1));
    expect(distance(prox.weights, base.weights)).toBeLessThan(1e-5);
    // The moving statistics were updated by the training-mode forward pass, as in fit().
    const variance = offsetOf(prox, 'norm/moving_variance');
    expect(distance(prox.weights, base.initial, variance.from, variance.to)).toBeGreaterThan(0.01);
  });

  it('keeps the trainable weights near the reference when mu is large', async () => {
    const data = dataset(200, 3);
    const options = { epochs: 5, batchSize: 16, shuffleSeed: 5 };
    const free = await train(dense(), undefined, data, options);
    const reference = free.initial;
    const held = await train(dense(), reference, data, { ...options, proximal: { mu: 100, reference } });
    const ratio = distance(held.weights, reference) / distance(free.weights, reference);
    expect(ratio).toBeLessThan(0.2);
    // The reported loss is the data loss alone: (mu/2)·‖w − w_ref‖² would add a visible amount.
    expect(held.losses.every((l) => Number.isFinite(l) && l > 0 && l < 1)).toBe(true);
  });

  it('does not pull non-trainable weights towards the reference', async () => {
    const data = dataset(100, 6);
    const model = { ...withBatchNorm(), optimizer: { name: 'sgd', learningRate: 0.05 } } satisfies ModelSpec;
    const options = { epochs: 4, batchSize: 10, shuffleSeed: 2 };
    const free = await train(model, undefined, data, options);
    const reference = free.initial;
    const held = await train(model, reference, data, { ...options, proximal: { mu: 20, reference } });
    const kernel = offsetOf(held, 'hidden/kernel');
    const variance = offsetOf(held, 'norm/moving_variance');
    const moved = (run: { weights: Float32Array }, { from, to }: { from: number; to: number }) => distance(run.weights, reference, from, to);
    expect(moved(held, kernel) / moved(free, kernel)).toBeLessThan(0.2);
    // The moving variance follows the batches (40 updates at momentum 0.99 take it a third of
    // the way) as far as without the term; a pull of this strength would have held it back.
    expect(moved(held, variance)).toBeGreaterThan(0.5 * moved(free, variance));
    expect(moved(held, variance)).toBeGreaterThan(0.1);
  });

  it('takes the step w − η·(g_data + mu·(w − w_ref)) and reports the data loss', async () => {
    // Dense(1, linear, no bias) with MSE on one example: loss = (w·x − y)², g_data = 2(w·x − y)·x.
    const model: ModelSpec = {
      topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'linear', use_bias: false, batch_input_shape: [null, 2] } }] } },
      loss: 'meanSquaredError',
      optimizer: { name: 'sgd', learningRate: 0.125 },
    };
    const rt = await createModelRuntime(model);
    expect(rt.specs).toEqual([{ name: 'dense_0/kernel', shape: [2, 1] }]);
    const eta = 0.125;
    const mu = 0.5;
    const w = [0.5, -0.25];
    const reference = Float32Array.of(1, 1);
    const x = [1, 2];
    const y = 3;
    rt.setWeights(Float32Array.from(w));
    const residual = w[0]! * x[0]! + w[1]! * x[1]! - y;
    const expected = Float32Array.from(w, (wi, i) => wi - eta * (2 * residual * x[i]! + mu * (wi - reference[i]!)));
    const losses: number[] = [];
    await rt.fit(Float32Array.from(x), Float32Array.of(y), { epochs: 1, batchSize: 1, proximal: { mu, reference }, onEpochEnd: (_, l) => losses.push(l) });
    const got = rt.getWeights();
    expect(Array.from(expected)).toEqual([1.28125, 1.328125]);
    for (let i = 0; i < 2; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThanOrEqual(Math.abs(expected[i]!) * 2 ** -23);
    expect(losses).toEqual([residual ** 2]);
    rt.dispose();
  });

  it('refuses an unusable proximal term before training', async () => {
    const rt = await createModelRuntime(dense());
    const { x, y } = dataset(10, 7);
    const reference = rt.getWeights();
    const before = tf.memory().numTensors;
    const messages: string[] = [];
    for (const proximal of [
      { mu: 1, reference: reference.subarray(1) },
      { mu: -0.1, reference },
      { mu: Number.NaN, reference },
      { mu: Number.POSITIVE_INFINITY, reference },
      { mu: 1, reference: Float32Array.from(reference, (v, i) => (i === 3 ? Number.NaN : v)) },
      { mu: 0, reference: new Float32Array(3) },
    ]) {
      const err: unknown = await rt.fit(x, y, { epochs: 1, batchSize: 4, proximal }).catch((e: unknown) => e);
      expect(isFedlhsError(err, 'INVALID_ARGUMENT')).toBe(true);
      messages.push((err as Error).message);
    }
    expect(messages).toMatchInlineSnapshot(`
      [
        "fit: proximal.reference has 48 values, expected 49 for 4 tensors",
        "fit: proximal.mu must be a finite number ≥ 0, got -0.1",
        "fit: proximal.mu must be a finite number ≥ 0, got NaN",
        "fit: proximal.mu must be a finite number ≥ 0, got Infinity",
        "fit: proximal.reference[3] is NaN, not a finite number",
        "fit: proximal.reference has 3 values, expected 49 for 4 tensors",
      ]
    `);
    expect(tf.memory().numTensors).toBe(before);
    expect(rt.getWeights()).toEqual(reference);
    // The runtime is not left marked as training.
    await rt.fit(x, y, { epochs: 1, batchSize: 4, proximal: { mu: 1, reference } });
    rt.dispose();
  });

  it('leaks no tensors', async () => {
    const baseline = tf.memory().numTensors;
    const rt = await createModelRuntime(withBatchNorm());
    const { x, y } = dataset(45, 8);
    const reference = rt.getWeights();
    // The first fit creates the optimizer's slot variables, which then live with the model.
    await rt.fit(x, y, { epochs: 1, batchSize: 16, shuffleSeed: 0, proximal: { mu: 1, reference } });
    const steady = tf.memory().numTensors;
    await rt.fit(x, y, { epochs: 2, batchSize: 16, shuffleSeed: 1, proximal: { mu: 1, reference } });
    expect(tf.memory().numTensors).toBe(steady);
    await rt.fit(x, y, { epochs: 1, batchSize: 8, steps: 5, shuffleSeed: 2, proximal: { mu: 10, reference } });
    expect(tf.memory().numTensors).toBe(steady);
    await rt.fit(x, y, { epochs: 1, batchSize: 8, shuffleSeed: 3 });
    expect(tf.memory().numTensors).toBe(steady);
    rt.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
