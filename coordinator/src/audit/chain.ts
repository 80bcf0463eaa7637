import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { FedlhsError } from '@fedlhs/core';

// canonicalize is CommonJS whose typings declare an ES default export (see core manifest.ts).
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/**
 * The coordinator's audit chain (issue 15): one append-only `audit_chain` row per audited event,
 * written in the same unit as the audited row. Each entry holds the SHA-256 of the audited row's
 * canonical content (`digest`), the previous entry's hash (`prev`) and its own `hash`, so an
 * edited row, an edited, removed or reordered entry, or a cut tail (against `audit_head`) shows.
 */

/** `prev` of the first entry. */
export const GENESIS = '0'.repeat(64);

/**
 * What is audited. Row kinds point at a row that stays (its digest is recomputed by `audit
 * verify`); `release.alias` is a move of a mutable pointer, so its entry keeps the move itself
 * in `content` (and the newest move of each alias must match the alias row).
 */
export type AuditKind = 'admin' | 'contribution' | 'release' | 'node.revoke' | 'release.alias';
export const AUDIT_KINDS: readonly AuditKind[] = ['admin', 'contribution', 'release', 'node.revoke', 'release.alias'];

/** One row of `audit_chain`. */
export interface ChainEntry {
  seq: number;
  /** When the audited event happened (the row's own time), ms. */
  at: number;
  kind: AuditKind;
  /** The audited row's key (auditedRows' ref). */
  ref: string;
  digest: string;
  /** The audited content itself, for kinds without a lasting row (release.alias); else null. */
  content: string | null;
  prev: string;
  hash: string;
}

/** The last entry as `audit_head` records it (seq 0 and GENESIS before the first). */
export interface ChainHead {
  seq: number;
  hash: string;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** RFC 8785 canonical JSON; throws on what JSON cannot hold (a bug in the caller, never data). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new FedlhsError('INTERNAL', 'audit content is not JSON');
  return text;
}

/** SHA-256 of an audited row's canonical content, domain-separated by kind. */
export function contentDigest(kind: AuditKind, canonicalContent: string): string {
  return sha256(`fedlhs.coordinator.audit-row.v1\n${kind}\n${canonicalContent}`);
}

/** An entry's hash: SHA-256 over the domain-separated canonical JSON of every field but `hash` and `content` (covered by `digest`). */
export function entryHash(e: Omit<ChainEntry, 'hash' | 'content'>): string {
  return sha256(`fedlhs.coordinator.audit-chain.v1\n${canonicalJson({ seq: e.seq, at: e.at, kind: e.kind, ref: e.ref, digest: e.digest, prev: e.prev })}`);
}

/** The entry that follows `head` for an audited event. */
export function nextEntry(head: ChainHead, e: { at: number; kind: AuditKind; ref: string; content: object; keepContent: boolean }): ChainEntry {
  const canonical = canonicalJson(e.content);
  const base = { seq: head.seq + 1, at: e.at, kind: e.kind, ref: e.ref, digest: contentDigest(e.kind, canonical), prev: head.hash };
  return { ...base, content: e.keepContent ? canonical : null, hash: entryHash(base) };
}

/** The INSERT of an entry (same text on both stores but for placeholders). */
export const entryColumns = ['seq', 'at', 'kind', 'ref', 'digest', 'content', 'prev', 'hash'] as const;
export const entryValues = (e: ChainEntry): unknown[] => [e.seq, e.at, e.kind, e.ref, e.digest, e.content, e.prev, e.hash];
