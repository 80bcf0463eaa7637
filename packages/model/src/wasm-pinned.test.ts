import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend.js';
import { createModelRuntime } from './model.js';

describe('a pinned wasm backend', () => {
  it('refuses, without leaking, a model it cannot train instead of moving to cpu', async () => {
    expect((await initBackend('wasm')).backend).toBe('wasm');
    const before = tf.memory().numTensors;
    const conv1d = {
      topology: {
        class_name: 'Sequential',
        config: {
          layers: [
            { class_name: 'Reshape', config: { target_shape: [4, 1], batch_input_shape: [null, 4] } },
            { class_name: 'Conv1D', config: { filters: 2, kernel_size: 2 } },
            { class_name: 'Flatten', config: {} },
            { class_name: 'Dense', config: { units: 1, activation: 'sigmoid' } },
          ],
        },
      },
      loss: 'binaryCrossentropy',
      optimizer: { name: 'sgd', learningRate: 0.1 },
    } as const;
    await expect(createModelRuntime(conv1d)).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      message: 'this model cannot be trained here: kernel Conv2DBackpropFilter is missing on the wasm backend; initialise the cpu or tensorflow backend instead',
    });
    expect(tf.memory().numTensors).toBe(before);
    expect((await initBackend()).backend).toBe('wasm');
  });
});
