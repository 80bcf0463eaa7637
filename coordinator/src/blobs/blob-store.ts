import { createHash, type Hash } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { BufferPool } from './buffer-pool.js';

/** A stored blob: its SHA-256 (lower-case hex) and length in bytes. */
export interface BlobRef {
  sha256: string;
  length: number;
}

/** What a blob holds; recorded with it (PostgreSQL) for operators and for collection statistics. */
export type BlobKind = 'checkpoint' | 'strategy-state' | 'model-spec' | 'held-update' | 'release' | 'stage-payload';

export interface BlobPutOptions {
  kind: BlobKind;
  /** The digest the bytes must have; a mismatch rejects with DATA_LOSS and stores nothing. */
  expectedSha256?: string;
}

export interface BlobReadOptions {
  /** Largest chunk yielded. */
  chunkBytes: number;
  /** First byte to read (default 0). */
  offset?: number;
  /**
   * Chunks come from this pool, and the consumer owns each one: it releases the chunk to the pool
   * once done with it (for a download: after grpc-js has serialised it). Without a pool every
   * chunk is a fresh buffer.
   */
  pool?: BufferPool;
  signal?: AbortSignal;
}

/**
 * Content-addressed blob storage (design core-redesign §2.6): checkpoints, strategy state and
 * other large payloads, named by their SHA-256. Implementations: files under the data directory
 * (file-blob-store.ts), PostgreSQL `bytea` chunks (postgres-blob-store.ts), and a read-through
 * local cache in front of either (cached-blob-store.ts).
 */
export interface BlobStore {
  /** Streams bytes in while hashing; durable when it resolves; idempotent per digest; DATA_LOSS if expectedSha256 differs. */
  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: BlobPutOptions): Promise<BlobRef>;
  /** Chunks of at most chunkBytes from offset; DATA_LOSS if the blob is absent or shorter than ref.length. */
  read(ref: BlobRef, opts: BlobReadOptions): AsyncIterable<Uint8Array>;
  has(sha256: string): Promise<boolean>;
  /** The stored blob's reference, or undefined if there is none. */
  stat(sha256: string): Promise<BlobRef | undefined>;
  /** Re-hashes the stored bytes: DATA_LOSS on a mismatch (digest or length) or if absent. */
  verify(ref: BlobRef): Promise<void>;
  /** Deletes blobs that no row references and that are older than graceMs. */
  collect(referenced: (sha256: string) => Promise<boolean>, graceMs: number): Promise<{ removed: number; bytes: number }>;
  close(): Promise<void>;
}

const DIGEST = /^[0-9a-f]{64}$/;

/** Throws INVALID_ARGUMENT unless `sha256` is 64 lower-case hex digits (digests name files). */
export function checkDigest(sha256: string): string {
  if (!DIGEST.test(sha256)) throw new FedlhsError('INVALID_ARGUMENT', `not a SHA-256 digest (64 lower-case hex digits): ${JSON.stringify(sha256)}`);
  return sha256;
}

/** Hashes and counts bytes as they pass. */
export class HashingCounter {
  private readonly hash: Hash = createHash('sha256');
  length = 0;

  update(bytes: Uint8Array): void {
    this.hash.update(bytes);
    this.length += bytes.length;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Iterates a sync or async source as async Uint8Arrays (Float32Arrays and other views become their bytes). */
export async function* bytesOf(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Iterable<ArrayBufferView> | AsyncIterable<ArrayBufferView>): AsyncGenerator<Uint8Array> {
  for await (const part of source as AsyncIterable<ArrayBufferView>) {
    yield part instanceof Uint8Array ? part : new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
  }
}

/** The DATA_LOSS thrown when bytes do not hash to what was expected. */
export function digestMismatch(what: string, expected: string, actual: string): FedlhsError {
  return new FedlhsError('DATA_LOSS', `${what} hashes to ${actual}, expected ${expected}`);
}

/** The DATA_LOSS of a read or verify of an absent blob: refs come from rows that recorded them. */
export function blobMissing(sha256: string): FedlhsError {
  return new FedlhsError('DATA_LOSS', `blob ${sha256} is missing from the blob store`);
}

/** Checks a read's chunk size and offset against the blob. */
export function checkReadRange(ref: BlobRef, opts: BlobReadOptions): number {
  if (!Number.isInteger(opts.chunkBytes) || opts.chunkBytes <= 0) throw new RangeError(`chunkBytes must be a positive integer, got ${opts.chunkBytes}`);
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || offset > ref.length) throw new RangeError(`offset ${offset} is outside blob ${ref.sha256} of ${ref.length} bytes`);
  return offset;
}
