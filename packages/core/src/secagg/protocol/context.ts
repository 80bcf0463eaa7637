/**
 * What both ends of a secure-aggregation round derive alike: the validated round context, the
 * neighbourhood graph (from a public seed both can compute), the Shamir coordinate of each
 * clinic, the commitment to a self-mask seed, and the authenticated encryption of shares between
 * two neighbours (X25519 → HKDF-SHA256 → AES-256-GCM, bound to study, round, attempt, sender
 * and receiver so a share cannot be replayed into another round or redirected).
 */
import { createCipheriv, createDecipheriv, createHash, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { FedlhsError } from '../../errors.js';
import type { RandomBytes } from '../field.js';
import { neighbourhoods, thresholdFor, type GraphKind } from '../graph.js';
import { quantizationParams, type QuantizationSpec } from '../quantize.js';
import { SHARE_BYTES } from '../shamir.js';
import { SHARE_CIPHERTEXT_BYTES, SHARE_NONCE_BYTES, SHARE_TAG_BYTES, type MessageHeader } from './wire.js';

/** The parameters of one round, the same at the coordinator and at every clinic. */
export interface RoundContext {
  readonly studyId: string;
  readonly round: number;
  /** The attempt of the round: a retried round draws new keys, graph and masks. */
  readonly attempt: number;
  /** Neighbours per clinic in the graph over the whole cohort. */
  readonly k: number;
  /**
   * Shares needed to rebuild a secret; default thresholdFor(k), a strict majority of k. A lower
   * threshold tolerates more dropouts but lets a coordinator that lies about who dropped gather
   * both secrets of a clinic from two disjoint groups of neighbours (graph.ts thresholdFor).
   */
  readonly threshold?: number;
  readonly graph: GraphKind;
  /** Bits of one quantised value (quantize.ts); the modulus adds ⌈log2 n⌉. */
  readonly valueBits: number;
  /** Inputs must lie in [−clipRange, clipRange] (clipped by the clinic before masking). */
  readonly clipRange: number;
  /** Values per input vector. */
  readonly vectorLength: number;
}

/** A context checked once, with what follows from it for a cohort of n. */
export interface ResolvedRound {
  readonly ctx: RoundContext;
  readonly threshold: number;
  /** The cohort, sorted: Shamir coordinate of cohort[i] is i + 1. */
  readonly cohort: readonly string[];
  readonly graph: ReadonlyMap<string, readonly string[]>;
  readonly spec: QuantizationSpec;
  /** Modulus exponent: modulusBits(n, valueBits). */
  readonly bits: number;
}

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

/** Throws INVALID_ARGUMENT naming the field unless `ctx` is a usable round context. */
export function checkContext(ctx: RoundContext): void {
  if (typeof ctx.studyId !== 'string' || ctx.studyId.length === 0 || ctx.studyId.length > 256) throw invalid('ctx.studyId', 'must be a non-empty string of at most 256 characters');
  if (!Number.isSafeInteger(ctx.round) || ctx.round < 0) throw invalid('ctx.round', `must be a non-negative integer, got ${ctx.round}`);
  if (!Number.isSafeInteger(ctx.attempt) || ctx.attempt < 0) throw invalid('ctx.attempt', `must be a non-negative integer, got ${ctx.attempt}`);
  if (!Number.isInteger(ctx.k) || ctx.k < 1) throw invalid('ctx.k', `must be an integer ≥ 1, got ${ctx.k}`);
  if (ctx.threshold !== undefined && (!Number.isInteger(ctx.threshold) || ctx.threshold < 1 || ctx.threshold > ctx.k)) {
    throw invalid('ctx.threshold', `must be an integer in [1, k = ${ctx.k}], got ${ctx.threshold}`);
  }
  if (!Number.isSafeInteger(ctx.vectorLength) || ctx.vectorLength < 1) throw invalid('ctx.vectorLength', `must be an integer ≥ 1, got ${ctx.vectorLength}`);
  quantizationParams({ clip: ctx.clipRange, valueBits: ctx.valueBits, clients: 1 });
}

function labelled(...parts: (string | number)[]): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      const bytes = typeof p === 'number' ? Buffer.from(String(p), 'utf8') : Buffer.from(p, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      return Buffer.concat([len, bytes]);
    }),
  );
}

/**
 * The graph seed: SHA-256 of the study, round, attempt and sorted cohort. Public and fixed by
 * the round, so the coordinator cannot pick a graph that isolates a clinic among its sybils,
 * and every clinic can recompute its own neighbourhood and check what it is told.
 */
export function graphSeed(ctx: RoundContext, cohort: readonly string[]): Uint8Array {
  return new Uint8Array(createHash('sha256').update(labelled('fedlhs/secagg/v1/graph', ctx.studyId, ctx.round, ctx.attempt, ...cohort)).digest());
}

/** Resolves `ctx` for `cohort` (any order; refused if duplicated or k does not fit it). */
export function resolveRound(ctx: RoundContext, cohort: readonly string[]): ResolvedRound {
  checkContext(ctx);
  const sorted = [...cohort].sort();
  const graph = neighbourhoods(sorted, ctx.k, graphSeed(ctx, sorted), ctx.graph);
  const spec: QuantizationSpec = { clip: ctx.clipRange, valueBits: ctx.valueBits, clients: sorted.length };
  return { ctx, threshold: ctx.threshold ?? thresholdFor(ctx.k), cohort: sorted, graph, spec, bits: quantizationParams(spec).bits };
}

/** Shamir coordinate of `id` in the sorted cohort: its index + 1. */
export function coordinateOf(round: ResolvedRound, id: string): number {
  const i = round.cohort.indexOf(id);
  if (i < 0) throw invalid('id', `${id} is not in the round's cohort`);
  return i + 1;
}

/** A message's round fields. */
export function headerOf(ctx: RoundContext): MessageHeader {
  return { studyId: ctx.studyId, round: ctx.round, attempt: ctx.attempt };
}

/** Throws STALE unless `msg` belongs to the round of `ctx`. */
export function checkHeader(ctx: RoundContext, msg: MessageHeader, what: string): void {
  if (msg.studyId !== ctx.studyId || msg.round !== ctx.round || msg.attempt !== ctx.attempt) {
    throw new FedlhsError('STALE', `${what}: belongs to study ${msg.studyId} round ${msg.round} attempt ${msg.attempt}, not to this round (${ctx.studyId} round ${ctx.round} attempt ${ctx.attempt})`);
  }
}

/** SHA-256 commitment to a self-mask seed: lets the coordinator check the b it rebuilt. */
export function commitSelfMask(ctx: RoundContext, id: string, seed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(labelled('fedlhs/secagg/v1/self-mask', ctx.studyId, ctx.round, ctx.attempt, id)).update(seed).digest());
}

function aad(ctx: RoundContext, from: string, to: string): Buffer {
  return labelled('fedlhs/secagg/v1/shares', ctx.studyId, ctx.round, ctx.attempt, from, to);
}

/** The AES-256-GCM key from `from` to `to` (one direction: the other has its own). */
function shareKey(ctx: RoundContext, myPrivate: KeyObject, theirPublicRaw: Uint8Array, from: string, to: string): Buffer {
  const theirs = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(theirPublicRaw).toString('base64url') }, format: 'jwk' });
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: myPrivate, publicKey: theirs });
  } catch (err) {
    throw new FedlhsError('INVALID_ARGUMENT', `cPublic of ${from === to ? from : `${from}/${to}`}: X25519 agreement failed: ${(err as Error).message}`, { cause: err, details: { field: 'cPublic' } });
  }
  if (shared.every((b) => b === 0)) throw invalid('cPublic', `the key of ${from}/${to} is a low-order point`);
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from('fedlhs secure aggregation'), aad(ctx, from, to), 32));
}

/** Seals the two shares (encoded, SHARE_BYTES each) `from` sends `to`. */
export function sealShares(ctx: RoundContext, myPrivate: KeyObject, theirPublic: Uint8Array, from: string, to: string, plain: Uint8Array, random: RandomBytes): Uint8Array {
  if (plain.length !== 2 * SHARE_BYTES) throw invalid('plain', `must be ${2 * SHARE_BYTES} bytes`);
  const nonce = random(SHARE_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', shareKey(ctx, myPrivate, theirPublic, from, to), nonce);
  cipher.setAAD(aad(ctx, from, to));
  const out = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  if (out.length !== SHARE_CIPHERTEXT_BYTES) throw new FedlhsError('INTERNAL', 'share ciphertext of an unexpected size');
  return new Uint8Array(out);
}

/**
 * Opens what `from` sealed for `to`; a ciphertext that fails GCM authentication (tampered,
 * forged, or sealed for another round or receiver) is refused naming its sender.
 */
export function openShares(ctx: RoundContext, myPrivate: KeyObject, theirPublic: Uint8Array, from: string, to: string, sealed: Uint8Array, field: string): Uint8Array {
  if (sealed.length !== SHARE_CIPHERTEXT_BYTES) throw invalid(field, `must be ${SHARE_CIPHERTEXT_BYTES} bytes`);
  const decipher = createDecipheriv('aes-256-gcm', shareKey(ctx, myPrivate, theirPublic, from, to), sealed.subarray(0, SHARE_NONCE_BYTES));
  decipher.setAAD(aad(ctx, from, to));
  decipher.setAuthTag(sealed.subarray(sealed.length - SHARE_TAG_BYTES));
  try {
    return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(SHARE_NONCE_BYTES, sealed.length - SHARE_TAG_BYTES)), decipher.final()]));
  } catch (err) {
    throw new FedlhsError('INVALID_ARGUMENT', `${field}: a tampered share from ${from}: it does not authenticate (refusing the round)`, { cause: err, details: { field } });
  }
}
