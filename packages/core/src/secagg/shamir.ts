/**
 * Shamir secret sharing (Shamir 1979) of 32-byte secrets over GF(2^521 − 1), as SecAgg uses it
 * (Bonawitz et al. 2017, "Practical Secure Aggregation for Privacy-Preserving Machine Learning",
 * §4; Bell et al. 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead"): each
 * clinic shares its self-mask seed and its mask-agreement private key with its neighbours, so
 * that `threshold` of them can rebuild one of the two when the clinic survives or drops out.
 *
 * Shares are NOT authenticated here. Anyone who can change a share can change the reconstructed
 * secret to a value of their choosing (the test shows it); `combineShares` detects only
 * accidental corruption (a result outside 32 bytes, or extra shares off the polynomial). The
 * protocol must therefore carry shares in authenticated encryption between the two clinics
 * (Bonawitz et al. encrypt them under the pairwise agreed key) and refuse any that does not open.
 */
import { randomBytes } from 'node:crypto';
import { FedlhsError } from '../errors.js';
import {
  FIELD_ELEMENT_BYTES,
  FIELD_PRIME,
  bigIntToBytes,
  bytesToBigInt,
  fieldAdd,
  fieldInv,
  fieldMul,
  fieldSub,
  randomFieldElement,
  type RandomBytes,
} from './field.js';

/** One share: the point (x, f(x)) of the sharing polynomial f with f(0) = the secret. */
export interface Share {
  /** The shareholder's coordinate, an integer in [1, MAX_SHAREHOLDER]. */
  readonly x: number;
  /** f(x), an element of [0, FIELD_PRIME). */
  readonly y: bigint;
}

/** Bytes of a secret: an X25519 private key or a mask seed. */
export const SECRET_BYTES = 32;

/** The largest shareholder coordinate: coordinates are encoded in two bytes. */
export const MAX_SHAREHOLDER = 0xffff;

/** The format byte that opens an encoded share. */
const SHARE_FORMAT = 0x01;

/** Bytes of an encoded share: format (1) ‖ x (2, big-endian) ‖ y (66, big-endian). */
export const SHARE_BYTES = 1 + 2 + FIELD_ELEMENT_BYTES;

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

function checkCoordinate(x: number, field: string): void {
  if (!Number.isInteger(x) || x < 1 || x > MAX_SHAREHOLDER) throw invalid(field, `shareholder coordinate must be an integer in [1, ${MAX_SHAREHOLDER}], got ${x}`);
}

function checkThreshold(threshold: number): void {
  if (!Number.isInteger(threshold) || threshold < 1) throw invalid('threshold', `must be an integer ≥ 1, got ${threshold}`);
}

function checkDistinct(xs: readonly number[], field: string): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (seen.has(x)) throw invalid(field, `shareholder coordinate ${x} appears twice`);
    seen.add(x);
  }
}

/**
 * Splits a 32-byte `secret` into one share per shareholder coordinate, any `threshold` of which
 * rebuild it and fewer of which reveal nothing about it (a uniformly random polynomial of degree
 * threshold − 1 with the secret as constant term; coefficients from `random`, a CSPRNG).
 */
export function splitSecret(secret: Uint8Array, threshold: number, shareholders: readonly number[], random: RandomBytes = randomBytes): Share[] {
  if (secret.length !== SECRET_BYTES) throw invalid('secret', `must be ${SECRET_BYTES} bytes, got ${secret.length}`);
  checkThreshold(threshold);
  if (threshold > shareholders.length) throw invalid('threshold', `${threshold} exceeds the ${shareholders.length} shareholders`);
  shareholders.forEach((x, i) => checkCoordinate(x, `shareholders[${i}]`));
  checkDistinct(shareholders, 'shareholders');
  const coefficients = [bytesToBigInt(secret)];
  for (let i = 1; i < threshold; i++) coefficients.push(randomFieldElement(random));
  return shareholders.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coefficients.length - 1; i >= 0; i--) y = fieldAdd(fieldMul(y, bx), coefficients[i]!);
    return { x, y };
  });
}

/**
 * The value at `x` of the polynomial of least degree through `points` (Lagrange). Exposed for
 * tests and for callers that check shares; `combineShares` is what rebuilds a secret.
 */
export function interpolateAt(points: readonly Share[], x: number): bigint {
  checkDistinct(points.map((p) => p.x), 'shares');
  const bx = BigInt(x);
  let sum = 0n;
  for (const [i, pi] of points.entries()) {
    let num = 1n;
    let den = 1n;
    for (const [j, pj] of points.entries()) {
      if (i === j) continue;
      num = fieldMul(num, fieldSub(bx, BigInt(pj.x)));
      den = fieldMul(den, fieldSub(BigInt(pi.x), BigInt(pj.x)));
    }
    sum = fieldAdd(sum, fieldMul(pi.y, fieldMul(num, fieldInv(den))));
  }
  return sum;
}

/**
 * Rebuilds the 32-byte secret from at least `threshold` shares (Lagrange interpolation at 0 over
 * the first `threshold`). Refuses fewer shares, duplicate or out-of-range coordinates, extra
 * shares that do not lie on the same polynomial, and a result that is not a 32-byte value — all
 * signs of corruption. A deliberately tampered share is NOT detected (see the module comment).
 */
export function combineShares(shares: readonly Share[], threshold: number): Uint8Array {
  checkThreshold(threshold);
  if (shares.length < threshold) throw invalid('shares', `${shares.length} shares cannot rebuild a secret of threshold ${threshold}`);
  shares.forEach((s, i) => {
    checkCoordinate(s.x, `shares[${i}].x`);
    if (typeof s.y !== 'bigint' || s.y < 0n || s.y >= FIELD_PRIME) throw invalid(`shares[${i}].y`, 'not an element of the field');
  });
  checkDistinct(shares.map((s) => s.x), 'shares');
  const basis = shares.slice(0, threshold);
  for (const extra of shares.slice(threshold)) {
    if (interpolateAt(basis, extra.x) !== extra.y) throw invalid('shares', `share ${extra.x} does not lie on the polynomial of the others: the shares are inconsistent`);
  }
  const secret = interpolateAt(basis, 0);
  if (secret >> BigInt(8 * SECRET_BYTES) !== 0n) throw invalid('shares', `the shares do not rebuild a ${SECRET_BYTES}-byte secret: they are inconsistent or corrupted`);
  return bigIntToBytes(secret, SECRET_BYTES);
}

/** A share as SHARE_BYTES bytes: format ‖ x ‖ y, fixed length. */
export function encodeShare(share: Share): Uint8Array {
  checkCoordinate(share.x, 'share.x');
  if (share.y < 0n || share.y >= FIELD_PRIME) throw invalid('share.y', 'not an element of the field');
  const out = new Uint8Array(SHARE_BYTES);
  out[0] = SHARE_FORMAT;
  out[1] = share.x >>> 8;
  out[2] = share.x & 0xff;
  out.set(bigIntToBytes(share.y, FIELD_ELEMENT_BYTES), 3);
  return out;
}

/**
 * Reads an encoded share, refusing (INVALID_ARGUMENT naming the part) a wrong length, an unknown
 * format byte, a coordinate of 0, or a value not below the prime. Checks form only: see
 * `combineShares` on authentication.
 */
export function decodeShare(bytes: Uint8Array): Share {
  if (bytes.length !== SHARE_BYTES) throw invalid('share', `must be ${SHARE_BYTES} bytes, got ${bytes.length}`);
  if (bytes[0] !== SHARE_FORMAT) throw invalid('share.format', `unknown share format ${bytes[0]}`);
  const x = (bytes[1]! << 8) | bytes[2]!;
  checkCoordinate(x, 'share.x');
  const y = bytesToBigInt(bytes.subarray(3));
  if (y >= FIELD_PRIME) throw invalid('share.y', 'value is not below the field prime');
  return { x, y };
}
