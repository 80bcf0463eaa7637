import { mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedlhsError } from '@fedlhs/core';
import { describe, expect, it } from 'vitest';
import { BlobCollector } from './blob-gc.js';
import { FileBlobStore } from './file-blob-store.js';

const HOUR = 3_600_000;

function logSink() {
  const lines: { level: 'info' | 'warn'; obj: Record<string, unknown> }[] = [];
  return {
    lines,
    log: {
      info: (obj: object) => void lines.push({ level: 'info', obj: obj as Record<string, unknown> }),
      warn: (obj: object) => void lines.push({ level: 'warn', obj: obj as Record<string, unknown> }),
    },
  };
}

async function storeWith(): Promise<{ blobs: FileBlobStore; put: (text: string, ageMs: number) => Promise<string> }> {
  const blobs = new FileBlobStore(join(mkdtempSync(join(tmpdir(), 'fedlhs-gc-')), 'blobs'));
  return {
    blobs,
    put: async (text, ageMs) => {
      const ref = await blobs.put([Buffer.from(text)], { kind: 'checkpoint' });
      const at = new Date(Date.now() - ageMs);
      utimesSync(blobs.pathOf(ref.sha256), at, at);
      return ref.sha256;
    },
  };
}

describe('BlobCollector', () => {
  it('removes old unreferenced blobs only, and logs blob.collected with what it removed', async () => {
    const { blobs, put } = await storeWith();
    const referenced = await put('committed checkpoint', 2 * HOUR);
    const orphan = await put('failed attempt', 2 * HOUR);
    const young = await put('candidate being committed', 0);
    const { lines, log } = logSink();
    const gc = new BlobCollector({ store: { referencedBlobs: async () => new Set([referenced]) }, collect: (r, g) => blobs.collect(r, g), log, graceMs: HOUR, intervalMs: 0 });
    await gc.run('study-ended');
    expect(await blobs.has(referenced)).toBe(true);
    expect(await blobs.has(young)).toBe(true);
    expect(await blobs.has(orphan)).toBe(false);
    expect(lines).toEqual([
      { level: 'info', obj: expect.objectContaining({ event: 'blob.collected', reason: 'study-ended', removed: 1, bytes: 'failed attempt'.length, referenced: 1 }) },
    ]);
  });

  it('removes nothing when the references cannot be listed, and says so', async () => {
    const { blobs, put } = await storeWith();
    const orphan = await put('anything', 2 * HOUR);
    const { lines, log } = logSink();
    const gc = new BlobCollector({
      store: { referencedBlobs: async () => Promise.reject(new FedlhsError('DATA_LOSS', 'study s1 has a strategy_state without a sha256 digest')) },
      collect: (r, g) => blobs.collect(r, g), log, graceMs: HOUR, intervalMs: 0,
    });
    await gc.run('periodic');
    expect(await blobs.has(orphan)).toBe(true);
    expect(lines).toEqual([{ level: 'warn', obj: expect.objectContaining({ event: 'blob.collect_failed', reason: 'periodic', err: { message: expect.stringContaining('strategy_state'), code: 'DATA_LOSS' } }) }]);
  });

  it('runs one collection at a time; requests during a run share one more run', async () => {
    let release!: () => void;
    let calls = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const { log } = logSink();
    const gc = new BlobCollector({
      store: { referencedBlobs: async () => new Set<string>() },
      collect: async () => {
        calls++;
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        if (calls === 1) await new Promise<void>((r) => (release = r));
        concurrent--;
        return { removed: 0, bytes: 0 };
      },
      log, graceMs: HOUR, intervalMs: 0,
    });
    const first = gc.run('start');
    await new Promise((r) => setImmediate(r));
    const second = gc.run('study-ended');
    const third = gc.run('study-ended');
    expect(second).toBe(third);
    release();
    await Promise.all([first, second, third]);
    expect(calls).toBe(2);
    expect(maxConcurrent).toBe(1);
    await gc.stop();
    await gc.run('periodic');
    expect(calls).toBe(2);
  });
});
