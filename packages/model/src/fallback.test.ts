import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { currentBackend, initBackend } from './backend.js';
import { createModelRuntime, type ModelSpec } from './model.js';

// The wasm backend lacks Conv2DBackpropFilter, so Conv1D models cannot train on it. Under
// 'auto' the process moves to cpu; models built earlier keep their weights and keep working.
const conv: ModelSpec = {
  topology: {
    class_name: 'Sequential',
    config: {
      layers: [
        { class_name: 'Reshape', config: { target_shape: [6, 2], batch_input_shape: [null, 12] } },
        { class_name: 'Conv1D', config: { filters: 3, kernel_size: 2, activation: 'relu' } },
        { class_name: 'GlobalAveragePooling1D', config: {} },
        { class_name: 'Dense', config: { units: 1, activation: 'sigmoid' } },
      ],
    },
  },
  loss: 'binaryCrossentropy',
  optimizer: { name: 'adam', learningRate: 0.01 },
};
const dense: ModelSpec = {
  ...conv,
  topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'sigmoid', batch_input_shape: [null, 12] } }] } },
};
const x = Float32Array.from({ length: 12 * 8 }, (_, i) => Math.sin(i));
const y = Float32Array.from({ length: 8 }, (_, i) => i % 2);

describe("backend fallback under 'auto'", () => {
  it('moves from wasm to cpu when a model needs a kernel wasm lacks', async () => {
    const start = await initBackend();
    const baseline = tf.memory().numTensors;
    const earlier = await createModelRuntime(dense);
    await earlier.fit(x, y, { epochs: 1, batchSize: 4, shuffleSeed: 1 });
    const weights = earlier.getWeights();

    const rt = await createModelRuntime(conv);
    expect(rt.specs.map((s) => s.name)).toEqual(['conv1d_1/kernel', 'conv1d_1/bias', 'dense_3/kernel', 'dense_3/bias']);
    expect(Number.isFinite((await rt.fit(x, y, { epochs: 2, batchSize: 4 })).loss)).toBe(true);

    const now = await initBackend();
    if (start.backend === 'wasm') {
      expect(currentBackend()).toBe('cpu');
      expect(now.backend).toBe('cpu');
      expect(now.attempts.at(-1)).toMatchObject({ backend: 'wasm', error: expect.stringContaining('Conv2DBackpropFilter') });
    } else {
      expect(now).toBe(start);
    }
    expect(earlier.getWeights()).toEqual(weights);
    await earlier.fit(x, y, { epochs: 1, batchSize: 4 });
    rt.dispose();
    earlier.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
