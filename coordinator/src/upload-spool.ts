import type { FileHandle } from 'node:fs/promises';
import { FedlhsError, elementCount, type PayloadReceiver, type TensorSpec } from '@fedlhs/core';
import type { UpdateChunk__Output } from '@fedlhs/proto';
import type { BufferPool } from './blobs/buffer-pool.js';

/**
 * Bytes of one spool write. Arriving chunks are copied into such a batch (a pooled buffer at
 * offset 0, so every chunk lands 4-byte aligned and is checked as a Float32Array view, not
 * copied into a fresh array per chunk as an unaligned gRPC buffer would be), and a full batch is
 * written with one positional write. At least MAX_CHUNK_BYTES, so any valid chunk fits.
 */
export const SPOOL_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Spool writes in flight at once (each holds its batch): the loop goes on receiving and checking
 * the next batch while the disk writes one. Memory per upload: (this + 1) batches and two base
 * reads, about 10 MiB, whatever the model's size (before: three 1 MiB buffers per chunk, which
 * the GC had to collect; grpc-js itself reads ahead up to 16 messages per stream).
 */
export const SPOOL_WRITES_IN_FLIGHT = 1;
/** Bytes of each read of the base model (pooled; one read ahead of the one in use). */
export const BASE_READ_BYTES = 1024 * 1024;

export interface SpoolUploadOptions {
  /** The data messages after the header. */
  chunks: AsyncIterable<UpdateChunk__Output>;
  /**
   * Checks each chunk (sizes, length, digest at the end). Finiteness is checked here whatever
   * the receiver does (fused with the norm), so it may be built with requireFinite: false.
   */
  receiver: PayloadReceiver;
  /** The base model's payload in chunks from `pool` (CheckpointStore.read with the pool). */
  base: AsyncIterator<Buffer>;
  /** The spool file, open for writing; written at explicit positions. */
  file: FileHandle;
  pool: BufferPool;
  /** Turns a failed write into the error to throw (a storage fault), or undefined for the original. */
  writeFailed: (err: unknown) => unknown;
}

/**
 * Receives an update's data chunks in a pipeline (issue 15: each chunk was hashed, checked,
 * measured and spooled in turn, and the coordinator sat idle between): each chunk is checked by
 * the receiver, its distance from the base model accumulated against base bytes read one chunk
 * ahead, and spooled in batches whose writes proceed while the next chunks arrive. Returns
 * ‖update − base‖² over the payload. Every check of the sequential version stays, in the same
 * order per chunk; on any error the writes in flight are awaited before it is thrown, so the
 * caller may close and remove the spool file at once.
 */
export async function spoolUpload(o: SpoolUploadOptions): Promise<number> {
  const writes: Promise<unknown>[] = [];
  const base = new BaseCursor(o.base, o.pool);
  let batch = o.pool.acquire(SPOOL_BATCH_BYTES);
  let filled = 0;
  /** Payload position of batch[0]. */
  let batchAt = 0;
  let squaredDistance = 0;
  let failed: unknown;
  const flush = async (): Promise<void> => {
    if (filled === 0) return;
    const full = batch;
    const length = filled;
    // The buffer goes back to the pool once its write has settled, either way (review ring: a
    // failed write kept it counted in use).
    writes.push(writeFully(o.file, full, length, batchAt).then(
      () => o.pool.release(full),
      (err: unknown) => {
        o.pool.release(full);
        failed ??= o.writeFailed(err) ?? err;
      },
    ));
    batchAt += length;
    filled = 0;
    batch = o.pool.acquire(SPOOL_BATCH_BYTES);
    if (writes.length > SPOOL_WRITES_IN_FLIGHT) await writes.shift();
    if (failed !== undefined) throw failed;
  };
  try {
    for await (const chunk of o.chunks) {
      const data = chunk.data;
      if (!data) throw new FedlhsError('BAD_HEADER', 'only the first message may be a header');
      if (data.length > SPOOL_BATCH_BYTES - filled) await flush();
      // A chunk no batch can hold breaks the chunk rules: the receiver says so, on the original.
      if (data.length > SPOOL_BATCH_BYTES) {
        o.receiver.push(data);
        throw new FedlhsError('INTERNAL', `a data chunk of ${data.length} bytes passed the chunk rules but exceeds the spool batch`);
      }
      data.copy(batch, filled);
      const { offset, values } = o.receiver.push(batch.subarray(filled, filled + data.length));
      filled += data.length;
      squaredDistance = await base.addSquaredDistance(squaredDistance, values, offset);
      // Finiteness fused with the norm (one pass over the chunk, not two): with a finite base,
      // the float64 sum of float32 differences squared stays finite (each term ≤ 4.7e77) unless
      // a value is NaN or ±Infinity. Otherwise, or where the base ended early, every value is
      // looked at, so the receiver may be built with requireFinite: false.
      if (!Number.isFinite(squaredDistance) || base.ended) checkFinite(values, offset, o.receiver.header.tensors);
    }
    await flush();
    await Promise.all(writes.splice(0));
    if (failed !== undefined) throw failed;
    return squaredDistance;
  } finally {
    // Writes still in flight finish (or fail) before the caller closes the file.
    await Promise.allSettled(writes);
    o.pool.release(batch);
    await base.close();
  }
}

/**
 * Writes `length` bytes of `buffer` at `position`, again for what a short write left (review
 * ring: a write the file-size limit cut short left a zero-filled hole counted as the update's
 * values); a write that makes no progress is an I/O error.
 */
async function writeFully(file: Pick<FileHandle, 'write'>, buffer: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await file.write(buffer, done, length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error(`a spool write at byte ${position + done} wrote nothing`), { code: 'EIO' });
    done += bytesWritten;
  }
}

/**
 * Throws NON_FINITE for the first NaN or ±Infinity in `values` (payload values from `offset`),
 * naming the tensor and element as PayloadReceiver does (the same message and details).
 */
export function checkFinite(values: Float32Array, offset: number, tensors: readonly TensorSpec[]): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i]!)) continue;
    const at = offset + i;
    let start = 0;
    for (const tensor of tensors) {
      const end = start + elementCount(tensor.shape);
      if (at < end) {
        throw new FedlhsError('NON_FINITE', `non-finite value (${values[i]}) in tensor "${tensor.name}" at element ${at - start}`, { details: { tensor: tensor.name, element: at - start } });
      }
      start = end;
    }
    throw new FedlhsError('INTERNAL', `non-finite value at ${at}, past the tensors' ${start} values`);
  }
}

/**
 * The base model read forward in pooled chunks, one read ahead, for ‖update − base‖² at the
 * update's offsets. A chunk that is not 4-byte aligned (a blob store's buffer) is copied.
 */
class BaseCursor {
  private current: Float32Array = new Float32Array(0);
  private currentBuffer: Buffer | undefined;
  /** Value position of current[0]. */
  private start = 0;
  private ahead: Promise<IteratorResult<Buffer>> | undefined;
  private done = false;

  /** Whether the base has ended (values past its end are not in the sum). */
  get ended(): boolean {
    return this.done;
  }

  constructor(private readonly chunks: AsyncIterator<Buffer>, private readonly pool: BufferPool) {
    this.ahead = this.readAhead();
  }

  private readAhead(): Promise<IteratorResult<Buffer>> {
    const next = this.chunks.next();
    next.catch(() => undefined); // awaited when used; never an unhandled rejection meanwhile
    return next;
  }

  /**
   * `sum` plus Σ (values[i] − base[offset + i])², accumulated in payload order into the one
   * running sum (the same rounding as a single loop over the payload). Values past the end of
   * the base (impossible once the shapes matched) are not counted.
   */
  async addSquaredDistance(sum: number, values: Float32Array, offset: number): Promise<number> {
    let i = 0;
    while (i < values.length) {
      const at = offset + i;
      if (at >= this.start + this.current.length && !(await this.advance())) break;
      if (at < this.start) throw new FedlhsError('INTERNAL', `base model read went back from ${this.start} to ${at}`);
      const g = this.current;
      const from = at - this.start;
      const n = Math.min(values.length - i, g.length - from);
      for (let k = 0; k < n; k++) {
        const d = values[i + k]! - g[from + k]!;
        sum += d * d;
      }
      i += n;
    }
    return sum;
  }

  private async advance(): Promise<boolean> {
    if (this.done || this.ahead === undefined) return false;
    const next = await this.ahead;
    this.start += this.current.length;
    this.releaseCurrent();
    if (next.done === true) {
      this.done = true;
      this.ahead = undefined;
      this.current = new Float32Array(0);
      return false;
    }
    this.ahead = this.readAhead();
    let b = next.value;
    if (b.byteOffset % 4 !== 0) {
      const aligned = this.pool.acquire(b.length);
      b.copy(aligned);
      this.pool.release(b);
      b = aligned;
    }
    this.currentBuffer = b;
    this.current = new Float32Array(b.buffer, b.byteOffset, Math.floor(b.length / 4));
    return true;
  }

  private releaseCurrent(): void {
    if (this.currentBuffer !== undefined) this.pool.release(this.currentBuffer);
    this.currentBuffer = undefined;
  }

  async close(): Promise<void> {
    this.releaseCurrent();
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead !== undefined) {
      const r = await ahead.catch(() => undefined);
      if (r !== undefined && r.done !== true) this.pool.release(r.value);
    }
    await this.chunks.return?.(undefined);
  }
}
