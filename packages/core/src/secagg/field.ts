/**
 * The prime field of fedlhs's Shamir sharing: GF(p) with p = 2^521 − 1, a Mersenne prime.
 *
 * Why this prime: a 32-byte secret (an X25519 private key, a self-mask seed) is an integer below
 * 2^256 < p, so it is one field element — no splitting into halves, no bias. The extra 265 bits
 * also let `combineShares` notice most accidental corruption: a reconstruction of 32 bytes from
 * inconsistent shares lands above 2^256 with probability 1 − 2^−265. (That is not
 * authentication: a deliberate tamperer can shift the secret by any amount it likes.)
 *
 * Plain BigInt arithmetic: the sharing touches a few dozen elements per clinic and round, far
 * from where a constant-time or Montgomery implementation would matter for speed. Timing of
 * BigInt operations is not constant; shares are handled by the clinic that owns them and by
 * the neighbour that reconstructs, never by a party that can time another's secret.
 */
import { randomBytes } from 'node:crypto';
import { FedlhsError } from '../errors.js';

/** The field's modulus, 2^521 − 1. */
export const FIELD_PRIME = (1n << 521n) - 1n;

/** Bytes of one encoded field element: ⌈521 / 8⌉ = 66, big-endian. */
export const FIELD_ELEMENT_BYTES = 66;

/** A source of cryptographically secure random bytes (crypto.randomBytes by default). */
export type RandomBytes = (size: number) => Uint8Array;

/** `a mod p` in [0, p), for any BigInt (negative included). */
export function fieldMod(a: bigint): bigint {
  const r = a % FIELD_PRIME;
  return r < 0n ? r + FIELD_PRIME : r;
}

/** `a + b mod p`. */
export function fieldAdd(a: bigint, b: bigint): bigint {
  return fieldMod(a + b);
}

/** `a − b mod p`. */
export function fieldSub(a: bigint, b: bigint): bigint {
  return fieldMod(a - b);
}

/** `a · b mod p`. */
export function fieldMul(a: bigint, b: bigint): bigint {
  return fieldMod(a * b);
}

/** The multiplicative inverse of a non-zero `a` (extended Euclid); throws on zero. */
export function fieldInv(a: bigint): bigint {
  let r0 = fieldMod(a);
  if (r0 === 0n) throw new FedlhsError('INVALID_ARGUMENT', 'zero has no inverse in the field', { details: { field: 'element' } });
  let r1 = FIELD_PRIME;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return fieldMod(s0);
}

/**
 * A uniform element of [0, p) from `random`, by rejection: 66 bytes with the top byte cut to its
 * lowest bit give [0, 2^521); the one value p itself is redrawn.
 */
export function randomFieldElement(random: RandomBytes = randomBytes): bigint {
  for (;;) {
    const bytes = random(FIELD_ELEMENT_BYTES);
    if (bytes.length !== FIELD_ELEMENT_BYTES) {
      throw new FedlhsError('INVALID_ARGUMENT', `random source returned ${bytes.length} bytes, asked for ${FIELD_ELEMENT_BYTES}`, { details: { field: 'random' } });
    }
    const copy = Uint8Array.from(bytes);
    copy[0] = copy[0]! & 0x01;
    const value = bytesToBigInt(copy);
    if (value < FIELD_PRIME) return value;
  }
}

/** An unsigned big-endian integer. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value;
}

/** `value` as exactly `length` big-endian bytes; throws if it is negative or does not fit. */
export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n || value >> BigInt(8 * length) !== 0n) {
    throw new FedlhsError('INVALID_ARGUMENT', `value does not fit ${length} bytes`, { details: { field: 'value' } });
  }
  const out = new Uint8Array(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
