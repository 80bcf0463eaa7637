import { beforeAll, describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { buildModel, type ModelSpec } from './build.js';
import { createModelRuntime } from './model.js';
import { gatherRows, mulberry32, permutation } from './shuffle.js';

const FEATURES = 5;

function spec(layers: Record<string, unknown>[], loss: ModelSpec['loss'], optimizer: ModelSpec['optimizer']): ModelSpec {
  return { topology: { class_name: 'Sequential', config: { layers } }, loss, optimizer, seed: 11 };
}

const CASES: [string, ModelSpec][] = [
  [
    'Dense, SGD, binary cross-entropy',
    spec(
      [
        { class_name: 'Dense', config: { name: 'hidden', units: 8, activation: 'relu', batch_input_shape: [null, FEATURES] } },
        { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
      ],
      'binaryCrossentropy',
      { name: 'sgd', learningRate: 0.1 },
    ),
  ],
  [
    'BatchNormalization and an L2 regularizer, Adam, mean squared error',
    spec(
      [
        { class_name: 'Dense', config: { name: 'hidden', units: 6, batch_input_shape: [null, FEATURES], kernel_regularizer: { class_name: 'L1L2', config: { l1: 0, l2: 0.01 } } } },
        { class_name: 'BatchNormalization', config: { name: 'norm' } },
        { class_name: 'Activation', config: { name: 'act', activation: 'relu' } },
        { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
      ],
      'meanSquaredError',
      { name: 'adam', learningRate: 0.05 },
    ),
  ],
];

function dataset(n: number): { x: Float32Array; y: Float32Array } {
  const random = mulberry32(5);
  const x = Float32Array.from({ length: n * FEATURES }, () => random() * 2 - 1);
  const y = Float32Array.from({ length: n }, (_, i) => (x[i * FEATURES]! - x[i * FEATURES + 1]! + random() * 0.4 > 0 ? 1 : 0));
  return { x, y };
}

/** What the runtime did before its own loop: one tfjs fit(shuffle: false) per epoch over the seeded order. */
async function viaTfjsFit(model: ModelSpec, x: Float32Array, y: Float32Array, epochs: number, batchSize: number, seed: number): Promise<{ weights: Float32Array; losses: number[] }> {
  const built = await buildModel(model);
  try {
    const random = mulberry32(seed);
    const losses: number[] = [];
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(y.length, random);
      const xs = tf.tensor2d(gatherRows(x, FEATURES, order), [order.length, FEATURES]);
      const ys = tf.tensor2d(gatherRows(y, 1, order), [order.length, 1]);
      const history = await built.model.fit(xs, ys, { epochs: 1, batchSize, shuffle: false, verbose: 0 });
      tf.dispose([xs, ys]);
      losses.push(Number(history.history['loss']?.[0]));
    }
    const weights = Float32Array.from(built.model.weights.flatMap((w) => Array.from(w.read().dataSync())));
    return { weights, losses };
  } finally {
    built.model.dispose();
    built.optimizer.dispose();
  }
}

describe('the runtime training loop', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it.each(CASES)('ends with the same weights and losses, bit for bit, as tfjs fit(): %s', async (_, model) => {
    // 90 rows in batches of 16: the last batch of every epoch is partial.
    const { x, y } = dataset(90);
    const expected = await viaTfjsFit(model, x, y, 3, 16, 21);
    const rt = await createModelRuntime(model);
    try {
      const losses: number[] = [];
      const result = await rt.fit(x, y, { epochs: 3, batchSize: 16, shuffleSeed: 21, onEpochEnd: (_, loss) => losses.push(loss) });
      expect(losses).toEqual(expected.losses);
      expect(result.loss).toBe(expected.losses[2]);
      expect(rt.getWeights()).toEqual(expected.weights);
    } finally {
      rt.dispose();
    }
    // The comparison is not vacuous: training moved the weights.
    const untrained = await createModelRuntime(model);
    expect(untrained.getWeights()).not.toEqual(expected.weights);
    untrained.dispose();
  });

  it('leaks no tensors over epochs and steps', async () => {
    const { x, y } = dataset(40);
    const [, model] = CASES[1]!;
    const rt = await createModelRuntime(model);
    try {
      // The first step creates Adam's moment variables, which live as long as the runtime.
      await rt.fit(x, y, { epochs: 1, batchSize: 16, shuffleSeed: 0 });
      const before = tf.memory().numTensors;
      await rt.fit(x, y, { epochs: 2, batchSize: 16, shuffleSeed: 1 });
      await rt.fit(x, y, { epochs: 1, batchSize: 7, steps: 9, shuffleSeed: 2 });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      rt.dispose();
    }
  });
});
