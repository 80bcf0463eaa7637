import Database from 'better-sqlite3';
import type { RoundState } from '@fedlhs/core';
import type {
  ContributionRecord,
  CoordinatorStore,
  JoinTokenRecord,
  MetricRecord,
  NodeRecord,
  RoundRecord,
  StudyRecord,
  StatisticsRecord,
  OperatorRecord,
  AdminActionRecord,
  StudyStateName,
  TaskRecord,
  TaskStateName,
} from './store.js';
import { FedlhsError } from '@fedlhs/core';
import type { WriteOp, WriteResult } from './store/write-ops.js';

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    site_name TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_seen_at INTEGER,
    agent_version TEXT NOT NULL DEFAULT '',
    training_backend TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    site_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by_node TEXT REFERENCES nodes(id),
    created_by TEXT NOT NULL
  );
  CREATE TABLE studies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    manifest_json TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('RUNNING','COMPLETED','STOPPED','FAILED')),
    reason TEXT,
    last_committed_round INTEGER NOT NULL DEFAULT 0,
    strategy_state TEXT,
    parameters TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  );
  CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id TEXT NOT NULL REFERENCES studies(id),
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    participants INTEGER NOT NULL DEFAULT 0,
    checkpoint_path TEXT,
    checkpoint_sha256 TEXT,
    UNIQUE (study_id, round, attempt)
  );
  CREATE UNIQUE INDEX rounds_one_commit ON rounds(study_id, round) WHERE state = 'COMMITTED';
  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    kind TEXT NOT NULL CHECK (kind IN ('TRAIN','EVALUATE','STATISTICS')),
    state TEXT NOT NULL,
    detail TEXT,
    model_sha256 TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX tasks_by_node ON tasks(node_id, state);
  CREATE TABLE contributions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    study_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    num_examples INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    reason_code TEXT,
    reason TEXT,
    received_at INTEGER NOT NULL,
    delta_norm REAL
  );
  CREATE UNIQUE INDEX contributions_one_accepted ON contributions(task_id) WHERE accepted = 1;
  CREATE INDEX contributions_by_sha ON contributions(sha256) WHERE accepted = 1;
  CREATE TABLE metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    node_id TEXT,
    phase TEXT NOT NULL,
    num_examples INTEGER NOT NULL,
    loss REAL NOT NULL,
    accuracy REAL NOT NULL,
    auc REAL
  );
  CREATE TABLE statistics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id TEXT NOT NULL REFERENCES studies(id),
    task_id TEXT NOT NULL UNIQUE REFERENCES tasks(id),
    node_id TEXT NOT NULL,
    report TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  `
  CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('viewer','admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE admin_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
  );
  `,
  // When each task ended, so a node's last failure can be shown with its time.
  `
  ALTER TABLE tasks ADD COLUMN ended_at INTEGER;
  CREATE INDEX tasks_by_node_ended ON tasks(node_id, state, ended_at);
  `,
];

type Row = Record<string, unknown>;

const node = (r: Row): NodeRecord => ({
  id: r.id as string,
  siteName: r.site_name as string,
  credentialHash: r.credential_hash as string,
  createdAt: r.created_at as number,
  revokedAt: (r.revoked_at as number | null) ?? null,
  lastSeenAt: (r.last_seen_at as number | null) ?? null,
  agentVersion: r.agent_version as string,
  trainingBackend: r.training_backend as string,
});
const joinToken = (r: Row): JoinTokenRecord => ({
  id: r.id as string,
  tokenHash: r.token_hash as string,
  siteName: r.site_name as string,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
  usedAt: (r.used_at as number | null) ?? null,
  usedByNode: (r.used_by_node as string | null) ?? null,
  createdBy: r.created_by as string,
});
const study = (r: Row): StudyRecord => ({
  id: r.id as string,
  name: r.name as string,
  manifestJson: r.manifest_json as string,
  manifestHash: r.manifest_hash as string,
  state: r.state as StudyStateName,
  reason: (r.reason as string | null) ?? null,
  lastCommittedRound: r.last_committed_round as number,
  strategyState: (r.strategy_state as string | null) ?? null,
  parameters: (r.parameters as string | null) ?? null,
  createdAt: r.created_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
});
const round = (r: Row): RoundRecord => ({
  id: r.id as number,
  studyId: r.study_id as string,
  round: r.round as number,
  attempt: r.attempt as number,
  state: r.state as RoundState,
  reason: (r.reason as string | null) ?? null,
  startedAt: r.started_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
  participants: r.participants as number,
  checkpointPath: (r.checkpoint_path as string | null) ?? null,
  checkpointSha256: (r.checkpoint_sha256 as string | null) ?? null,
});
const task = (r: Row): TaskRecord => ({
  id: r.id as string,
  roundId: r.round_id as number,
  studyId: r.study_id as string,
  round: r.round as number,
  attempt: r.attempt as number,
  nodeId: r.node_id as string,
  kind: r.kind as TaskRecord['kind'],
  state: r.state as TaskStateName,
  detail: (r.detail as string | null) ?? null,
  modelSha256: r.model_sha256 as string,
  deadline: r.deadline as number,
  createdAt: r.created_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
});
const contribution = (r: Row): ContributionRecord => ({
  taskId: r.task_id as string,
  studyId: r.study_id as string,
  round: r.round as number,
  attempt: r.attempt as number,
  nodeId: r.node_id as string,
  numExamples: r.num_examples as number,
  sha256: r.sha256 as string,
  bytes: r.bytes as number,
  accepted: r.accepted === 1,
  reasonCode: (r.reason_code as string | null) ?? null,
  reason: (r.reason as string | null) ?? null,
  receivedAt: r.received_at as number,
  deltaNorm: (r.delta_norm as number | null) ?? null,
});

const TASK_SELECT = `SELECT t.*, r.study_id, r.round, r.attempt FROM tasks t JOIN rounds r ON r.id = t.round_id`;

/** SQLite (WAL) implementation of the coordinator store. */
export class SqliteStore implements CoordinatorStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed round must survive power loss, not only a process crash.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private all(sql: string, ...params: unknown[]): Row[] {
    return this.db.prepare(sql).all(...params) as Row[];
  }
  private get(sql: string, ...params: unknown[]): Row | undefined {
    return this.db.prepare(sql).get(...params) as Row | undefined;
  }
  private run(sql: string, ...params: unknown[]): Database.RunResult {
    return this.db.prepare(sql).run(...params);
  }

  async write(ops: readonly WriteOp[], _label: string): Promise<WriteResult> {
    const result: WriteResult = { roundIds: [], cancelled: [] };
    this.db.transaction(() => {
      for (const op of ops) this.apply(op, result);
    }).immediate();
    return result;
  }

  private apply(op: WriteOp, result: WriteResult): void {
    switch (op.op) {
      case 'task.insert':
        for (const t of op.tasks) {
          this.run(
            `INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
            t.id, t.roundId, t.nodeId, t.kind, t.state, t.detail, t.modelSha256, t.deadline, t.createdAt, t.endedAt ?? null,
          );
        }
        return;
      case 'task.end': {
        const res = this.run(`UPDATE tasks SET state = ?, detail = ?, ended_at = ? WHERE id = ? AND state = 'ASSIGNED'`, op.to, op.detail, op.at, op.id);
        if (res.changes === 1) return;
        const row = this.get(`SELECT state FROM tasks WHERE id = ?`, op.id);
        if (row === undefined) throw new FedlhsError('NOT_FOUND', `task ${op.id} does not exist`, { details: { what: 'task', id: op.id } });
        throw new FedlhsError('STALE', `task ${op.id} is ${String(row.state)}, not open`);
      }
      case 'task.cancelOpen': {
        const ids = this.all(`SELECT id FROM tasks WHERE round_id = ? AND state = 'ASSIGNED'`, op.roundId).map((r) => r.id as string);
        this.run(`UPDATE tasks SET state = 'CANCELLED', detail = ?, ended_at = ? WHERE round_id = ? AND state = 'ASSIGNED'`, op.detail, op.at, op.roundId);
        result.cancelled.push(...ids);
        return;
      }
      case 'contribution.insert': {
        const c = op.c;
        this.run(
          `INSERT INTO contributions (task_id, study_id, round, attempt, node_id, num_examples, sha256, bytes, accepted, reason_code, reason, received_at, delta_norm) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
          c.taskId, c.studyId, c.round, c.attempt, c.nodeId, c.numExamples, c.sha256, c.bytes, c.accepted ? 1 : 0, c.reasonCode, c.reason, c.receivedAt, c.deltaNorm ?? null,
        );
        return;
      }
      case 'statistics.insert':
        this.run(`INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES (?,?,?,?,?)`, op.s.studyId, op.s.taskId, op.s.nodeId, op.s.report, op.s.receivedAt);
        return;
      case 'study.insert': {
        const st = op.s;
        this.run(
          `INSERT INTO studies (id, name, manifest_json, manifest_hash, state, reason, last_committed_round, strategy_state, parameters, created_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
          st.id, st.name, st.manifestJson, st.manifestHash, st.state, st.reason, st.lastCommittedRound, st.strategyState, st.parameters, st.createdAt, st.endedAt,
        );
        return;
      }
      case 'study.state':
        this.run(`UPDATE studies SET state = ?, reason = ?, ended_at = ? WHERE id = ?`, op.state, op.reason, op.at, op.id);
        return;
      case 'study.parameters':
        this.run(`UPDATE studies SET parameters = ? WHERE id = ?`, op.parameters, op.id);
        return;
      case 'round.insert': {
        const r = op.r;
        const res = this.run(
          `INSERT INTO rounds (study_id, round, attempt, state, reason, started_at, ended_at, participants, checkpoint_path, checkpoint_sha256) VALUES (?,?,?,?,?,?,?,?,?,?)`,
          r.studyId, r.round, r.attempt, r.state, r.reason, r.startedAt, r.endedAt, r.participants, r.checkpointPath, r.checkpointSha256,
        );
        result.roundIds.push(Number(res.lastInsertRowid));
        return;
      }
      case 'round.state':
        this.run(
          `UPDATE rounds SET state = ?, reason = COALESCE(?, reason), ended_at = COALESCE(?, ended_at), participants = COALESCE(?, participants) WHERE id = ?`,
          op.state, op.reason, op.at, op.participants ?? null, op.id,
        );
        return;
      case 'round.commit': {
        const r = this.get(`SELECT * FROM rounds WHERE id = ?`, op.id);
        if (r === undefined) throw new FedlhsError('NOT_FOUND', `round ${op.id} does not exist`, { details: { what: 'round', id: String(op.id) } });
        if (r.state === 'COMMITTED' || r.state === 'FAILED') throw new FedlhsError('STALE', `round ${op.id} is already ${String(r.state)}`);
        this.run(`UPDATE rounds SET state = 'COMMITTED', ended_at = ?, checkpoint_path = ?, checkpoint_sha256 = ? WHERE id = ?`, op.at, op.checkpoint.path, op.checkpoint.sha256, op.id);
        this.run(`UPDATE studies SET last_committed_round = ?, strategy_state = ? WHERE id = ?`, r.round, op.strategyState, r.study_id);
        this.insertMetricsSync(op.metrics);
        return;
      }
      case 'metrics.insert':
        this.insertMetricsSync(op.metrics);
        return;
      case 'node.seen':
        this.run(`UPDATE nodes SET last_seen_at = ?, agent_version = ?, training_backend = ? WHERE id = ?`, op.at, op.agentVersion, op.trainingBackend, op.id);
        return;
      case 'node.revoke':
        this.run(`UPDATE nodes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, op.at, op.id);
        return;
      case 'node.insert': {
        const n = op.n;
        this.run(
          `INSERT INTO nodes (id, site_name, credential_hash, created_at, revoked_at, last_seen_at, agent_version, training_backend) VALUES (?,?,?,?,?,?,?,?)`,
          n.id, n.siteName, n.credentialHash, n.createdAt, n.revokedAt, n.lastSeenAt, n.agentVersion, n.trainingBackend,
        );
        return;
      }
      case 'admin.action':
        this.run(`INSERT INTO admin_actions (at, operator, action, target, detail) VALUES (?,?,?,?,?)`, op.a.at, op.a.operator, op.a.action, op.a.target, op.a.detail);
        return;
    }
  }

  async insertJoinToken(t: JoinTokenRecord): Promise<void> {
    this.run(
      `INSERT INTO join_tokens (id, token_hash, site_name, created_at, expires_at, used_at, used_by_node, created_by) VALUES (?,?,?,?,?,?,?,?)`,
      t.id, t.tokenHash, t.siteName, t.createdAt, t.expiresAt, t.usedAt, t.usedByNode, t.createdBy,
    );
  }
  async findJoinToken(tokenHash: string): Promise<JoinTokenRecord | undefined> {
    const r = this.get(`SELECT * FROM join_tokens WHERE token_hash = ?`, tokenHash);
    return r === undefined ? undefined : joinToken(r);
  }
  async redeemJoinToken(tokenId: string, n: NodeRecord): Promise<boolean> {
    try {
      return this.redeem(tokenId, n);
    } catch (err) {
      if (err instanceof TokenAlreadyUsed) return false;
      throw err;
    }
  }
  private redeem(tokenId: string, n: NodeRecord): boolean {
    return this.db.transaction(() => {
      this.run(
        `INSERT INTO nodes (id, site_name, credential_hash, created_at, revoked_at, last_seen_at, agent_version, training_backend) VALUES (?,?,?,?,?,?,?,?)`,
        n.id, n.siteName, n.credentialHash, n.createdAt, n.revokedAt, n.lastSeenAt, n.agentVersion, n.trainingBackend,
      );
      const res = this.run(`UPDATE join_tokens SET used_at = ?, used_by_node = ? WHERE id = ? AND used_at IS NULL`, n.createdAt, n.id, tokenId);
      if (res.changes !== 1) throw new TokenAlreadyUsed();
      return true;
    }).immediate();
  }
  async getNode(id: string): Promise<NodeRecord | undefined> {
    const r = this.get(`SELECT * FROM nodes WHERE id = ?`, id);
    return r === undefined ? undefined : node(r);
  }
  async listNodes(): Promise<NodeRecord[]> {
    return this.all(`SELECT * FROM nodes ORDER BY created_at`).map(node);
  }
  async revokeNode(id: string, at: number): Promise<boolean> {
    return this.run(`UPDATE nodes SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at, id).changes === 1;
  }
  async touchNode(id: string, at: number, agentVersion: string, trainingBackend: string): Promise<void> {
    this.run(`UPDATE nodes SET last_seen_at = ?, agent_version = ?, training_backend = ? WHERE id = ?`, at, agentVersion, trainingBackend, id);
  }

  async insertStudy(s: StudyRecord): Promise<void> {
    this.run(
      `INSERT INTO studies (id, name, manifest_json, manifest_hash, state, reason, last_committed_round, strategy_state, parameters, created_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
      s.id, s.name, s.manifestJson, s.manifestHash, s.state, s.reason, s.lastCommittedRound, s.strategyState, s.parameters, s.createdAt, s.endedAt,
    );
  }
  async getStudy(id: string): Promise<StudyRecord | undefined> {
    const r = this.get(`SELECT * FROM studies WHERE id = ?`, id);
    return r === undefined ? undefined : study(r);
  }
  async listStudies(): Promise<StudyRecord[]> {
    return this.all(`SELECT * FROM studies ORDER BY created_at`).map(study);
  }
  async setStudyState(id: string, state: StudyStateName, reason: string | null, at: number | null): Promise<void> {
    this.run(`UPDATE studies SET state = ?, reason = ?, ended_at = ? WHERE id = ?`, state, reason, at, id);
  }
  async insertRound(r: Omit<RoundRecord, 'id'>): Promise<number> {
    const res = this.run(
      `INSERT INTO rounds (study_id, round, attempt, state, reason, started_at, ended_at, participants, checkpoint_path, checkpoint_sha256) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      r.studyId, r.round, r.attempt, r.state, r.reason, r.startedAt, r.endedAt, r.participants, r.checkpointPath, r.checkpointSha256,
    );
    return Number(res.lastInsertRowid);
  }
  async setRoundState(id: number, state: RoundState, reason: string | null, at: number | null): Promise<void> {
    this.run(`UPDATE rounds SET state = ?, reason = COALESCE(?, reason), ended_at = COALESCE(?, ended_at) WHERE id = ?`, state, reason, at, id);
  }
  async setRoundParticipants(id: number, participants: number): Promise<void> {
    this.run(`UPDATE rounds SET participants = ? WHERE id = ?`, participants, id);
  }
  async commitRound(id: number, checkpoint: { path: string; sha256: string }, metrics: MetricRecord[], strategyState: string | null, at: number): Promise<void> {
    this.db.transaction(() => {
      const r = this.get(`SELECT * FROM rounds WHERE id = ?`, id);
      if (r === undefined) throw new Error(`round ${id} does not exist`);
      this.run(`UPDATE rounds SET state = 'COMMITTED', ended_at = ?, checkpoint_path = ?, checkpoint_sha256 = ? WHERE id = ?`, at, checkpoint.path, checkpoint.sha256, id);
      this.run(`UPDATE studies SET last_committed_round = ?, strategy_state = ? WHERE id = ?`, r.round, strategyState, r.study_id);
      this.insertMetricsSync(metrics);
    }).immediate();
  }
  async listRounds(studyId: string): Promise<RoundRecord[]> {
    return this.all(`SELECT * FROM rounds WHERE study_id = ? ORDER BY round, attempt`, studyId).map(round);
  }
  async getCommittedRound(studyId: string, n: number): Promise<RoundRecord | undefined> {
    const r = this.get(`SELECT * FROM rounds WHERE study_id = ? AND round = ? AND state = 'COMMITTED'`, studyId, n);
    return r === undefined ? undefined : round(r);
  }
  async failOpenRounds(studyId: string, reason: string, at: number): Promise<number> {
    return this.db.transaction(() => {
      this.run(
        `UPDATE tasks SET state = 'CANCELLED', detail = ?, ended_at = ? WHERE state = 'ASSIGNED' AND round_id IN (SELECT id FROM rounds WHERE study_id = ? AND state NOT IN ('COMMITTED','FAILED'))`,
        reason, at, studyId,
      );
      return this.run(`UPDATE rounds SET state = 'FAILED', reason = ?, ended_at = ? WHERE study_id = ? AND state NOT IN ('COMMITTED','FAILED')`, reason, at, studyId).changes;
    })();
  }

  async insertTask(t: TaskRecord): Promise<void> {
    this.run(
      `INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      t.id, t.roundId, t.nodeId, t.kind, t.state, t.detail, t.modelSha256, t.deadline, t.createdAt, t.endedAt ?? null,
    );
  }
  async getTask(id: string): Promise<TaskRecord | undefined> {
    const r = this.get(`${TASK_SELECT} WHERE t.id = ?`, id);
    return r === undefined ? undefined : task(r);
  }
  async setTaskState(id: string, state: TaskStateName, detail: string | null, at: number | null): Promise<void> {
    this.run(`UPDATE tasks SET state = ?, detail = ?, ended_at = COALESCE(?, ended_at) WHERE id = ?`, state, detail, at, id);
  }
  async listNodeTasks(nodeId: string, states: readonly TaskStateName[], limit: number): Promise<TaskRecord[]> {
    if (states.length === 0) return [];
    return this.all(
      `${TASK_SELECT} WHERE t.node_id = ? AND t.state IN (${states.map(() => '?').join(',')}) ORDER BY COALESCE(t.ended_at, t.created_at) DESC, t.rowid DESC LIMIT ?`,
      nodeId, ...states, limit,
    ).map(task);
  }
  async listTasks(roundId: number): Promise<TaskRecord[]> {
    return this.all(`${TASK_SELECT} WHERE t.round_id = ? ORDER BY t.created_at, t.id`, roundId).map(task);
  }
  async openTasksForNode(nodeId: string): Promise<TaskRecord[]> {
    return this.all(`${TASK_SELECT} WHERE t.node_id = ? AND t.state = 'ASSIGNED' AND r.state IN ('STATISTICS','TRAINING','EVALUATING') ORDER BY t.created_at`, nodeId).map(task);
  }
  async cancelOpenTasks(roundId: number, detail: string, at: number | null): Promise<string[]> {
    return this.db.transaction(() => {
      const ids = this.all(`SELECT id FROM tasks WHERE round_id = ? AND state = 'ASSIGNED'`, roundId).map((r) => r.id as string);
      this.run(`UPDATE tasks SET state = 'CANCELLED', detail = ?, ended_at = ? WHERE round_id = ? AND state = 'ASSIGNED'`, detail, at, roundId);
      return ids;
    })();
  }

  async insertContribution(c: ContributionRecord): Promise<void> {
    this.run(
      `INSERT INTO contributions (task_id, study_id, round, attempt, node_id, num_examples, sha256, bytes, accepted, reason_code, reason, received_at, delta_norm) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      c.taskId, c.studyId, c.round, c.attempt, c.nodeId, c.numExamples, c.sha256, c.bytes, c.accepted ? 1 : 0, c.reasonCode, c.reason, c.receivedAt, c.deltaNorm ?? null,
    );
  }
  async acceptedContribution(taskId: string): Promise<ContributionRecord | undefined> {
    const r = this.get(`SELECT * FROM contributions WHERE task_id = ? AND accepted = 1`, taskId);
    return r === undefined ? undefined : contribution(r);
  }
  async findAcceptedBySha256(sha256: string, studyId: string, except?: { nodeId: string; round: number }): Promise<ContributionRecord | undefined> {
    const r = this.get(
      `SELECT * FROM contributions WHERE sha256 = ? AND study_id = ? AND accepted = 1 AND NOT (node_id = ? AND round = ?) LIMIT 1`,
      sha256, studyId, except?.nodeId ?? '', except?.round ?? -1,
    );
    return r === undefined ? undefined : contribution(r);
  }
  async listContributions(filter: { studyId?: string; nodeId?: string }): Promise<ContributionRecord[]> {
    return this.all(
      `SELECT * FROM contributions WHERE (? IS NULL OR study_id = ?) AND (? IS NULL OR node_id = ?) ORDER BY id`,
      filter.studyId ?? null, filter.studyId ?? null, filter.nodeId ?? null, filter.nodeId ?? null,
    ).map(contribution);
  }
  async listNormHistory(studyId: string): Promise<number[]> {
    return this.all(`SELECT delta_norm FROM contributions WHERE study_id = ? AND accepted = 1 AND delta_norm IS NOT NULL ORDER BY id`, studyId).map((r) => r.delta_norm as number);
  }
  private insertMetricsSync(metrics: readonly MetricRecord[]): void {
    const stmt = this.db.prepare(`INSERT INTO metrics (round_id, node_id, phase, num_examples, loss, accuracy, auc) VALUES (?,?,?,?,?,?,?)`);
    for (const m of metrics) stmt.run(m.roundId, m.nodeId, m.phase, m.numExamples, m.loss, m.accuracy, m.auc ?? null);
  }
  async insertMetrics(metrics: MetricRecord[]): Promise<void> {
    this.db.transaction(() => this.insertMetricsSync(metrics))();
  }
  async listMetrics(studyId: string): Promise<(MetricRecord & { round: number })[]> {
    return this.all(
      `SELECT m.*, r.round FROM metrics m JOIN rounds r ON r.id = m.round_id WHERE r.study_id = ? ORDER BY r.round, m.id`,
      studyId,
    ).map((r) => ({
      roundId: r.round_id as number,
      round: r.round as number,
      nodeId: (r.node_id as string | null) ?? null,
      phase: r.phase as MetricRecord['phase'],
      numExamples: r.num_examples as number,
      loss: r.loss as number,
      accuracy: r.accuracy as number,
      auc: (r.auc as number | null) ?? undefined,
    }));
  }
  async insertStatistics(s: StatisticsRecord): Promise<void> {
    this.run(`INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES (?,?,?,?,?)`, s.studyId, s.taskId, s.nodeId, s.report, s.receivedAt);
  }
  async listStatistics(studyId: string): Promise<StatisticsRecord[]> {
    return this.all(`SELECT * FROM statistics WHERE study_id = ? ORDER BY id`, studyId).map((r) => ({
      studyId: r.study_id as string, taskId: r.task_id as string, nodeId: r.node_id as string, report: r.report as string, receivedAt: r.received_at as number,
    }));
  }
  async setStudyParameters(id: string, parameters: string): Promise<void> {
    this.run(`UPDATE studies SET parameters = ? WHERE id = ?`, parameters, id);
  }
  async insertOperator(o: OperatorRecord): Promise<void> {
    this.run(`INSERT INTO operators (id, name, role, token_hash, created_at, created_by, revoked_at) VALUES (?,?,?,?,?,?,?)`, o.id, o.name, o.role, o.tokenHash, o.createdAt, o.createdBy, o.revokedAt);
  }
  async findOperator(tokenHash: string): Promise<OperatorRecord | undefined> {
    const r = this.get(`SELECT * FROM operators WHERE token_hash = ?`, tokenHash);
    return r === undefined ? undefined : { id: r.id as string, name: r.name as string, role: r.role as OperatorRecord['role'], tokenHash: r.token_hash as string, createdAt: r.created_at as number, createdBy: r.created_by as string, revokedAt: (r.revoked_at as number | null) ?? null };
  }
  async insertAdminAction(a: AdminActionRecord): Promise<void> {
    this.run(`INSERT INTO admin_actions (at, operator, action, target, detail) VALUES (?,?,?,?,?)`, a.at, a.operator, a.action, a.target, a.detail);
  }
  async listAdminActions(limit: number): Promise<AdminActionRecord[]> {
    return this.all(`SELECT * FROM admin_actions ORDER BY id DESC LIMIT ?`, limit).map((r) => ({ at: r.at as number, operator: r.operator as string, action: r.action as string, target: r.target as string, detail: (r.detail as string | null) ?? null }));
  }
  async close(): Promise<void> {
    this.db.close();
  }
}

/** Raised inside redeemJoinToken's transaction to roll it back when a token was used concurrently. */
export class TokenAlreadyUsed extends Error {
  constructor() {
    super('join token already used');
  }
}
