import pg from 'pg';
import { FedlhsError } from '@fedlhs/core';
import type {
  PromotionRecord, SeriesRecord, SeriesRunRecord,
  ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord,
  AdminActionRecord,
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
  OperatorRecord,
  Page,
  PageRequest,
  RejectionCount,
  RoundRecord,
  RoundTaskCount,
  StatisticsRecord,
  StudyRecord,
  TaskFilter,
  TaskRecord,
  TaskStateName,
} from '../../store.js';
import { blobReferenceSet } from '../blob-references.js';
import { GroupCommitter, type BatchStats, type UnitOutcome } from '../group-commit.js';
import { decodeCursor, pageLimit, toPage } from '../paging.js';
import type { GroupCommitOptions, WriteOp, WriteResult } from '../write-ops.js';
import { describeTarget, isRetryable, mapStoreError, storeTypes, unavailableWhy } from './connection.js';
import { migrate } from './migrations.js';
import { RELEASE_READ, releaseRows } from './releases.js';
import { SERIES_READ, seriesRows } from './series.js';
import { applyOp, exec, nodeValues, SQL, type Statement } from './ops.js';
import { auditPgOp, backfillPgAuditChain } from './audit-chain.js';
import { pgNodeCertificates } from './node-certificates.js';
import * as rows from '../rows.js';
import type { Row } from '../rows.js';
import { SingleWriteStore } from '../single-writes.js';

/** The part of a logger the store uses (pino's fits). */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

export interface PostgresStoreOptions {
  /** A `postgres://` URL (secret: may hold a password), or a pg client config (tests). */
  connection: string | pg.ClientConfig;
  /** Connections of the read pool. Default 8. The group committer has one more of its own. */
  poolSize?: number;
  groupCommit?: GroupCommitOptions;
  logger?: StoreLogger;
  /** How long to wait for a connection, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /**
   * Active/standby (issue 15, ha/lease.ts): every write batch first checks, in its own
   * transaction, that the leadership row still has this fence, and fails whole with FENCED if
   * not. Unset (single coordinator): no check, as before.
   */
  fence?: StoreFence;
}

/** The fence a store's writes must carry (PostgresStoreOptions.fence). */
export interface StoreFence {
  /** The fence of the lease this coordinator holds. */
  token: number;
  /** Called when a batch found another fence in the leadership row (before its units fail with FENCED). */
  onFenced(current: number | null): void;
  /**
   * PostgreSQL ends a write session idle in a transaction for this long (ms): a batch of an
   * active cut off mid-transaction holds the leadership row FOR KEY SHARE, and would otherwise keep
   * the next active from taking over for as long as the server keeps the dead connection.
   */
  idleInTransactionMs: number;
}

// FOR KEY SHARE: a takeover (which locks the row FOR UPDATE, ha/lease.ts) waits until a batch that
// passed the check has committed, and a batch that starts after the takeover sees the new fence,
// so no batch that checked an old fence can commit after a newer one was taken. The lease
// renewal's plain UPDATE does not conflict with it (FOR SHARE did: an active whose batches were
// slow could not renew and demoted itself).
export const FENCE_CHECK = { name: 'fedlhs_fence_check', text: `SELECT fence FROM leadership WHERE id = 1 FOR KEY SHARE` };

/** A unit of the group committer: an op list (`write`) or a closure (the interface's single writes). */
interface Unit {
  label: string;
  /** Ops in the unit, for BatchStats. */
  ops: number;
  apply(client: pg.ClientBase): Promise<unknown>;
}

const q = (name: string, text: string): Statement => ({ name: `fedlhs_r_${name}`, text });

const TASK_COLS = ['id', 'round_id', 'node_id', 'kind', 'state', 'detail', 'model_sha256', 'deadline', 'created_at', 'ended_at'];
const CONTRIBUTION_COLS = ['task_id', 'study_id', 'round', 'attempt', 'node_id', 'num_examples', 'sha256', 'bytes', 'accepted', 'reason_code', 'reason', 'received_at', 'delta_norm'];
const TASK_SELECT = `SELECT t.id, t.round_id, t.node_id, t.kind, t.state, t.detail, t.model_sha256, t.deadline, t.created_at, t.ended_at, r.study_id, r.round, r.attempt FROM tasks t JOIN rounds r ON r.id = t.round_id`;
/** Worst task states first shown to operators (listNodeSummaries' lastProblemTask). */
const PROBLEM_STATES: readonly TaskStateName[] = ['FAILED', 'DECLINED', 'REJECTED'];

const READ = {
  findJoinToken: q('find_join_token', `SELECT * FROM join_tokens WHERE token_hash = $1`),
  getNode: q('get_node', `SELECT * FROM nodes WHERE id = $1`),
  listNodes: q('list_nodes', `SELECT * FROM nodes ORDER BY created_at, id`),
  getStudy: q('get_study', `SELECT * FROM studies WHERE id = $1`),
  listStudies: q('list_studies', `SELECT * FROM studies ORDER BY created_at, id`),
  listRounds: q('list_rounds', `SELECT * FROM rounds WHERE study_id = $1 ORDER BY round, attempt`),
  committedRound: q('committed_round', `SELECT * FROM rounds WHERE study_id = $1 AND round = $2 AND state = 'COMMITTED'`),
  getTask: q('get_task', `${TASK_SELECT} WHERE t.id = $1`),
  listTasks: q('list_tasks', `${TASK_SELECT} WHERE t.round_id = $1 ORDER BY t.created_at, t.id`),
  listNodeTasks: q(
    'list_node_tasks',
    `${TASK_SELECT} WHERE t.node_id = $1 AND t.state = ANY($2::text[]) ORDER BY COALESCE(t.ended_at, t.created_at) DESC, t.seq DESC LIMIT $3`,
  ),
  openTasksForNode: q(
    'open_tasks_for_node',
    `${TASK_SELECT} WHERE t.node_id = $1 AND t.state = 'ASSIGNED' AND r.state IN ('STATISTICS','TRAINING','EVALUATING') ORDER BY t.created_at, t.id`,
  ),
  acceptedContribution: q('accepted_contribution', `SELECT * FROM contributions WHERE task_id = $1 AND accepted`),
  findAcceptedBySha: q(
    'find_accepted_by_sha',
    `SELECT * FROM contributions WHERE study_id = $2 AND sha256 = $1 AND accepted AND NOT (node_id = $3 AND round = $4) ORDER BY id LIMIT 1`,
  ),
  listContributions: q(
    'list_contributions',
    `SELECT * FROM contributions WHERE ($1::text IS NULL OR study_id = $1) AND ($2::text IS NULL OR node_id = $2) ORDER BY id`,
  ),
  normHistory: q('norm_history', `SELECT delta_norm FROM contributions WHERE study_id = $1 AND accepted AND delta_norm IS NOT NULL ORDER BY id`),
  listMetrics: q(
    'list_metrics',
    `SELECT m.round_id, m.node_id, m.phase, m.num_examples, m.loss, m.accuracy, m.auc, m.performance, r.round FROM metrics m JOIN rounds r ON r.id = m.round_id WHERE r.study_id = $1 ORDER BY r.round, m.id`,
  ),
  roundCheckpoints: q('round_checkpoints', `SELECT DISTINCT checkpoint_sha256 FROM rounds WHERE checkpoint_sha256 IS NOT NULL`),
  strategyStates: q('strategy_states', `SELECT id, strategy_state FROM studies WHERE strategy_state IS NOT NULL`),
  openTaskModels: q(
    'open_task_models',
    `SELECT DISTINCT t.model_sha256 FROM rounds r JOIN tasks t ON t.round_id = r.id AND t.state = 'ASSIGNED' WHERE r.state NOT IN ('COMMITTED','FAILED')`,
  ),
  listStatistics: q('list_statistics', `SELECT * FROM statistics WHERE study_id = $1 ORDER BY id`),
  findOperator: q('find_operator', `SELECT * FROM operators WHERE token_hash = $1`),
  listAdminActions: q('list_admin_actions', `SELECT * FROM admin_actions ORDER BY id DESC LIMIT $1`),
  nodeSummaries: q(
    'node_summaries',
    `SELECT n.*,
       (SELECT count(*) FROM (SELECT DISTINCT c.study_id, c.round FROM contributions c WHERE c.node_id = n.id AND c.accepted) d) AS rounds_contributed,
       ${CONTRIBUTION_COLS.map((c) => `lr.${c} AS lr_${c}`).join(', ')},
       ${[...TASK_COLS, 'study_id', 'round', 'attempt'].map((c) => `lt.${c} AS lt_${c}`).join(', ')}
     FROM nodes n
     LEFT JOIN LATERAL (SELECT * FROM contributions c WHERE c.node_id = n.id AND NOT c.accepted ORDER BY c.id DESC LIMIT 1) lr ON true
     LEFT JOIN LATERAL (
       ${TASK_SELECT.replace('SELECT ', 'SELECT t.seq, ')} WHERE t.node_id = n.id AND t.state = ANY($4::text[])
       ORDER BY COALESCE(t.ended_at, t.created_at) DESC, t.seq DESC LIMIT 1
     ) lt ON true
     WHERE $1::bigint IS NULL OR (n.created_at, n.id) > ($1::bigint, $2::text)
     ORDER BY n.created_at, n.id
     LIMIT $3`,
  ),
  countNodes: q('count_nodes', `SELECT count(*) AS total, count(revoked_at) AS revoked FROM nodes`),
  roundTaskCounts: q(
    'round_task_counts',
    `SELECT t.round_id, t.kind, t.state, count(*) AS count FROM tasks t WHERE t.round_id IN (SELECT id FROM rounds WHERE study_id = $1)
     GROUP BY t.round_id, t.kind, t.state ORDER BY t.round_id, t.kind, t.state`,
  ),
  rejectionsByReason: q(
    'rejections_by_reason',
    `SELECT round, attempt, reason_code, count(*) AS count FROM contributions WHERE study_id = $1 AND NOT accepted
     GROUP BY round, attempt, reason_code ORDER BY round, attempt, reason_code NULLS FIRST`,
  ),
  contributionTotals: q(
    'contribution_totals',
    `SELECT round, attempt, count(*) FILTER (WHERE accepted) AS accepted, count(*) FILTER (WHERE NOT accepted) AS rejected, COALESCE(sum(bytes), 0)::bigint AS bytes
     FROM contributions WHERE study_id = $1 GROUP BY round, attempt ORDER BY round, attempt`,
  ),
  contributionsPage: q(
    'contributions_page',
    `SELECT * FROM contributions
     WHERE ($1::bigint IS NULL OR id > $1) AND ($2::text IS NULL OR study_id = $2) AND ($3::text IS NULL OR node_id = $3)
       AND ($4::bigint IS NULL OR round = $4) AND ($5::bigint IS NULL OR attempt = $5) AND ($6::boolean IS NULL OR accepted = $6)
     ORDER BY id LIMIT $7`,
  ),
  tasksPage: q(
    'tasks_page',
    `${TASK_SELECT} WHERE t.round_id = $1 AND ($2::bigint IS NULL OR (t.created_at, t.id) > ($2::bigint, $3::text))
       AND ($4::text[] IS NULL OR t.state = ANY($4::text[])) AND ($5::text[] IS NULL OR t.kind = ANY($5::text[]))
     ORDER BY t.created_at, t.id LIMIT $6`,
  ),
} as const;

const WRITE = {
  insertJoinToken: q(
    'insert_join_token',
    `INSERT INTO join_tokens (id, token_hash, site_name, created_at, expires_at, used_at, used_by_node, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
  ),
  redeemToken: q('redeem_token', `UPDATE join_tokens SET used_at = $1, used_by_node = $2 WHERE id = $3 AND used_at IS NULL`),
  setRoundState: q('set_round_state', `UPDATE rounds SET state = $1, reason = COALESCE($2, reason), ended_at = COALESCE($3, ended_at) WHERE id = $4`),
  setRoundParticipants: q('set_round_participants', `UPDATE rounds SET participants = $1 WHERE id = $2`),
  failOpenTasks: q(
    'fail_open_tasks',
    `UPDATE tasks SET state = 'CANCELLED', detail = $1, ended_at = $2 WHERE state = 'ASSIGNED' AND round_id IN (SELECT id FROM rounds WHERE study_id = $3 AND state NOT IN ('COMMITTED','FAILED'))`,
  ),
  failOpenRounds: q('fail_open_rounds', `UPDATE rounds SET state = 'FAILED', reason = $1, ended_at = $2 WHERE study_id = $3 AND state NOT IN ('COMMITTED','FAILED')`),
  setTaskState: q('set_task_state', `UPDATE tasks SET state = $1, detail = $2, ended_at = COALESCE($3, ended_at) WHERE id = $4`),
  insertOperator: q(
    'insert_operator',
    `INSERT INTO operators (id, name, role, token_hash, created_at, created_by, revoked_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
  ),
} as const;

/** Attempts of a transaction PostgreSQL asked to retry (40001 serialization failure, 40P01 deadlock). */
const MAX_ATTEMPTS = 3;

/** Raised inside redeemJoinToken's transaction to roll it back when the token was used meanwhile. */
class TokenAlreadyUsed extends Error {}

/**
 * PostgreSQL implementation of the coordinator store, for scale-out (design §2.1): a `pg.Pool`
 * for reads and the low-rate interactive paths, and one dedicated connection on which the group
 * committer runs every `write()` batch: BEGIN, a SAVEPOINT per unit, COMMIT, and only then are
 * the units' promises settled. Statements are named (prepared once per connection), BIGINT
 * columns come back as numbers (connection.ts), and a lost connection is STORE_UNAVAILABLE
 * (`details.why` 'connection'), never an unhandled 'error' event.
 *
 * Open with {@link PostgresStore.open}, which connects and migrates.
 */
export class PostgresStore extends SingleWriteStore implements CoordinatorStore {
  readonly kind = 'postgres' as const;
  /** Where the store connects, without any password: safe to log. */
  readonly target: string;
  /**
   * The read pool. Shared with the PostgreSQL blob store (blobs/postgres-blob-store.ts), whose
   * tables migration 2 creates; the store ends it in {@link close}.
   */
  readonly pool: pg.Pool;
  private readonly committer: GroupCommitter<Unit, unknown>;
  private writerClient: pg.Client | undefined;
  private writerConnecting: Promise<pg.Client> | undefined;
  private closed: Promise<void> | undefined;
  private readonly logger: StoreLogger | undefined;
  private readonly fence: StoreFence | undefined;
  private batchObserver: ((stats: BatchStats) => void) | undefined;

  private constructor(
    private readonly clientConfig: pg.ClientConfig,
    options: PostgresStoreOptions,
  ) {
    super();
    this.target = describeTarget(clientConfig);
    // pg.Pool applies connectionTimeoutMillis to requests waiting for a pooled client as well as
    // to opening a connection, so a burst of reads (10 000 sessions opening at once) failed with
    // "timeout exceeded when trying to connect" while the server was fine. The pool waits without
    // a timeout; each connection it opens keeps the connect timeout (TimedClient).
    const connectTimeoutMs = clientConfig.connectionTimeoutMillis;
    class TimedClient extends pg.Client {
      constructor(config?: string | pg.ClientConfig) {
        super({ ...(typeof config === 'string' ? { connectionString: config } : config), connectionTimeoutMillis: connectTimeoutMs });
      }
    }
    this.pool = new pg.Pool({ ...clientConfig, connectionTimeoutMillis: 0, max: options.poolSize ?? 8, Client: TimedClient });
    // An idle pooled connection that dies (server restart, network) emits 'error' on the pool;
    // unhandled, it would crash the process. The next query gets a fresh connection or fails
    // with STORE_UNAVAILABLE.
    this.pool.on('error', (err) => {
      options.logger?.warn({ event: 'store.connection_lost', store: 'postgres', target: this.target, err: { message: err.message, code: (err as { code?: string }).code } }, 'an idle PostgreSQL connection failed');
    });
    this.logger = options.logger;
    this.fence = options.fence;
    this.committer = new GroupCommitter<Unit, unknown>((units) => this.runBatch(units), {
      ...options.groupCommit,
      onBatch: (stats) => this.batchObserver?.(stats),
      countOps: (u) => u.ops,
      mapError: (err) => mapStoreError(err, this.target),
    });
  }

  /** Connects, migrates the schema (STORE_VERSION_TOO_NEW if it is newer than this code) and returns the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const base: pg.ClientConfig = typeof options.connection === 'string' ? { connectionString: options.connection } : { ...options.connection };
    const config: pg.ClientConfig = { ...base, types: storeTypes, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000, application_name: base.application_name ?? 'fedlhs-coordinator' };
    const store = new PostgresStore(config, options);
    try {
      const client = await store.connectPool();
      try {
        await migrate(client);
        await backfillPgAuditChain(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await store.close().catch(() => undefined);
      throw mapStoreError(err, store.target);
    }
    return store;
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private async connectPool(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw mapStoreError(err, this.target);
    }
  }

  private async rows(s: Statement, values: unknown[] = []): Promise<Row[]> {
    try {
      return (await exec(this.pool, s, values)).rows;
    } catch (err) {
      throw mapStoreError(err, this.target);
    }
  }

  private async one(s: Statement, values: unknown[]): Promise<Row | undefined> {
    return (await this.rows(s, values))[0];
  }

  /** The committer's connection, opened on first use and again after it failed. */
  private writer(): Promise<pg.Client> {
    if (this.writerClient !== undefined) return Promise.resolve(this.writerClient);
    this.writerConnecting ??= (async () => {
      const fence = this.fence;
      const client = new pg.Client(fence === undefined ? this.clientConfig : { ...this.clientConfig, idle_in_transaction_session_timeout: fence.idleInTransactionMs });
      client.on('error', (err) => {
        this.logger?.warn({ event: 'store.connection_lost', store: 'postgres', target: this.target, err: { message: err.message, code: (err as { code?: string }).code } }, 'the PostgreSQL group-commit connection failed');
        if (this.writerClient === client) this.writerClient = undefined;
      });
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      this.writerClient = client;
      return client;
    })().finally(() => {
      this.writerConnecting = undefined;
    });
    return this.writerConnecting;
  }

  private dropWriter(client: pg.Client): void {
    if (this.writerClient === client) this.writerClient = undefined;
    void client.end().catch(() => undefined);
  }

  /**
   * One group-commit batch on the committer connection. A single unit needs no savepoint (its
   * failure rolls back the whole transaction); several get one each, so a failing unit is rolled
   * back alone. A connection fault or a retryable conflict throws, failing the whole batch
   * (retried up to MAX_ATTEMPTS for conflicts); nothing is settled before COMMIT returns.
   */
  private async runBatch(units: readonly Unit[]): Promise<UnitOutcome<unknown>[]> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.writer();
      try {
        return await this.batchOnce(client, units);
      } catch (err) {
        if (unavailableWhy(err) === 'connection') this.dropWriter(client);
        else await client.query('ROLLBACK').catch(() => undefined);
        if (isRetryable(err) && attempt < MAX_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  private async batchOnce(client: pg.Client, units: readonly Unit[]): Promise<UnitOutcome<unknown>[]> {
    const fatal = (err: unknown): boolean => unavailableWhy(err) !== undefined || isRetryable(err);
    await client.query('BEGIN');
    if (this.fence !== undefined) await this.checkFence(client, this.fence);
    const outcomes: UnitOutcome<unknown>[] = [];
    const single = units.length === 1;
    for (const unit of units) {
      if (!single) await client.query('SAVEPOINT unit');
      try {
        const value = await unit.apply(client);
        if (!single) await client.query('RELEASE SAVEPOINT unit');
        outcomes.push({ ok: true, value });
      } catch (err) {
        if (fatal(err)) throw err;
        if (single) {
          await client.query('ROLLBACK');
          return [{ ok: false, error: err }];
        }
        await client.query('ROLLBACK TO SAVEPOINT unit');
        await client.query('RELEASE SAVEPOINT unit');
        outcomes.push({ ok: false, error: err });
      }
    }
    await client.query('COMMIT');
    return outcomes;
  }

  /** Throws FENCED (failing the whole batch, rolled back by runBatch) unless the leadership row has our fence. */
  private async checkFence(client: pg.Client, fence: StoreFence): Promise<void> {
    const current = ((await client.query<{ fence: number }>(FENCE_CHECK)).rows[0]?.fence) ?? null;
    if (current === fence.token) return;
    this.logger?.error?.({ event: 'ha.write_fenced', fence: fence.token, current }, `write refused: this coordinator's fence ${fence.token} is stale (the leadership row has ${current}): another coordinator took over`);
    fence.onFenced(current);
    throw new FedlhsError('FENCED', `write refused: this coordinator's fence ${fence.token} is stale (the leadership row has ${current ?? 'none'}): another coordinator is active`);
  }

  // ---- unit of work ------------------------------------------------------------------------

  write(ops: readonly WriteOp[], label: string): Promise<WriteResult> {
    return this.enqueue(
      label,
      async (client) => {
        const result: WriteResult = { roundIds: [], cancelled: [] };
        for (const op of ops) await applyOp(client, op, result);
        return result;
      },
      ops.length,
    );
  }

  /**
   * A durable write that changes nothing (storage-health.ts probes with it): rewrites the newest
   * migration's time in its own unit of the group commit, so it meets a full disk, a read-only
   * server or a lost connection like any write.
   */
  async probeWrite(): Promise<void> {
    await this.change('storage.probe', PROBE_WRITE, []);
  }

  /** Runs `fn` as one unit of the next group-commit batch; settles after COMMIT. */
  private enqueue<T>(label: string, fn: (client: pg.ClientBase) => Promise<T>, ops = 1): Promise<T> {
    return this.committer.submit({ label, ops, apply: fn }) as Promise<T>;
  }

  /** A one-statement unit; resolves with its row count. */
  private change(label: string, s: Statement, values: unknown[]): Promise<number> {
    return this.enqueue(label, async (client) => (await exec(client, s, values)).rowCount ?? 0);
  }

  onBatch(observer: ((stats: BatchStats) => void) | undefined): void {
    this.batchObserver = observer;
  }

  // ---- enrolment ---------------------------------------------------------------------------

  async insertJoinToken(t: JoinTokenRecord): Promise<void> {
    await this.change('joinToken.insert', WRITE.insertJoinToken, [t.id, t.tokenHash, t.siteName, t.createdAt, t.expiresAt, t.usedAt, t.usedByNode, t.createdBy]);
  }
  async findJoinToken(tokenHash: string): Promise<JoinTokenRecord | undefined> {
    const r = await this.one(READ.findJoinToken, [tokenHash]);
    return r === undefined ? undefined : rows.joinToken(r);
  }
  async redeemJoinToken(tokenId: string, n: NodeRecord): Promise<boolean> {
    try {
      return await this.enqueue(
        'joinToken.redeem',
        async (c) => {
          await exec(c, SQL.insertNode, nodeValues(n));
          // The guarded UPDATE decides a race: a second redeemer (in this batch, or on another
          // connection after waiting for the row lock) finds used_at set, and its unit rolls back
          // to its savepoint, taking its node with it.
          const res = await exec(c, WRITE.redeemToken, [n.createdAt, n.id, tokenId]);
          if (res.rowCount !== 1) throw new TokenAlreadyUsed();
          return true;
        },
        2,
      );
    } catch (err) {
      if (err instanceof TokenAlreadyUsed) return false;
      throw err;
    }
  }
  /**
   * The holder of a live active/standby lease on this database, if any (ha/lease.ts): a
   * coordinator started without ha.enabled must not write beside an active that checks fences.
   */
  async liveLeaseHolder(): Promise<string | undefined> {
    const r = await this.pool.query<{ holder: string | null }>('SELECT holder FROM leadership WHERE id = 1 AND expires_at > now()');
    return r.rows[0]?.holder ?? undefined;
  }
  async getNode(id: string): Promise<NodeRecord | undefined> {
    const r = await this.one(READ.getNode, [id]);
    return r === undefined ? undefined : rows.node(r);
  }
  async listNodes(): Promise<NodeRecord[]> {
    return (await this.rows(READ.listNodes)).map(rows.node);
  }
  async revokeNode(id: string, at: number): Promise<boolean> {
    return this.enqueue('node.revoke', async (client) => {
      const changed = (await exec(client, SQL.revokeNode, [at, id])).rowCount ?? 0;
      if (changed === 1) await pgNodeCertificates.revokeAll(client, id, at);
      await auditPgOp(client, { op: 'node.revoke', id, at }, changed);
      return changed === 1;
    });
  }
  insertNodeCertificate(c: NewNodeCertificate): Promise<void> {
    return this.enqueue('nodeCertificate.insert', (client) => pgNodeCertificates.insert(client, c));
  }
  supersedeNodeCertificates(nodeId: string, before: number, at: number): Promise<number> {
    return this.enqueue('nodeCertificate.supersede', (client) => pgNodeCertificates.supersede(client, nodeId, before, at));
  }
  async listNodeCertificates(notExpiredAt: number): Promise<NodeCertificateRecord[]> {
    try {
      return await pgNodeCertificates.list(this.pool, notExpiredAt);
    } catch (err) {
      throw mapStoreError(err, this.target);
    }
  }
  recordNodeCa(ca: NodeCaRecord): Promise<NodeCaRecord> {
    return this.enqueue('nodeCa.record', (client) => pgNodeCertificates.recordCa(client, ca));
  }
  async getNodeCa(): Promise<NodeCaRecord | undefined> {
    try {
      return await pgNodeCertificates.getCa(this.pool);
    } catch (err) {
      throw mapStoreError(err, this.target);
    }
  }

  // ---- studies and rounds ------------------------------------------------------------------

  async getStudy(id: string): Promise<StudyRecord | undefined> {
    const r = await this.one(READ.getStudy, [id]);
    return r === undefined ? undefined : rows.study(r);
  }
  async listStudies(): Promise<StudyRecord[]> {
    return (await this.rows(READ.listStudies)).map(rows.study);
  }
  async setRoundParticipants(id: number, participants: number): Promise<void> {
    await this.change('round.participants', WRITE.setRoundParticipants, [participants, id]);
  }
  async listRounds(studyId: string): Promise<RoundRecord[]> {
    return (await this.rows(READ.listRounds, [studyId])).map(rows.round);
  }
  async getCommittedRound(studyId: string, n: number): Promise<RoundRecord | undefined> {
    const r = await this.one(READ.committedRound, [studyId, n]);
    return r === undefined ? undefined : rows.round(r);
  }
  async failOpenRounds(studyId: string, reason: string, at: number): Promise<number> {
    return this.enqueue(
      'rounds.failOpen',
      async (c) => {
        await exec(c, WRITE.failOpenTasks, [reason, at, studyId]);
        return (await exec(c, WRITE.failOpenRounds, [reason, at, studyId])).rowCount ?? 0;
      },
      2,
    );
  }

  async referencedBlobs(): Promise<Set<string>> {
    const [checkpoints, states, tasks, releases] = await Promise.all([
      this.rows(READ.roundCheckpoints), this.rows(READ.strategyStates), this.rows(READ.openTaskModels), this.rows(RELEASE_READ.files),
    ]);
    return blobReferenceSet(
      checkpoints.map((r) => r.checkpoint_sha256 as string),
      states.map((r) => ({ studyId: r.id as string, json: r.strategy_state as string })),
      tasks.map((r) => r.model_sha256 as string),
      releaseRows.files(releases),
    );
  }

  // ---- tasks -------------------------------------------------------------------------------

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const r = await this.one(READ.getTask, [id]);
    return r === undefined ? undefined : rows.task(r);
  }
  async setTaskState(id: string, state: TaskStateName, detail: string | null, at: number | null): Promise<void> {
    await this.change('task.state', WRITE.setTaskState, [state, detail, at, id]);
  }
  async listTasks(roundId: number): Promise<TaskRecord[]> {
    return (await this.rows(READ.listTasks, [roundId])).map((r) => rows.task(r));
  }
  async listNodeTasks(nodeId: string, states: readonly TaskStateName[], limit: number): Promise<TaskRecord[]> {
    if (states.length === 0) return [];
    return (await this.rows(READ.listNodeTasks, [nodeId, states, limit])).map((r) => rows.task(r));
  }
  async openTasksForNode(nodeId: string): Promise<TaskRecord[]> {
    return (await this.rows(READ.openTasksForNode, [nodeId])).map((r) => rows.task(r));
  }
  async cancelOpenTasks(roundId: number, detail: string, at: number | null): Promise<string[]> {
    return this.enqueue('task.cancelOpen', async (c) => (await exec<{ id: string }>(c, SQL.cancelOpen, [roundId, detail, at])).rows.map((r) => r.id));
  }

  // ---- contributions, metrics, statistics ----------------------------------------------------

  async acceptedContribution(taskId: string): Promise<ContributionRecord | undefined> {
    const r = await this.one(READ.acceptedContribution, [taskId]);
    return r === undefined ? undefined : rows.contribution(r);
  }
  async findAcceptedBySha256(sha256: string, studyId: string, except?: { nodeId: string; round: number }): Promise<ContributionRecord | undefined> {
    const r = await this.one(READ.findAcceptedBySha, [sha256, studyId, except?.nodeId ?? '', except?.round ?? -1]);
    return r === undefined ? undefined : rows.contribution(r);
  }
  async listContributions(filter: { studyId?: string; nodeId?: string }): Promise<ContributionRecord[]> {
    return (await this.rows(READ.listContributions, [filter.studyId ?? null, filter.nodeId ?? null])).map((r) => rows.contribution(r));
  }
  async listNormHistory(studyId: string): Promise<number[]> {
    return (await this.rows(READ.normHistory, [studyId])).map((r) => r.delta_norm as number);
  }
  async listMetrics(studyId: string): Promise<(MetricRecord & { round: number })[]> {
    return (await this.rows(READ.listMetrics, [studyId])).map(rows.metric);
  }
  async listStatistics(studyId: string): Promise<StatisticsRecord[]> {
    return (await this.rows(READ.listStatistics, [studyId])).map(rows.statistics);
  }

  // ---- operators and audit -------------------------------------------------------------------

  async insertOperator(o: OperatorRecord): Promise<void> {
    await this.change('operator.insert', WRITE.insertOperator, [o.id, o.name, o.role, o.tokenHash, o.createdAt, o.createdBy, o.revokedAt]);
  }
  async findOperator(tokenHash: string): Promise<OperatorRecord | undefined> {
    const r = await this.one(READ.findOperator, [tokenHash]);
    return r === undefined ? undefined : rows.operator(r);
  }
  async listAdminActions(limit: number): Promise<AdminActionRecord[]> {
    return (await this.rows(READ.listAdminActions, [limit])).map(rows.adminAction);
  }

  // ---- paged and aggregated reads --------------------------------------------------------------

  async listNodeSummaries(page: PageRequest): Promise<Page<NodeSummaryRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'ns');
    const found = await this.rows(READ.nodeSummaries, [after?.[0] ?? null, after?.[1] ?? null, limit + 1, PROBLEM_STATES]);
    return toPage(
      found,
      limit,
      (r): NodeSummaryRecord => ({
        ...rows.node(r),
        roundsContributed: r.rounds_contributed as number,
        lastRejection: r.lr_task_id === null ? null : rows.prefixedContribution(r, 'lr_'),
        lastProblemTask: r.lt_id === null ? null : rows.prefixedTask(r, 'lt_'),
      }),
      (r) => [r.created_at as number, r.id as string],
    );
  }
  async countNodes(): Promise<{ total: number; revoked: number }> {
    const r = (await this.one(READ.countNodes, []))!;
    return { total: r.total as number, revoked: r.revoked as number };
  }
  async roundTaskCounts(studyId: string): Promise<RoundTaskCount[]> {
    return (await this.rows(READ.roundTaskCounts, [studyId])).map((r) => ({
      roundId: r.round_id as number,
      kind: r.kind as RoundTaskCount['kind'],
      state: r.state as TaskStateName,
      count: r.count as number,
    }));
  }
  async rejectionsByReason(studyId: string): Promise<RejectionCount[]> {
    return (await this.rows(READ.rejectionsByReason, [studyId])).map((r) => ({
      round: r.round as number,
      attempt: r.attempt as number,
      reasonCode: (r.reason_code as string | null) ?? null,
      count: r.count as number,
    }));
  }
  async contributionTotals(studyId: string): Promise<ContributionTotals[]> {
    return (await this.rows(READ.contributionTotals, [studyId])).map((r) => ({
      round: r.round as number,
      attempt: r.attempt as number,
      accepted: r.accepted as number,
      rejected: r.rejected as number,
      bytes: r.bytes as number,
    }));
  }
  async listContributionsPage(filter: ContributionFilter, page: PageRequest): Promise<Page<ContributionRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'n');
    const found = await this.rows(READ.contributionsPage, [
      after?.[0] ?? null, filter.studyId ?? null, filter.nodeId ?? null, filter.round ?? null, filter.attempt ?? null, filter.accepted ?? null, limit + 1,
    ]);
    return toPage(found, limit, (r) => rows.contribution(r), (r) => [r.id as number]);
  }
  async listTasksPage(filter: TaskFilter, page: PageRequest): Promise<Page<TaskRecord>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page.after, 'ns');
    const found = await this.rows(READ.tasksPage, [
      filter.roundId, after?.[0] ?? null, after?.[1] ?? null, filter.states ?? null, filter.kinds ?? null, limit + 1,
    ]);
    return toPage(found, limit, (r) => rows.task(r), (r) => [r.created_at as number, r.id as string]);
  }

  // ---- releases (issue 12; releases.ts) -------------------------------------------------------

  async listReleases(studyName: string | undefined, limit: number): Promise<ReleaseRecord[]> {
    const n = pageLimit({ limit });
    return releaseRows.releases(studyName === undefined ? await this.rows(RELEASE_READ.listAll, [n]) : await this.rows(RELEASE_READ.listOf, [studyName, n]));
  }
  async getRelease(studyName: string, version: number): Promise<ReleaseRecord | undefined> {
    return releaseRows.releases(await this.rows(RELEASE_READ.get, [studyName, version]))[0];
  }
  async releaseOfStudy(studyId: string): Promise<ReleaseRecord | undefined> {
    return releaseRows.releases(await this.rows(RELEASE_READ.ofStudy, [studyId]))[0];
  }
  async listReleaseAliases(studyName: string | undefined): Promise<ReleaseAliasRecord[]> {
    return releaseRows.aliases(studyName === undefined ? await this.rows(RELEASE_READ.aliasesAll) : await this.rows(RELEASE_READ.aliasesOf, [studyName]));
  }
  async listReleasePerformance(studyName: string, version: number): Promise<ReleasePerformanceRecord[]> {
    return releaseRows.performance(await this.rows(RELEASE_READ.performance, [studyName, version]));
  }

  async nodeTookPartInName(nodeId: string, studyName: string): Promise<boolean> {
    return (await this.one(SERIES_READ.tookPartInName, [nodeId, studyName])) !== undefined;
  }

  // ---- series (issue 13; series.ts) -----------------------------------------------------------

  async listSeries(): Promise<SeriesRecord[]> {
    return seriesRows.series(await this.rows(SERIES_READ.list));
  }
  async getSeries(name: string): Promise<SeriesRecord | undefined> {
    return seriesRows.series(await this.rows(SERIES_READ.get, [name]))[0];
  }
  async listSeriesRuns(name: string): Promise<SeriesRunRecord[]> {
    return seriesRows.runs(await this.rows(SERIES_READ.runs, [name]));
  }
  async seriesRunOfStudy(studyId: string): Promise<SeriesRunRecord | undefined> {
    return seriesRows.runs(await this.rows(SERIES_READ.runOfStudy, [studyId]))[0];
  }
  async listPromotions(name: string): Promise<PromotionRecord[]> {
    return seriesRows.promotions(await this.rows(SERIES_READ.promotions, [name]));
  }

  /** Lets queued writes finish, then closes the committer connection and the pool. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await this.committer.drain();
      await this.writerConnecting?.catch(() => undefined);
      const writer = this.writerClient;
      this.writerClient = undefined;
      await writer?.end().catch(() => undefined);
      await this.pool.end();
    })());
  }

  async nodeTookPart(nodeId: string, studyId: string): Promise<boolean> {
    return (await this.one(NODE_TOOK_PART, [nodeId, studyId])) !== undefined;
  }
}

const PROBE_WRITE = q('probe_write', `UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT max(version) FROM schema_migrations)`);
const NODE_TOOK_PART = q('node_took_part', `SELECT 1 WHERE EXISTS (SELECT 1 FROM study_approvals WHERE node_id = $1 AND study_id = $2) OR EXISTS (SELECT 1 FROM tasks t JOIN rounds r ON r.id = t.round_id WHERE t.node_id = $1 AND r.study_id = $2)`);
