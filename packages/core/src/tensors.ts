import { createHash } from 'node:crypto';
import { FedlhsError } from './errors.js';

/** Name and shape of one float32 tensor. Payloads are float32 little-endian, row-major. */
export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** A tensor with its values, as handed to and from aggregation strategies. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export const BYTES_PER_FLOAT32 = 4;

/** Number of elements of a tensor (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Total number of float32 values in a bundle of tensors. */
export function bundleLength(specs: readonly TensorSpec[]): number {
  let n = 0;
  for (const s of specs) n += elementCount(s.shape);
  return n;
}

/** Describes how `actual` differs from `expected`, or returns undefined if they agree. */
export function describeSpecMismatch(expected: readonly TensorSpec[], actual: readonly TensorSpec[]): string | undefined {
  if (expected.length !== actual.length) {
    return `expected ${expected.length} tensors, got ${actual.length}`;
  }
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (e.name !== a.name) return `tensor ${i} is named "${a.name}", expected "${e.name}"`;
    if (e.shape.length !== a.shape.length || e.shape.some((d, j) => d !== a.shape[j])) {
      return `tensor "${e.name}" has shape [${a.shape.join(',')}], expected [${e.shape.join(',')}]`;
    }
  }
  return undefined;
}

/** Checks that specs are well formed: unique non-empty names, positive integer dimensions. */
export function validateSpecs(specs: readonly TensorSpec[]): void {
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    if (s.name.length === 0) throw new FedlhsError('INVALID_ARGUMENT', `tensor ${i} has an empty name`);
    if (seen.has(s.name)) throw new FedlhsError('INVALID_ARGUMENT', `tensor name "${s.name}" appears twice`);
    seen.add(s.name);
    for (const d of s.shape) {
      if (!Number.isInteger(d) || d < 1) {
        throw new FedlhsError('INVALID_ARGUMENT', `tensor "${s.name}" has invalid dimension ${d} in shape [${s.shape.join(',')}]`);
      }
    }
  });
}

/** Lowercase hex SHA-256 of bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Views a Float32Array's memory as bytes (little-endian on every platform Node supports). */
export function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** SHA-256 of a flat float32 payload, as raw 32 bytes. */
export function payloadDigest(values: Float32Array): Buffer {
  return createHash('sha256').update(float32Bytes(values)).digest();
}

/** Splits a flat payload into named tensors (views, no copy). */
export function splitTensors(specs: readonly TensorSpec[], flat: Float32Array): Tensor[] {
  const out: Tensor[] = [];
  let offset = 0;
  for (const s of specs) {
    const n = elementCount(s.shape);
    out.push({ shape: [...s.shape], data: flat.subarray(offset, offset + n) });
    offset += n;
  }
  if (offset !== flat.length) {
    throw new FedlhsError('INVALID_ARGUMENT', `payload has ${flat.length} values, tensors need ${offset}`);
  }
  return out;
}

/** Concatenates tensors into one flat payload. */
export function concatTensors(tensors: readonly Tensor[]): Float32Array {
  let n = 0;
  for (const t of tensors) n += t.data.length;
  const out = new Float32Array(n);
  let offset = 0;
  for (const t of tensors) {
    out.set(t.data, offset);
    offset += t.data.length;
  }
  return out;
}
