import { createHash, type Hash } from 'node:crypto';
import { FedlhsError } from './errors.js';
import { BYTES_PER_FLOAT32, bundleLength, describeSpecMismatch, elementCount, validateSpecs, type TensorSpec } from './tensors.js';

/** Smallest data chunk a sender may declare (1 MiB). */
export const MIN_CHUNK_BYTES = 1024 * 1024;
/** Largest data chunk a sender may declare: leaves room under gRPC's default 4 MiB message limit. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024 - 64 * 1024;
/** Default chunk size used by fedlhs senders. */
export const DEFAULT_CHUNK_BYTES = MIN_CHUNK_BYTES;

/** The transfer header of a tensor bundle (TensorBundleHeader on the wire). */
export interface BundleHeader {
  tensors: TensorSpec[];
  totalBytes: number;
  sha256: Uint8Array;
  chunkSize: number;
}

/**
 * `chunk_size` 0 declares a payload sent as exactly one data chunk of `total_bytes`, which must
 * then be at most MAX_CHUNK_BYTES (TensorBundleHeader.chunk_size in common.proto).
 */
export const SINGLE_CHUNK = 0;

/**
 * Checks a declared chunk size against the protocol's rules; throws BAD_HEADER naming the rule
 * broken. `totalBytes`, when given, allows SINGLE_CHUNK (0) for a payload of at most
 * MAX_CHUNK_BYTES; without it (a sender choosing its size) 0 is refused.
 */
export function validateChunkSize(chunkSize: number, totalBytes?: number): void {
  if (chunkSize === SINGLE_CHUNK && totalBytes !== undefined) {
    if (totalBytes > MAX_CHUNK_BYTES) {
      throw new FedlhsError('BAD_HEADER', `chunk_size 0 (one chunk) needs total_bytes of at most ${MAX_CHUNK_BYTES}, got ${totalBytes}`);
    }
    return;
  }
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_BYTES || chunkSize > MAX_CHUNK_BYTES || chunkSize % 4 !== 0) {
    throw new FedlhsError(
      'BAD_HEADER',
      `chunk_size ${chunkSize} is not allowed: it must be a multiple of 4 between ${MIN_CHUNK_BYTES} and ${MAX_CHUNK_BYTES} bytes, or 0 for a payload sent as one chunk of at most ${MAX_CHUNK_BYTES} bytes`,
    );
  }
}

/**
 * Yields the payload as protocol-sized chunks (views into `bytes`, no copies). SINGLE_CHUNK (0)
 * yields the whole payload as one chunk, for payloads of at most MAX_CHUNK_BYTES.
 */
export function* payloadChunks(bytes: Uint8Array, chunkSize: number = DEFAULT_CHUNK_BYTES): Generator<Uint8Array> {
  validateChunkSize(chunkSize, chunkSize === SINGLE_CHUNK ? bytes.length : undefined);
  if (chunkSize === SINGLE_CHUNK) {
    yield bytes;
    return;
  }
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    yield bytes.subarray(offset, Math.min(offset + chunkSize, bytes.length));
  }
}

export interface PayloadReceiverOptions {
  /** If given, the header's tensors must match these names and shapes (SHAPE_MISMATCH otherwise). */
  expected?: readonly TensorSpec[];
  /** Reject NaN and ±Infinity (NON_FINITE). Default true. */
  requireFinite?: boolean;
}

/**
 * Checks an incoming chunked payload as it arrives: the header against the protocol (and the
 * expected model), each chunk's size, every value's finiteness, and at the end the length and
 * SHA-256. Holds one chunk at a time, so memory stays bounded whatever the payload size.
 * Errors are FedlhsErrors whose code is the protocol's RejectionReason name.
 */
export class PayloadReceiver {
  readonly header: BundleHeader;
  private readonly hash: Hash = createHash('sha256');
  private readonly requireFinite: boolean;
  private readonly boundaries: number[] = [];
  private received = 0;
  private sawShortChunk = false;

  constructor(header: BundleHeader, options: PayloadReceiverOptions = {}) {
    this.header = header;
    this.requireFinite = options.requireFinite ?? true;
    try {
      validateSpecs(header.tensors);
    } catch (err) {
      throw new FedlhsError('BAD_HEADER', `bad tensor list: ${(err as Error).message}`, { cause: err });
    }
    validateChunkSize(header.chunkSize, header.totalBytes);
    if (header.sha256.length !== 32) {
      throw new FedlhsError('BAD_HEADER', `sha256 must be 32 bytes, got ${header.sha256.length}`);
    }
    if (options.expected !== undefined) {
      const mismatch = describeSpecMismatch(options.expected, header.tensors);
      if (mismatch !== undefined) {
        throw new FedlhsError('SHAPE_MISMATCH', `update does not match the global model: ${mismatch}`);
      }
    }
    const expectedBytes = bundleLength(header.tensors) * BYTES_PER_FLOAT32;
    if (header.totalBytes !== expectedBytes) {
      throw new FedlhsError('BAD_HEADER', `total_bytes ${header.totalBytes} does not match the tensors, which need ${expectedBytes} bytes`);
    }
    let end = 0;
    for (const t of header.tensors) {
      end += elementCount(t.shape);
      this.boundaries.push(end);
    }
  }

  /** Bytes received so far. */
  get receivedBytes(): number {
    return this.received;
  }

  /**
   * Accepts the next data chunk. Returns its values as a Float32Array (a view of the chunk when
   * it is 4-byte aligned, else a copy: do not keep it past the next push) and their offset, in
   * values, in the payload.
   */
  push(chunk: Uint8Array): { offset: number; values: Float32Array } {
    const { chunkSize, totalBytes } = this.header;
    if (chunkSize === SINGLE_CHUNK) {
      if (this.received > 0) throw new FedlhsError('BAD_HEADER', 'chunk_size 0 declares a single data chunk, but a second one arrived');
      if (chunk.length !== totalBytes) {
        throw new FedlhsError('BAD_HEADER', `chunk_size 0 declares one data chunk of total_bytes ${totalBytes}, got a chunk of ${chunk.length} bytes`);
      }
    } else {
      if (this.sawShortChunk) {
        throw new FedlhsError('BAD_HEADER', `a data chunk followed a short chunk; only the last chunk may be shorter than chunk_size ${chunkSize}`);
      }
      if (chunk.length === 0 || chunk.length > chunkSize || chunk.length % 4 !== 0) {
        throw new FedlhsError('BAD_HEADER', `data chunk of ${chunk.length} bytes breaks the chunk rules (1..${chunkSize} bytes, a multiple of 4)`);
      }
    }
    if (this.received + chunk.length > totalBytes) {
      throw new FedlhsError('LENGTH_MISMATCH', `received more than total_bytes ${totalBytes}`);
    }
    if (chunk.length < chunkSize) this.sawShortChunk = true;
    this.hash.update(chunk);
    // Transport buffers need not be 4-byte aligned; copy only when they are not.
    let values: Float32Array;
    if (chunk.byteOffset % 4 === 0) {
      values = new Float32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4);
    } else {
      values = new Float32Array(chunk.length / 4);
      new Uint8Array(values.buffer).set(chunk);
    }
    const offset = this.received / 4;
    if (this.requireFinite) this.checkFinite(values, offset);
    this.received += chunk.length;
    return { offset, values };
  }

  /** Verifies length and digest once the sender has finished. Returns the digest. */
  finish(): Buffer {
    const { totalBytes, sha256 } = this.header;
    if (this.received !== totalBytes) {
      throw new FedlhsError('LENGTH_MISMATCH', `stream ended after ${this.received} of ${totalBytes} bytes`);
    }
    const digest = this.hash.digest();
    if (!digest.equals(sha256)) {
      throw new FedlhsError('DIGEST_MISMATCH', `sha256 mismatch: header says ${Buffer.from(sha256).toString('hex')}, received bytes hash to ${digest.toString('hex')}`);
    }
    return digest;
  }

  private checkFinite(values: Float32Array, offset: number): void {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        const at = offset + i;
        const tensorIndex = this.boundaries.findIndex((end) => at < end);
        const tensor = this.header.tensors[tensorIndex]!;
        const start = tensorIndex === 0 ? 0 : this.boundaries[tensorIndex - 1]!;
        throw new FedlhsError('NON_FINITE', `non-finite value (${values[i]}) in tensor "${tensor.name}" at element ${at - start}`, { details: { tensor: tensor.name, element: at - start } });
      }
    }
  }
}
