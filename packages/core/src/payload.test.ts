import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, PayloadReceiver, SINGLE_CHUNK, payloadChunks, validateChunkSize, type BundleHeader, type PayloadReceiverOptions } from './payload.js';
import { float32Bytes, type TensorSpec } from './tensors.js';

const MIB = 1024 * 1024;

/** A header that truthfully describes `values` split into `tensors`. */
function headerFor(tensors: TensorSpec[], values: Float32Array, chunkSize = MIN_CHUNK_BYTES): BundleHeader {
  return {
    tensors,
    totalBytes: values.byteLength,
    sha256: createHash('sha256').update(float32Bytes(values)).digest(),
    chunkSize,
  };
}

/** Deterministic, non-trivial values (distinct per index, exactly representable in float32). */
function ramp(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (i % 1000) - 500 + (i % 7) / 8;
  return out;
}

/** Byte-for-byte equality (fast on MiB-sized arrays, where toEqual walks element by element). */
function expectSameBytes(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.compare(float32Bytes(actual), float32Bytes(expected))).toBe(0);
}

/** Runs `fn` and returns the FedlhsError it throws, failing the test if it does not throw one. */
/** Its status class, its code (a RejectionReason name, in the current form: no legacy `reason`) and its message. */
function rejection(fn: () => unknown): { status: string; reason: string | undefined; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    const e = err as FedlhsError;
    expect(e.legacy).toBe(false);
    expect(e.isRejection).toBe(true);
    return { status: e.status, reason: e.code, message: e.message };
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

/** Sends `values` through payloadChunks and a PayloadReceiver, reassembling what comes out. */
function roundTrip(tensors: TensorSpec[], values: Float32Array, chunkSize: number, options?: PayloadReceiverOptions): { out: Float32Array; chunkLengths: number[]; digest: Buffer } {
  const receiver = new PayloadReceiver(headerFor(tensors, values, chunkSize), options);
  const out = new Float32Array(values.length);
  const chunkLengths: number[] = [];
  for (const chunk of payloadChunks(float32Bytes(values), chunkSize)) {
    chunkLengths.push(chunk.length);
    const { offset, values: part } = receiver.push(chunk);
    out.set(part, offset);
  }
  expect(receiver.receivedBytes).toBe(values.byteLength);
  return { out, chunkLengths, digest: receiver.finish() };
}

describe('payloadChunks + PayloadReceiver round trip', () => {
  it('reassembles a payload smaller than one chunk', () => {
    const values = ramp(10);
    const { out, chunkLengths, digest } = roundTrip([{ name: 'w', shape: [2, 5] }], values, MIN_CHUNK_BYTES);
    expect(chunkLengths).toEqual([40]);
    expectSameBytes(out, values);
    expect(digest.toString('hex')).toBe(createHash('sha256').update(float32Bytes(values)).digest('hex'));
  });

  it('reassembles a payload of exactly one chunk', () => {
    const values = ramp(MIB / 4);
    const { out, chunkLengths } = roundTrip([{ name: 'w', shape: [512, 512] }], values, MIB);
    expect(chunkLengths).toEqual([MIB]);
    expectSameBytes(out, values);
  });

  it('reassembles a payload that is not a multiple of the chunk size, across several tensors', () => {
    // 2 MiB + 20 bytes: two full chunks and a 20-byte tail.
    const values = ramp(MIB / 2 + 5);
    const tensors = [
      { name: 'kernel', shape: [1024, 512] },
      { name: 'bias', shape: [3] },
      { name: 'scale', shape: [2] },
    ];
    const { out, chunkLengths } = roundTrip(tensors, values, MIB);
    expect(chunkLengths).toEqual([MIB, MIB, 20]);
    expectSameBytes(out, values);
  });

  it('reassembles with a chunk size that is not a power of two', () => {
    const chunkSize = MIB + 12;
    const values = ramp((3 * MIB) / 4);
    const { out, chunkLengths } = roundTrip([{ name: 'w', shape: [(3 * MIB) / 4] }], values, chunkSize);
    // 3 MiB = 2 × (1 MiB + 12) + (1 MiB - 24)
    expect(chunkLengths).toEqual([chunkSize, chunkSize, MIB - 24]);
    expectSameBytes(out, values);
  });

  it('reports each chunk at its offset in values', () => {
    const values = ramp(MIB / 4 + 2);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [MIB / 4 + 2] }], values), {});
    const bytes = float32Bytes(values);
    const first = receiver.push(bytes.subarray(0, MIB));
    const second = receiver.push(bytes.subarray(MIB));
    expect(first.offset).toBe(0);
    expect(first.values.length).toBe(MIB / 4);
    expect(second.offset).toBe(MIB / 4);
    expect(Array.from(second.values)).toEqual([values[MIB / 4], values[MIB / 4 + 1]]);
  });

  it('decodes chunks from an unaligned buffer (a Uint8Array view at byteOffset 1)', () => {
    const values = Float32Array.from([1.5, -2.25, 3e-7, 65504]);
    const backing = new Uint8Array(values.byteLength + 1);
    backing.set(float32Bytes(values), 1);
    const unaligned = backing.subarray(1);
    expect(unaligned.byteOffset).toBe(1);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [4] }], values));
    const { offset, values: decoded } = receiver.push(unaligned);
    expect(offset).toBe(0);
    expect(Array.from(decoded)).toEqual([1.5, -2.25, Math.fround(3e-7), 65504]);
    expect(receiver.finish().equals(headerFor([{ name: 'w', shape: [4] }], values).sha256)).toBe(true);
  });

  it('payloadChunks yields nothing for an empty payload', () => {
    expect([...payloadChunks(new Uint8Array(0))]).toEqual([]);
  });
});

describe('PayloadReceiver end-of-stream checks', () => {
  it('rejects a digest mismatch with DATA_LOSS / DIGEST_MISMATCH', () => {
    const values = Float32Array.from([1, 2, 3]);
    const header = { ...headerFor([{ name: 'w', shape: [3] }], values), sha256: new Uint8Array(32).fill(0xab) };
    const receiver = new PayloadReceiver(header);
    receiver.push(float32Bytes(values));
    expect(rejection(() => receiver.finish())).toMatchInlineSnapshot(`
      {
        "message": "sha256 mismatch: header says abababababababababababababababababababababababababababababababab, received bytes hash to 8e628779e6a74ee0b36991c10158f63cafec7d340ad4e075592502c8708524dd",
        "reason": "DIGEST_MISMATCH",
        "status": "DATA_LOSS",
      }
    `);
  });

  it('rejects bytes that differ from the digested ones', () => {
    const values = Float32Array.from([1, 2, 3]);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [3] }], values));
    receiver.push(float32Bytes(Float32Array.from([1, 2, 4])));
    expect(rejection(() => receiver.finish())).toMatchObject({ status: 'DATA_LOSS', reason: 'DIGEST_MISMATCH' });
  });

  it('rejects a stream that ends early with DATA_LOSS / LENGTH_MISMATCH', () => {
    const values = Float32Array.from([1, 2, 3]);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [3] }], values));
    receiver.push(float32Bytes(values).subarray(0, 8));
    expect(rejection(() => receiver.finish())).toMatchInlineSnapshot(`
      {
        "message": "stream ended after 8 of 12 bytes",
        "reason": "LENGTH_MISMATCH",
        "status": "DATA_LOSS",
      }
    `);
  });

  it('rejects a stream with no data at all when bytes were announced', () => {
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [3] }], Float32Array.from([1, 2, 3])));
    expect(rejection(() => receiver.finish())).toMatchObject({ status: 'DATA_LOSS', reason: 'LENGTH_MISMATCH', message: 'stream ended after 0 of 12 bytes' });
  });

  it('rejects more bytes than total_bytes with DATA_LOSS / LENGTH_MISMATCH, before accepting them', () => {
    const values = Float32Array.from([1, 2]);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [2] }], values));
    expect(rejection(() => receiver.push(float32Bytes(Float32Array.from([1, 2, 3]))))).toMatchInlineSnapshot(`
      {
        "message": "received more than total_bytes 8",
        "reason": "LENGTH_MISMATCH",
        "status": "DATA_LOSS",
      }
    `);
    expect(receiver.receivedBytes).toBe(0);
  });

  it('rejects extra full-size chunks after the payload is complete', () => {
    const values = ramp(MIB / 4);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [MIB / 4] }], values));
    receiver.push(float32Bytes(values));
    expect(rejection(() => receiver.push(new Uint8Array(MIB)))).toMatchObject({ status: 'DATA_LOSS', reason: 'LENGTH_MISMATCH' });
  });
});

describe('PayloadReceiver finiteness', () => {
  const tensors = [
    { name: 'kernel', shape: [2, 2] },
    { name: 'bias', shape: [3] },
  ];

  it('rejects NaN naming the tensor and the element index within it', () => {
    const values = Float32Array.from([1, 2, 3, 4, 0.5, NaN, 7]);
    const receiver = new PayloadReceiver(headerFor(tensors, values));
    expect(rejection(() => receiver.push(float32Bytes(values)))).toMatchInlineSnapshot(`
      {
        "message": "non-finite value (NaN) in tensor "bias" at element 1",
        "reason": "NON_FINITE",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('rejects -Infinity in the first tensor', () => {
    const values = Float32Array.from([1, 2, -Infinity, 4, 5, 6, 7]);
    const receiver = new PayloadReceiver(headerFor(tensors, values));
    expect(rejection(() => receiver.push(float32Bytes(values)))).toMatchInlineSnapshot(`
      {
        "message": "non-finite value (-Infinity) in tensor "kernel" at element 2",
        "reason": "NON_FINITE",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('locates Infinity in a later chunk using the chunk offset', () => {
    // kernel fills the first 1 MiB chunk exactly; bias arrives in the second chunk.
    const big = [
      { name: 'kernel', shape: [MIB / 4] },
      { name: 'bias', shape: [5] },
    ];
    const values = ramp(MIB / 4 + 5);
    values[MIB / 4 + 3] = Infinity;
    const receiver = new PayloadReceiver(headerFor(big, values));
    const bytes = float32Bytes(values);
    receiver.push(bytes.subarray(0, MIB));
    expect(rejection(() => receiver.push(bytes.subarray(MIB)))).toMatchInlineSnapshot(`
      {
        "message": "non-finite value (Infinity) in tensor "bias" at element 3",
        "reason": "NON_FINITE",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('accepts non-finite values when requireFinite is false', () => {
    const values = Float32Array.from([NaN, Infinity, -Infinity, 0, 1, 2, 3]);
    const { out } = roundTrip(tensors, values, MIB, { requireFinite: false });
    expect(Array.from(out)).toEqual([NaN, Infinity, -Infinity, 0, 1, 2, 3]);
  });
});

describe('PayloadReceiver header checks', () => {
  const values = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const good = (): BundleHeader => headerFor([{ name: 'w', shape: [2, 3] }], values);

  it('rejects a tensor shape that differs from the expected model with SHAPE_MISMATCH', () => {
    const header = headerFor([{ name: 'w', shape: [3, 2] }], values);
    expect(rejection(() => new PayloadReceiver(header, { expected: [{ name: 'w', shape: [2, 3] }] }))).toMatchInlineSnapshot(`
      {
        "message": "update does not match the global model: tensor "w" has shape [3,2], expected [2,3]",
        "reason": "SHAPE_MISMATCH",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('rejects a differently named tensor with SHAPE_MISMATCH', () => {
    expect(rejection(() => new PayloadReceiver(good(), { expected: [{ name: 'kernel', shape: [2, 3] }] }))).toMatchObject({
      reason: 'SHAPE_MISMATCH',
      message: 'update does not match the global model: tensor 0 is named "w", expected "kernel"',
    });
  });

  it('rejects a different number of tensors with SHAPE_MISMATCH', () => {
    const expected = [
      { name: 'w', shape: [2, 3] },
      { name: 'b', shape: [1] },
    ];
    expect(rejection(() => new PayloadReceiver(good(), { expected }))).toMatchObject({
      reason: 'SHAPE_MISMATCH',
      message: 'update does not match the global model: expected 2 tensors, got 1',
    });
  });

  it('accepts a header that matches the expected model', () => {
    expect(() => new PayloadReceiver(good(), { expected: [{ name: 'w', shape: [2, 3] }] })).not.toThrow();
  });

  it.each([
    ['one below the minimum', MIN_CHUNK_BYTES - 4],
    ['above the maximum', MAX_CHUNK_BYTES + 4],
    ['not a multiple of 4', MIN_CHUNK_BYTES + 2],
    ['not an integer', MIN_CHUNK_BYTES + 0.5],
    ['negative', -4],
  ])('rejects a chunk size %s (%d) with BAD_HEADER', (_label, chunkSize) => {
    const err = rejection(() => new PayloadReceiver({ ...good(), chunkSize }));
    expect(err).toEqual({
      status: 'INVALID_ARGUMENT',
      reason: 'BAD_HEADER',
      message: `chunk_size ${chunkSize} is not allowed: it must be a multiple of 4 between 1048576 and 4128768 bytes, or 0 for a payload sent as one chunk of at most 4128768 bytes`,
    });
    expect(rejection(() => validateChunkSize(chunkSize)).reason).toBe('BAD_HEADER');
    expect(rejection(() => payloadChunks(new Uint8Array(8), chunkSize).next()).reason).toBe('BAD_HEADER');
  });

  it('refuses chunk size 0 when no payload length is known (a sender must pick a size)', () => {
    expect(rejection(() => validateChunkSize(SINGLE_CHUNK)).reason).toBe('BAD_HEADER');
  });

  it('accepts the smallest and largest chunk sizes', () => {
    expect(MIN_CHUNK_BYTES).toBe(1048576);
    expect(MAX_CHUNK_BYTES).toBe(4128768);
    expect(() => validateChunkSize(MIN_CHUNK_BYTES)).not.toThrow();
    expect(() => validateChunkSize(MAX_CHUNK_BYTES)).not.toThrow();
  });

  it('rejects total_bytes inconsistent with the tensors with BAD_HEADER', () => {
    expect(rejection(() => new PayloadReceiver({ ...good(), totalBytes: 28 }))).toMatchInlineSnapshot(`
      {
        "message": "total_bytes 28 does not match the tensors, which need 24 bytes",
        "reason": "BAD_HEADER",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('rejects a sha256 that is not 32 bytes with BAD_HEADER', () => {
    expect(rejection(() => new PayloadReceiver({ ...good(), sha256: new Uint8Array(31) }))).toMatchObject({
      reason: 'BAD_HEADER',
      message: 'sha256 must be 32 bytes, got 31',
    });
  });

  it('rejects a malformed tensor list with BAD_HEADER', () => {
    const header = { ...good(), tensors: [{ name: 'w', shape: [2, 0] }], totalBytes: 0 };
    expect(rejection(() => new PayloadReceiver(header))).toMatchInlineSnapshot(`
      {
        "message": "bad tensor list: tensor "w" has invalid dimension 0 in shape [2,0]",
        "reason": "BAD_HEADER",
        "status": "INVALID_ARGUMENT",
      }
    `);
    const dup = { ...good(), tensors: [{ name: 'w', shape: [3] }, { name: 'w', shape: [3] }] };
    expect(rejection(() => new PayloadReceiver(dup))).toMatchObject({ reason: 'BAD_HEADER', message: 'bad tensor list: tensor name "w" appears twice' });
  });
});

describe('chunk_size 0: the payload as exactly one data chunk', () => {
  it('accepts one chunk of total_bytes, below and exactly at the largest chunk size', () => {
    for (const n of [10, MAX_CHUNK_BYTES / 4]) {
      const values = ramp(n);
      const { out, chunkLengths } = roundTrip([{ name: 'w', shape: [n] }], values, SINGLE_CHUNK);
      expect(chunkLengths).toEqual([n * 4]);
      expectSameBytes(out, values);
    }
  });

  it('refuses chunk size 0 for a payload larger than the largest chunk, at the header', () => {
    const n = MAX_CHUNK_BYTES / 4 + 1;
    const header: BundleHeader = { tensors: [{ name: 'w', shape: [n] }], totalBytes: n * 4, sha256: new Uint8Array(32), chunkSize: SINGLE_CHUNK };
    expect(rejection(() => new PayloadReceiver(header))).toEqual({
      status: 'INVALID_ARGUMENT',
      reason: 'BAD_HEADER',
      message: `chunk_size 0 (one chunk) needs total_bytes of at most 4128768, got ${n * 4}`,
    });
    expect(rejection(() => payloadChunks(new Uint8Array(n * 4), SINGLE_CHUNK).next()).reason).toBe('BAD_HEADER');
  });

  it('rejects the same payload in two chunks with BAD_HEADER, at the first chunk', () => {
    const values = ramp(10);
    const bytes = float32Bytes(values);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [10] }], values, SINGLE_CHUNK));
    expect(rejection(() => receiver.push(bytes.subarray(0, 20)))).toEqual({
      status: 'INVALID_ARGUMENT',
      reason: 'BAD_HEADER',
      message: 'chunk_size 0 declares one data chunk of total_bytes 40, got a chunk of 20 bytes',
    });
  });

  it('rejects a second chunk after the whole payload with BAD_HEADER (not LENGTH_MISMATCH)', () => {
    const values = ramp(10);
    const bytes = float32Bytes(values);
    const receiver = new PayloadReceiver(headerFor([{ name: 'w', shape: [10] }], values, SINGLE_CHUNK));
    receiver.push(bytes);
    expect(rejection(() => receiver.push(bytes.subarray(0, 4)))).toMatchObject({ reason: 'BAD_HEADER', message: 'chunk_size 0 declares a single data chunk, but a second one arrived' });
  });
});

describe('PayloadReceiver chunk rules', () => {
  const values = ramp(MIB / 2);
  const bytes = float32Bytes(values);
  const receiver = (): PayloadReceiver => new PayloadReceiver(headerFor([{ name: 'w', shape: [MIB / 2] }], values));

  it('rejects a chunk after a short chunk with BAD_HEADER', () => {
    const r = receiver();
    r.push(bytes.subarray(0, 4));
    expect(rejection(() => r.push(bytes.subarray(4, 8)))).toMatchInlineSnapshot(`
      {
        "message": "a data chunk followed a short chunk; only the last chunk may be shorter than chunk_size 1048576",
        "reason": "BAD_HEADER",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('rejects a chunk whose length is not a multiple of 4 with BAD_HEADER', () => {
    expect(rejection(() => receiver().push(bytes.subarray(0, 6)))).toMatchInlineSnapshot(`
      {
        "message": "data chunk of 6 bytes breaks the chunk rules (1..1048576 bytes, a multiple of 4)",
        "reason": "BAD_HEADER",
        "status": "INVALID_ARGUMENT",
      }
    `);
  });

  it('rejects an empty chunk and a chunk longer than chunk_size with BAD_HEADER', () => {
    expect(rejection(() => receiver().push(new Uint8Array(0)))).toMatchObject({ reason: 'BAD_HEADER' });
    expect(rejection(() => receiver().push(bytes.subarray(0, MIB + 4)))).toMatchObject({
      reason: 'BAD_HEADER',
      message: `data chunk of ${MIB + 4} bytes breaks the chunk rules (1..1048576 bytes, a multiple of 4)`,
    });
  });

  it('accepts full chunks followed by one short last chunk', () => {
    const v = ramp(MIB / 4 + 1);
    const r = new PayloadReceiver(headerFor([{ name: 'w', shape: [MIB / 4 + 1] }], v));
    const b = float32Bytes(v);
    r.push(b.subarray(0, MIB));
    r.push(b.subarray(MIB));
    expect(() => r.finish()).not.toThrow();
  });
});
