import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestSchema, testPostgresUnavailable, type TestPostgresScope } from '@fedlhs/testing';
import { isFedlhsError } from '@fedlhs/core';
import type { BlobStore } from './blob-store.js';
import { BufferPool } from './buffer-pool.js';
import { CachedBlobStore } from './cached-blob-store.js';
import { FileBlobStore } from './file-blob-store.js';
import { PG_BLOB_CHUNK_BYTES, PostgresBlobStore } from './postgres-blob-store.js';

/** One store under test, with a way to damage a stored blob behind its back. */
interface Subject {
  store: BlobStore;
  corrupt(sha256: string): Promise<void>;
  cleanup(): Promise<void>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const bytes = (n: number, seed = 1): Buffer => {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
};
/** Splits a buffer into irregular pieces, as a network or an aggregator would deliver it. */
const pieces = (b: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));
async function readAll(store: BlobStore, ref: { sha256: string; length: number }, chunkBytes: number, offset?: number): Promise<{ data: Buffer; sizes: number[] }> {
  const parts: Buffer[] = [];
  for await (const c of store.read(ref, { chunkBytes, ...(offset === undefined ? {} : { offset }) })) parts.push(Buffer.from(c));
  return { data: Buffer.concat(parts), sizes: parts.map((p) => p.length) };
}
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isFedlhsError(err) ? err.code : `not a FedlhsError: ${String(err)}`;
  }
  return 'resolved';
}

/** The blob store contract (design §2.6), run against every implementation. */
function blobStoreContract(make: () => Promise<Subject>): void {
  let s: Subject;
  beforeAll(async () => {
    s = await make();
  });
  afterAll(async () => {
    await s.cleanup();
  });

  it('puts while hashing and reads back in chunks of at most chunkBytes, from any offset', async () => {
    const data = bytes(PG_BLOB_CHUNK_BYTES * 2 + 12345);
    const ref = await s.store.put(pieces(data, 70_001), { kind: 'checkpoint' });
    expect(ref).toEqual({ sha256: sha(data), length: data.length });
    expect(await s.store.has(ref.sha256)).toBe(true);
    expect(await s.store.stat(ref.sha256)).toEqual(ref);
    const whole = await readAll(s.store, ref, 1_000_000);
    expect(whole.data.equals(data)).toBe(true);
    expect(whole.sizes).toEqual([1_000_000, 1_000_000, 109_497]);
    const tail = await readAll(s.store, ref, 3 * PG_BLOB_CHUNK_BYTES, PG_BLOB_CHUNK_BYTES - 5);
    expect(tail.data.equals(data.subarray(PG_BLOB_CHUNK_BYTES - 5))).toBe(true);
    await s.store.verify(ref);
  });

  it('reads into pooled buffers that the consumer returns', async () => {
    const data = bytes(300_000, 2);
    const ref = await s.store.put([data], { kind: 'checkpoint' });
    const pool = new BufferPool();
    const out: Buffer[] = [];
    for await (const c of s.store.read(ref, { chunkBytes: 100_000, pool })) {
      out.push(Buffer.from(c));
      pool.release(c);
    }
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(pool.inUse).toBe(0);
  });

  it('stores an empty blob', async () => {
    const ref = await s.store.put([], { kind: 'strategy-state' });
    expect(ref).toEqual({ sha256: sha(Buffer.alloc(0)), length: 0 });
    expect((await readAll(s.store, ref, 8)).sizes).toEqual([]);
    await s.store.verify(ref);
  });

  it('is idempotent per digest, also for concurrent puts of one digest', async () => {
    const data = bytes(200_000, 3);
    const refs = await Promise.all([1, 2, 3].map((k) => s.store.put(pieces(data, 10_000 * k), { kind: 'checkpoint' })));
    expect(new Set(refs.map((r) => r.sha256)).size).toBe(1);
    expect((await readAll(s.store, refs[0]!, 65_536)).data.equals(data)).toBe(true);
    expect(await s.store.put([data], { kind: 'checkpoint' })).toEqual(refs[0]);
  });

  it('refuses bytes that do not hash to expectedSha256 with DATA_LOSS, and stores nothing', async () => {
    const data = bytes(1000, 4);
    expect(await code(s.store.put([data], { kind: 'checkpoint', expectedSha256: 'a'.repeat(64) }))).toBe('DATA_LOSS');
    expect(await s.store.has(sha(data))).toBe(false);
    expect(await s.store.put([data], { kind: 'checkpoint', expectedSha256: sha(data) })).toEqual({ sha256: sha(data), length: 1000 });
  });

  it('answers DATA_LOSS for an absent blob on read and verify', async () => {
    const ref = { sha256: 'b'.repeat(64), length: 10 };
    expect(await s.store.has(ref.sha256)).toBe(false);
    expect(await code(s.store.verify(ref))).toBe('DATA_LOSS');
    expect(await code(readAll(s.store, ref, 8))).toBe('DATA_LOSS');
  });

  it('detects a corrupted stored blob: DATA_LOSS on verify', async () => {
    const data = bytes(PG_BLOB_CHUNK_BYTES + 10, 5);
    const ref = await s.store.put([data], { kind: 'checkpoint' });
    await s.corrupt(ref.sha256);
    expect(await code(s.store.verify(ref))).toBe('DATA_LOSS');
  });

  it('collects unreferenced blobs older than the grace period only', async () => {
    const keep = await s.store.put([bytes(5000, 6)], { kind: 'checkpoint' });
    const drop = await s.store.put([bytes(7000, 7)], { kind: 'checkpoint' });
    // A grace period covering the puts spares everything.
    expect(await s.store.collect(async () => false, 60_000)).toEqual({ removed: 0, bytes: 0 });
    const kept = new Set([keep.sha256]);
    const seen: string[] = [];
    const result = await s.store.collect(async (d) => (seen.push(d), kept.has(d)), -1000);
    expect(seen).toContain(drop.sha256);
    expect(result.removed).toBeGreaterThanOrEqual(1);
    expect(await s.store.has(drop.sha256)).toBe(false);
    expect(await s.store.has(keep.sha256)).toBe(true);
    await s.store.verify(keep);
  });
}

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'fedlhs-blobs-'));

/** Flips one byte in the middle of a file. */
function flipByte(path: string): void {
  const b = readFileSync(path);
  b[b.length >> 1] = (b[b.length >> 1] ?? 0) ^ 0xff;
  writeFileSync(path, b);
}

describe('FileBlobStore', () => {
  blobStoreContract(async () => {
    const dir = tempDir();
    const store = new FileBlobStore(join(dir, 'blobs'));
    return { store, corrupt: async (d) => flipByte(store.pathOf(d)), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  });

  it('lays blobs out as sha256/ab/<digest>', async () => {
    const dir = tempDir();
    const store = new FileBlobStore(join(dir, 'blobs'));
    const ref = await store.put([Buffer.from('hello')], { kind: 'checkpoint' });
    expect(store.pathOf(ref.sha256)).toBe(join(dir, 'blobs', 'sha256', ref.sha256.slice(0, 2), ref.sha256));
    expect(readFileSync(store.pathOf(ref.sha256), 'utf8')).toBe('hello');
    rmSync(dir, { recursive: true, force: true });
  });
});

const unavailable = await testPostgresUnavailable();

describe('with PostgreSQL', () => {
  if (unavailable) {
    it('needs PostgreSQL', () => {
      throw unavailable;
    });
    return;
  }
  const scopes: { scope: TestPostgresScope; pool: pg.Pool }[] = [];
  const pgSubject = async (): Promise<{ store: PostgresBlobStore; pool: pg.Pool; corrupt: (d: string) => Promise<void> }> => {
    const scope = await createTestSchema('blobs');
    const pool = new pg.Pool({ ...scope.connection, max: 4 });
    scopes.push({ scope, pool });
    const store = new PostgresBlobStore(pool);
    await store.init();
    const corrupt = async (d: string): Promise<void> => {
      await pool.query(`UPDATE blob_chunks SET data = overlay(data placing '\\xff'::bytea from 3 for 1) WHERE sha256 = $1 AND seq = 0`, [d]);
    };
    return { store, pool, corrupt };
  };
  afterAll(async () => {
    for (const { scope, pool } of scopes) {
      await pool.end();
      await scope.drop();
    }
  });

  describe('PostgresBlobStore', () => {
    blobStoreContract(async () => {
      const { store, corrupt } = await pgSubject();
      return { store, corrupt, cleanup: async () => undefined };
    });

    it('creates its tables idempotently, and a put leaves no chunk rows without a blobs row', async () => {
      const { store, pool } = await pgSubject();
      await new PostgresBlobStore(pool).init();
      await code(store.put([bytes(3 * PG_BLOB_CHUNK_BYTES, 8)], { kind: 'checkpoint', expectedSha256: 'c'.repeat(64) }));
      const orphans = await pool.query(`SELECT count(*)::int AS n FROM blob_chunks c WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = c.sha256)`);
      expect(orphans.rows[0].n).toBe(0);
      const ref = await store.put([bytes(2 * PG_BLOB_CHUNK_BYTES + 1, 9)], { kind: 'checkpoint' });
      const rows = await pool.query(`SELECT count(*)::int AS n FROM blob_chunks WHERE sha256 = $1`, [ref.sha256]);
      expect(rows.rows[0].n).toBe(3);
    });
  });

  describe('CachedBlobStore over PostgreSQL', () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    blobStoreContract(async () => {
      const { store: backing, corrupt } = await pgSubject();
      const dir = tempDir();
      dirs.push(dir);
      return { store: new CachedBlobStore({ backing, dir, maxBytes: 64 * 1024 * 1024 }), corrupt, cleanup: async () => undefined };
    });

    it('serves repeated reads from the local copy and keeps the copies under the byte cap', async () => {
      const { store: backing, pool } = await pgSubject();
      const dir = tempDir();
      dirs.push(dir);
      const cache = new CachedBlobStore({ backing, dir, maxBytes: 250_000 });
      const a = await cache.put([bytes(100_000, 10)], { kind: 'checkpoint' });
      const b = await cache.put([bytes(100_000, 11)], { kind: 'checkpoint' });
      const c = await cache.put([bytes(100_000, 12)], { kind: 'checkpoint' });
      await readAll(cache, a, 65_536);
      await readAll(cache, b, 65_536);
      expect(cache.localBytes).toBe(200_000);
      // The store of record loses a: the cached copy still serves it (content addressing).
      await pool.query('DELETE FROM blob_chunks WHERE sha256 = $1', [a.sha256]);
      expect((await readAll(cache, a, 65_536)).data.equals(bytes(100_000, 10))).toBe(true);
      // c pushes out the least recently read copy (b, since a was read after it).
      await readAll(cache, c, 65_536);
      expect(cache.localBytes).toBe(200_000);
      expect((await readAll(cache, a, 65_536)).data.length).toBe(100_000);
    });

    it('refuses to cache a corrupt remote copy (DATA_LOSS)', async () => {
      const { store: backing, corrupt } = await pgSubject();
      const dir = tempDir();
      dirs.push(dir);
      const cache = new CachedBlobStore({ backing, dir, maxBytes: 1 << 24 });
      const ref = await cache.put([bytes(5000, 13)], { kind: 'checkpoint' });
      await corrupt(ref.sha256);
      expect(await code(readAll(cache, ref, 4096))).toBe('DATA_LOSS');
      expect(cache.localBytes).toBe(0);
    });
  });
});
