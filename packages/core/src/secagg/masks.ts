/**
 * Masks of secure aggregation (Bonawitz et al. 2017 §4, "Practical Secure Aggregation for
 * Privacy-Preserving Machine Learning"; Bell et al. 2020, SecAgg+): each clinic u sends
 *
 *   y_u = x_u + PRG(b_u) + Σ_{v neighbour, u<v} PRG(s_uv) − Σ_{v neighbour, u>v} PRG(s_uv)   (mod 2^bits)
 *
 * with b_u its self-mask seed and s_uv = HKDF(X25519(u, v), context) the seed it agrees with v.
 * The pairwise masks cancel in the sum; the coordinator removes the self masks of survivors
 * (seeds rebuilt from shares) and, for a dropped clinic, the pairwise masks its surviving
 * neighbours applied (seeds recomputed from its rebuilt private key).
 *
 * PRG: AES-256-CTR (see stream.ts) read as little-endian words mod 2^bits — never a 32-bit-
 * seeded generator. Words are Uint32Array for bits ≤ 32 (the usual case, and the same bytes on
 * the wire as float32), BigUint64Array for 33..64.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { FedlhsError } from '../errors.js';
import { KeyStream, SEED_BYTES, checkSeed } from './stream.js';

/** Vectors mod 2^bits: Uint32Array for bits ≤ 32, BigUint64Array above. */
export type MaskWords = Uint32Array | BigUint64Array;

/** A clinic in the protocol: its node id, or its index in the round's sorted roster. */
export type NodeRef = string | number;

/** A clinic's X25519 key pair for one round. */
export interface KeyAgreementPair {
  /** The raw 32-byte public key (RFC 7748 u-coordinate), what is sent to the others. */
  readonly publicKey: Uint8Array;
  /** Stays in the clinic; its 32-byte raw form is what gets Shamir-shared (`privateKeyBytes`). */
  readonly privateKey: KeyObject;
}

/** What a pairwise seed is bound to: the study, the round and the (unordered) pair of clinics. */
export interface PairContext {
  readonly studyId: string;
  readonly round: number;
  readonly a: NodeRef;
  readonly b: NodeRef;
}

/** One pairwise mask to add: its seed and its sign (`pairSign`). */
export interface SignedSeed {
  readonly seed: Uint8Array;
  readonly sign: 1 | -1;
}

export const X25519_KEY_BYTES = 32;

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

/** A fresh X25519 key pair (a new one per round: keys are revealed when a clinic drops out). */
export function keyAgreement(): KeyAgreementPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKeyBytes(publicKey), privateKey };
}

/** The raw 32 bytes of an X25519 public key. */
export function publicKeyBytes(key: KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw invalid('publicKey', 'not an X25519 key');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** The raw 32 bytes of an X25519 private key: the secret to Shamir-share. */
export function privateKeyBytes(key: KeyObject): Uint8Array {
  const d = key.export({ format: 'jwk' }).d;
  if (key.asymmetricKeyType !== 'x25519' || typeof d !== 'string') throw invalid('privateKey', 'not an X25519 private key');
  return new Uint8Array(Buffer.from(d, 'base64url'));
}

/** An X25519 private key from its raw 32 bytes (a key rebuilt from shares). */
export function privateKeyFromBytes(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_BYTES) throw invalid('privateKey', `must be ${X25519_KEY_BYTES} bytes, got ${raw.length}`);
  // The fixed PKCS#8 prefix of an X25519 private key (RFC 8410 §7), then the raw key.
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function publicKeyFromBytes(raw: Uint8Array, field: string): KeyObject {
  if (!(raw instanceof Uint8Array) || raw.length !== X25519_KEY_BYTES) throw invalid(field, `must be ${X25519_KEY_BYTES} bytes`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/**
 * The order of clinics that decides mask signs: numbers numerically, strings by code units.
 * Mixing the two is refused — "10" and 9 have no order every party would agree on.
 */
export function compareNodes(a: NodeRef, b: NodeRef): number {
  if (typeof a !== typeof b) throw invalid('node', `cannot order ${typeof a} ${String(a)} against ${typeof b} ${String(b)}`);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The sign `self` gives its mask with `other`: +1 if self < other, −1 if self > other (Bonawitz et al.). */
export function pairSign(self: NodeRef, other: NodeRef): 1 | -1 {
  const c = compareNodes(self, other);
  if (c === 0) throw invalid('node', `a clinic has no mask with itself (${String(self)})`);
  return c < 0 ? 1 : -1;
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function nodeLabel(node: NodeRef): string {
  return typeof node === 'number' ? `i:${node}` : `s:${node}`;
}

/**
 * The seed clinic `context.a` and clinic `context.b` share: HKDF-SHA256 over their X25519
 * shared secret, bound in `info` to the study, the round, the pair (in `compareNodes` order, so
 * both ends derive the same seed) and both public keys (in byte order). A seed of one round or
 * study is thus unrelated to every other. Refuses a low-order public key (all-zero secret).
 */
export function pairwiseSeed(myPrivate: KeyObject, theirPublicRaw: Uint8Array, context: PairContext): Uint8Array {
  const { studyId, round, a, b } = context;
  if (typeof studyId !== 'string' || studyId.length === 0) throw invalid('studyId', 'must be a non-empty string');
  if (!Number.isSafeInteger(round) || round < 0) throw invalid('round', `must be a non-negative integer, got ${round}`);
  const order = compareNodes(a, b);
  if (order === 0) throw invalid('pair', `a clinic has no pairwise seed with itself (${String(a)})`);
  const [lo, hi] = order < 0 ? [a, b] : [b, a];
  if (myPrivate?.type !== 'private' || myPrivate.asymmetricKeyType !== 'x25519') throw invalid('myPrivate', 'not an X25519 private key');
  const theirs = publicKeyFromBytes(theirPublicRaw, 'theirPublic');
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: myPrivate, publicKey: theirs });
  } catch (err) {
    throw new FedlhsError('INVALID_ARGUMENT', `theirPublic: X25519 agreement failed (a low-order or invalid key): ${(err as Error).message}`, { cause: err, details: { field: 'theirPublic' } });
  }
  if (shared.every((byte) => byte === 0)) throw invalid('theirPublic', 'X25519 agreement gave the all-zero secret (a low-order key)');
  const keys = [Buffer.from(publicKeyBytes(createPublicKey(myPrivate))), Buffer.from(theirPublicRaw)].sort(Buffer.compare);
  const roundBytes = Buffer.alloc(8);
  roundBytes.writeBigUInt64BE(BigInt(round));
  const info = Buffer.concat([lengthPrefixed('fedlhs/secagg/v1/pairwise'), lengthPrefixed(studyId), roundBytes, lengthPrefixed(nodeLabel(lo)), lengthPrefixed(nodeLabel(hi)), ...keys]);
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.from('fedlhs secure aggregation'), info, SEED_BYTES));
}

/** Throws unless `bits` is an integer in [1, 64]. */
export function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 64) throw invalid('bits', `must be an integer in [1, 64], got ${bits}`);
}

/** A zero vector of `length` words mod 2^bits, of the type for `bits`. */
export function zeroWords(length: number, bits: number): MaskWords {
  checkBits(bits);
  if (!Number.isSafeInteger(length) || length < 0) throw invalid('length', `must be a non-negative integer, got ${length}`);
  return bits <= 32 ? new Uint32Array(length) : new BigUint64Array(length);
}

/**
 * Throws INVALID_ARGUMENT naming `field` unless `words` is the type for `bits`, of `length`
 * (when given), with every element below 2^bits: the coordinator's check of a masked vector.
 */
export function checkWords(words: MaskWords, bits: number, field = 'vector', length?: number): void {
  checkBits(bits);
  if (bits <= 32 ? !(words instanceof Uint32Array) : !(words instanceof BigUint64Array)) throw invalid(field, `must be a ${bits <= 32 ? 'Uint32Array' : 'BigUint64Array'} for ${bits} bits`);
  if (length !== undefined && words.length !== length) throw invalid(field, `must hold ${length} values, got ${words.length}`);
  if (bits === 32 || bits === 64) return;
  if (words instanceof Uint32Array) {
    const limit = 2 ** bits;
    const i = words.findIndex((w) => w >= limit);
    if (i >= 0) throw invalid(field, `value ${words[i]} at ${i} is not below 2^${bits}`);
  } else {
    const limit = 1n << BigInt(bits);
    const i = words.findIndex((w) => w >= limit);
    if (i >= 0) throw invalid(field, `value ${words[i]} at ${i} is not below 2^${bits}`);
  }
}

/** Words per keystream pull: bounds memory to 64 KiB whatever the model size. */
const CHUNK_WORDS = 8192;

/** Adds `sign` · PRG(seed) to `target` in place, mod 2^bits. */
export function addMask(target: MaskWords, seed: Uint8Array, sign: 1 | -1, bits: number): void {
  checkSeed(seed);
  checkBits(bits);
  if (sign !== 1 && sign !== -1) throw invalid('sign', `must be +1 or -1, got ${String(sign)}`);
  const stream = new KeyStream(seed, 'mask');
  if (target instanceof Uint32Array) {
    if (bits > 32) throw invalid('bits', `${bits} bits need a BigUint64Array`);
    const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
    for (let start = 0; start < target.length; start += CHUNK_WORDS) {
      const n = Math.min(CHUNK_WORDS, target.length - start);
      const buf = stream.bytes(4 * n);
      for (let i = 0; i < n; i++) {
        const m = buf.readUInt32LE(4 * i);
        // >>> 0 is exact mod 2^32, and 2^bits divides 2^32.
        target[start + i] = (((target[start + i]! + sign * m) >>> 0) & mask) >>> 0;
      }
    }
  } else {
    if (bits <= 32) throw invalid('bits', `${bits} bits need a Uint32Array`);
    const mask = (1n << BigInt(bits)) - 1n;
    for (let start = 0; start < target.length; start += CHUNK_WORDS) {
      const n = Math.min(CHUNK_WORDS, target.length - start);
      const buf = stream.bytes(8 * n);
      for (let i = 0; i < n; i++) {
        const m = buf.readBigUInt64LE(8 * i);
        target[start + i] = (sign === 1 ? target[start + i]! + m : target[start + i]! - m) & mask;
      }
    }
  }
}

/** PRG(seed) as `length` words mod 2^bits: deterministic for a seed. */
export function maskVector(seed: Uint8Array, length: number, bits: number): MaskWords {
  const out = zeroWords(length, bits);
  addMask(out, seed, 1, bits);
  return out;
}

/**
 * A clinic's masked input: q + PRG(selfSeed) + Σ sign·PRG(seed) mod 2^bits. `q` must already be
 * quantised into [0, 2^bits) (quantize.ts); it is not changed.
 */
export function applyMasks(q: MaskWords, selfSeed: Uint8Array, pairwise: readonly SignedSeed[], bits: number): MaskWords {
  checkWords(q, bits, 'q');
  const out = q.slice() as MaskWords;
  addMask(out, selfSeed, 1, bits);
  for (const { seed, sign } of pairwise) addMask(out, seed, sign, bits);
  return out;
}

/** The sum mod 2^bits of vectors of equal length (each checked with `checkWords`). */
export function sumWords(vectors: readonly MaskWords[], length: number, bits: number): MaskWords {
  const sum = zeroWords(length, bits);
  vectors.forEach((v, k) => {
    checkWords(v, bits, `vectors[${k}]`, length);
    if (sum instanceof Uint32Array) {
      const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1;
      for (let i = 0; i < length; i++) sum[i] = (((sum[i]! + (v as Uint32Array)[i]!) >>> 0) & mask) >>> 0;
    } else {
      const mask = (1n << BigInt(bits)) - 1n;
      for (let i = 0; i < length; i++) sum[i] = (sum[i]! + (v as BigUint64Array)[i]!) & mask;
    }
  });
  return sum;
}

/**
 * The unmasked sum: `maskedSum` minus the self mask of every clinic whose input it holds
 * (`selfSeeds`, rebuilt from shares) minus every pairwise mask that did not cancel — for each
 * dropped clinic d and each surviving neighbour s, the seed of (s, d) with the sign s applied,
 * pairSign(s, d). Returns a new vector.
 */
export function unmaskSum(maskedSum: MaskWords, removal: { readonly selfSeeds: readonly Uint8Array[]; readonly pairwise: readonly SignedSeed[] }, bits: number): MaskWords {
  checkWords(maskedSum, bits, 'maskedSum');
  const out = maskedSum.slice() as MaskWords;
  for (const seed of removal.selfSeeds) addMask(out, seed, -1, bits);
  for (const { seed, sign } of removal.pairwise) addMask(out, seed, sign === 1 ? -1 : 1, bits);
  return out;
}

/** Bytes per word on the wire for `bits`: 4 up to 32 bits, 8 above. */
export function wordBytes(bits: number): 4 | 8 {
  checkBits(bits);
  return bits <= 32 ? 4 : 8;
}

/** A vector mod 2^bits as little-endian words (4 or 8 bytes each). */
export function encodeWords(words: MaskWords, bits: number): Uint8Array {
  checkWords(words, bits, 'vector');
  const size = wordBytes(bits);
  const out = Buffer.alloc(size * words.length);
  if (words instanceof Uint32Array) words.forEach((w, i) => out.writeUInt32LE(w, 4 * i));
  else words.forEach((w, i) => out.writeBigUInt64LE(w, 8 * i));
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/**
 * Reads `length` words mod 2^bits, refusing (INVALID_ARGUMENT naming `field`) a byte count other
 * than length·wordBytes(bits) and any word not below 2^bits: what the coordinator checks of a
 * masked vector before adding it.
 */
export function decodeWords(bytes: Uint8Array, length: number, bits: number, field = 'vector'): MaskWords {
  const size = wordBytes(bits);
  if (bytes.length !== size * length) throw invalid(field, `must be ${size * length} bytes (${length} values of ${size} bytes), got ${bytes.length}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = zeroWords(length, bits);
  if (out instanceof Uint32Array) for (let i = 0; i < length; i++) out[i] = buf.readUInt32LE(4 * i);
  else for (let i = 0; i < length; i++) out[i] = buf.readBigUInt64LE(8 * i);
  checkWords(out, bits, field, length);
  return out;
}
