import { beforeAll, describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { bundleLength, isFedlhsError } from '@fedlhs/core';
import { initBackend } from './backend.js';
import { createModelRuntime, initialWeights, type ModelSpec } from './model.js';
import { mulberry32 } from './shuffle.js';

const FEATURES = 4;

function denseSpec(overrides: Partial<ModelSpec> = {}, names = true): ModelSpec {
  const name = (n: string) => (names ? { name: n } : {});
  return {
    topology: {
      class_name: 'Sequential',
      config: {
        name: 'risk',
        layers: [
          { class_name: 'Dense', config: { ...name('hidden'), units: 8, activation: 'relu', batch_input_shape: [null, FEATURES] } },
          { class_name: 'Dense', config: { ...name('out'), units: 1, activation: 'sigmoid' } },
        ],
      },
    },
    loss: 'binaryCrossentropy',
    optimizer: { name: 'adam', learningRate: 0.05 },
    ...overrides,
  };
}

/** Linearly separable up to a little label noise: y = [x·w + noise > 0]. */
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

function seededWeights(length: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length }, () => random() - 0.5);
}

describe('createModelRuntime', () => {
  // tf.memory() needs an active backend; createModelRuntime would otherwise choose it lazily.
  beforeAll(async () => {
    await initBackend();
  });

  it('rejects a layer outside the allow-list before building anything', async () => {
    const spec = denseSpec();
    const layers = (spec.topology['config'] as { layers: unknown[] }).layers;
    layers.splice(1, 0, { class_name: 'Lambda', config: { name: 'sneaky', function: 'x => x' } });
    const before = tf.memory().numTensors;
    const err: unknown = await createModelRuntime(spec).catch((e: unknown) => e);
    expect(isFedlhsError(err, 'MANIFEST_INVALID')).toBe(true);
    expect((err as Error).message).toMatchInlineSnapshot(
      `"model.topology.config.layers[1].class_name: layer type "Lambda" is not allowed; allowed: InputLayer, Dense, Dropout, Activation, BatchNormalization, LayerNormalization, Flatten, Reshape, Conv1D, MaxPooling1D, GlobalAveragePooling1D"`,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects models that do not map [batch, features] to [batch, 1]', async () => {
    const twoOutputs = denseSpec();
    const layers = (twoOutputs.topology['config'] as { layers: { config: Record<string, unknown> }[] }).layers;
    layers[1]!.config['units'] = 2;
    await expect(createModelRuntime(twoOutputs)).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      message: 'model.topology: the model must produce one [batch, 1] output, it produces [[null,2]]',
      details: { path: 'model.topology' },
    });
    const threeD = denseSpec();
    (threeD.topology['config'] as { layers: { config: Record<string, unknown> }[] }).layers[0]!.config['batch_input_shape'] = [null, 2, 2];
    await expect(createModelRuntime(threeD)).rejects.toMatchObject({ code: 'MANIFEST_INVALID', message: expect.stringContaining('one 2-D input') });
  });

  it('rejects an unknown optimizer', async () => {
    const spec = denseSpec({ optimizer: { name: 'lbfgs' as 'sgd', learningRate: 0.1 } });
    await expect(createModelRuntime(spec)).rejects.toMatchObject({ code: 'MANIFEST_INVALID', message: expect.stringContaining('training.optimizer.name'), details: { path: 'training.optimizer.name' } });
  });

  it('names weights <layer>/<weight>, identically on every build in the process', async () => {
    const a = await createModelRuntime(denseSpec());
    const b = await createModelRuntime(denseSpec());
    expect(a.specs).toEqual([
      { name: 'hidden/kernel', shape: [4, 8] },
      { name: 'hidden/bias', shape: [8] },
      { name: 'out/kernel', shape: [8, 1] },
      { name: 'out/bias', shape: [1] },
    ]);
    expect(b.specs).toEqual(a.specs);
    expect(a.inputDim).toBe(FEATURES);
    a.dispose();
    b.dispose();
  });

  it('names unnamed layers by position, not by tfjs’ process-wide counter', async () => {
    const first = await initialWeights(denseSpec({}, false));
    const second = await initialWeights(denseSpec({}, false));
    expect(first.specs.map((s) => s.name)).toEqual(['dense_0/kernel', 'dense_0/bias', 'dense_1/kernel', 'dense_1/bias']);
    expect(second.specs).toEqual(first.specs);
    expect(first.weights).toHaveLength(bundleLength(first.specs));
  });

  it('round-trips weights exactly and keeps no reference to the caller’s array', async () => {
    const rt = await createModelRuntime(denseSpec());
    const w = seededWeights(bundleLength(rt.specs), 7);
    rt.setWeights(w);
    expect(rt.getWeights()).toEqual(w);
    const copy = w.slice();
    w.fill(0);
    expect(rt.getWeights()).toEqual(copy);
    rt.dispose();
  });

  it('refuses weights of the wrong length', async () => {
    const rt = await createModelRuntime(denseSpec());
    const err: unknown = (() => {
      try {
        rt.setWeights(new Float32Array(10));
      } catch (e) {
        return e;
      }
    })();
    expect(isFedlhsError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatchInlineSnapshot(`"setWeights: expected 49 values for 4 tensors, got 10"`);
    rt.dispose();
  });

  it('learns a linearly separable task: hold-out AUC well above 0.5', async () => {
    const rt = await createModelRuntime(denseSpec());
    const train = dataset(600, 1);
    const test = dataset(300, 2);
    const before = await rt.evaluate(test.x, test.y);
    const epochs: number[] = [];
    const { loss } = await rt.fit(train.x, train.y, { epochs: 20, batchSize: 32, shuffleSeed: 3, onEpochEnd: (e) => epochs.push(e) });
    const after = await rt.evaluate(test.x, test.y);
    expect(epochs).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(Number.isFinite(loss)).toBe(true);
    expect(after.numExamples).toBe(300);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.auc).toBeGreaterThan(0.95);
    expect(after.accuracy).toBeGreaterThan(0.85);
    const scores = await rt.predict(test.x);
    expect(scores).toHaveLength(300);
    expect(scores.every((s) => s >= 0 && s <= 1)).toBe(true);
    rt.dispose();
  });

  it('is reproducible given the same starting weights and shuffle seed', async () => {
    const { x, y } = dataset(200, 4);
    const start = (await initialWeights(denseSpec())).weights;
    const runs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) {
      const rt = await createModelRuntime(denseSpec());
      rt.setWeights(start);
      await rt.fit(x, y, { epochs: 3, batchSize: 16, shuffleSeed: 42 });
      runs.push(rt.getWeights());
      rt.dispose();
    }
    expect(runs[1]).toEqual(runs[0]);
  });

  it.each([
    ['sgd', 'binaryCrossentropy'],
    ['rmsprop', 'binaryCrossentropy'],
    ['adagrad', 'meanSquaredError'],
  ] as const)('trains with %s and %s', async (name, loss) => {
    const rt = await createModelRuntime(denseSpec({ loss, optimizer: { name, learningRate: 0.05 } }));
    const { x, y } = dataset(64, 5);
    const result = await rt.fit(x, y, { epochs: 2, batchSize: 16, shuffleSeed: 1 });
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(Number.isFinite((await rt.evaluate(x, y)).loss)).toBe(true);
    rt.dispose();
  });

  it('checks the shapes of its inputs and options', async () => {
    const rt = await createModelRuntime(denseSpec());
    const { x, y } = dataset(10, 6);
    await expect(rt.fit(x.subarray(1), y, { epochs: 1, batchSize: 4 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'fit: x has 39 values, expected 10 rows × 4 features = 40',
    });
    await expect(rt.fit(x, y, { epochs: 0, batchSize: 4 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'fit: epochs must be a positive integer, got 0' });
    await expect(rt.predict(new Float32Array(5))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await rt.evaluate(new Float32Array(0), new Float32Array(0))).toEqual({ numExamples: 0, loss: 0, accuracy: 0, auc: undefined });
    rt.dispose();
    rt.dispose();
    expect(() => rt.getWeights()).toThrow(expect.objectContaining({ code: 'INVALID_STATE', message: 'the model runtime has been disposed' }));
  });

  it('leaks no tensors across fit, evaluate, predict and setWeights', async () => {
    const baseline = tf.memory().numTensors;
    const rt = await createModelRuntime(denseSpec());
    const { x, y } = dataset(100, 8);
    const cycle = async (seed: number) => {
      await rt.fit(x, y, { epochs: 2, batchSize: 16, shuffleSeed: seed });
      await rt.evaluate(x, y);
      await rt.predict(x);
      rt.setWeights(rt.getWeights());
    };
    await cycle(0); // creates the optimizer's slot variables, which then live with the model
    const steady = tf.memory().numTensors;
    for (let i = 1; i <= 3; i++) await cycle(i);
    expect(tf.memory().numTensors).toBe(steady);
    rt.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

describe('seeded initial weights', () => {
  const topology = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 4, activation: 'relu', batch_input_shape: [null, 3] } }, { class_name: 'Dense', config: { units: 1, activation: 'sigmoid' } }] } };
  const spec = (seed?: number) => ({ topology, loss: 'binaryCrossentropy' as const, optimizer: { name: 'sgd' as const, learningRate: 0.1 }, seed });
  it('are identical for the same seed and differ for another', async () => {
    const a = await initialWeights(spec(5));
    const b = await initialWeights(spec(5));
    const c = await initialWeights(spec(6));
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
    expect(Array.from(a.weights)).not.toEqual(Array.from(c.weights));
    expect(a.weights.some((v) => v !== 0)).toBe(true);
  });
});
