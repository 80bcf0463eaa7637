/**
 * The messages of one secure-aggregation round, as plain JSON-serialisable objects (bytes as
 * canonical base64 strings), with zod schemas that check everything a party receives: sizes of
 * keys, ciphertexts, shares and the masked vector, ids, duplicates and counts. Whatever carries
 * them (gRPC, a file, a test) hands the decoded JSON to `parseMessage`, which refuses with
 * FedlhsError INVALID_ARGUMENT naming the offending field, or returns a typed message. The
 * cross-message checks (a neighbour the request did not name, a list that does not match the
 * previous stage) are the state machines' (client.ts, server.ts).
 */
import { z } from 'zod';
import { FedlhsError } from '../../errors.js';
import { SHARE_BYTES } from '../shamir.js';
import { X25519_KEY_BYTES } from '../masks.js';

/** Bytes of a raw Ed25519 public key. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Bytes of an Ed25519 signature. */
export const ED25519_SIGNATURE_BYTES = 64;

/** The longest clinic id accepted (node ids are short; this bounds what a peer can make us hold). */
export const MAX_ID_LENGTH = 128;

/** The most clinics in one round: Shamir coordinates are two bytes (shamir.ts MAX_SHAREHOLDER). */
export const MAX_COHORT = 0xffff;

/** Bytes of the AES-256-GCM nonce that opens every share ciphertext. */
export const SHARE_NONCE_BYTES = 12;
/** Bytes of the GCM tag that closes it. */
export const SHARE_TAG_BYTES = 16;
/** Bytes of a share ciphertext: nonce ‖ AES-GCM(share of b ‖ share of s_sk) ‖ tag. */
export const SHARE_CIPHERTEXT_BYTES = SHARE_NONCE_BYTES + 2 * SHARE_BYTES + SHARE_TAG_BYTES;
/** Bytes of the commitment to a self-mask seed (SHA-256). */
export const COMMITMENT_BYTES = 32;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes as canonical base64 (RFC 4648 §4, padded). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** Canonical base64 → bytes; the schemas have already checked the form and length. */
export function fromBase64(text: string): Uint8Array {
  const buf = Buffer.from(text, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Bytes of the base64 text of `bytes` bytes. */
const base64Length = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/**
 * Canonical base64 of exactly `bytes` bytes (or, with no size, any length). The length check
 * runs before the regex, so an oversized string is refused without scanning it.
 */
export function base64Of(bytes?: number) {
  const len = bytes === undefined ? z.string() : z.string().length(base64Length(bytes), { error: `must be base64 of ${bytes} bytes` });
  return len.check((ctx) => {
    const decoded = BASE64.test(ctx.value) ? Buffer.from(ctx.value, 'base64') : undefined;
    if (decoded === undefined || decoded.toString('base64') !== ctx.value) {
      ctx.issues.push({ code: 'custom', message: 'not canonical base64', input: ctx.value });
    } else if (bytes !== undefined && decoded.length !== bytes) {
      ctx.issues.push({ code: 'custom', message: `must be base64 of ${bytes} bytes`, input: ctx.value });
    }
  });
}

const id = z.string().min(1, { error: 'must be a non-empty clinic id' }).max(MAX_ID_LENGTH, { error: `a clinic id is at most ${MAX_ID_LENGTH} characters` });

/** A list of distinct ids, at most MAX_COHORT. */
const idList = z
  .array(id)
  .max(MAX_COHORT)
  .check((ctx) => {
    const seen = new Set<string>();
    ctx.value.forEach((v, i) => {
      if (seen.has(v)) ctx.issues.push({ code: 'custom', message: `id ${v} appears twice`, input: v, path: [i] });
      seen.add(v);
    });
  });

/** A list of distinct ids in sorted (code unit) order: one canonical form of a set, as signed. */
const sortedIdList = idList.check((ctx) => {
  ctx.value.forEach((v, i) => {
    if (i > 0 && ctx.value[i - 1]! >= v) ctx.issues.push({ code: 'custom', message: 'must be sorted', input: v, path: [i] });
  });
});

/** Items of a list keyed by `key`, each key at most once. */
function keyedList<T extends z.ZodObject>(item: T, key: string) {
  return z
    .array(item)
    .max(MAX_COHORT)
    .check((ctx) => {
      const seen = new Set<string>();
      ctx.value.forEach((v, i) => {
        const k = (v as Record<string, string>)[key]!;
        if (seen.has(k)) ctx.issues.push({ code: 'custom', message: `${k} appears twice`, input: k, path: [i, key] });
        seen.add(k);
      });
    });
}

/** Every message carries the round it belongs to; a message of another round is stale. */
const header = {
  studyId: z.string().min(1).max(256),
  round: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  attempt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
};

const key = base64Of(X25519_KEY_BYTES);
const identityKey = base64Of(ED25519_PUBLIC_KEY_BYTES);
const signature = base64Of(ED25519_SIGNATURE_BYTES);

/**
 * Stage 1, client → server: the two public keys (c: share encryption, s: pairwise masks), the
 * clinic's long-lived Ed25519 identity key, and its signature over the keys (identity.ts
 * keysSigningBytes).
 */
export const keysMessageSchema = z.strictObject({ ...header, cPublic: key, sPublic: key, identityKey, signature });

/** Stage 2, server → client: the round's cohort and the client's neighbours that sent keys, as they signed them. */
export const sharesRequestSchema = z.strictObject({
  ...header,
  /** Every clinic the round started with, sorted: fixes the graph and the Shamir coordinates. */
  cohort: idList.min(2),
  neighbours: keyedList(z.strictObject({ id, cPublic: key, sPublic: key, identityKey, signature }), 'id'),
});

/** Stage 2, client → server: one sealed pair of shares per neighbour, and a commitment to b. */
export const sharesMessageSchema = z.strictObject({
  ...header,
  shares: keyedList(z.strictObject({ to: id, ciphertext: base64Of(SHARE_CIPHERTEXT_BYTES) }), 'to'),
  selfMaskCommitment: base64Of(COMMITMENT_BYTES),
});

/** Stage 3, server → client: the neighbours that sent shares, and what they sealed for it. */
export const maskedInputRequestSchema = z.strictObject({
  ...header,
  survivors: idList,
  ciphertexts: keyedList(z.strictObject({ from: id, ciphertext: base64Of(SHARE_CIPHERTEXT_BYTES) }), 'from'),
});

/**
 * Stage 3, client → server: the header only. The masked vector travels beside it as raw bytes
 * (StageReport.vector), bit-packed at the round's modulus (pack.ts): its exact length depends
 * on the round, and the server checks it.
 */
export const maskedInputMessageSchema = z.strictObject({ ...header });

/** Stage 4, server → client: the round-wide set of clinics whose masked input is in the sum, sorted. */
export const consistencyRequestSchema = z.strictObject({ ...header, survivors: sortedIdList.min(2) });

/** Stage 4, client → server: the clinic's signature over that set (identity.ts consistencySigningBytes). */
export const consistencyMessageSchema = z.strictObject({ ...header, signature });

/**
 * Stage 5, server → client: the survivor set again and its neighbours' signatures on it. The
 * client derives who survived and who dropped from the set it signed itself.
 */
export const unmaskRequestSchema = z.strictObject({
  ...header,
  survivors: idList,
  signatures: keyedList(z.strictObject({ id, signature }), 'id'),
});

const shareOf = z.strictObject({ of: id, share: base64Of(SHARE_BYTES) });

/** Stage 5, client → server: shares of b for the survivors, shares of s_sk for the dropped. */
export const unmaskMessageSchema = z.strictObject({
  ...header,
  selfMaskShares: keyedList(shareOf, 'of'),
  keyShares: keyedList(shareOf, 'of'),
});

export type KeysMessage = z.infer<typeof keysMessageSchema>;
export type SharesRequest = z.infer<typeof sharesRequestSchema>;
export type SharesMessage = z.infer<typeof sharesMessageSchema>;
export type MaskedInputRequest = z.infer<typeof maskedInputRequestSchema>;
export type MaskedInputMessage = z.infer<typeof maskedInputMessageSchema>;
export type ConsistencyRequest = z.infer<typeof consistencyRequestSchema>;
export type ConsistencyMessage = z.infer<typeof consistencyMessageSchema>;
export type UnmaskRequest = z.infer<typeof unmaskRequestSchema>;
export type UnmaskMessage = z.infer<typeof unmaskMessageSchema>;

/** The fields every message carries. */
export interface MessageHeader {
  readonly studyId: string;
  readonly round: number;
  readonly attempt: number;
}

/**
 * `value` checked against `schema`, or FedlhsError INVALID_ARGUMENT whose `details.field` is
 * `what` and the path of the first problem (e.g. "shares.shares[2].ciphertext").
 */
export function parseMessage<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = [what, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('').replace(/\.\[/g, '[');
  throw new FedlhsError('INVALID_ARGUMENT', `${field}: ${issue.message}`, { details: { field }, cause: result.error });
}
