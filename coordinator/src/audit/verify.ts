import { aliasRowContent, AUDITED, auditedContent, type AuditRow } from './audited-rows.js';
import { AUDIT_KINDS, canonicalJson, contentDigest, entryHash, GENESIS, type AuditKind, type ChainEntry } from './chain.js';

/**
 * `fedlhs-coordinator audit verify` (audit/chain.ts): walks the chain in seq order, recomputing
 * every entry's hash and every audited row's digest, then checks the head and looks for audited
 * rows without an entry. Reports the first problem only: after it nothing further is trustworthy.
 */

/** Runs SQL with `?` placeholders on the store's database (the same text on SQLite and PostgreSQL). */
export type AuditQuery = (sql: string, params: unknown[]) => Promise<AuditRow[]>;

/** What is wrong: an entry or audited row changed, an entry gone or moved, the tail cut, or a row never chained. */
export type AuditProblemKind = 'edited' | 'removed' | 'reordered' | 'truncated' | 'unchained' | 'not_ready';

export interface AuditProblem {
  problem: AuditProblemKind;
  /** The entry (absent for a row without one). */
  seq?: number;
  kind?: AuditKind;
  ref?: string;
  message: string;
}

export interface AuditReport {
  ok: boolean;
  entries: number;
  /** The last entry checked: its seq and hash (0 and GENESIS when none); `<headSeq>:<head>` is what to keep for `--head`. */
  headSeq: number;
  head: string;
  problem?: AuditProblem;
}

const PAGE = 1000;

const name = (e: { kind: string; ref: string; seq: number }): string => `entry seq ${e.seq} (${e.kind} ${JSON.stringify(e.ref)})`;

function toEntry(r: AuditRow): ChainEntry {
  return {
    seq: Number(r.seq), at: Number(r.at), kind: r.kind as AuditKind, ref: String(r.ref), digest: String(r.digest),
    content: r.content === null || r.content === undefined ? null : String(r.content), prev: String(r.prev), hash: String(r.hash),
  };
}

/** The rows of one kind that `refs` name, by ref. */
async function rowsByRef(query: AuditQuery, kind: Exclude<AuditKind, 'release.alias'>, refs: string[]): Promise<Map<string, AuditRow>> {
  const t = AUDITED[kind];
  const out = new Map<string, AuditRow>();
  for (let i = 0; i < refs.length; i += 500) {
    const chunk = refs.slice(i, i + 500);
    // Integer keys are looked up by key (indexed); the other refs by their expression.
    const numeric = t.refSql === 'CAST(id AS TEXT)';
    const where = numeric ? `id IN (${chunk.map(() => '?').join(',')})` : `${t.refSql} IN (${chunk.map(() => '?').join(',')})`;
    // Only audited rows count: a node whose revocation was undone no longer has a revocation.
    const rows = await query(`SELECT *, ${t.refSql} AS audit_ref FROM ${t.table} WHERE ${t.where ?? '1 = 1'} AND ${where}`, numeric ? chunk.map(Number) : chunk);
    for (const r of rows) out.set(String(r.audit_ref), r);
  }
  return out;
}

/** Where `audit verify` reads: one snapshot of the store's database (sources.ts). */
export interface AuditSnapshotSource {
  snapshot<T>(fn: (query: AuditQuery) => Promise<T>): Promise<T>;
}

/** A head printed by an earlier `audit verify` and kept outside the database (`--head <seq>:<hash>`). */
export interface KeptHead {
  seq: number;
  hash: string;
}

export interface VerifyOptions {
  /** The chain must still hold this entry (seq with this hash): a cut tail with a rewritten audit_head shows. */
  kept?: KeptHead;
  /** Tests: runs after each query, inside the snapshot (to write beside a verify). */
  afterQuery?: (sql: string) => Promise<void>;
}

/** `<seq>:<hash>` as printed by `audit verify`; throws naming the expected form. */
export function parseKeptHead(text: string): KeptHead {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim());
  if (m === null) throw new Error(`--head must be <seq>:<hash> as audit verify printed it (a seq and 64 lowercase hex digits), not ${JSON.stringify(text)}`);
  return { seq: Number(m[1]), hash: m[2]! };
}

/**
 * Verifies the chain on a store's database, every read in one snapshot (so a coordinator writing
 * meanwhile is never mistaken for tampering); never throws for a broken chain, only for a
 * failed query.
 */
export async function verifyAuditChain(source: AuditSnapshotSource, options: VerifyOptions = {}): Promise<AuditReport> {
  return source.snapshot((raw) => verifyIn(options.afterQuery === undefined ? raw : async (sql, params) => {
    const rows = await raw(sql, params);
    await options.afterQuery!(sql);
    return rows;
  }, options.kept));
}

async function verifyIn(query: AuditQuery, kept: KeptHead | undefined): Promise<AuditReport> {
  let headRow: AuditRow | undefined;
  try {
    headRow = (await query(`SELECT seq, hash, backfilled FROM audit_head WHERE id = 1`, []))[0];
  } catch (err) {
    // Only a missing table means "not migrated yet"; anything else (a lost connection) is the caller's error.
    if (!/no such table|does not exist/.test((err as Error).message)) throw err;
    return { ok: false, entries: 0, headSeq: 0, head: GENESIS, problem: { problem: 'not_ready', message: `the database has no audit chain (${(err as Error).message}): start this coordinator version on it once, which migrates it` } };
  }
  if (headRow === undefined) return { ok: false, entries: 0, headSeq: 0, head: GENESIS, problem: { problem: 'truncated', message: 'audit_head has no row: the chain head was deleted' } };
  if (Number(headRow.backfilled) !== 1) {
    return { ok: false, entries: 0, headSeq: 0, head: GENESIS, problem: { problem: 'not_ready', message: 'the rows older than the audit chain are not chained yet: start this coordinator version on the database once' } };
  }
  const fail = (entries: number, head: string, problem: AuditProblem): AuditReport => ({ ok: false, entries, headSeq: entries, head, problem });
  const keptName = kept === undefined ? '' : `the kept head ${kept.seq}:${kept.hash}`;
  let prev: ChainEntry | undefined;
  let count = 0;
  const latestAlias = new Map<string, ChainEntry>();
  for (let after = 0; ; ) {
    const page = (await query(`SELECT * FROM audit_chain WHERE seq > ? ORDER BY seq LIMIT ?`, [after, PAGE])).map(toEntry);
    if (page.length === 0) break;
    const rows = new Map<string, Map<string, AuditRow>>();
    for (const kind of AUDIT_KINDS) {
      if (kind === 'release.alias') continue;
      const refs = page.filter((e) => e.kind === kind).map((e) => e.ref);
      if (refs.length > 0) rows.set(kind, await rowsByRef(query, kind, refs));
    }
    for (const e of page) {
      const expectedSeq = (prev?.seq ?? 0) + 1;
      const head = prev?.hash ?? GENESIS;
      if (e.seq !== expectedSeq) {
        return fail(count, head, { problem: e.seq > expectedSeq ? 'removed' : 'reordered', seq: e.seq, kind: e.kind, ref: e.ref, message: `${name(e)} follows seq ${expectedSeq - 1}: entries ${expectedSeq}${e.seq - 1 > expectedSeq ? `..${e.seq - 1}` : ''} were removed` });
      }
      if (e.prev !== head) {
        return fail(count, head, { problem: 'reordered', seq: e.seq, kind: e.kind, ref: e.ref, message: `${name(e)} does not follow the entry before it (prev ${e.prev.slice(0, 12)}…, expected ${head.slice(0, 12)}…): entries were removed, reordered or rewritten` });
      }
      if (!(AUDIT_KINDS as readonly string[]).includes(e.kind) || entryHash(e) !== e.hash) {
        return fail(count, head, { problem: 'edited', seq: e.seq, kind: e.kind, ref: e.ref, message: `${name(e)} was edited: its hash does not match its fields` });
      }
      if (kept !== undefined && e.seq === kept.seq && e.hash !== kept.hash) {
        return fail(count, head, { problem: 'edited', seq: e.seq, kind: e.kind, ref: e.ref, message: `${name(e)} is not the entry of ${keptName}: the chain was rewritten from seq ${e.seq} or earlier` });
      }
      if (e.kind === 'release.alias') {
        if (e.content === null || contentDigest(e.kind, e.content) !== e.digest) {
          return fail(count, head, { problem: 'edited', seq: e.seq, kind: e.kind, ref: e.ref, message: `${name(e)} was edited: its content does not match its digest` });
        }
        latestAlias.set(e.ref, e);
      } else {
        const row = rows.get(e.kind)?.get(e.ref);
        if (row === undefined) {
          return fail(count, head, { problem: 'removed', seq: e.seq, kind: e.kind, ref: e.ref, message: `the ${e.kind} row ${JSON.stringify(e.ref)} of ${name(e)} was removed` });
        }
        if (contentDigest(e.kind, canonicalJson(auditedContent(e.kind, row))) !== e.digest) {
          return fail(count, head, { problem: 'edited', seq: e.seq, kind: e.kind, ref: e.ref, message: `the ${e.kind} row ${JSON.stringify(e.ref)} was edited: it no longer matches the digest of ${name(e)}` });
        }
      }
      prev = e;
      count++;
    }
    after = prev!.seq;
  }
  const last = { seq: prev?.seq ?? 0, hash: prev?.hash ?? GENESIS };
  if (kept !== undefined && kept.seq > last.seq) {
    return fail(count, last.hash, { problem: 'truncated', seq: last.seq + 1, message: `the chain ends at seq ${last.seq} but ${keptName} is later: entries ${last.seq + 1}..${kept.seq} were removed and audit_head rewritten` });
  }
  if (kept !== undefined && kept.seq === 0 && kept.hash !== GENESIS) {
    return fail(count, last.hash, { problem: 'edited', message: `${keptName} is not a head audit verify prints (seq 0 has the hash ${GENESIS})` });
  }
  if (Number(headRow.seq) > last.seq) {
    return fail(count, last.hash, { problem: 'truncated', seq: last.seq + 1, message: `the chain ends at seq ${last.seq} but its head records seq ${Number(headRow.seq)}: the last ${Number(headRow.seq) - last.seq} entr(ies) were removed` });
  }
  if (Number(headRow.seq) !== last.seq || headRow.hash !== last.hash) {
    return fail(count, last.hash, { problem: 'edited', seq: last.seq, message: `the chain head (seq ${Number(headRow.seq)}, ${String(headRow.hash).slice(0, 12)}…) does not match the last entry (seq ${last.seq}, ${last.hash.slice(0, 12)}…): entries were added or the head rewritten outside the store` });
  }
  for (const kind of AUDIT_KINDS) {
    if (kind === 'release.alias') continue;
    const t = AUDITED[kind];
    const loose = await query(
      `SELECT ${t.refSql} AS audit_ref FROM ${t.table} WHERE ${t.where ?? '1 = 1'} AND ${t.refSql} NOT IN (SELECT ref FROM audit_chain WHERE kind = ?) ORDER BY ${t.orderSql} LIMIT 1`,
      [kind],
    );
    if (loose[0] !== undefined) {
      const ref = String(loose[0].audit_ref);
      return fail(count, last.hash, { problem: 'unchained', kind, ref, message: `the ${kind} row ${JSON.stringify(ref)} has no chain entry: it was written outside the store (or its entry and every later one rewritten)` });
    }
  }
  // An alias is a pointer that moves: its row must be where the newest move left it.
  const aliases = await query(`SELECT * FROM release_aliases ORDER BY study_name, alias`, []);
  const seen = new Set<string>();
  for (const row of aliases) {
    const ref = `${String(row.study_name)} ${String(row.alias)}`;
    seen.add(ref);
    const e = latestAlias.get(ref);
    if (e === undefined) return fail(count, last.hash, { problem: 'unchained', kind: 'release.alias', ref, message: `the alias ${JSON.stringify(ref)} was set outside the store: no chain entry moved it` });
    if (e.content !== canonicalJson(aliasRowContent(row))) {
      return fail(count, last.hash, { problem: 'edited', seq: e.seq, kind: e.kind, ref, message: `the alias ${JSON.stringify(ref)} was edited: it is not where its last move (${name(e)}) put it` });
    }
  }
  for (const [ref, e] of latestAlias) {
    if (!seen.has(ref) && (JSON.parse(e.content!) as { version: unknown }).version !== null) {
      return fail(count, last.hash, { problem: 'removed', seq: e.seq, kind: e.kind, ref, message: `the alias ${JSON.stringify(ref)} set by ${name(e)} was deleted outside the store` });
    }
  }
  return { ok: true, entries: count, headSeq: last.seq, head: last.hash };
}

/** One line for a terminal: "N entries, chain intact, head <hash>" or the problem. */
export function auditReportLine(r: AuditReport): string {
  if (r.ok) return `${r.entries} entries, chain intact, head ${r.headSeq}:${r.head}`;
  const p = r.problem!;
  return `audit chain broken (${p.problem})${p.seq === undefined ? '' : ` at seq ${p.seq}`}${p.kind === undefined ? '' : `, ${p.kind} ${JSON.stringify(p.ref)}`}: ${p.message}`;
}
