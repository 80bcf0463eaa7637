import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedlhsError } from '@fedlhs/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSchema, testPostgresUnavailable, type TestPostgresScope } from '@fedlhs/testing';
import { PostgresBlobStore } from './blobs/postgres-blob-store.js';
import { CheckpointStore, blobLocator } from './checkpoints.js';

const tempRoot = (): string => mkdtempSync(join(tmpdir(), 'fedlhs-checkpoints-'));
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function rejection(promise: Promise<unknown>): Promise<FedlhsError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

function syncRejection(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of gen) out.push(chunk);
  return out;
}

describe('CheckpointStore.writeCandidate', () => {
  it('stores the concatenated float32 slices as a blob named by their SHA-256', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    const backing = Float32Array.from([99, 3.5, -0.25, 99]);
    const slices = [Float32Array.from([1, 2]), new Float32Array(0), backing.subarray(1, 3), Float32Array.from([1e-3])];
    const stored = await store.writeCandidate('s1', 3, 2, slices);

    expect(stored.path).toBe(join(root, 'blobs', 'sha256', stored.sha256.slice(0, 2), stored.sha256));
    expect(stored.totalBytes).toBe(20);
    const bytes = readFileSync(stored.path);
    // float32 little-endian: 1 = 00 00 80 3f, 2 = 00 00 00 40, 3.5 = 00 00 60 40, -0.25 = 00 00 80 be
    expect(bytes.subarray(0, 16).toString('hex')).toBe('0000803f' + '00000040' + '00006040' + '000080be');
    expect(bytes.equals(Buffer.from(Float32Array.from([1, 2, 3.5, -0.25, 1e-3]).buffer))).toBe(true);
    expect(stored.sha256).toBe(sha256(bytes));
  });

  it('accepts any iterable, such as a generator; identical payloads are one blob', async () => {
    const store = new CheckpointStore(tempRoot());
    const first = await store.writeCandidate('s1', 1, 1, [Float32Array.from([7, 8])]);
    function* slices(): Generator<Float32Array> {
      yield Float32Array.from([7]);
      yield Float32Array.from([8]);
    }
    const stored = await store.writeCandidate('s1', 1, 2, slices());
    expect(stored).toEqual(first);
    expect(readFileSync(stored.path).equals(Buffer.from(Float32Array.from([7, 8]).buffer))).toBe(true);
    expect(stored.totalBytes).toBe(8);
  });

  it('hashes an empty model as the SHA-256 of nothing', async () => {
    const stored = await new CheckpointStore(tempRoot()).writeCandidate('s1', 1, 1, []);
    expect(stored.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(stored.totalBytes).toBe(0);
  });
});

describe('CheckpointStore.promote', () => {
  it('links the candidate blob to the committed path of the round', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    const candidate = await store.writeCandidate('s1', 7, 1, [Float32Array.from([1, 2, 3])]);
    const committed = store.promote('s1', 7, candidate);
    expect(committed).toEqual({ ...candidate, path: join(root, 'studies', 's1', 'checkpoints', 'round-000007.f32') });
    expect(store.committedPath('s1', 7)).toBe(committed.path);
    expect(statSync(committed.path).ino).toBe(statSync(candidate.path).ino);
    expect(sha256(readFileSync(committed.path))).toBe(candidate.sha256);
  });

  it('refuses to overwrite a committed checkpoint and leaves it byte-identical', async () => {
    const store = new CheckpointStore(tempRoot());
    const first = store.promote('s1', 2, await store.writeCandidate('s1', 2, 1, [Float32Array.from([1, 2, 3])]));
    const before = readFileSync(first.path);
    const mtime = statSync(first.path).mtimeMs;

    const second = await store.writeCandidate('s1', 2, 2, [Float32Array.from([4, 5, 6])]);
    const err = syncRejection(() => store.promote('s1', 2, second));
    expect(err.code).toBe('CHECKPOINT_EXISTS');
    expect(err.message).toMatchInlineSnapshot(`"checkpoint for round 2 of study s1 already exists; committed checkpoints are never replaced"`);
    expect(readFileSync(first.path).equals(before)).toBe(true);
    expect(statSync(first.path).mtimeMs).toBe(mtime);
    // The refused candidate is kept, not deleted.
    expect(readFileSync(second.path).equals(Buffer.from(Float32Array.from([4, 5, 6]).buffer))).toBe(true);
  });

  it('clearCandidates removes unfinished candidates but not committed checkpoints, nor a candidate equal to one', async () => {
    const store = new CheckpointStore(tempRoot());
    const committed = store.promote('s1', 1, await store.writeCandidate('s1', 1, 1, [Float32Array.from([1])]));
    const pending = await store.writeCandidate('s1', 2, 1, [Float32Array.from([2])]);
    const same = await store.writeCandidate('s1', 2, 2, [Float32Array.from([1])]);
    store.clearCandidates('s1');
    expect(existsSync(pending.path)).toBe(false);
    expect(existsSync(same.path)).toBe(true);
    expect(existsSync(committed.path)).toBe(true);
  });
});

describe('CheckpointStore with data directories of earlier versions', () => {
  it('reads and verifies a committed checkpoint file written before the blob store (rows name its path)', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    const path = store.committedPath('old', 3);
    const data = Buffer.from(Float32Array.from([0.5, -1, 2]).buffer);
    mkdirSync(join(root, 'studies', 'old', 'checkpoints'), { recursive: true });
    writeFileSync(path, data);
    await store.verify(path, sha256(data));
    expect(Buffer.concat(await collect(store.read(path, 8))).equals(data)).toBe(true);
    expect(Array.from(await store.readAll(path))).toEqual([0.5, -1, 2]);
  });
});

describe('CheckpointStore.verify', () => {
  it('accepts an intact file and detects a flipped byte with DATA_LOSS', async () => {
    const store = new CheckpointStore(tempRoot());
    const stored = store.promote('s1', 1, await store.writeCandidate('s1', 1, 1, [Float32Array.from([1, 2, 3, 4])]));
    await expect(store.verify(stored.path, stored.sha256)).resolves.toBeUndefined();

    const bytes = readFileSync(stored.path);
    bytes[5] = bytes[5]! ^ 0x01;
    writeFileSync(stored.path, bytes);
    const err = await rejection(store.verify(stored.path, stored.sha256));
    expect(err.code).toBe('DATA_LOSS');
    expect(err.message).toBe(`checkpoint ${stored.path} hashes to ${sha256(bytes)}, recorded ${stored.sha256}`);
  });

  it('reports a missing file with DATA_LOSS', async () => {
    const store = new CheckpointStore(tempRoot());
    const path = store.committedPath('s1', 9);
    const err = await rejection(store.verify(path, '0'.repeat(64)));
    expect(err.code).toBe('DATA_LOSS');
    expect(err.message).toBe(`checkpoint ${path} is missing`);
  });
});

describe('CheckpointStore.read', () => {
  const fileOf = (root: string, bytes: Uint8Array): string => {
    const path = join(root, 'model.f32');
    writeFileSync(path, bytes);
    return path;
  };
  const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

  it('yields chunks of exactly chunkBytes with a shorter last chunk', async () => {
    const root = tempRoot();
    const data = pattern(20);
    const chunks = await collect(new CheckpointStore(root).read(fileOf(root, data), 8));
    expect(chunks.map((c) => c.length)).toEqual([8, 8, 4]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('yields no empty trailing chunk when the size is a multiple of chunkBytes', async () => {
    const root = tempRoot();
    const data = pattern(24);
    const chunks = await collect(new CheckpointStore(root).read(fileOf(root, data), 8));
    expect(chunks.map((c) => c.length)).toEqual([8, 8, 8]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('yields nothing for an empty file', async () => {
    const root = tempRoot();
    expect(await collect(new CheckpointStore(root).read(fileOf(root, new Uint8Array(0)), 8))).toEqual([]);
  });

  it('reassembles a committed checkpoint of several MiB read in 1 MiB chunks', async () => {
    const store = new CheckpointStore(tempRoot());
    const values = new Float32Array(655_361); // 2.5 MiB + 4 bytes
    for (let i = 0; i < values.length; i++) values[i] = Math.sin(i);
    const stored = store.promote('s1', 1, await store.writeCandidate('s1', 1, 1, [values.subarray(0, 300_000), values.subarray(300_000)]));
    const chunks = await collect(store.read(stored.path, 1024 * 1024));
    expect(chunks.map((c) => c.length)).toEqual([1048576, 1048576, 524292]);
    const whole = Buffer.concat(chunks);
    expect(whole.equals(Buffer.from(values.buffer))).toBe(true);
    expect(sha256(whole)).toBe(stored.sha256);
  });
});

describe('CheckpointStore specs', () => {
  it('saves and loads the tensor list of a study', () => {
    const store = new CheckpointStore(tempRoot());
    const specs = [
      { name: 'dense/kernel', shape: [6, 8] },
      { name: 'dense/bias', shape: [8] },
    ];
    store.saveSpecs('s1', specs);
    expect(store.loadSpecs('s1')).toEqual(specs);
    // A copy each time: a caller changing it changes nothing here.
    (store.loadSpecs('s1')[0]!.shape as number[]).push(1);
    expect(store.loadSpecs('s1')).toEqual(specs);
  });

  it("serves the study row's JSON from memory, and falls back to an older data directory's file", () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    store.rememberSpecs('s1', '[{"name":"w","shape":[3]}]');
    expect(store.loadSpecs('s1')).toEqual([{ name: 'w', shape: [3] }]);
    mkdirSync(join(root, 'studies', 'old'), { recursive: true });
    writeFileSync(join(root, 'studies', 'old', 'model-spec.json'), '[{"name":"v","shape":[2, 2]}]');
    expect(store.loadSpecs('old')).toEqual([{ name: 'v', shape: [2, 2] }]);
    // New studies write no file: the row is the record.
    store.saveSpecs('s2', [{ name: 'x', shape: [1] }]);
    expect(existsSync(join(root, 'studies', 's2', 'model-spec.json'))).toBe(false);
  });

  it('names the study when its tensor list is missing or unreadable', () => {
    const store = new CheckpointStore(tempRoot());
    const missing = syncRejection(() => store.loadSpecs('nope'));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('nope');
    store.rememberSpecs('bad', '{"not":"a list"}');
    expect(syncRejection(() => store.loadSpecs('bad')).code).toBe('DATA_LOSS');
    store.rememberSpecs('worse', '[{');
    expect(syncRejection(() => store.loadSpecs('worse')).code).toBe('DATA_LOSS');
  });
});

describe('CheckpointStore.openSequential', () => {
  it('reads a stored model forward at the positions asked, across chunk boundaries, to its end', async () => {
    const store = new CheckpointStore(tempRoot());
    const values = Float32Array.from({ length: 1000 }, (_, i) => i);
    const stored = await store.writeCandidate('s1', 1, 1, [values]);
    const bytes = Buffer.from(values.buffer);
    const reader = store.openSequential(stored.path, 256);
    const target = Buffer.alloc(600);
    for (const [position, length] of [[0, 100], [100, 600], [1000, 4], [2000, 600], [3900, 600]] as const) {
      const n = await reader.readAt(target, length, position);
      expect(n, `at ${position}`).toBe(Math.min(length, bytes.length - position));
      expect(target.subarray(0, n).equals(bytes.subarray(position, position + n)), `at ${position}`).toBe(true);
    }
    expect(await reader.readAt(target, 4, 4000)).toBe(0);
    await expect(reader.readAt(target, 4, 10)).rejects.toThrow(/went back/);
    await reader.close();
  });
});

describe('CheckpointStore.removeUncommitted', () => {
  it('removes model and state files of rounds after the last committed one, and nothing else', async () => {
    const store = new CheckpointStore(tempRoot());
    for (const round of [0, 1, 2, 3]) {
      store.promote('s1', round, await store.writeCandidate('s1', round, 1, [Float32Array.of(round)]));
      if (round > 0) store.promote('s1', round, await store.writeCandidate('s1', round, 1, [Float32Array.of(-round)], 'state'), 'state');
    }
    expect(store.removeUncommitted('s1', 1).sort()).toEqual(['round-000002.f32', 'round-000002.state.f32', 'round-000003.f32', 'round-000003.state.f32']);
    expect(existsSync(store.committedPath('s1', 1))).toBe(true);
    expect(existsSync(store.committedPath('s1', 1, 'state'))).toBe(true);
    expect(existsSync(store.committedPath('s1', 2))).toBe(false);
    // Round 2 can now be promoted again.
    store.promote('s1', 2, await store.writeCandidate('s1', 2, 2, [Float32Array.of(9)]));
    expect(existsSync(store.committedPath('s1', 2))).toBe(true);
  });
});

const unavailable = await testPostgresUnavailable();

describe('CheckpointStore over the PostgreSQL blob store', () => {
  if (unavailable) {
    it('needs PostgreSQL', () => {
      throw unavailable;
    });
    return;
  }
  let scope: TestPostgresScope;
  let pool: pg.Pool;
  beforeAll(async () => {
    scope = await createTestSchema('checkpoints');
    pool = new pg.Pool({ ...scope.connection, max: 2 });
  });
  afterAll(async () => {
    await pool.end();
    await scope.drop();
  });

  it('commits, reads and verifies through blob locators, and detects a damaged chunk', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root, { blobs: new PostgresBlobStore(pool) });
    const values = Float32Array.from({ length: 300_000 }, (_, i) => Math.cos(i));
    const candidate = await store.writeCandidate('s1', 1, 1, [values]);
    expect(candidate.path).toBe(blobLocator(candidate.sha256));
    const committed = store.promote('s1', 1, candidate);
    expect(committed).toEqual(candidate);
    expect(existsSync(store.committedPath('s1', 1))).toBe(false);
    await store.verify(committed.path, committed.sha256);
    const chunks = await collect(store.read(committed.path, 500_000));
    expect(chunks.map((c) => c.length)).toEqual([500_000, 500_000, 200_000]);
    expect(Buffer.concat(chunks).equals(Buffer.from(values.buffer))).toBe(true);
    await pool.query(`UPDATE blob_chunks SET data = overlay(data placing '\\x00'::bytea from 1 for 1) WHERE sha256 = $1 AND seq = 1`, [committed.sha256]);
    expect((await rejection(store.verify(committed.path, committed.sha256))).code).toBe('DATA_LOSS');
    expect((await rejection(store.verify(blobLocator('d'.repeat(64)), 'd'.repeat(64)))).code).toBe('DATA_LOSS');
  });

  it('reads a base model in step through its locator (update intake)', async () => {
    const store = new CheckpointStore(tempRoot(), { blobs: new PostgresBlobStore(pool) });
    const values = Float32Array.from({ length: 600_000 }, (_, i) => Math.sin(i));
    const stored = store.promote('s1', 1, await store.writeCandidate('s1', 1, 1, [values]));
    const bytes = Buffer.from(values.buffer);
    const reader = store.openSequential(stored.path);
    const target = Buffer.alloc(1_048_576);
    let position = 0;
    while (position < bytes.length) {
      const n = await reader.readAt(target, 1_000_000, position);
      expect(target.subarray(0, n).equals(bytes.subarray(position, position + n))).toBe(true);
      position += n;
      if (n === 0) break;
    }
    expect(position).toBe(bytes.length);
    await reader.close();
    const missing = store.openSequential(blobLocator('f'.repeat(64)));
    expect((await rejection(missing.readAt(target, 4, 0))).code).toBe('DATA_LOSS');
  });
});

describe('repeated reads of a model', () => {
  it('reads an immutable payload from the store once, then from memory; a spooled file every time; a damaged file is DATA_LOSS', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    const values = Float32Array.from({ length: 10_000 }, (_, i) => i / 7);
    const candidate = await store.writeCandidate('s1', 1, 1, [values]);
    const committed = store.promote('s1', 1, candidate);
    const expected = Buffer.from(values.buffer);
    const first = Buffer.concat(await collect(store.read(committed.path, 1 << 20)));
    expect(first.equals(expected)).toBe(true);
    // Overwriting the bytes in place (same size) shows where the next read comes from: memory.
    writeFileSync(committed.path, Buffer.alloc(expected.length));
    const again = await collect(store.read(committed.path, 16_384));
    expect(again.map((c) => c.length)).toEqual([16_384, 16_384, 7_232]);
    expect(Buffer.concat(again).equals(expected)).toBe(true);
    // A file that changed size is damage, said at once.
    const { truncateSync } = await import('node:fs');
    truncateSync(committed.path, 400);
    expect((await rejection(collect(store.read(committed.path, 16_384)))).code).toBe('DATA_LOSS');

    const spool = store.spoolPath('upload-1');
    writeFileSync(spool, expected);
    expect(Buffer.concat(await collect(store.read(spool, 1 << 20))).equals(expected)).toBe(true);
    writeFileSync(spool, Buffer.alloc(8));
    expect(Buffer.concat(await collect(store.read(spool, 1 << 20)))).toEqual(Buffer.alloc(8));
  });

  it('sizes read buffers to the payload, not to the chunk size', async () => {
    const root = tempRoot();
    const store = new CheckpointStore(root);
    const spool = store.spoolPath('small');
    writeFileSync(spool, Buffer.alloc(40_000, 1));
    const chunks = await collect(store.read(spool, 4 << 20));
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.buffer.byteLength).toBe(40_000);
  });
});

describe('CheckpointStore: held updates and spool do not outlive their round (issue 11)', () => {
  it('clearHeld removes a study\'s held updates (or every study\'s); removeWorkFiles also empties the spool; committed checkpoints stay', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fedlhs-ckpt-held-'));
    try {
      const store = new CheckpointStore(root);
      const committed = store.promote('a', 0, await store.writeCandidate('a', 0, 1, [new Float32Array([1, 2])]));
      for (const [study, round] of [['a', 1], ['a', 2], ['b', 1]] as const) {
        mkdirSync(store.heldDir(study, round, 1), { recursive: true });
        writeFileSync(join(store.heldDir(study, round, 1), 'task.f32'), 'x');
      }
      writeFileSync(store.spoolPath('task.part'), 'x');
      expect(store.clearHeld('a')).toEqual([join(store.studyDir('a'), 'held')]);
      expect(existsSync(store.heldDir('b', 1, 1))).toBe(true);
      expect(store.removeWorkFiles()).toEqual({ held: 1, spooled: 1 });
      expect(existsSync(join(store.studyDir('b'), 'held'))).toBe(false);
      expect(readdirSync(store.spoolPath(''))).toEqual([]);
      await store.verify(committed.path, committed.sha256);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
