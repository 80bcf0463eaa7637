import type { PinnedReleaseKey } from './release-pin.js';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FedlhsError, sha256Hex } from '@fedlhs/core';
import { writeFileAtomic } from '@fedlhs/service';
import { CHAIN_FIELDS, chainedLine, lastLineHead, type AuditHead } from './audit-chain.js';

/** What `enrol` stores: the node credential and where it is valid. */
export interface NodeCredential {
  nodeId: string;
  siteName: string;
  /** The coordinator's address as enrolled with; later commands dial it unless told otherwise. */
  coordinator: string;
  credential: string;
  enrolledAt: string;
  /** How the coordinator was reached at enrolment (absent in credentials from older agents). */
  tls?: {
    mode: 'tls' | 'plaintext';
    /** The CA bundle trusted at enrolment, copied into the state directory (coordinator-ca.pem); empty: system roots. */
    caFile: string;
    /** The certificate name expected, if not the address host. */
    serverName: string;
    /** SHA-256 fingerprint of the coordinator's certificate at enrolment, for out-of-band comparison. */
    certificateSha256?: string | undefined;
  } | undefined;
  /** The coordinator's release signing key pinned at enrolment (absent: it sent none). */
  releaseKey?: PinnedReleaseKey | undefined;
}

export interface ManifestRecord {
  hash: string;
  studyId: string;
  name: string;
  json: string;
  firstSeenAt: number;
  approvedAt: number | null;
  approvedBy: string | null;
}

/** A study series template seen in a Study announcement (verified against its hash before it is kept). */
export interface SeriesTemplateRecord {
  hash: string;
  name: string;
  /** The template as announced: canonical JSON whose SHA-256 is `hash`. */
  json: string;
  firstSeenAt: number;
  approvedAt: number | null;
  approvedBy: string | null;
}

/** What a hash given to `approve` names: a study manifest or a series template. */
export type Approvable = { kind: 'manifest'; record: ManifestRecord } | { kind: 'series'; record: SeriesTemplateRecord };

/** One line of the audit log: something that left the clinic, or what happened to a release here (kept, refused, deployed). */
export interface AuditEntry {
  time: string;
  // The release_* records (issue 12): what was kept, refused, deployed or rolled back here, and the live performance sent.
  event: 'enrolled' | 'readiness_sent' | 'statistics_sent' | 'update_sent' | 'evaluation_sent' | 'task_declined' | 'task_failed' | 'release_kept' | 'release_refused' | 'release_deployed' | 'release_rolled_back' | 'release_performance_sent' | 'release_key_pinned' | 'series_approved' | 'series_template_refused' | 'series_data_sent' | 'champion_unavailable' | 'privacy_spent' | 'secagg_stage_sent' | 'secagg_identity_created' | 'secagg_peer_pinned' | 'secagg_peer_refused' | 'secagg_peer_forgotten' | 'failpoints_armed' | 'certificate_issued' | 'certificate_renewed';
  coordinator: string;
  studyId?: string;
  round?: number;
  taskId?: string;
  bytes?: number;
  sha256?: string;
  numExamples?: number;
  metrics?: Record<string, number | undefined>;
  outcome?: string;
  detail?: string;
  /**
   * Exactly the fields and values of the message sent (aggregates only: counts, sums, metrics,
   * states, the weights' size and digest but not the weights themselves).
   */
  sent?: Record<string, unknown>;
  /** Release events: which release (study name, version, envelope digest) and, for a refusal, why. */
  release?: { studyName: string; version: number; [key: string]: unknown };
  /** Series events: which series template was approved (or refused), or which series a data report was for. */
  series?: { name: string; templateSha256: string };
  /** privacy_spent: the round's epsilon cost as accounted here, and the totals after it (privacy-budget.ts). */
  privacy?: { epsilonStudy: number; epsilonLifetime: number; delta: number; effectiveNoiseMultiplier: number; placement: string };
  /** secagg_peer_* and secagg_identity_created: which clinic's identity key (fingerprint: SHA-256 of the raw key, hex) and, for a refusal, the one pinned. */
  peer?: { nodeId: string; fingerprint: string; pinnedFingerprint?: string };
}

/** A neighbouring clinic's secure-aggregation identity key as pinned here the first time it was seen (peer-pins.ts). */
export interface PeerPinRecord {
  nodeId: string;
  /** The raw 32-byte Ed25519 public key. */
  identityKey: Uint8Array;
  firstSeenAt: number;
  /** Where it was first seen. */
  studyId: string;
  round: number;
}

/** One row of the privacy ledger: what one TRAIN task of a DP study spent (RDP at DEFAULT_ORDERS). */
export interface PrivacySpendRecord {
  studyId: string;
  round: number;
  taskId: string;
  /** RDP per order of the core accountant's DEFAULT_ORDERS; Infinity: an unprotected round. */
  rdp: number[];
  /** The study's epsilon after this spend (at the delta of the time). */
  epsilonAfter: number;
  at: number;
}

// RDP may be Infinity (no protection), which JSON cannot hold: stored as null.
const encodeRdp = (rdp: readonly number[]): string => JSON.stringify(rdp.map((x) => (Number.isFinite(x) ? x : null)));
const decodeRdp = (json: string): number[] => (JSON.parse(json) as (number | null)[]).map((x) => (x === null ? Infinity : x));

/**
 * The agent's local state in its state directory: the credential file (mode 0600), a SQLite
 * database of manifests seen and approved, and `audit.jsonl`, an append-only log of exactly
 * what the agent sent (never record-level data, because none is ever sent).
 */
export class AgentState {
  readonly dir: string;
  private dbHandle: Database.Database | undefined;
  /** audit.lock: a SQLite file whose write lock serialises audit appenders across processes (released if one dies). */
  private auditLockHandle: Database.Database | undefined;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get credentialPath(): string {
    return join(this.dir, 'node-credential.json');
  }

  get auditPath(): string {
    return join(this.dir, 'audit.jsonl');
  }

  saveCredential(c: NodeCredential): void {
    writeFileAtomic(this.credentialPath, `${JSON.stringify(c, null, 2)}\n`, 0o600);
  }

  /** The stored credential; refuses one that others can read. */
  loadCredential(): NodeCredential | undefined {
    if (!existsSync(this.credentialPath)) return undefined;
    const mode = statSync(this.credentialPath).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new FedlhsError('CONFIG_INVALID', `${this.credentialPath} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${this.credentialPath}`);
    }
    let value: Partial<NodeCredential>;
    try {
      value = JSON.parse(readFileSync(this.credentialPath, 'utf8')) as Partial<NodeCredential>;
    } catch (err) {
      throw new FedlhsError('CONFIG_INVALID', `${this.credentialPath} is not a fedlhs node credential file (${(err as Error).message})`, { cause: err });
    }
    if (typeof value.nodeId !== 'string' || typeof value.credential !== 'string' || typeof value.siteName !== 'string') {
      throw new FedlhsError('CONFIG_INVALID', `${this.credentialPath} is not a fedlhs node credential file`);
    }
    return value as NodeCredential;
  }

  private get db(): Database.Database {
    if (this.dbHandle === undefined) {
      const db = new Database(join(this.dir, 'agent.db'));
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.exec(`CREATE TABLE IF NOT EXISTS manifests (
        hash TEXT PRIMARY KEY, study_id TEXT NOT NULL, name TEXT NOT NULL, json TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL, approved_at INTEGER, approved_by TEXT)`);
      // Added with study series (issue 13): a database from an older agent just gains the table.
      db.exec(`CREATE TABLE IF NOT EXISTS series_templates (
        hash TEXT PRIMARY KEY, name TEXT NOT NULL, json TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL, approved_at INTEGER, approved_by TEXT)`);
      // Data-triggered series (issue 13): what this clinic had when it sent READY for a run, for
      // the count of newly labelled patients of a series without a window.
      db.exec(`CREATE TABLE IF NOT EXISTS series_counts (
        series_name TEXT NOT NULL, run INTEGER NOT NULL, template_sha256 TEXT NOT NULL,
        labelled INTEGER NOT NULL, recorded_at INTEGER NOT NULL, PRIMARY KEY (series_name, run))`);
      // The privacy ledger (issue 14): what each TRAIN task of a DP study spent. Added by
      // CREATE IF NOT EXISTS: an older database keeps every row it had and gains the table.
      db.exec(`CREATE TABLE IF NOT EXISTS privacy_ledger (
        study_id TEXT NOT NULL, round INTEGER NOT NULL, task_id TEXT NOT NULL, rdp_json TEXT NOT NULL,
        epsilon_after REAL NOT NULL, spent_at INTEGER NOT NULL, PRIMARY KEY (study_id, round, task_id))`);
      // Secure-aggregation peer pins (issue 14, review HIGH 1): each neighbour's identity key as
      // first seen. Added by CREATE IF NOT EXISTS like the ledger: an older database gains it empty.
      db.exec(`CREATE TABLE IF NOT EXISTS secagg_peer_pins (
        node_id TEXT PRIMARY KEY, identity_key BLOB NOT NULL, first_seen_at INTEGER NOT NULL,
        study_id TEXT NOT NULL, round INTEGER NOT NULL)`);
      // The audit log's chain head (issue 15, audit-chain.ts): where audit.jsonl must end, so a
      // cut tail shows. Added by CREATE IF NOT EXISTS: an older database gains it empty.
      db.exec(`CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, updated_at INTEGER NOT NULL)`);
      // The line being appended, recorded before the append (review auditchain LOW 5): a log one
      // line beyond the head is a crash mid-append only when that line is this one.
      db.exec(`CREATE TABLE IF NOT EXISTS audit_pending (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL)`);
      this.dbHandle = db;
    }
    return this.dbHandle;
  }

  get caPath(): string {
    return join(this.dir, 'coordinator-ca.pem');
  }

  /**
   * The one manifest whose hash starts with `prefix` (at least 8 lowercase hex digits, as git
   * takes abbreviated hashes); throws naming the problem when there is none or several.
   */
  resolveManifest(prefix: string): ManifestRecord {
    if (!/^[0-9a-f]{8,64}$/.test(prefix)) {
      throw new FedlhsError('INVALID_ARGUMENT', `${JSON.stringify(prefix)} is not a manifest sha256 or a prefix of one (8 to 64 lowercase hex digits)`, { details: { field: 'hash' } });
    }
    const hits = (this.db.prepare(`SELECT * FROM manifests WHERE substr(hash, 1, ?) = ? ORDER BY first_seen_at`).all(prefix.length, prefix) as Record<string, unknown>[]).map(toManifest);
    if (hits.length === 0) {
      throw new FedlhsError('NOT_FOUND', `no manifest with hash ${prefix}${prefix.length < 64 ? '…' : ''}; run \`fedlhs-agent review\` to fetch pending studies`, { details: { what: 'manifest', id: prefix } });
    }
    if (hits.length > 1) throw new FedlhsError('INVALID_ARGUMENT', `${prefix} is ambiguous: it starts ${hits.map((h) => `${h.hash} (${h.name})`).join(' and ')}; give more digits`, { details: { field: 'hash' } });
    return hits[0]!;
  }

  /**
   * The one manifest or series template whose hash starts with `prefix` (as resolveManifest);
   * a prefix that starts one of each is ambiguous too.
   */
  resolveApprovable(prefix: string): Approvable {
    if (!/^[0-9a-f]{8,64}$/.test(prefix)) {
      throw new FedlhsError('INVALID_ARGUMENT', `${JSON.stringify(prefix)} is not a manifest sha256 or a prefix of one (8 to 64 lowercase hex digits), nor a series template's`, { details: { field: 'hash' } });
    }
    const manifests = (this.db.prepare(`SELECT * FROM manifests WHERE substr(hash, 1, ?) = ? ORDER BY first_seen_at`).all(prefix.length, prefix) as Record<string, unknown>[]).map(toManifest);
    const templates = (this.db.prepare(`SELECT * FROM series_templates WHERE substr(hash, 1, ?) = ? ORDER BY first_seen_at`).all(prefix.length, prefix) as Record<string, unknown>[]).map(toTemplate);
    const hits: Approvable[] = [...manifests.map((record) => ({ kind: 'manifest' as const, record })), ...templates.map((record) => ({ kind: 'series' as const, record }))];
    if (hits.length === 0) {
      throw new FedlhsError('NOT_FOUND', `no manifest with hash ${prefix}${prefix.length < 64 ? '…' : ''}, and no series template either; run \`fedlhs-agent review\` to fetch pending studies`, { details: { what: 'manifest', id: prefix } });
    }
    if (hits.length > 1) {
      const names = hits.map((h) => `${h.record.hash} (${h.kind === 'series' ? 'series ' : ''}${h.record.name})`);
      throw new FedlhsError('INVALID_ARGUMENT', `${prefix} is ambiguous: it starts ${names.join(' and ')}; give more digits`, { details: { field: 'hash' } });
    }
    return hits[0]!;
  }

  /** Remembers a series template already checked against its hash (idempotent). */
  recordSeriesTemplate(t: { hash: string; name: string; json: string }): void {
    this.db.prepare(`INSERT OR IGNORE INTO series_templates (hash, name, json, first_seen_at) VALUES (?,?,?,?)`).run(t.hash, t.name, t.json, Date.now());
  }

  getSeriesTemplate(hash: string): SeriesTemplateRecord | undefined {
    const r = this.db.prepare(`SELECT * FROM series_templates WHERE hash = ?`).get(hash) as Record<string, unknown> | undefined;
    return r === undefined ? undefined : toTemplate(r);
  }

  listSeriesTemplates(): SeriesTemplateRecord[] {
    return (this.db.prepare(`SELECT * FROM series_templates ORDER BY first_seen_at`).all() as Record<string, unknown>[]).map(toTemplate);
  }

  /** Approves a series template (idempotent: a second approval keeps the first one's time and operator). */
  approveSeriesTemplate(hash: string, by: string): SeriesTemplateRecord {
    this.db.prepare(`UPDATE series_templates SET approved_at = ?, approved_by = ? WHERE hash = ? AND approved_at IS NULL`).run(Date.now(), by, hash);
    const t = this.getSeriesTemplate(hash);
    if (t === undefined) throw new FedlhsError('NOT_FOUND', `no series template with hash ${hash}; run \`fedlhs-agent review\` to fetch pending studies`, { details: { what: 'manifest', id: hash } });
    return t;
  }

  /**
   * Records the eligible labelled records this clinic had when it sent READY for run `run` of a
   * series (the latest READY wins: it is closest to what the run trained on).
   */
  recordSeriesCount(c: { seriesName: string; run: number; templateSha256: string; labelled: number }): void {
    this.db.prepare(`INSERT OR REPLACE INTO series_counts (series_name, run, template_sha256, labelled, recorded_at) VALUES (?,?,?,?,?)`).run(c.seriesName, c.run, c.templateSha256, c.labelled, Date.now());
  }

  /** What recordSeriesCount kept for run `run` of a series, if this clinic sent READY for it. */
  getSeriesCount(seriesName: string, run: number): { templateSha256: string; labelled: number } | undefined {
    const r = this.db.prepare(`SELECT template_sha256, labelled FROM series_counts WHERE series_name = ? AND run = ?`).get(seriesName, run) as { template_sha256: string; labelled: number } | undefined;
    return r === undefined ? undefined : { templateSha256: r.template_sha256, labelled: r.labelled };
  }

  /** Remembers a manifest (idempotent). */
  /** Keeps a manifest seen. DATA_LOSS if its JSON does not hash to `hash`: nothing is ever kept (or approved) under a hash it does not have. */
  recordManifest(m: { hash: string; studyId: string; name: string; json: string }): void {
    const actual = sha256Hex(m.json);
    if (actual !== m.hash) throw new FedlhsError('DATA_LOSS', `manifest of study ${m.studyId} hashes to ${actual}, not the ${m.hash} it was given with: not kept`);
    this.db.prepare(`INSERT OR IGNORE INTO manifests (hash, study_id, name, json, first_seen_at) VALUES (?,?,?,?,?)`).run(m.hash, m.studyId, m.name, m.json, Date.now());
  }

  getManifest(hash: string): ManifestRecord | undefined {
    const r = this.db.prepare(`SELECT * FROM manifests WHERE hash = ?`).get(hash) as Record<string, unknown> | undefined;
    return r === undefined ? undefined : toManifest(r);
  }

  listManifests(): ManifestRecord[] {
    return (this.db.prepare(`SELECT * FROM manifests ORDER BY first_seen_at`).all() as Record<string, unknown>[]).map(toManifest);
  }

  /** Whether the manifest itself (not a series template) was approved. */
  isManifestApproved(hash: string): boolean {
    return this.getManifest(hash)?.approvedAt != null;
  }

  approve(hash: string, by: string): ManifestRecord {
    const res = this.db.prepare(`UPDATE manifests SET approved_at = ?, approved_by = ? WHERE hash = ? AND approved_at IS NULL`).run(Date.now(), by, hash);
    const m = this.getManifest(hash);
    if (m === undefined) throw new FedlhsError('NOT_FOUND', `no manifest with hash ${hash}; run \`fedlhs-agent review\` to fetch pending studies`, { details: { what: 'manifest', id: hash } });
    if (res.changes === 0 && m.approvedAt !== null) return m;
    return m;
  }

  /** The most recent approved manifest of a study name other than `exceptHash`. */
  previousApproved(name: string, exceptHash: string): ManifestRecord | undefined {
    const r = this.db
      .prepare(`SELECT * FROM manifests WHERE name = ? AND hash != ? AND approved_at IS NOT NULL ORDER BY approved_at DESC LIMIT 1`)
      .get(name, exceptHash) as Record<string, unknown> | undefined;
    return r === undefined ? undefined : toManifest(r);
  }

  /**
   * Records a spend in the privacy ledger, durably, before the update it pays for leaves. The
   * same task run again (the coordinator re-sent it) releases a fresh noisy update, so its RDP is
   * added to the row's, never replaced.
   */
  recordPrivacySpend(r: PrivacySpendRecord): void {
    const tx = this.db.transaction(() => {
      const row = this.db.prepare(`SELECT rdp_json FROM privacy_ledger WHERE study_id = ? AND round = ? AND task_id = ?`).get(r.studyId, r.round, r.taskId) as { rdp_json: string } | undefined;
      const rdp = row === undefined ? r.rdp : decodeRdp(row.rdp_json).map((x, i) => x + (r.rdp[i] ?? Infinity));
      this.db.prepare(`INSERT OR REPLACE INTO privacy_ledger (study_id, round, task_id, rdp_json, epsilon_after, spent_at) VALUES (?,?,?,?,?,?)`)
        .run(r.studyId, r.round, r.taskId, encodeRdp(rdp), Number.isFinite(r.epsilonAfter) ? r.epsilonAfter : 1e308, r.at);
    });
    tx();
  }

  /** The privacy ledger, oldest first; one study's rows when `studyId` is given. */
  listPrivacySpends(studyId?: string): PrivacySpendRecord[] {
    const rows = (studyId === undefined
      ? this.db.prepare(`SELECT * FROM privacy_ledger ORDER BY spent_at, study_id, round`).all()
      : this.db.prepare(`SELECT * FROM privacy_ledger WHERE study_id = ? ORDER BY spent_at, round`).all(studyId)) as Record<string, unknown>[];
    return rows.map((r) => ({
      studyId: r.study_id as string, round: r.round as number, taskId: r.task_id as string, rdp: decodeRdp(r.rdp_json as string),
      epsilonAfter: (r.epsilon_after as number) >= 1e308 ? Infinity : (r.epsilon_after as number), at: r.spent_at as number,
    }));
  }

  /** The identity key pinned for a peer clinic, if any. */
  getPeerPin(nodeId: string): PeerPinRecord | undefined {
    const r = this.db.prepare(`SELECT * FROM secagg_peer_pins WHERE node_id = ?`).get(nodeId) as Record<string, unknown> | undefined;
    return r === undefined ? undefined : toPeerPin(r);
  }

  /**
   * Pins a peer's identity key unless one is pinned already (another process may have pinned it
   * meanwhile); returns the pin now in force, which the caller compares with the key it holds.
   */
  pinPeer(p: PeerPinRecord): { pin: PeerPinRecord; inserted: boolean } {
    const res = this.db.prepare(`INSERT OR IGNORE INTO secagg_peer_pins (node_id, identity_key, first_seen_at, study_id, round) VALUES (?,?,?,?,?)`)
      .run(p.nodeId, Buffer.from(p.identityKey), p.firstSeenAt, p.studyId, p.round);
    return { pin: this.getPeerPin(p.nodeId)!, inserted: res.changes > 0 };
  }

  /** Every pinned peer, by node id. */
  listPeerPins(): PeerPinRecord[] {
    return (this.db.prepare(`SELECT * FROM secagg_peer_pins ORDER BY node_id`).all() as Record<string, unknown>[]).map(toPeerPin);
  }

  /** Removes a peer's pin; the removed pin, or undefined when there was none. */
  forgetPeerPin(nodeId: string): PeerPinRecord | undefined {
    return this.db.transaction(() => {
      const pin = this.getPeerPin(nodeId);
      if (pin !== undefined) this.db.prepare(`DELETE FROM secagg_peer_pins WHERE node_id = ?`).run(nodeId);
      return pin;
    })();
  }

  /**
   * Appends one audit line, hash-chained to the one before (audit-chain.ts), and flushes it to
   * disk before returning. Appenders across processes (the agent and a CLI command) take turns
   * on audit.lock's write lock; the new line's (seq, hash) is committed to the agent database
   * as pending before the append and becomes the head after it, so a crash in between leaves a
   * line the next append (and `audit verify`) can recognise, and no other extra line passes.
   */
  audit(entry: Omit<AuditEntry, 'time'>): void {
    const db = this.db;
    const lock = (this.auditLockHandle ??= new Database(join(this.dir, 'audit.lock')));
    lock.pragma('busy_timeout = 10000');
    lock.exec('BEGIN IMMEDIATE');
    try {
      const next = chainedLine(this.auditPath, { time: new Date().toISOString(), ...entry }, this.settleAuditPending());
      db.prepare(`INSERT OR REPLACE INTO audit_pending (id, seq, hash, created_at) VALUES (1, ?, ?, ?)`).run(next.head.seq, next.head.hash, Date.now());
      appendFileSync(this.auditPath, next.text, { mode: 0o600, flush: true });
      db.transaction(() => {
        this.setAuditHead(next.head);
        db.prepare(`DELETE FROM audit_pending`).run();
      }).immediate();
      if (next.startedLegacy !== undefined) {
        process.emitWarning(`${this.auditPath}: audit hash chain started at line ${next.startedLegacy.lines + 1}; the ${next.startedLegacy.lines} earlier line(s) are covered by their SHA-256 ${next.startedLegacy.sha256} (\`fedlhs-agent audit verify\` checks it)`, { code: 'FEDLHS_AUDIT_CHAIN_STARTED' });
      }
      if (next.gap?.torn === true) {
        process.emitWarning(`${this.auditPath}: the audit log ended in a torn line (not JSON: a crash or a full disk part-way through an append); the new line chains to the agent database's head (seq ${next.gap.headSeq}) and records the tear, and \`fedlhs-agent audit verify\` names the torn line`, { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
      } else if (next.gap !== undefined) {
        process.emitWarning(`${this.auditPath}: the audit log did not end where the agent database's head (seq ${next.gap.headSeq}) says: it was cut, replaced or written to outside the agent; the new line records it and \`fedlhs-agent audit verify\` reports it`, { code: 'FEDLHS_AUDIT_CHAIN_GAP' });
      }
    } finally {
      lock.exec('COMMIT');
    }
  }

  private setAuditHead(head: AuditHead): void {
    this.db.prepare(`INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, updated_at = excluded.updated_at`)
      .run(head.seq, head.hash, Date.now());
  }

  /**
   * The head after an append that a crash interrupted (called under audit.lock): the pending
   * line becomes the head when it is the log's last line; otherwise it was never written whole
   * and is dropped.
   */
  private settleAuditPending(): AuditHead | undefined {
    const pending = this.auditPending();
    if (pending === undefined) return this.auditHead();
    const last = lastLineHead(this.auditPath);
    this.db.transaction(() => {
      if (last?.seq === pending.seq && last.hash === pending.hash) this.setAuditHead(pending);
      this.db.prepare(`DELETE FROM audit_pending`).run();
    }).immediate();
    return this.auditHead();
  }

  /** The line an append recorded before writing it and has not yet made the head (a crash or an append in flight). */
  auditPending(): AuditHead | undefined {
    const r = this.db.prepare(`SELECT seq, hash FROM audit_pending WHERE id = 1`).get() as AuditHead | undefined;
    return r === undefined ? undefined : { seq: r.seq, hash: r.hash };
  }

  /** The audit chain head kept in the database (undefined before the first chained line). */
  auditHead(): AuditHead | undefined {
    const r = this.db.prepare(`SELECT seq, hash FROM audit_head WHERE id = 1`).get() as AuditHead | undefined;
    return r === undefined ? undefined : { seq: r.seq, hash: r.hash };
  }

  /**
   * The audit log's bytes and the chain head as of one moment, for `audit verify` beside a
   * running agent: the head is read before and after the file, and again while it moved (an
   * append committed in between), so the file holds the head's line and at most the one line
   * being appended (review auditchain LOW 4). `between` is for tests: it runs between the first
   * head read and the file read.
   */
  auditSnapshot(between?: () => void): { bytes: Buffer; head: AuditHead | undefined; pending: AuditHead | undefined } {
    const both = () => ({ head: this.auditHead(), pending: this.auditPending() });
    for (let attempt = 1; ; attempt++) {
      const before = both();
      if (attempt === 1) between?.();
      const bytes = existsSync(this.auditPath) ? readFileSync(this.auditPath) : Buffer.alloc(0);
      if (JSON.stringify(before) === JSON.stringify(both())) return { bytes, ...before };
      if (attempt === 20) throw new FedlhsError('INTERNAL', `the audit log kept changing while it was read (20 attempts): run audit verify again`);
    }
  }

  /** The audit log's entries, without their chain fields (`audit verify` checks those). */
  readAudit(): AuditEntry[] {
    if (!existsSync(this.auditPath)) return [];
    return readFileSync(this.auditPath, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      for (const f of CHAIN_FIELDS) delete e[f];
      return e as unknown as AuditEntry;
    });
  }

  close(): void {
    this.dbHandle?.close();
    this.dbHandle = undefined;
    this.auditLockHandle?.close();
    this.auditLockHandle = undefined;
  }
}

function toPeerPin(r: Record<string, unknown>): PeerPinRecord {
  return {
    nodeId: r.node_id as string,
    identityKey: new Uint8Array(r.identity_key as Buffer),
    firstSeenAt: r.first_seen_at as number,
    studyId: r.study_id as string,
    round: r.round as number,
  };
}

function toTemplate(r: Record<string, unknown>): SeriesTemplateRecord {
  return {
    hash: r.hash as string,
    name: r.name as string,
    json: r.json as string,
    firstSeenAt: r.first_seen_at as number,
    approvedAt: (r.approved_at as number | null) ?? null,
    approvedBy: (r.approved_by as string | null) ?? null,
  };
}

function toManifest(r: Record<string, unknown>): ManifestRecord {
  return {
    hash: r.hash as string,
    studyId: r.study_id as string,
    name: r.name as string,
    json: r.json as string,
    firstSeenAt: r.first_seen_at as number,
    approvedAt: (r.approved_at as number | null) ?? null,
    approvedBy: (r.approved_by as string | null) ?? null,
  };
}

