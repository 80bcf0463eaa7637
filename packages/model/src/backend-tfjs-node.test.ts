import { createRequire } from 'node:module';
import { describe, it, expect } from 'vitest';
import { initBackend } from './backend.js';
import { createModelRuntime } from './model.js';

/** Whether @tensorflow/tfjs-node is installed (its install script downloads libtensorflow). */
function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

const installed = tfjsNodeInstalled();
// The name says why the test did not run where the optional package is absent (it cannot be
// installed everywhere: its install script needs libtensorflow for the platform).
const name = installed
  ? "'auto' trains on tfjs-node (backend 'tensorflow'), which is installed here"
  : "'auto' trains on tfjs-node (backend 'tensorflow'): SKIPPED, @tensorflow/tfjs-node is not installed here";

describe('the real @tensorflow/tfjs-node', () => {
  it.runIf(installed)(name, async () => {
    const selection = await initBackend();
    // Installed but unloadable (e.g. a libtensorflow for another CPU) is reported, never silent.
    const specifier = '@tensorflow/tfjs-node';
    const loadError = await import(specifier).then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    if (loadError !== undefined) {
      expect(selection.backend).not.toBe('tensorflow');
      expect(selection.attempts[0]).toMatchObject({ backend: 'tensorflow', error: expect.any(String) });
      return;
    }
    expect(selection).toEqual({ backend: 'tensorflow', attempts: [] });
    const runtime = await createModelRuntime({
      topology: {
        class_name: 'Sequential',
        config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] },
      },
      loss: 'binaryCrossentropy',
      optimizer: { name: 'sgd', learningRate: 0.1 },
      seed: 1,
    });
    try {
      const before = runtime.getWeights();
      const { loss } = await runtime.fit(Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0), Float32Array.of(1, 0, 1, 0), { epochs: 2, batchSize: 2, shuffleSeed: 3 });
      expect(Number.isFinite(loss)).toBe(true);
      expect(runtime.getWeights()).not.toEqual(before);
    } finally {
      runtime.dispose();
    }
  });
});
