import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FedlhsError, PayloadReceiver, mulberry32, type TensorSpec } from '@fedlhs/core';
import type { UpdateChunk__Output } from '@fedlhs/proto';
import { BufferPool } from './blobs/buffer-pool.js';
import { SPOOL_BATCH_BYTES, spoolUpload } from './upload-spool.js';

const MiB = 1024 * 1024;

function floats(n: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: n }, () => random() - 0.5);
}

/** `bytes` as gRPC hands them over: copies at an odd offset of a larger buffer (not 4-byte aligned). */
function unaligned(bytes: Uint8Array): Buffer {
  const b = Buffer.alloc(bytes.length + 1);
  b.set(bytes, 1);
  return b.subarray(1);
}

async function* messages(payload: Uint8Array, chunk: number, edit?: (i: number, m: UpdateChunk__Output) => UpdateChunk__Output): AsyncGenerator<UpdateChunk__Output> {
  for (let at = 0, i = 0; at < payload.length; at += chunk, i++) {
    const m = { data: unaligned(payload.subarray(at, Math.min(at + chunk, payload.length))) } as UpdateChunk__Output;
    yield edit?.(i, m) ?? m;
  }
}

/** The base model in chunks of `size` bytes from `pool`; with `odd`, each chunk at an unaligned offset instead (a blob store's buffer). */
async function* baseChunks(base: Float32Array, size: number, pool: BufferPool, odd = false): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(base.buffer, base.byteOffset, base.byteLength);
  for (let at = 0; at < bytes.length; at += size) {
    const part = bytes.subarray(at, Math.min(at + size, bytes.length));
    if (odd) yield unaligned(part);
    else {
      const b = pool.acquire(part.length);
      part.copy(b);
      yield b;
    }
  }
}

/** A spool file in memory whose writes settle a moment later (recorded with their positions); `fail` picks writes that fail. */
function memoryFile(fail?: (call: number) => Error | undefined): { file: FileHandle; bytes: () => Buffer; calls: { position: number; length: number }[]; pending: () => number } {
  const parts = new Map<number, Buffer>();
  const calls: { position: number; length: number }[] = [];
  let pending = 0;
  const file = {
    async write(buffer: Buffer, offset: number, length: number, position: number) {
      calls.push({ position, length });
      const call = calls.length - 1;
      pending++;
      // Settles after the loop has moved on (a disk write takes a while).
      await new Promise((r) => setTimeout(r, 1));
      pending--;
      const err = fail?.(call);
      if (err !== undefined) throw err;
      parts.set(position, Buffer.from(buffer.subarray(offset, offset + length)));
      return { bytesWritten: length, buffer };
    },
  } as unknown as FileHandle;
  const bytes = (): Buffer => Buffer.concat([...parts.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b));
  return { file, bytes, calls, pending: () => pending };
}

/** The receiver as the intake builds it for a new update: finiteness is left to spoolUpload. */
function receiverFor(payload: Uint8Array, values: number, chunkSize = MiB, tensors: TensorSpec[] = [{ name: 'w', shape: [values] }], requireFinite = false): PayloadReceiver {
  return new PayloadReceiver({ tensors, totalBytes: payload.length, sha256: createHash('sha256').update(payload).digest(), chunkSize }, { requireFinite });
}

describe('spoolUpload', () => {
  const n = (2 * MiB + 3 * 4096) / 4 * 3; // 6 MiB and a bit: batches, a short last chunk
  const update = floats(n, 1);
  const base = floats(n, 2);
  const payload = new Uint8Array(update.buffer);

  it.each([
    { chunk: MiB, baseRead: 4 * MiB, odd: false },
    { chunk: 4 * MiB - 64 * 1024, baseRead: 700 * 1024, odd: true },
  ])('spools the payload byte for byte and measures ‖update − base‖² as one loop would ($chunk-byte chunks, $baseRead-byte base reads, unaligned base $odd)', async ({ chunk, baseRead, odd }) => {
    const pool = new BufferPool();
    const receiver = receiverFor(payload, n, chunk);
    const f = memoryFile();
    const distance = await spoolUpload({ chunks: messages(payload, chunk), receiver, base: baseChunks(base, baseRead, pool, odd), file: f.file, pool, writeFailed: () => undefined });
    let expected = 0;
    for (let i = 0; i < n; i++) {
      const d = update[i]! - base[i]!;
      expected += d * d;
    }
    expect(distance).toBe(expected);
    expect(f.bytes().equals(Buffer.from(payload))).toBe(true);
    expect(receiver.finish().equals(createHash('sha256').update(payload).digest())).toBe(true);
    // Batched: each write but the last is a whole batch of chunks, at consecutive positions.
    const perBatch = Math.floor(SPOOL_BATCH_BYTES / chunk) * chunk;
    expect(f.calls.map((c) => c.position)).toEqual(f.calls.map((_, i) => i * perBatch));
    expect(f.calls.length).toBe(Math.ceil(payload.length / perBatch));
    expect(pool.inUse).toBe(0);
  });

  it('keeps every check: a NaN is NON_FINITE naming tensor and element, and no write is left in flight', async () => {
    const pool = new BufferPool();
    const bad = Float32Array.from(update);
    bad[MiB / 4 * 5 + 7] = Number.NaN;
    const bytes = new Uint8Array(bad.buffer);
    const f = memoryFile();
    const err = await spoolUpload({ chunks: messages(bytes, MiB), receiver: receiverFor(bytes, n), base: baseChunks(base, 4 * MiB, pool), file: f.file, pool, writeFailed: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('NON_FINITE');
    expect((err as FedlhsError).message).toMatchInlineSnapshot(`"non-finite value (NaN) in tensor "w" at element 1310727"`);
    expect(f.pending()).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it.each([
    { value: Number.NaN, at: 7 },
    { value: Number.POSITIVE_INFINITY, at: MiB / 4 * 3 },
    { value: Number.NEGATIVE_INFINITY, at: n - 1 },
  ])('finds $value at $at in the same pass as the norm, with the error the receiver itself gives', async ({ value, at }) => {
    const tensors = [{ name: 'a', shape: [1000] }, { name: 'b', shape: [(n - 1002) / 2, 2] }, { name: 'c', shape: [2] }];
    const bad = Float32Array.from(update);
    bad[at] = value;
    const bytes = new Uint8Array(bad.buffer);
    const pool = new BufferPool();
    const err = await spoolUpload({ chunks: messages(bytes, MiB), receiver: receiverFor(bytes, n, MiB, tensors), base: baseChunks(base, 4 * MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined }).catch((e: unknown) => e);
    // The receiver's own check on the same bytes: the same code, message and details.
    const own = receiverFor(bytes, n, MiB, tensors, true);
    let expected: unknown;
    try {
      for (let c = 0; c < bytes.length; c += MiB) own.push(bytes.subarray(c, c + MiB));
    } catch (e) {
      expected = e;
    }
    expect(expected).toBeInstanceOf(FedlhsError);
    expect(err).toBeInstanceOf(FedlhsError);
    expect({ code: (err as FedlhsError).code, message: (err as FedlhsError).message, details: (err as FedlhsError).details }).toEqual({
      code: (expected as FedlhsError).code, message: (expected as FedlhsError).message, details: (expected as FedlhsError).details,
    });
    expect(pool.inUse).toBe(0);
  });

  it('checks every value when the sum cannot tell: a non-finite base, or a base that ends early', async () => {
    const pool = new BufferPool();
    // A NaN in the base makes the sum NaN from the first chunk on; a NaN in the update 3 MiB later is still found.
    const nanBase = Float32Array.from(base);
    nanBase[3] = Number.NaN;
    const bad = Float32Array.from(update);
    bad[MiB / 4 * 3 + 5] = Number.NaN;
    const bytes = new Uint8Array(bad.buffer);
    const err = await spoolUpload({ chunks: messages(bytes, MiB), receiver: receiverFor(bytes, n), base: baseChunks(nanBase, 4 * MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined }).catch((e: unknown) => e);
    expect((err as FedlhsError).message).toMatchInlineSnapshot(`"non-finite value (NaN) in tensor "w" at element 786437"`);
    // A finite update from a NaN base: accepted with a NaN distance, as the two-pass version did (the norm bound then decides).
    const distance = await spoolUpload({ chunks: messages(payload, MiB), receiver: receiverFor(payload, n), base: baseChunks(nanBase, 4 * MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined });
    expect(distance).toBeNaN();
    // A base shorter than the update (impossible once shapes match): the values past it are still checked.
    const tail = Float32Array.from(update);
    tail[n - 2] = Number.POSITIVE_INFINITY;
    const tailBytes = new Uint8Array(tail.buffer);
    const short = await spoolUpload({ chunks: messages(tailBytes, MiB), receiver: receiverFor(tailBytes, n), base: baseChunks(base.subarray(0, MiB / 4), MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined }).catch((e: unknown) => e);
    expect((short as FedlhsError).code).toBe('NON_FINITE');
    expect(pool.inUse).toBe(0);
  });

  it('refuses a second header and a chunk that breaks the chunk rules, as before', async () => {
    const pool = new BufferPool();
    const header = await spoolUpload({
      chunks: messages(payload, MiB, (i, m) => (i === 2 ? ({ header: {} } as UpdateChunk__Output) : m)), receiver: receiverFor(payload, n), base: baseChunks(base, 4 * MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined,
    }).catch((e: unknown) => e);
    expect((header as FedlhsError).message).toBe('only the first message may be a header');
    const big = await spoolUpload({
      chunks: messages(payload, SPOOL_BATCH_BYTES + 4), receiver: receiverFor(payload, n), base: baseChunks(base, 4 * MiB, pool), file: memoryFile().file, pool, writeFailed: () => undefined,
    }).catch((e: unknown) => e);
    expect((big as FedlhsError).code).toBe('BAD_HEADER');
    expect(pool.inUse).toBe(0);
  });

  it('a failed spool write ends the upload with the error writeFailed makes of it', async () => {
    const pool = new BufferPool();
    const enospc = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const f = memoryFile((call) => (call === 0 ? enospc : undefined));
    const fault = new FedlhsError('STORAGE_FAULT', 'disk full', { details: { kind: 'disk_full', op: 'spool the upload' } });
    const err = await spoolUpload({ chunks: messages(payload, MiB), receiver: receiverFor(payload, n), base: baseChunks(base, 4 * MiB, pool), file: f.file, pool, writeFailed: (e) => (e === enospc ? fault : undefined) }).catch((e: unknown) => e);
    expect(err).toBe(fault);
    expect(f.pending()).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it('writes again what a short write left, and a write that writes nothing is an I/O error (review ring)', async () => {
    const pool = new BufferPool();
    const bytes = Buffer.alloc(payload.length);
    let writes = 0;
    const short = {
      async write(buffer: Buffer, offset: number, length: number, position: number) {
        writes++;
        // At most 1000 bytes per call, as a disk near a file-size limit might.
        const n = Math.min(length, 1000);
        buffer.copy(bytes, position, offset, offset + n);
        return { bytesWritten: n, buffer };
      },
    } as unknown as FileHandle;
    await spoolUpload({ chunks: messages(payload, MiB), receiver: receiverFor(payload, n), base: baseChunks(base, 4 * MiB, pool), file: short, pool, writeFailed: () => undefined });
    expect(Buffer.compare(bytes, Buffer.from(payload))).toBe(0);
    expect(writes).toBeGreaterThan(payload.length / 1000 - 1);
    const stuck = { write: async (buffer: Buffer) => ({ bytesWritten: 0, buffer }) } as unknown as FileHandle;
    const err = await spoolUpload({ chunks: messages(payload, MiB), receiver: receiverFor(payload, n), base: baseChunks(base, 4 * MiB, pool), file: stuck, pool, writeFailed: () => undefined }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EIO');
    expect(pool.inUse).toBe(0);
  });
});
