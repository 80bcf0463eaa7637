import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import canonicalizeModule from 'canonicalize';
import { FedlhsError } from '@fedlhs/core';

// canonicalize is CommonJS whose typings declare an ES default export (see core manifest.ts).
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/**
 * The hash chain of the agent's audit.jsonl (issue 15). Every line carries `seq` (1, 2, …),
 * `prev` (the previous line's `hash`; 64 zeros for the first) and `hash`: SHA-256 over the
 * domain-separated RFC 8785 canonical JSON of the line without `hash`. The head (seq, hash) is
 * also kept in the agent database, so a log cut at its end shows too. The first chained line of
 * a log written before the chain records the SHA-256 of every byte before it (`legacy`).
 */

/** `prev` of the first chained line. */
export const GENESIS = '0'.repeat(64);

/** The fields a chained line adds to an audit entry. */
export interface ChainFields {
  seq: number;
  prev: string;
  hash: string;
  /** First chained line after lines without chain fields: how many lines came before and their bytes' SHA-256. */
  legacy?: { lines: number; sha256: string };
  /**
   * The log did not end where the database head said when this line was added: what the head
   * was. `torn`: the log ended in a line that is not JSON (a crash or full disk part-way through
   * an append), so this line chains to the database head instead.
   */
  gap?: { headSeq: number; headHash: string; fileSeq: number | null; torn?: true };
}

/** The chain head as the agent database keeps it. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** Names of the fields ChainFields adds (readAudit strips them). */
export const CHAIN_FIELDS = ['seq', 'prev', 'hash', 'legacy', 'gap'] as const;

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A line's hash: SHA-256 of "fedlhs.agent.audit.v1\n" + the canonical JSON of the line without `hash`. */
export function lineHash(withoutHash: Record<string, unknown>): string {
  const text = canonicalize(withoutHash);
  if (text === undefined) throw new FedlhsError('INTERNAL', 'audit entry is not JSON');
  return sha256(`fedlhs.agent.audit.v1\n${text}`);
}

/** The last line of a file (without its newline), reading backwards in chunks; undefined for an empty or missing file. */
export function readLastLine(path: string): { line: string | undefined; endsWithNewline: boolean } {
  if (!existsSync(path)) return { line: undefined, endsWithNewline: true };
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return { line: undefined, endsWithNewline: true };
    const chunks: Buffer[] = [];
    let pos = size;
    let endsWithNewline: boolean | undefined;
    for (;;) {
      const len = Math.min(65536, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, pos);
      chunks.unshift(buf);
      const all = Buffer.concat(chunks);
      endsWithNewline ??= all[all.length - 1] === 0x0a;
      const body = endsWithNewline ? all.subarray(0, all.length - 1) : all;
      const nl = body.lastIndexOf(0x0a);
      if (nl >= 0 || pos === 0) return { line: body.subarray(nl + 1).toString('utf8'), endsWithNewline };
    }
  } finally {
    closeSync(fd);
  }
}

const parse = (line: string | undefined): Record<string, unknown> | undefined => {
  if (line === undefined) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

/** The log's last line as a head (seq, hash), when it is a whole chained line. */
export function lastLineHead(path: string): AuditHead | undefined {
  const tail = parse(readLastLine(path).line);
  return tail !== undefined && typeof tail.seq === 'number' && typeof tail.hash === 'string' ? { seq: tail.seq, hash: tail.hash } : undefined;
}

/** What `chainedLine` made: the text to append, the new head, and whether it began the chain of a legacy log. */
export interface ChainedLine {
  text: string;
  head: AuditHead;
  startedLegacy?: { lines: number; sha256: string };
  gap?: ChainFields['gap'];
}

/**
 * The next line of the log at `path` for `entry`, chained to the log's last line. `head` is the
 * database's (after AgentState settled a crashed append): a log that ends elsewhere, cut or with
 * a line appended outside the agent, gets a line that says so (`gap`), which `audit verify`
 * reports, so appending never hides it; after a torn last line it chains to `head`.
 */
export function chainedLine(path: string, entry: Record<string, unknown>, head: AuditHead | undefined): ChainedLine {
  const { line, endsWithNewline } = readLastLine(path);
  const tail = parse(line);
  const chained = tail !== undefined && typeof tail.seq === 'number' && typeof tail.hash === 'string';
  const fields: Record<string, unknown> = {};
  let startedLegacy: ChainedLine['startedLegacy'];
  let prev: AuditHead;
  if (chained) {
    prev = { seq: tail.seq as number, hash: tail.hash as string };
  } else if (line !== undefined && tail === undefined && head !== undefined) {
    // A torn last line: the database head is the last entry that was written whole.
    prev = head;
  } else if (line !== undefined && tail !== undefined) {
    // Lines from before the chain (or from an older agent since): covered by their bytes' digest.
    const bytes = readFileSync(path);
    startedLegacy = { lines: bytes.toString('utf8').split('\n').filter((l) => l !== '').length, sha256: sha256(bytes) };
    prev = head ?? { seq: 0, hash: GENESIS };
  } else {
    prev = { seq: 0, hash: GENESIS };
  }
  const inStep = head === undefined ? prev.seq === 0 || startedLegacy !== undefined : prev.seq === head.seq && prev.hash === head.hash;
  let gap: ChainedLine['gap'];
  if (line !== undefined && tail === undefined) gap = { headSeq: head?.seq ?? 0, headHash: head?.hash ?? GENESIS, fileSeq: null, torn: true };
  else if (!inStep && head !== undefined) gap = { headSeq: head.seq, headHash: head.hash, fileSeq: chained ? prev.seq : null };
  else if (!inStep) gap = { headSeq: 0, headHash: GENESIS, fileSeq: prev.seq };
  fields.seq = prev.seq + 1;
  fields.prev = prev.hash;
  if (startedLegacy !== undefined) fields.legacy = startedLegacy;
  if (gap !== undefined) fields.gap = gap;
  // Hash what a reader parses back (JSON drops undefined, turns NaN into null).
  const body = JSON.parse(JSON.stringify({ ...entry, ...fields })) as Record<string, unknown>;
  const hash = lineHash(body);
  const text = `${endsWithNewline ? '' : '\n'}${JSON.stringify({ ...body, hash })}\n`;
  return { text, head: { seq: prev.seq + 1, hash }, ...(startedLegacy === undefined ? {} : { startedLegacy }), ...(gap === undefined ? {} : { gap }) };
}

/** What is wrong with a log: a line changed, lines gone or moved, the end cut, or the legacy prefix changed. */
export type AuditProblemKind = 'edited' | 'removed' | 'reordered' | 'truncated' | 'legacy_changed' | 'unchained';

export interface AuditLogReport {
  ok: boolean;
  /** Lines in the log (chained or not). */
  entries: number;
  /** Chained lines. */
  chained: number;
  /** The last chained line checked: its seq and hash (0 and GENESIS if none); `<headSeq>:<head>` is what to keep for `--head`. */
  headSeq: number;
  head: string;
  problem?: { problem: AuditProblemKind; line?: number; seq?: number; message: string };
}

/** `<seq>:<hash>` as `audit verify` printed it; throws naming the expected form. */
export function parseKeptHead(text: string): AuditHead {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim());
  if (m === null) throw new FedlhsError('INVALID_ARGUMENT', `--head must be <seq>:<hash> as audit verify printed it (a seq and 64 lowercase hex digits), not ${JSON.stringify(text)}`);
  return { seq: Number(m[1]), hash: m[2]! };
}

/** The log at `path` checked as verifyAuditBytes does (tests; the CLI reads file and head together: AgentState.auditSnapshot). */
export function verifyAuditLog(path: string, head: AuditHead | undefined, kept?: AuditHead, pending?: AuditHead): AuditLogReport {
  return verifyAuditBytes(existsSync(path) ? readFileSync(path) : Buffer.alloc(0), head, kept, pending);
}

/**
 * Checks a log's bytes against themselves and the database head: every chained line's seq, prev
 * and hash, the legacy prefix's digest, and that the log does not end before the head; with
 * `kept` (a head printed earlier and kept elsewhere), that the log still holds that entry. The
 * log may go one line beyond the head only with the line recorded as `pending` (an append in
 * flight, or cut off by a crash before the head moved).
 * Reports the first problem (line numbers from 1); a line that is not JSON comes before any
 * disagreement with the head.
 */
export function verifyAuditBytes(bytes: Buffer, head: AuditHead | undefined, kept?: AuditHead, pending?: AuditHead): AuditLogReport {
  let offset = 0;
  let seq = 0;
  let prevHash = GENESIS;
  let lineNo = 0;
  let chained = 0;
  let headMatched = head === undefined || head.seq === 0;
  let headReplaced: { line: number; seq: number } | undefined;
  let beyondLine: number | undefined;
  const keptName = kept === undefined ? '' : `the kept head ${kept.seq}:${kept.hash}`;
  const unchained: number[] = [];
  // Every seq in the log, read only when a line is out of step: a missing seq found later means reordered, not removed.
  let seqs: Set<number> | undefined;
  const allSeqs = (): Set<number> =>
    (seqs ??= new Set(bytes.toString('utf8').split('\n').map((l) => parse(l)?.seq).filter((x): x is number => typeof x === 'number')));
  const fail = (problem: AuditProblemKind, message: string, at?: { line?: number; seq?: number }): AuditLogReport => ({
    ok: false, entries: lineNo, chained, headSeq: seq, head: prevHash, problem: { problem, ...at, message },
  });
  while (offset < bytes.length) {
    const nl = bytes.indexOf(0x0a, offset);
    const end = nl < 0 ? bytes.length : nl;
    const text = bytes.subarray(offset, end).toString('utf8');
    const start = offset;
    offset = end + 1;
    if (text === '') continue;
    lineNo++;
    const e = parse(text);
    if (e === undefined) return fail('edited', `line ${lineNo} is not a JSON object: edited, or cut short (torn by a crash or a full disk part-way through an append)`, { line: lineNo });
    if (!('hash' in e) && !('seq' in e)) {
      unchained.push(lineNo);
      continue;
    }
    const at = { line: lineNo, seq: typeof e.seq === 'number' ? e.seq : undefined };
    if (typeof e.seq !== 'number' || typeof e.prev !== 'string' || typeof e.hash !== 'string') return fail('edited', `line ${lineNo} has damaged chain fields`, at);
    const { hash, ...body } = e;
    if (lineHash(body) !== hash) return fail('edited', `line ${lineNo} (seq ${e.seq}) was edited: its hash does not match its content`, at);
    if (e.seq !== seq + 1) {
      return e.seq > seq + 1 && !allSeqs().has(seq + 1)
        ? fail('removed', `line ${lineNo} (seq ${e.seq}) follows seq ${seq}: ${e.seq - seq - 1} entr(ies) were removed`, at)
        : fail('reordered', `line ${lineNo} (seq ${e.seq}) follows seq ${seq}: entries were reordered or repeated`, at);
    }
    if (e.prev !== prevHash) return fail('reordered', `line ${lineNo} (seq ${e.seq}) does not follow the line before it (prev mismatch): entries were removed or reordered`, at);
    const legacy = e.legacy as ChainFields['legacy'];
    if (legacy !== undefined) {
      const prefix = bytes.subarray(0, start);
      if (sha256(prefix) !== legacy.sha256) {
        return fail('legacy_changed', `line ${lineNo} (seq ${e.seq}) records the SHA-256 of the ${legacy.lines} line(s) before it, which no longer match: the legacy prefix was changed`, at);
      }
      unchained.length = 0;
    }
    if (unchained.length > 0) return fail('unchained', `line ${unchained[0]} has no chain fields but comes after the chain started: inserted`, { line: unchained[0]! });
    const gap = e.gap as ChainFields['gap'];
    if (gap !== undefined) {
      return fail('truncated', `line ${lineNo} (seq ${e.seq}) was appended when the log ended at ${gap.fileSeq === null ? 'no chained line' : `seq ${gap.fileSeq}`} although the agent database's head was seq ${gap.headSeq}: the log had been cut, replaced or written to outside the agent`, at);
    }
    if (head !== undefined && e.seq === head.seq) {
      // Reported after the scan: a damaged line later on is the first thing to name.
      if (e.hash !== head.hash) headReplaced ??= { line: lineNo, seq: e.seq };
      else headMatched = true;
    }
    if (kept !== undefined && e.seq === kept.seq && e.hash !== kept.hash) {
      return fail('edited', `line ${lineNo} (seq ${e.seq}) is not the entry of ${keptName}: the log was rewritten from seq ${e.seq} or earlier`, at);
    }
    if (e.seq === (head?.seq ?? 0) + 1) beyondLine = lineNo;
    seq = e.seq;
    prevHash = e.hash;
    chained++;
  }
  if (headReplaced !== undefined) {
    return fail('edited', `line ${headReplaced.line} (seq ${headReplaced.seq}) is not the entry the agent database recorded at that seq: replaced`, headReplaced);
  }
  if (seq > 0 && unchained.length > 0) return fail('unchained', `line ${unchained[0]} has no chain fields but comes after the chain started: appended by hand or by an older agent`, { line: unchained[0]! });
  if (head !== undefined && head.seq > seq) {
    return fail('truncated', `the log ends at seq ${seq} (line ${lineNo}) but the agent database's head is seq ${head.seq}: the last ${head.seq - seq} entr(ies) were removed`, { line: lineNo, seq: seq + 1 });
  }
  if (kept !== undefined && kept.seq > seq) {
    return fail('truncated', `the log ends at seq ${seq} (line ${lineNo}) but ${keptName} is later: entries ${seq + 1}..${kept.seq} were removed (and the agent database's head rewritten)`, { line: lineNo, seq: seq + 1 });
  }
  if (kept !== undefined && kept.seq === 0 && kept.hash !== GENESIS) return fail('edited', `${keptName} is not a head audit verify prints (seq 0 has the hash ${GENESIS})`, {});
  if (!headMatched) return fail('edited', `the agent database's head (seq ${head!.seq}) matches no line`, {});
  // One line beyond the head is an append in flight (or cut off by a crash) only when the database recorded it as pending first.
  const base = head?.seq ?? 0;
  const inFlight = seq === base + 1 && pending?.seq === seq && pending.hash === prevHash;
  if (seq > base && !inFlight) {
    return head === undefined
      ? fail('truncated', `the log is chained (to seq ${seq}) but the agent database has no head: the database was replaced`, {})
      : fail('edited', `the log goes on to seq ${seq}, beyond the agent database's head (seq ${base}), and line ${beyondLine} is not an append the agent recorded as pending: lines were appended outside the agent`, { line: beyondLine ?? lineNo, seq: base + 1 });
  }
  return { ok: true, entries: lineNo, chained, headSeq: seq, head: prevHash };
}
