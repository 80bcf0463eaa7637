import { describe, it, expect, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { currentBackend, initBackend } from './backend.js';

/**
 * Stands in for @tensorflow/tfjs-node wherever it is installed or not: importing it registers a
 * backend named 'tensorflow', as the real package does (here a cpu backend under that name, with
 * cpu's kernels). This checks the selection logic itself; backend-tfjs-node.test.ts checks the
 * real package where it is installed.
 */
vi.mock('@tensorflow/tfjs-node', async () => {
  const core = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  for (const kernel of core.getKernelsForBackend('cpu')) core.registerKernel({ ...kernel, backendName: 'tensorflow' });
  core.registerBackend('tensorflow', () => new MathBackendCPU(), 3);
  return { mocked: true };
});

describe("initBackend('auto') when @tensorflow/tfjs-node loads (import mocked)", () => {
  it('selects tensorflow ahead of wasm and cpu, with nothing passed over', async () => {
    const selection = await initBackend();
    expect(selection).toEqual({ backend: 'tensorflow', attempts: [] });
    expect(currentBackend()).toBe('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    // The selection proved the backend with a real kernel; training ops run on it too.
    expect(tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 1])).dataSync())).toEqual(Float32Array.of(3, 3));
  });
});
