import Database from 'better-sqlite3';
import { FedlhsError } from '@fedlhs/core';
import type {
  PromotionRecord, SeriesRecord, SeriesRunRecord,
  ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord,
  ContributionFilter,
  ContributionRecord,
  ContributionTotals,
  CoordinatorStore,
  JoinTokenRecord,
  MetricRecord,
  NodeRecord,
  NodeCaRecord,
  NodeCertificateRecord,
  NewNodeCertificate,
  NodeSummaryRecord,
  Page,
  PageRequest,
  RejectionCount,
  RoundRecord,
  RoundTaskCount,
  StudyRecord,
  StatisticsRecord,
  OperatorRecord,
  AdminActionRecord,
  TaskFilter,
  TaskRecord,
  TaskStateName,
} from './store.js';
import { blobReferenceSet } from './store/blob-references.js';
import { GroupCommitter, type BatchStats, type UnitOutcome } from './store/group-commit.js';
import { decodeCursor, pageLimit, toPage } from './store/paging.js';
import { MIGRATIONS, SCHEMA_VERSION } from './store/sqlite/migrations.js';
import type { GroupCommitOptions, WriteOp, WriteResult } from './store/write-ops.js';
import { contribution, joinToken, metric, node, round, study, task, type Row } from './store/rows.js';
import { SingleWriteStore } from './store/single-writes.js';
import { applyReleaseOp, sqliteReleaseReads, type SqliteRunner } from './store/sqlite/releases.js';
import { applySeriesOp, sqliteSeriesReads } from './store/sqlite/series.js';
import { auditSqliteOp, backfillSqliteAuditChain } from './store/sqlite/audit-chain.js';
import { sqliteNodeCertificates } from './store/sqlite/node-certificates.js';
import { toStorageFault } from './storage-health.js';

const TASK_SELECT = `SELECT t.*, r.study_id, r.round, r.attempt FROM tasks t JOIN rounds r ON r.id = t.round_id`;
/** Task states that mean a clinic did not deliver (the status view's last error). */
const PROBLEM_STATES: readonly TaskStateName[] = ['FAILED', 'DECLINED', 'REJECTED'];

/**
 * STORAGE_FAULT for a storage fault (full disk, read-only file, I/O error; storage-health.ts
 * classifies the result codes), naming the database; STORE_UNAVAILABLE for a closed store (a
 * shutdown, not a fault); other errors as they are (a unit's own constraint or guard).
 */
export function mapSqliteError(err: unknown, path = 'the coordinator database'): unknown {
  if (err instanceof FedlhsError) return err;
  const code = err instanceof Database.SqliteError ? err.code : undefined;
  if (code !== undefined) {
    const fault = toStorageFault(err, `write the coordinator database (${code})`, path);
    if (fault !== undefined) return fault;
  }
  if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
    return new FedlhsError('STORE_UNAVAILABLE', 'the coordinator database is closed', { cause: err });
  }
  return err;
}

/** One queued write: a synchronous function run inside its own SAVEPOINT of a batch. */
interface SqliteUnit {
  label: string;
  ops: number;
  fn: () => unknown;
}

export interface SqliteStoreOptions {
  /** Group-commit window and batch size (defaults in store/group-commit.ts). */
  groupCommit?: GroupCommitOptions;
  /** Called after every batch, e.g. to feed `fedlhs_store_batch_size` and `fedlhs_store_commit_seconds`. */
  onBatch?: (stats: BatchStats) => void;
  /** Extra PRAGMAs run after opening, e.g. `max_page_count = 100` (tests simulate a full disk with it). */
  pragmas?: readonly string[];
}

/**
 * SQLite (WAL, synchronous=FULL) implementation of the coordinator store. Every write, including
 * the single-row methods kept as API, is a unit of the group committer: units arriving within the
 * window share one `BEGIN IMMEDIATE … COMMIT` (one fsync), each under its own SAVEPOINT. Statements
 * are prepared once and cached by their text.
 */
export class SqliteStore extends SingleWriteStore implements CoordinatorStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  /** The database file, for messages. */
  readonly path: string;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly committer: GroupCommitter<SqliteUnit, unknown>;
  private observer: ((stats: BatchStats) => void) | undefined;
  /** A unit's function in its own savepoint (better-sqlite3 nests transactions as savepoints). */
  private readonly unitTx: (fn: () => unknown) => unknown;
  private readonly batchTx: Database.Transaction<(units: readonly SqliteUnit[]) => UnitOutcome<unknown>[]>;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    super();
    this.path = path;
    this.db = new Database(path);
    try {
      this.db.pragma('journal_mode = WAL');
      // FULL: a committed round must survive power loss, not only a process crash.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
      backfillSqliteAuditChain(this.db);
      for (const p of options.pragmas ?? []) this.db.pragma(p);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.observer = options.onBatch;
    this.unitTx = this.db.transaction((fn: () => unknown) => fn());
    this.batchTx = this.db.transaction((units: readonly SqliteUnit[]) => {
      const outcomes: UnitOutcome<unknown>[] = [];
      for (const u of units) {
        try {
          outcomes.push({ ok: true, value: this.unitTx(u.fn) });
        } catch (error) {
          // SQLite rolls the whole transaction back on some faults (SQLITE_FULL, IOERR, BUSY):
          // then the units before this one are gone too, and the batch fails as a whole.
          if (!this.db.inTransaction) throw error;
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    });
    this.committer = new GroupCommitter<SqliteUnit, unknown>((units) => this.batchTx.immediate(units), {
      ...options.groupCommit,
      countOps: (u) => u.ops,
      mapError: (err) => mapSqliteError(err, path),
      onBatch: (stats) => this.observer?.(stats),
    });
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new FedlhsError('STORE_VERSION_TOO_NEW', `the database has schema version ${version}; this coordinator knows up to ${SCHEMA_VERSION}: upgrade the coordinator`, {
        details: { found: version, supported: SCHEMA_VERSION },
      });
    }
    // Foreign keys off while migrating (SQLite's procedure for rebuilding a referenced table,
    // migration 9); each migration checks them before it commits, so none is left broken.
    if (version < SCHEMA_VERSION) this.db.pragma('foreign_keys = OFF');
    try {
      for (let v = version; v < SCHEMA_VERSION; v++) {
        this.db.transaction(() => {
          this.db.exec(MIGRATIONS[v]!);
          const broken = this.db.pragma('foreign_key_check') as unknown[];
          if (broken.length > 0) throw new FedlhsError('INTERNAL', `schema migration ${v + 1} left ${broken.length} broken foreign key(s): ${JSON.stringify(broken.slice(0, 3))}`);
          this.db.pragma(`user_version = ${v + 1}`);
        }).immediate();
      }
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }

  /** The statement for `sql`, prepared on first use and kept. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
  private all(sql: string, ...params: unknown[]): Row[] {
    return this.stmt(sql).all(...params) as Row[];
  }
  private get(sql: string, ...params: unknown[]): Row | undefined {
    return this.stmt(sql).get(...params) as Row | undefined;
  }
  private run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.stmt(sql).run(...params);
  }
  /** The statement helpers, for the release code (store/sqlite/releases.ts). */
  private readonly runner: SqliteRunner = {
    all: (sql, ...params) => this.all(sql, ...params),
    get: (sql, ...params) => this.get(sql, ...params),
    run: (sql, ...params) => this.run(sql, ...params),
  };

  /** Queues `fn` as one unit of the group committer; resolves with its value after COMMIT. */
  private enqueue<R>(label: string, fn: () => R, ops = 1): Promise<R> {
    return this.committer.submit({ label, ops, fn }) as Promise<R>;
  }

  /**
   * A durable write that changes nothing (storage-health.ts probes with it): rewrites the schema
   * version in its own unit, so page 1 goes through the WAL and the commit's fsync like any unit.
   * Rejects with STORAGE_FAULT while the database cannot be written.
   */
  async probeWrite(): Promise<void> {
    await this.enqueue('storage.probe', () => this.db.pragma(`user_version = ${SCHEMA_VERSION}`));
  }

  /** Sets (or clears) the batch observer; the coordinator feeds its store metrics from it. */
  onBatch(observer: ((stats: BatchStats) => void) | undefined): void {
    this.observer = observer;
  }

  write(ops: readonly WriteOp[], label: string): Promise<WriteResult> {
    return this.enqueue(
      label,
      () => {
        const result: WriteResult = { roundIds: [], cancelled: [] };
        for (const op of ops) this.apply(op, result);
        return result;
      },
      ops.length,
    );
  }

  private insertTaskRow(t: TaskRecord): void {
    this.run(
      `INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      t.id, t.roundId, t.nodeId, t.kind, t.state, t.detail, t.modelSha256, t.deadline, t.createdAt, t.endedAt ?? null,
    );
  }
  private insertContributionRow(c: ContributionRecord): void {
    this.run(
      `INSERT INTO contributions (task_id, study_id, round, attempt, node_id, num_examples, sha256, bytes, accepted, reason_code, reason, received_at, delta_norm) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      c.taskId, c.studyId, c.round, c.attempt, c.nodeId, c.numExamples, c.sha256, c.bytes, c.accepted ? 1 : 0, c.reasonCode, c.reason, c.receivedAt, c.deltaNorm ?? null,
    );
  }
  private insertStudyRow(st: StudyRecord): void {
    this.run(
      `INSERT INTO studies (id, name, manifest_json, manifest_hash, state, reason, last_committed_round, strategy_state, parameters, created_at, ended_at, model_spec) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
      st.id, st.name, st.manifestJson, st.manifestHash, st.state, st.reason, st.lastCommittedRound, st.strategyState, st.parameters, st.createdAt, st.endedAt, st.modelSpec ?? null,
    );
  }
  private insertRoundRow(r: Omit<RoundRecord, 'id'>): number {
    const res = this.run(
      `INSERT INTO rounds (study_id, round, attempt, state, reason, started_at, ended_at, participants, checkpoint_path, checkpoint_sha256) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      r.studyId, r.round, r.attempt, r.state, r.reason, r.startedAt, r.endedAt, r.participants, r.checkpointPath, r.checkpointSha256,
    );
    return Number(res.lastInsertRowid);
  }
  private insertNodeRow(n: NodeRecord): void {
    this.run(
      `INSERT INTO nodes (id, site_name, credential_hash, created_at, revoked_at, last_seen_at, agent_version, training_backend) VALUES (?,?,?,?,?,?,?,?)`,
      n.id, n.siteName, n.credentialHash, n.createdAt, n.revokedAt, n.lastSeenAt, n.agentVersion, n.trainingBackend,
    );
  }
  private insertAdminActionRow(a: AdminActionRecord): void {
    this.run(`INSERT INTO admin_actions (at, operator, action, target, detail) VALUES (?,?,?,?,?)`, a.at, a.operator, a.action, a.target, a.detail);
  }
  private cancelOpenRows(roundId: number, detail: string, at: number | null): string[] {
    const ids = this.all(`SELECT id FROM tasks WHERE round_id = ? AND state = 'ASSIGNED' ORDER BY created_at, id`, roundId).map((r) => r.id as string);
    if (ids.length > 0) this.run(`UPDATE tasks SET state = 'CANCELLED', detail = ?, ended_at = ? WHERE round_id = ? AND state = 'ASSIGNED'`, detail, at, roundId);
    return ids;
  }
  private commitRoundRows(id: number, checkpoint: { path: string; sha256: string }, metrics: readonly MetricRecord[], strategyState: string | null, at: number): void {
    const r = this.get(`SELECT round, study_id, state FROM rounds WHERE id = ?`, id);
    if (r === undefined) throw new FedlhsError('NOT_FOUND', `round ${id} does not exist`, { details: { what: 'round', id: String(id) } });
    if (r.state === 'COMMITTED' || r.state === 'FAILED') throw new FedlhsError('STALE', `round ${id} is already ${String(r.state)}`);
    this.run(`UPDATE rounds SET state = 'COMMITTED', ended_at = ?, checkpoint_path = ?, checkpoint_sha256 = ? WHERE id = ?`, at, checkpoint.path, checkpoint.sha256, id);
    this.run(`UPDATE studies SET last_committed_round = ?, strategy_state = ? WHERE id = ?`, r.round, strategyState, r.study_id);
    this.insertMetricRows(metrics);
  }
  private insertMetricRows(metrics: readonly MetricRecord[]): void {
    for (const m of metrics) {
      this.run(
        `INSERT INTO metrics (round_id, node_id, phase, num_examples, loss, accuracy, auc, performance) VALUES (?,?,?,?,?,?,?,?)`,
        m.roundId, m.nodeId, m.phase, m.numExamples, m.loss, m.accuracy, m.auc ?? null, m.performance ?? null,
      );
    }
  }

  private apply(op: WriteOp, result: WriteResult): void {
    switch (op.op) {
      case 'task.insert':
        for (const t of op.tasks) this.insertTaskRow(t);
        return;
      case 'task.end': {
        const res = this.run(`UPDATE tasks SET state = ?, detail = ?, ended_at = ? WHERE id = ? AND state = 'ASSIGNED'`, op.to, op.detail, op.at, op.id);
        if (res.changes === 1) return;
        const row = this.get(`SELECT state FROM tasks WHERE id = ?`, op.id);
        if (row === undefined) throw new FedlhsError('NOT_FOUND', `task ${op.id} does not exist`, { details: { what: 'task', id: op.id } });
        throw new FedlhsError('STALE', `task ${op.id} is ${String(row.state)}, not open`);
      }
      case 'task.cancelOpen':
        result.cancelled.push(...this.cancelOpenRows(op.roundId, op.detail, op.at));
        return;
      case 'contribution.insert':
        this.insertContributionRow(op.c);
        auditSqliteOp(this.runner, op);
        return;
      case 'statistics.insert':
        this.run(`INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES (?,?,?,?,?)`, op.s.studyId, op.s.taskId, op.s.nodeId, op.s.report, op.s.receivedAt);
        return;
      case 'study.insert':
        this.insertStudyRow(op.s);
        return;
      case 'study.state':
        this.run(`UPDATE studies SET state = ?, reason = ?, ended_at = ? WHERE id = ?`, op.state, op.reason, op.at, op.id);
        return;
      case 'study.parameters':
        this.run(`UPDATE studies SET parameters = ? WHERE id = ?`, op.parameters, op.id);
        return;
      case 'round.insert':
        result.roundIds.push(this.insertRoundRow(op.r));
        return;
      case 'round.state':
        this.run(
          `UPDATE rounds SET state = ?, reason = COALESCE(?, reason), ended_at = COALESCE(?, ended_at), participants = COALESCE(?, participants) WHERE id = ?`,
          op.state, op.reason, op.at, op.participants ?? null, op.id,
        );
        return;
      case 'round.commit':
        this.commitRoundRows(op.id, op.checkpoint, op.metrics, op.strategyState, op.at);
        return;
      case 'metrics.insert':
        this.insertMetricRows(op.metrics);
        return;
      case 'node.seen':
        this.run(`UPDATE nodes SET last_seen_at = ?, agent_version = ?, training_backend = ? WHERE id = ?`, op.at, op.agentVersion, op.trainingBackend, op.id);
        return;
      case 'node.revoke':
        this.run(`UPDATE nodes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, op.at, op.id);
        auditSqliteOp(this.runner, op);
        return;
      case 'node.insert':
        this.insertNodeRow(op.n);
        return;
      case 'approval.record':
        this.run(
          `INSERT INTO study_approvals (study_id, node_id, manifest_sha256, approved_at) VALUES (?, ?, ?, ?) ON CONFLICT (study_id, node_id) DO NOTHING`,
          op.studyId, op.nodeId, op.manifestSha256, op.at,
        );
        return;
      case 'admin.action':
        this.insertAdminActionRow(op.a);
        auditSqliteOp(this.runner, op);
        return;
      case 'release.insert':
      case 'release.alias':
      case 'release.performance':
        applyReleaseOp(this.runner, op, result);
        auditSqliteOp(this.runner, op);
        return;
      case 'series.insert':
      case 'series.update':
      case 'series.run':
      case 'promotion.insert':
        applySeriesOp(this.runner, op);
        return;
    }
  }

  async insertJoinToken(t: JoinTokenRecord): Promise<void> {
    await this.enqueue('joinToken.insert', () =>
      this.run(
        `INSERT INTO join_tokens (id, token_hash, site_name, created_at, expires_at, used_at, used_by_node, created_by) VALUES (?,?,?,?,?,?,?,?)`,
        t.id, t.tokenHash, t.siteName, t.createdAt, t.expiresAt, t.usedAt, t.usedByNode, t.createdBy,
      ),
    );
  }
  async findJoinToken(tokenHash: string): Promise<JoinTokenRecord | undefined> {
    const r = this.get(`SELECT * FROM join_tokens WHERE token_hash = ?`, tokenHash);
    return r === undefined ? undefined : joinToken(r);
  }
  async redeemJoinToken(tokenId: string, n: NodeRecord): Promise<boolean> {
    try {
      return await this.enqueue('joinToken.redeem', () => {
        // A used (or unknown) token throws, and the unit's savepoint takes the node back out.
        this.insertNodeRow(n);
        const res = this.run(`UPDATE join_tokens SET used_at = ?, used_by_node = ? WHERE id = ? AND used_at IS NULL`, n.createdAt, n.id, tokenId);
        if (res.changes !== 1) throw new TokenAlreadyUsed();
        return true;
      }, 2);
    } catch (err) {
      if (err instanceof TokenAlreadyUsed) return false;
      throw err;
    }
  }
  async getNode(id: string): Promise<NodeRecord | undefined> {
    const r = this.get(`SELECT * FROM nodes WHERE id = ?`, id);
    return r === undefined ? undefined : node(r);
  }
  async listNodes(): Promise<NodeRecord[]> {
    return this.all(`SELECT * FROM nodes ORDER BY created_at, id`).map(node);
  }
  revokeNode(id: string, at: number): Promise<boolean> {
    return this.enqueue('node.revoke', () => {
      const revoked = this.run(`UPDATE nodes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at, id).changes === 1;
      // The audit reads changes() of the node's UPDATE: it goes first.
      auditSqliteOp(this.runner, { op: 'node.revoke', id, at });
      if (revoked) sqliteNodeCertificates.revokeAll(this.runner, id, at);
      return revoked;
    });
  }
  insertNodeCertificate(c: NewNodeCertificate): Promise<void> {
    return this.enqueue('nodeCertificate.insert', () => sqliteNodeCertificates.insert(this.runner, c));
  }
  supersedeNodeCertificates(nodeId: string, before: number, at: number): Promise<number> {
    return this.enqueue('nodeCertificate.supersede', () => sqliteNodeCertificates.supersede(this.runner, nodeId, before, at));
  }
  async listNodeCertificates(notExpiredAt: number): Promise<NodeCertificateRecord[]> {
    return sqliteNodeCertificates.list(this.runner, notExpiredAt);
  }
  recordNodeCa(ca: NodeCaRecord): Promise<NodeCaRecord> {
    return this.enqueue('nodeCa.record', () => sqliteNodeCertificates.recordCa(this.runner, ca));
  }
  async getNodeCa(): Promise<NodeCaRecord | undefined> {
    return sqliteNodeCertificates.getCa(this.runner);
  }

  async getStudy(id: string): Promise<StudyRecord | undefined> {
    const r = this.get(`SELECT * FROM studies WHERE id = ?`, id);
    return r === undefined ? undefined : study(r);
  }
  async listStudies(): Promise<StudyRecord[]> {
    return this.all(`SELECT * FROM studies ORDER BY created_at, id`).map(study);
  }
  async setRoundParticipants(id: number, participants: number): Promise<void> {
    await this.enqueue('round.participants', () => this.run(`UPDATE rounds SET participants = ? WHERE id = ?`, participants, id));
  }
  async listRounds(studyId: string): Promise<RoundRecord[]> {
    return this.all(`SELECT * FROM rounds WHERE study_id = ? ORDER BY round, attempt`, studyId).map(round);
  }
  async getCommittedRound(studyId: string, n: number): Promise<RoundRecord | undefined> {
    const r = this.get(`SELECT * FROM rounds WHERE study_id = ? AND round = ? AND state = 'COMMITTED'`, studyId, n);
    return r === undefined ? undefined : round(r);
  }
  failOpenRounds(studyId: string, reason: string, at: number): Promise<number> {
    return this.enqueue('rounds.failOpen', () => {
      this.run(
        `UPDATE tasks SET state = 'CANCELLED', detail = ?, ended_at = ? WHERE state = 'ASSIGNED' AND round_id IN (SELECT id FROM rounds WHERE study_id = ? AND state NOT IN ('COMMITTED','FAILED'))`,
        reason, at, studyId,
      );
      return this.run(`UPDATE rounds SET state = 'FAILED', reason = ?, ended_at = ? WHERE study_id = ? AND state NOT IN ('COMMITTED','FAILED')`, reason, at, studyId).changes;
    }, 2);
  }

  async referencedBlobs(): Promise<Set<string>> {
    return blobReferenceSet(
      this.all(`SELECT DISTINCT checkpoint_sha256 FROM rounds WHERE checkpoint_sha256 IS NOT NULL`).map((r) => r.checkpoint_sha256 as string),
      this.all(`SELECT id, strategy_state FROM studies WHERE strategy_state IS NOT NULL`).map((r) => ({ studyId: r.id as string, json: r.strategy_state as string })),
      this.all(
        `SELECT DISTINCT t.model_sha256 FROM rounds r JOIN tasks t ON t.round_id = r.id AND t.state = 'ASSIGNED' WHERE r.state NOT IN ('COMMITTED','FAILED')`,
      ).map((r) => r.model_sha256 as string),
      sqliteReleaseReads.files(this.runner),
    );
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const r = this.get(`${TASK_SELECT} WHERE t.id = ?`, id);
    return r === undefined ? undefined : task(r);
  }
  async setTaskState(id: string, state: TaskStateName, detail: string | null, at: number | null): Promise<void> {
    await this.enqueue('task.state', () => this.run(`UPDATE tasks SET state = ?, detail = ?, ended_at = COALESCE(?, ended_at) WHERE id = ?`, state, detail, at, id));
  }
  async listNodeTasks(nodeId: string, states: readonly TaskStateName[], limit: number): Promise<TaskRecord[]> {
    return this.nodeTasks(nodeId, states, limit);
  }
  private nodeTasks(nodeId: string, states: readonly TaskStateName[], limit: number): TaskRecord[] {
    if (states.length === 0) return [];
    return this.all(
      `${TASK_SELECT} WHERE t.node_id = ? AND t.state IN (${states.map(() => '?').join(',')}) ORDER BY COALESCE(t.ended_at, t.created_at) DESC, t.rowid DESC LIMIT ?`,
      nodeId, ...states, limit,
    ).map((r) => task(r));
  }
  async listTasks(roundId: number): Promise<TaskRecord[]> {
    return this.all(`${TASK_SELECT} WHERE t.round_id = ? ORDER BY t.created_at, t.id`, roundId).map((r) => task(r));
  }
  async openTasksForNode(nodeId: string): Promise<TaskRecord[]> {
    return this.all(`${TASK_SELECT} WHERE t.node_id = ? AND t.state = 'ASSIGNED' AND r.state IN ('STATISTICS','TRAINING','EVALUATING') ORDER BY t.created_at, t.id`, nodeId).map((r) => task(r));
  }
  async cancelOpenTasks(roundId: number, detail: string, at: number | null): Promise<string[]> {
    return this.enqueue('task.cancelOpen', () => this.cancelOpenRows(roundId, detail, at));
  }

  async acceptedContribution(taskId: string): Promise<ContributionRecord | undefined> {
    const r = this.get(`SELECT * FROM contributions WHERE task_id = ? AND accepted = 1`, taskId);
    return r === undefined ? undefined : contribution(r);
  }
  async findAcceptedBySha256(sha256: string, studyId: string, except?: { nodeId: string; round: number }): Promise<ContributionRecord | undefined> {
    const r = this.get(
      `SELECT * FROM contributions WHERE study_id = ? AND sha256 = ? AND accepted = 1 AND NOT (node_id = ? AND round = ?) ORDER BY id LIMIT 1`,
      studyId, sha256, except?.nodeId ?? '', except?.round ?? -1,
    );
    return r === undefined ? undefined : contribution(r);
  }
  async listContributions(filter: { studyId?: string; nodeId?: string }): Promise<ContributionRecord[]> {
    const { where, params } = contributionWhere(filter);
    return this.all(`SELECT * FROM contributions ${where} ORDER BY id`, ...params).map((r) => contribution(r));
  }
  async listNormHistory(studyId: string): Promise<number[]> {
    return this.all(`SELECT delta_norm FROM contributions WHERE study_id = ? AND accepted = 1 AND delta_norm IS NOT NULL ORDER BY id`, studyId).map((r) => r.delta_norm as number);
  }
  async listMetrics(studyId: string): Promise<(MetricRecord & { round: number })[]> {
    return this.all(
      `SELECT m.*, r.round FROM metrics m JOIN rounds r ON r.id = m.round_id WHERE r.study_id = ? ORDER BY r.round, m.id`,
      studyId,
    ).map(metric);
  }
  async listStatistics(studyId: string): Promise<StatisticsRecord[]> {
    return this.all(`SELECT * FROM statistics WHERE study_id = ? ORDER BY id`, studyId).map((r) => ({
      studyId: r.study_id as string, taskId: r.task_id as string, nodeId: r.node_id as string, report: r.report as string, receivedAt: r.received_at as number,
    }));
  }
  async insertOperator(o: OperatorRecord): Promise<void> {
    await this.enqueue('operator.insert', () =>
      this.run(`INSERT INTO operators (id, name, role, token_hash, created_at, created_by, revoked_at) VALUES (?,?,?,?,?,?,?)`, o.id, o.name, o.role, o.tokenHash, o.createdAt, o.createdBy, o.revokedAt),
    );
  }
  async findOperator(tokenHash: string): Promise<OperatorRecord | undefined> {
    const r = this.get(`SELECT * FROM operators WHERE token_hash = ?`, tokenHash);
    return r === undefined ? undefined : { id: r.id as string, name: r.name as string, role: r.role as OperatorRecord['role'], tokenHash: r.token_hash as string, createdAt: r.created_at as number, createdBy: r.created_by as string, revokedAt: (r.revoked_at as number | null) ?? null };
  }
  async listAdminActions(limit: number): Promise<AdminActionRecord[]> {
    return this.all(`SELECT * FROM admin_actions ORDER BY id DESC LIMIT ?`, limit).map((r) => ({ at: r.at as number, operator: r.operator as string, action: r.action as string, target: r.target as string, detail: (r.detail as string | null) ?? null }));
  }

  // Paged and aggregated reads (design §5).

  async listNodeSummaries(page: PageRequest): Promise<Page<NodeSummaryRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'ns');
    const rows =
      after === undefined
        ? this.all(`SELECT * FROM nodes ORDER BY created_at, id LIMIT ?`, limit + 1)
        : this.all(`SELECT * FROM nodes WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`, after[0], after[1], limit + 1);
    return toPage(rows, limit, (r) => {
      const id = r.id as string;
      const contributed = this.get(`SELECT COUNT(*) AS n FROM (SELECT DISTINCT study_id, round FROM contributions WHERE node_id = ? AND accepted = 1)`, id);
      const rejection = this.get(`SELECT * FROM contributions WHERE node_id = ? AND accepted = 0 ORDER BY id DESC LIMIT 1`, id);
      return {
        ...node(r),
        roundsContributed: (contributed?.n as number | undefined) ?? 0,
        lastRejection: rejection === undefined ? null : contribution(rejection),
        lastProblemTask: this.nodeTasks(id, PROBLEM_STATES, 1)[0] ?? null,
      };
    }, (r) => [r.created_at as number, r.id as string]);
  }
  async countNodes(): Promise<{ total: number; revoked: number }> {
    const r = this.get(`SELECT COUNT(*) AS total, COUNT(revoked_at) AS revoked FROM nodes`);
    return { total: (r?.total as number | undefined) ?? 0, revoked: (r?.revoked as number | undefined) ?? 0 };
  }
  async roundTaskCounts(studyId: string): Promise<RoundTaskCount[]> {
    return this.all(
      `SELECT t.round_id, t.kind, t.state, COUNT(*) AS n FROM rounds r JOIN tasks t ON t.round_id = r.id WHERE r.study_id = ? GROUP BY t.round_id, t.kind, t.state ORDER BY t.round_id, t.kind, t.state`,
      studyId,
    ).map((r) => ({ roundId: r.round_id as number, kind: r.kind as TaskRecord['kind'], state: r.state as TaskStateName, count: r.n as number }));
  }
  async rejectionsByReason(studyId: string): Promise<RejectionCount[]> {
    return this.all(
      `SELECT round, attempt, reason_code, COUNT(*) AS n FROM contributions WHERE study_id = ? AND accepted = 0 GROUP BY round, attempt, reason_code ORDER BY round, attempt, reason_code IS NOT NULL, reason_code`,
      studyId,
    ).map((r) => ({ round: r.round as number, attempt: r.attempt as number, reasonCode: (r.reason_code as string | null) ?? null, count: r.n as number }));
  }
  async contributionTotals(studyId: string): Promise<ContributionTotals[]> {
    return this.all(
      `SELECT round, attempt, SUM(accepted) AS accepted, SUM(1 - accepted) AS rejected, SUM(bytes) AS bytes FROM contributions WHERE study_id = ? GROUP BY round, attempt ORDER BY round, attempt`,
      studyId,
    ).map((r) => ({ round: r.round as number, attempt: r.attempt as number, accepted: r.accepted as number, rejected: r.rejected as number, bytes: r.bytes as number }));
  }
  async listContributionsPage(filter: ContributionFilter, page: PageRequest): Promise<Page<ContributionRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'n');
    const { where, params } = contributionWhere(filter, after?.[0] as number | undefined);
    const rows = this.all(`SELECT * FROM contributions ${where} ORDER BY id LIMIT ?`, ...params, limit + 1);
    return toPage(rows, limit, (r) => contribution(r), (r) => [r.id as number]);
  }
  async listTasksPage(filter: TaskFilter, page: PageRequest): Promise<Page<TaskRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'ns');
    const clauses = ['t.round_id = ?'];
    const params: unknown[] = [filter.roundId];
    if (filter.states !== undefined) {
      if (filter.states.length === 0) return { items: [], next: null };
      clauses.push(`t.state IN (${filter.states.map(() => '?').join(',')})`);
      params.push(...filter.states);
    }
    if (filter.kinds !== undefined) {
      if (filter.kinds.length === 0) return { items: [], next: null };
      clauses.push(`t.kind IN (${filter.kinds.map(() => '?').join(',')})`);
      params.push(...filter.kinds);
    }
    if (after !== undefined) {
      clauses.push('(t.created_at, t.id) > (?, ?)');
      params.push(after[0], after[1]);
    }
    const rows = this.all(`${TASK_SELECT} WHERE ${clauses.join(' AND ')} ORDER BY t.created_at, t.id LIMIT ?`, ...params, limit + 1);
    return toPage(rows, limit, (r) => task(r), (r) => [r.created_at as number, r.id as string]);
  }

  // Releases (issue 12; store/sqlite/releases.ts).

  async listReleases(studyName: string | undefined, limit: number): Promise<ReleaseRecord[]> {
    return sqliteReleaseReads.list(this.runner, studyName, pageLimit({ limit }));
  }
  async getRelease(studyName: string, version: number): Promise<ReleaseRecord | undefined> {
    return sqliteReleaseReads.get(this.runner, studyName, version);
  }
  async releaseOfStudy(studyId: string): Promise<ReleaseRecord | undefined> {
    return sqliteReleaseReads.ofStudy(this.runner, studyId);
  }
  async listReleaseAliases(studyName: string | undefined): Promise<ReleaseAliasRecord[]> {
    return sqliteReleaseReads.aliases(this.runner, studyName);
  }
  async listReleasePerformance(studyName: string, version: number): Promise<ReleasePerformanceRecord[]> {
    return sqliteReleaseReads.performance(this.runner, studyName, version);
  }

  async nodeTookPartInName(nodeId: string, studyName: string): Promise<boolean> {
    return sqliteSeriesReads.tookPartInName(this.runner, nodeId, studyName);
  }

  // Series (issue 13; store/sqlite/series.ts).

  async listSeries(): Promise<SeriesRecord[]> {
    return sqliteSeriesReads.list(this.runner);
  }
  async getSeries(name: string): Promise<SeriesRecord | undefined> {
    return sqliteSeriesReads.get(this.runner, name);
  }
  async listSeriesRuns(name: string): Promise<SeriesRunRecord[]> {
    return sqliteSeriesReads.runs(this.runner, name);
  }
  async seriesRunOfStudy(studyId: string): Promise<SeriesRunRecord | undefined> {
    return sqliteSeriesReads.runOfStudy(this.runner, studyId);
  }
  async listPromotions(name: string): Promise<PromotionRecord[]> {
    return sqliteSeriesReads.promotions(this.runner, name);
  }

  /** Waits for queued writes to commit, then closes the database. */
  async close(): Promise<void> {
    await this.committer.drain();
    if (this.db.open) this.db.close();
  }

  async nodeTookPart(nodeId: string, studyId: string): Promise<boolean> {
    return (
      this.get(`SELECT 1 FROM study_approvals WHERE node_id = ? AND study_id = ?`, nodeId, studyId) !== undefined ||
      this.get(`SELECT 1 FROM tasks t JOIN rounds r ON r.id = t.round_id WHERE t.node_id = ? AND r.study_id = ? LIMIT 1`, nodeId, studyId) !== undefined
    );
  }
}

/**
 * WHERE clause of a contribution filter. The SQL text differs per set of fields given (and the
 * statement cache keeps one per shape), so each shape gets an index instead of `? IS NULL OR`.
 */
function contributionWhere(filter: ContributionFilter, afterId?: number): { where: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown): void => {
    clauses.push(sql);
    params.push(value);
  };
  if (filter.studyId !== undefined) add('study_id = ?', filter.studyId);
  if (filter.nodeId !== undefined) add('node_id = ?', filter.nodeId);
  if (filter.round !== undefined) add('round = ?', filter.round);
  if (filter.attempt !== undefined) add('attempt = ?', filter.attempt);
  if (filter.accepted !== undefined) add('accepted = ?', filter.accepted ? 1 : 0);
  if (afterId !== undefined) add('id > ?', afterId);
  return { where: clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`, params };
}

/** Raised inside redeemJoinToken's unit to roll it back when a token was used (or is unknown). */
export class TokenAlreadyUsed extends Error {
  constructor() {
    super('join token already used');
  }
}
