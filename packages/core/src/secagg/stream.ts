/**
 * A deterministic pseudorandom stream from a 32-byte seed: AES-256-CTR keystream (all-zero IV)
 * under a key derived from the seed by HKDF-SHA256 with a `purpose` label. The all-zero IV is
 * safe because each (seed, purpose) key encrypts exactly one stream, from counter 0; the label
 * keeps a mask stream and, say, a graph stream from one seed apart.
 */
import { createCipheriv, hkdfSync, type Cipher } from 'node:crypto';
import { FedlhsError } from '../errors.js';

/** Bytes of every seed: self-mask seeds, pairwise seeds, graph seeds. */
export const SEED_BYTES = 32;

const ZERO_IV = Buffer.alloc(16);
const ZERO_BLOCK = Buffer.alloc(4096);

/** Throws INVALID_ARGUMENT naming `field` unless `seed` is SEED_BYTES bytes. */
export function checkSeed(seed: Uint8Array, field = 'seed'): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new FedlhsError('INVALID_ARGUMENT', `${field}: must be ${SEED_BYTES} bytes, got ${seed instanceof Uint8Array ? seed.length : typeof seed}`, { details: { field } });
  }
}

/** The AES-256 key of the stream for (seed, purpose). */
function streamKey(seed: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), Buffer.from(`fedlhs/secagg/v1/${purpose}`, 'utf8'), 32));
}

/** A pull-based stream of pseudorandom bytes and uniform integers. */
export class KeyStream {
  readonly #cipher: Cipher;

  constructor(seed: Uint8Array, purpose: string) {
    checkSeed(seed);
    this.#cipher = createCipheriv('aes-256-ctr', streamKey(seed, purpose), ZERO_IV);
  }

  /** The next `size` bytes of keystream. */
  bytes(size: number): Buffer {
    if (size <= ZERO_BLOCK.length) return this.#cipher.update(ZERO_BLOCK.subarray(0, size));
    return this.#cipher.update(Buffer.alloc(size));
  }

  /** A uniform integer in [0, bound) for 1 ≤ bound ≤ 2^32, by rejection on 32-bit words (no modulo bias). */
  uniformInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) throw new FedlhsError('INVALID_ARGUMENT', `bound must be an integer in [1, 2^32], got ${bound}`, { details: { field: 'bound' } });
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const word = this.bytes(4).readUInt32LE(0);
      if (word < limit) return word % bound;
    }
  }
}
