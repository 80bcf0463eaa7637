import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { buildModel, type BuiltModel, type ModelSpec } from './build.js';
import { createPlainTrainer } from './fit-loop.js';
import { exclusiveStorage, minimize, sgdStepInPlace, writeInPlace } from './in-place.js';
import { createModelRuntime } from './model.js';
import { createProximalTrainer } from './proximal.js';
import { gatherRows, mulberry32, permutation } from './shuffle.js';

const FEATURES = 6;
const SGD: ModelSpec = {
  topology: { class_name: 'Sequential', config: { layers: [
    { class_name: 'Dense', config: { name: 'hidden', units: 9, activation: 'relu', batch_input_shape: [null, FEATURES], kernel_regularizer: { class_name: 'L1L2', config: { l1: 0, l2: 0.01 } } } },
    { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
  ] } },
  loss: 'binaryCrossentropy',
  optimizer: { name: 'sgd', learningRate: 0.3 },
  seed: 5,
};

function data(n: number): { xs: tf.Tensor2D; ys: tf.Tensor2D } {
  const random = mulberry32(9);
  const x = Float32Array.from({ length: n * FEATURES }, () => random() * 2 - 1);
  const y = Float32Array.from({ length: n }, (_, i) => (x[i * FEATURES]! > x[i * FEATURES + 1]! ? 1 : 0));
  return { xs: tf.tensor2d(x, [n, FEATURES]), ys: tf.tensor2d(y, [n, 1]) };
}

function weightsOf(built: BuiltModel): Float32Array[] {
  return built.model.weights.map((w) => Float32Array.from(w.read().dataSync()));
}

/** tfjs' own SGD over the same batches: optimizer.minimize on the compiled loss, no in-place writes. */
function tfjsSteps(built: BuiltModel, xs: tf.Tensor2D, ys: tf.Tensor2D, batch: number): void {
  const vars = built.model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let start = 0; start < xs.shape[0]; start += batch) {
    const size = Math.min(batch, xs.shape[0] - start);
    tf.tidy(() => {
      const xb = tf.slice(xs, [start, 0], [size, -1]);
      const yb = tf.slice(ys, [start, 0], [size, -1]);
      built.optimizer.minimize(() => {
        let loss = tf.mean(built.lossFunction(yb, built.model.apply(xb, { training: true }) as tf.Tensor)) as tf.Scalar;
        for (const p of built.model.calculateLosses()) loss = tf.add(loss, p);
        return loss;
      }, false, vars);
    });
  }
}

describe('in-place weight writes on the cpu backend', () => {
  beforeAll(async () => {
    expect((await initBackend('cpu')).backend).toBe('cpu');
  });

  it('trains plain SGD bit-identically to tfjs, in the weights\' own storage', async () => {
    const { xs, ys } = data(50);
    const [ours, theirs] = [await buildModel(SGD), await buildModel(SGD)];
    try {
      expect(weightsOf(ours)).toEqual(weightsOf(theirs));
      const storage = ours.model.weights.map((w) => exclusiveStorage(w.read()));
      expect(storage.every((s) => s !== undefined)).toBe(true);
      const trainer = createPlainTrainer(ours);
      await trainer.pass(xs, ys, 16);
      await trainer.pass(xs, ys, 7);
      tfjsSteps(theirs, xs, ys, 16);
      tfjsSteps(theirs, xs, ys, 7);
      expect(weightsOf(ours)).toEqual(weightsOf(theirs));
      // The path under test ran: the same arrays hold the trained weights, and the step count agrees.
      ours.model.weights.forEach((w, i) => expect(exclusiveStorage(w.read())).toBe(storage[i]));
      expect(ours.optimizer.iterations).toBe(theirs.optimizer.iterations);
      expect(ours.optimizer.iterations).toBe(4 + 8);
    } finally {
      tf.dispose([xs, ys]);
      for (const b of [ours, theirs]) { b.model.dispose(); b.optimizer.dispose(); }
    }
  });

  it('runtime.fit ends with the weights and losses of tfjs fit(shuffle: false) on cpu, bit for bit', async () => {
    const n = 45;
    const source = mulberry32(3);
    const x = Float32Array.from({ length: n * FEATURES }, () => source() * 2 - 1);
    const y = Float32Array.from({ length: n }, (_, i) => (x[i * FEATURES]! > 0 ? 1 : 0));
    const rt = await createModelRuntime(SGD);
    const built = await buildModel(SGD);
    try {
      // What the runtime's loop replaced: one fit(shuffle: false) per epoch over the seeded order.
      const random = mulberry32(17);
      const expected: number[] = [];
      for (let epoch = 0; epoch < 3; epoch++) {
        const order = permutation(n, random);
        const xs = tf.tensor2d(gatherRows(x, FEATURES, order), [n, FEATURES]);
        const ys = tf.tensor2d(gatherRows(y, 1, order), [n, 1]);
        const history = await built.model.fit(xs, ys, { epochs: 1, batchSize: 8, shuffle: false, verbose: 0 });
        tf.dispose([xs, ys]);
        expected.push(Number(history.history['loss']?.[0]));
      }
      const losses: number[] = [];
      await rt.fit(x, y, { epochs: 3, batchSize: 8, shuffleSeed: 17, onEpochEnd: (_, loss) => losses.push(loss) });
      expect(losses).toEqual(expected);
      expect(rt.getWeights()).toEqual(Float32Array.from(weightsOf(built).flatMap((w) => Array.from(w))));
    } finally {
      rt.dispose();
      built.model.dispose();
      built.optimizer.dispose();
    }
  });

  it('trains FedProx with SGD bit-identically to its tfjs minimize path', async () => {
    const { xs, ys } = data(40);
    const built = await buildModel(SGD);
    const reference = Float32Array.from(weightsOf(built).flatMap((w) => Array.from(w)));
    // The same model with tfjs' own SGD: the spec says adam, so minimize() leaves it to tfjs.
    const plain = await buildModel(SGD);
    const viaTfjs: BuiltModel = { ...plain, optimizerSpec: { name: 'adam', learningRate: 0.3 } };
    try {
      const a = createProximalTrainer(built, { mu: 0.5, reference });
      const b = createProximalTrainer(viaTfjs, { mu: 0.5, reference });
      const before = exclusiveStorage(built.model.weights[0]!.read());
      expect(await a.pass(xs, ys, 8)).toBe(await b.pass(xs, ys, 8));
      expect(weightsOf(built)).toEqual(weightsOf(plain));
      const untrained = await buildModel(SGD);
      expect(weightsOf(built)).not.toEqual(weightsOf(untrained));
      untrained.model.dispose();
      untrained.optimizer.dispose();
      expect(exclusiveStorage(built.model.weights[0]!.read())).toBe(before);
      a.dispose();
      b.dispose();
    } finally {
      tf.dispose([xs, ys]);
      for (const b of [built, plain]) { b.model.dispose(); b.optimizer.dispose(); }
    }
  });

  it('leaves shared storage alone and lets tfjs write it', () => {
    const base = tf.tensor1d([1, 2, 3]);
    const v = tf.variable(base);
    try {
      // The variable shares its storage with `base`: writing into it would change `base` too.
      expect(exclusiveStorage(v)).toBeUndefined();
      expect(writeInPlace(v, Float32Array.of(4, 5, 6), false)).toBe(false);
      const g = tf.tensor1d([1, 1, 1]);
      expect(sgdStepInPlace(v, g, -0.5)).toBe(false);
      g.dispose();
      expect(Array.from(base.dataSync())).toEqual([1, 2, 3]);
      base.dispose();
      expect(exclusiveStorage(v)).toBeDefined();
      expect(writeInPlace(v, Float32Array.of(4, 5, 6), false)).toBe(true);
      expect(Array.from(v.dataSync())).toEqual([4, 5, 6]);
      // A constraint rewrites what is written: that stays with tfjs-layers.
      expect(writeInPlace(v, Float32Array.of(7, 8, 9), true)).toBe(false);
      expect(Array.from(v.dataSync())).toEqual([4, 5, 6]);
    } finally {
      tf.dispose([base, v]);
    }
  });

  it('leaves a variable made from a slice alone: its storage is a view of another tensor (review ragm)', () => {
    const big = tf.tensor1d([10, 20, 30, 40, 50]);
    const part = tf.slice(big, [2], [2]);
    const w = tf.variable(part);
    part.dispose();
    try {
      expect(exclusiveStorage(w)).toBeUndefined();
      expect(writeInPlace(w, Float32Array.of(-1, -1), false)).toBe(false);
      expect(Array.from(big.dataSync())).toEqual([10, 20, 30, 40, 50]);
    } finally {
      tf.dispose([big, w]);
    }
  });

  it('minimize() returns the loss and leaks no tensors, in place or not', () => {
    const v = tf.variable(tf.tensor1d([0.5, -1.25]));
    const optimizer = tf.train.sgd(0.1);
    try {
      const before = tf.memory().numTensors;
      const f = (): tf.Scalar => tf.sum(tf.square(v));
      const loss = minimize(optimizer, f, [v], { learningRate: 0.1 });
      expect(loss.dataSync()[0]).toBeCloseTo(0.25 + 1.5625, 6);
      loss.dispose();
      expect(Array.from(v.dataSync())).toEqual([Math.fround(Math.fround(Math.fround(-0.1) * 1) + 0.5), Math.fround(Math.fround(Math.fround(-0.1) * -2.5) + -1.25)]);
      minimize(optimizer, f, [v], undefined).dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(optimizer.iterations).toBe(2);
    } finally {
      v.dispose();
      optimizer.dispose();
    }
  });

  it('setWeights copies into the model, keeps copy semantics and still applies constraints', async () => {
    const rt = await createModelRuntime(SGD);
    const constrained = await createModelRuntime({ ...SGD, topology: { class_name: 'Sequential', config: { layers: [
      { class_name: 'Dense', config: { name: 'hidden', units: 3, batch_input_shape: [null, 2], kernel_constraint: { class_name: 'NonNeg', config: {} } } },
      { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
    ] } } });
    try {
      const w = Float32Array.from(rt.getWeights(), (_, i) => i / 7 - 3);
      rt.setWeights(w);
      expect(rt.getWeights()).toEqual(w);
      w[0] = 99;
      expect(rt.getWeights()[0]).toBe(Math.fround(-3));
      const negative = new Float32Array(constrained.getWeights().length).fill(-1);
      constrained.setWeights(negative);
      expect(Array.from(constrained.getWeights().subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
    } finally {
      rt.dispose();
      constrained.dispose();
    }
  });
});
