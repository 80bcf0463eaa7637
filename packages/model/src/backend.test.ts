import { createRequire } from 'node:module';
import { describe, it, expect } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import { currentBackend, initBackend, type BackendName } from './backend.js';

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

// One process-wide engine: the order of these tests is the order of calls a process makes.
describe('initBackend', () => {
  it('throws before anything is initialised if an explicit backend is unavailable, and can be retried', async () => {
    expect(() => currentBackend()).toThrow(/call initBackend\(\) first/);
    if (tfjsNodeInstalled()) return; // nothing here is known to be unavailable
    const err: unknown = await initBackend('tensorflow').catch((e: unknown) => e);
    expect(isFedlhsError(err, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect(err).toMatchObject({ details: { backend: 'tensorflow' } });
    expect((err as Error).message).toMatch(/^no usable TensorFlow\.js backend \(tensorflow: .*tfjs-node/);
  });

  it("'auto' prefers tensorflow, then wasm, recording why tensorflow was passed over", async () => {
    const selection = await initBackend();
    if (!tfjsNodeInstalled()) {
      expect(selection.backend).toBe('wasm');
      expect(selection.attempts).toHaveLength(1);
      expect(selection.attempts[0]).toMatchObject({ backend: 'tensorflow', error: expect.stringContaining('@tensorflow/tfjs-node') });
    } else if (selection.backend !== 'tensorflow') {
      // Installed but its native binding would not load here: the failure must be on record.
      expect(selection.attempts[0]?.backend).toBe('tensorflow');
      expect(selection.attempts[0]?.error.length).toBeGreaterThan(0);
    }
    expect(currentBackend()).toBe(selection.backend);
  });

  it('is idempotent', async () => {
    const first = await initBackend();
    expect(await initBackend()).toBe(first);
    expect(await initBackend(first.backend)).toBe(first);
  });

  it('refuses to switch to a different explicit backend once one is chosen', async () => {
    const { backend } = await initBackend();
    const other: BackendName = backend === 'cpu' ? 'wasm' : 'cpu';
    await expect(initBackend(other)).rejects.toMatchObject({
      code: 'BACKEND_UNAVAILABLE',
      message: `backend '${backend}' is already initialised; cannot switch to '${other}' in this process`,
      details: { backend: other },
    });
    expect(currentBackend()).toBe(backend);
  });

  it('rejects an unknown backend name', async () => {
    // @ts-expect-error: a caller outside TypeScript, e.g. from a config file
    await expect(initBackend('webgl')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
