import { createHash } from 'node:crypto';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFedlhsProto } from '@fedlhs/proto';
import { CheckpointStore } from '../checkpoints.js';
import { ModelFrames } from './model-frames.js';

const CHUNK = 64 * 1024;
const service = loadFedlhsProto().fedlhs.v1.Federation.service.DownloadModel;

async function model(store: CheckpointStore, seed: number, bytes: number): Promise<{ path: string; bytes: Buffer; sha256: string }> {
  const values = Float32Array.from({ length: bytes / 4 }, (_, i) => i * seed);
  const stored = await store.writeCandidate('s', seed, 1, [values]);
  return { path: store.promote('s', seed, stored).path, bytes: Buffer.from(values.buffer), sha256: stored.sha256 };
}

const sha256Of = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ModelFrames (issue 15: one shared copy of a model for all its downloads)', () => {
  it('frames exactly what grpc-js would send: 5-byte prefix and the serialized ModelChunk, the last chunk short', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const m = await model(store, 1, 3 * CHUNK + 1024);
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize });
    const framed = (await frames.open(m.path, m.bytes.length, CHUNK, m.sha256))!;
    const parts: Buffer[] = [];
    for (let i = 0; ; i++) {
      const f = framed.frame(i);
      if (f === undefined) break;
      expect(f[0]).toBe(0);
      expect(f.readUInt32BE(1)).toBe(f.length - 5);
      // Its own buffer: what HTTP/2 queues for a stalled stream pins one frame, not the model.
      expect(f.byteOffset).toBe(0);
      expect(f.buffer.byteLength).toBe(f.length);
      expect(f.subarray(5).equals(service.responseSerialize({ data: m.bytes.subarray(i * CHUNK, (i + 1) * CHUNK) }))).toBe(true);
      parts.push((service.responseDeserialize(f.subarray(5)) as { data: Buffer }).data);
    }
    expect(parts.map((p) => p.length)).toEqual([CHUNK, CHUNK, CHUNK, 1024]);
    expect(Buffer.concat(parts).equals(m.bytes)).toBe(true);
    framed.close();
    expect(framed.frame(0)).toBeUndefined();
  });

  it('keeps frames in use; frames at most `entries` models, letting the least recently opened unused one go', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const [a, b, c] = [await model(store, 1, 2 * CHUNK), await model(store, 2, 2 * CHUNK), await model(store, 3, 2 * CHUNK)];
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize, entries: 2 });
    const fa = (await frames.open(a.path, a.bytes.length, CHUNK, a.sha256))!;
    const fb = (await frames.open(b.path, b.bytes.length, CHUNK, b.sha256))!;
    // Both places in use (two stalled downloads, say): a third model streams chunk by chunk,
    // it is not framed at the cost of a third model in memory.
    expect(await frames.open(c.path, c.bytes.length, CHUNK, c.sha256)).toBeUndefined();
    expect(frames.bytes).toBeLessThan(5 * CHUNK);
    fb.close();
    // A's download goes on with its frames; B's place goes to C.
    const fc = (await frames.open(c.path, c.bytes.length, CHUNK, c.sha256))!;
    expect(fc.frame(1)).toBeDefined();
    expect(fa.frame(1)).toBeDefined();
    expect(frames.bytes).toBeLessThan(5 * CHUNK);
    // The same model again shares its frames.
    const fa2 = (await frames.open(a.path, a.bytes.length, CHUNK, a.sha256))!;
    expect(fa2.frame(0)).toBe(fa.frame(0));
  });

  it('a model asked for while it is being framed shares that build', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const m = await model(store, 1, 4 * CHUNK);
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize, entries: 1 });
    const [x, y] = await Promise.all([frames.open(m.path, m.bytes.length, CHUNK, m.sha256), frames.open(m.path, m.bytes.length, CHUNK, m.sha256)]);
    expect(x!.frame(3)).toBe(y!.frame(3));
  });

  it('is DATA_LOSS when the file behind cached frames changed size, and does not frame what may change', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const m = await model(store, 1, 2 * CHUNK);
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize });
    (await frames.open(m.path, m.bytes.length, CHUNK, m.sha256))!.close();
    truncateSync(m.path, CHUNK);
    await expect(frames.open(m.path, m.bytes.length, CHUNK, m.sha256)).rejects.toMatchObject({ code: 'DATA_LOSS' });
    expect(frames.bytes).toBe(0);
    // A spooled upload is read from disk every time: never framed.
    expect(await frames.open(store.spoolPath('upload-1'), CHUNK, CHUNK, sha256Of(Buffer.alloc(CHUNK)))).toBeUndefined();
  });

  it('counts a download before it checks the file: a concurrent open of another model cannot drop frames in use (review rdl)', async () => {
    const SIZE = 4 * CHUNK;
    const content = (path: string): Buffer => Buffer.alloc(SIZE, path.charCodeAt(0));
    // Each check of a cached model's file waits until the test lets it go: another download's
    // open runs in between, as a slow stat lets it.
    const checks: (() => void)[] = [];
    const checkpoints = {
      cacheable: () => true,
      checkSize: () => new Promise<void>((resolve) => checks.push(resolve)),
      async *read(path: string, chunkBytes: number) {
        const bytes = content(path);
        for (let at = 0; at < SIZE; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
      },
    };
    const frames = new ModelFrames({ checkpoints, serialize: service.responseSerialize, entries: 2 });
    const open = (name: string) => frames.open(name, SIZE, CHUNK, sha256Of(content(name)));
    const cached = (): string[] => [...(frames as unknown as { cache: Map<string, unknown> }).cache.keys()].map((k) => k.split(':')[2]!);
    (await open('A'))!.close();
    (await open('B'))!.close();
    // Downloads that stall keep their frames open; the set of frame arrays they hold is what
    // their memory is, and it must stay within the bound of 2 models.
    const inUse = new Set<Buffer>();
    for (const name of 'CDEFGH') {
      const hit = cached()[0]!;
      const pendingHit = open(hit);
      const pendingMiss = open(name);
      for (const release of checks.splice(0)) release();
      const [stalled, done] = await Promise.all([pendingHit, pendingMiss]);
      done?.close();
      inUse.add(stalled!.frame(0)!);
      expect(inUse.size).toBeLessThanOrEqual(2);
    }
  });

  it('frames are keyed on the record digest: a same-size file with other bytes is framed anew; bytes that do not match the digest are DATA_LOSS', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const m = await model(store, 1, 2 * CHUNK);
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize });
    const first = (await frames.open(m.path, m.bytes.length, CHUNK, m.sha256))!;
    first.close();
    // The file replaced by other bytes of the same size (a restored data directory, a reused study id).
    const other = Buffer.alloc(m.bytes.length, 7);
    writeFileSync(m.path, other);
    const again = (await frames.open(m.path, other.length, CHUNK, sha256Of(other)))!;
    expect((service.responseDeserialize(again.frame(0)!.subarray(5)) as { data: Buffer }).data.equals(other.subarray(0, CHUNK))).toBe(true);
    // A record whose digest the file does not have is never framed.
    await expect(frames.open(m.path, other.length, CHUNK, sha256Of(Buffer.alloc(other.length, 8)))).rejects.toMatchObject({ code: 'DATA_LOSS' });
  });

  it('the frames are the one copy in memory: building them does not fill the checkpoint store\'s cache', async () => {
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-frames-')));
    const m = await model(store, 1, 4 * CHUNK);
    const frames = new ModelFrames({ checkpoints: store, serialize: service.responseSerialize });
    (await frames.open(m.path, m.bytes.length, CHUNK, m.sha256))!.close();
    expect(frames.bytes).toBeGreaterThan(m.bytes.length);
    expect(store.memoryBytes).toBe(0);
    // Other readers still keep it (update intake reads the base model once per clinic).
    for await (const chunk of store.read(m.path, CHUNK)) void chunk;
    expect(store.memoryBytes).toBe(m.bytes.length);
  });
});
