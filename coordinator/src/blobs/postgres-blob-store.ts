import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { FedlhsError } from '@fedlhs/core';
import {
  HashingCounter, blobMissing, bytesOf, checkDigest, checkReadRange, digestMismatch,
  type BlobPutOptions, type BlobReadOptions, type BlobRef, type BlobStore,
} from './blob-store.js';

/** Bytes per `blob_chunks` row. */
export const PG_BLOB_CHUNK_BYTES = 1024 * 1024;

/**
 * The tables, created if absent. `created_at` is the time of the last put of the digest (ms since
 * the epoch), so a collection spares a blob that was just put again. Storage EXTERNAL: float32
 * data does not compress, so PostgreSQL should not try.
 */
export const BLOB_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, length BIGINT NOT NULL, kind TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS blob_chunks (sha256 TEXT NOT NULL, seq INTEGER NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (sha256, seq));
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
`;

// bytea arrives as '\x<hex>' text; keep the string and decode it straight into the caller's buffer.
const rawText = { getTypeParser: () => (value: string) => value };

/**
 * Blobs in PostgreSQL (design core-redesign §2.6), so a standby coordinator sees them: `blobs`
 * (one row per complete blob) and `blob_chunks` (1 MiB `bytea` rows). A put streams its chunks in
 * under a temporary key while hashing, then, in the same transaction, renames them to the digest
 * and inserts the `blobs` row last: the row marks completeness, and a crash leaves nothing behind.
 * Puts and collections of one digest serialise on an advisory lock.
 */
export class PostgresBlobStore implements BlobStore {
  private ready: Promise<void> | undefined;

  /**
   * `opts.schemaReady`: the tables exist already (PostgresStore's migration 2 creates them), so
   * no call runs {@link init}. Without it the first call creates them.
   */
  constructor(private readonly pool: pg.Pool, opts: { schemaReady?: boolean } = {}) {
    if (opts.schemaReady === true) this.ready = Promise.resolve();
  }

  /** Creates the tables if absent (idempotent; concurrent coordinators serialise on a lock). */
  init(): Promise<void> {
    return (this.ready ??= this.transaction(async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('fedlhs.blobs.schema'))`);
      await c.query(BLOB_SCHEMA_SQL);
    }));
  }

  async put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: BlobPutOptions): Promise<BlobRef> {
    if (opts.expectedSha256 !== undefined) checkDigest(opts.expectedSha256);
    await this.init();
    const tempKey = `tmp:${randomBytes(12).toString('hex')}`;
    const counter = new HashingCounter();
    return this.transaction(async (c) => {
      const chunk = Buffer.allocUnsafe(PG_BLOB_CHUNK_BYTES);
      let filled = 0;
      let seq = 0;
      const flush = async (): Promise<void> => {
        await c.query('INSERT INTO blob_chunks (sha256, seq, data) VALUES ($1, $2, $3)', [tempKey, seq++, chunk.subarray(0, filled)]);
        filled = 0;
      };
      for await (const bytes of bytesOf(source)) {
        counter.update(bytes);
        let at = 0;
        while (at < bytes.length) {
          const n = Math.min(bytes.length - at, PG_BLOB_CHUNK_BYTES - filled);
          chunk.set(bytes.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled === PG_BLOB_CHUNK_BYTES) await flush();
        }
      }
      if (filled > 0) await flush();
      const sha256 = counter.digest();
      if (opts.expectedSha256 !== undefined && opts.expectedSha256 !== sha256) throw digestMismatch(`${opts.kind} blob`, opts.expectedSha256, sha256);
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [sha256]);
      const now = Date.now();
      const touched = await c.query('UPDATE blobs SET created_at = $2 WHERE sha256 = $1', [sha256, now]);
      if (touched.rowCount === 0) {
        await c.query('UPDATE blob_chunks SET sha256 = $1 WHERE sha256 = $2', [sha256, tempKey]);
        await c.query('INSERT INTO blobs (sha256, length, kind, created_at) VALUES ($1, $2, $3, $4)', [sha256, counter.length, opts.kind, now]);
      } else {
        await c.query('DELETE FROM blob_chunks WHERE sha256 = $1', [tempKey]);
      }
      return { sha256, length: counter.length };
    });
  }

  async *read(ref: BlobRef, opts: BlobReadOptions): AsyncGenerator<Uint8Array> {
    let offset = checkReadRange(ref, opts);
    const stored = await this.stat(ref.sha256);
    if (stored === undefined) throw blobMissing(ref.sha256);
    if (stored.length !== ref.length) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} holds ${stored.length} bytes, recorded ${ref.length}`);
    // One stored chunk at a time, decoded into a pooled buffer and copied out in read-sized pieces.
    const row = opts.pool?.acquire(PG_BLOB_CHUNK_BYTES) ?? Buffer.allocUnsafeSlow(PG_BLOB_CHUNK_BYTES);
    let rowSeq = -1;
    let rowBytes = 0;
    try {
      while (offset < ref.length) {
        opts.signal?.throwIfAborted();
        const n = Math.min(opts.chunkBytes, ref.length - offset);
        const out = opts.pool?.acquire(n) ?? Buffer.allocUnsafeSlow(n);
        let filled = 0;
        try {
          while (filled < n) {
            const at = offset + filled;
            const seq = Math.floor(at / PG_BLOB_CHUNK_BYTES);
            if (seq !== rowSeq) {
              const r = await this.pool.query<{ data: string }>({ text: 'SELECT data FROM blob_chunks WHERE sha256 = $1 AND seq = $2', values: [ref.sha256, seq], types: rawText });
              const hex = r.rows[0]?.data;
              if (hex === undefined) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} lacks chunk ${seq}`);
              rowBytes = row.write(hex.slice(2), 0, 'hex');
              rowSeq = seq;
            }
            const from = at - seq * PG_BLOB_CHUNK_BYTES;
            if (from >= rowBytes) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} chunk ${seq} is short (${rowBytes} bytes)`);
            filled += row.copy(out, filled, from, Math.min(rowBytes, from + n - filled));
          }
        } catch (err) {
          opts.pool?.release(out);
          throw err;
        }
        offset += n;
        yield out;
      }
    } finally {
      opts.pool?.release(row);
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.stat(sha256)) !== undefined;
  }

  async stat(sha256: string): Promise<BlobRef | undefined> {
    checkDigest(sha256);
    await this.init();
    const r = await this.pool.query<{ length: string }>('SELECT length FROM blobs WHERE sha256 = $1', [sha256]);
    const row = r.rows[0];
    return row === undefined ? undefined : { sha256, length: Number(row.length) };
  }

  async verify(ref: BlobRef): Promise<void> {
    const stored = await this.stat(ref.sha256);
    if (stored === undefined) throw blobMissing(ref.sha256);
    const counter = new HashingCounter();
    for await (const chunk of this.read(stored, { chunkBytes: PG_BLOB_CHUNK_BYTES })) counter.update(chunk);
    const r = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM blob_chunks WHERE sha256 = $1', [ref.sha256]);
    const expectedRows = Math.ceil(stored.length / PG_BLOB_CHUNK_BYTES);
    if (Number(r.rows[0]?.n) !== expectedRows) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} has ${r.rows[0]?.n} chunks, expected ${expectedRows}`);
    const actual = counter.digest();
    if (actual !== ref.sha256) throw digestMismatch(`blob ${ref.sha256}`, ref.sha256, actual);
    if (stored.length !== ref.length) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} holds ${stored.length} bytes, recorded ${ref.length}`);
  }

  async collect(referenced: (sha256: string) => Promise<boolean>, graceMs: number): Promise<{ removed: number; bytes: number }> {
    await this.init();
    const cutoff = Date.now() - graceMs;
    const candidates = await this.pool.query<{ sha256: string }>('SELECT sha256 FROM blobs WHERE created_at <= $1', [cutoff]);
    let removed = 0;
    let bytes = 0;
    for (const { sha256 } of candidates.rows) {
      if (await referenced(sha256)) continue;
      await this.transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [sha256]);
        // Re-checked under the lock: a put since the listing refreshed created_at.
        const r = await c.query<{ length: string }>('DELETE FROM blobs WHERE sha256 = $1 AND created_at <= $2 RETURNING length', [sha256, cutoff]);
        const row = r.rows[0];
        if (row === undefined) return;
        await c.query('DELETE FROM blob_chunks WHERE sha256 = $1', [sha256]);
        removed++;
        bytes += Number(row.length);
      });
    }
    return { removed, bytes };
  }

  /** The pool belongs to the caller, which ends it. */
  async close(): Promise<void> {}

  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }
}
