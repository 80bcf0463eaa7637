import type { BatchStats } from './store/group-commit.js';
import type { WriteOp, WriteResult } from './store/write-ops.js';
import type { RoundState } from '@fedlhs/core';
import type { NewNodeCertificate } from './store/node-certificate-rows.js';
import type {
  AdminActionRecord, NodeCaRecord, NodeCertificateRecord, ContributionFilter, ContributionRecord, ContributionTotals, JoinTokenRecord, MetricRecord, NodeRecord, NodeSummaryRecord,
  OperatorRecord, Page, PageRequest, PromotionRecord, RejectionCount, ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord, RoundRecord, RoundTaskCount, SeriesRecord, SeriesRunRecord, StatisticsRecord, StudyRecord, StudyStateName, TaskFilter, TaskRecord, TaskStateName,
} from './store/records.js';

export type * from './store/records.js';
export type { NewNodeCertificate } from './store/node-certificate-rows.js';

/**
 * Persistence of the coordinator's state. The embedded default is SQLite (sqlite-store.ts);
 * the interface is asynchronous so that a PostgreSQL implementation can stand behind it
 * without changing the callers.
 */

export interface CoordinatorStore {
  /** Which implementation this is ('sqlite' embedded default, 'postgres' for scale-out). */
  readonly kind: 'sqlite' | 'postgres';

  /**
   * Unit of work (store/write-ops.ts): applies `ops` all or nothing, group-committed with other
   * units, and resolves once durable. Rejects with the guard's FedlhsError (STALE, NOT_FOUND) or
   * STORE_UNAVAILABLE; a failed unit leaves no trace. `label` names the unit in logs and metrics.
   */
  write(ops: readonly WriteOp[], label: string): Promise<WriteResult>;
  /** Sets (or clears) the observer told about every group-commit batch (metrics: batch size, commit time). */
  onBatch(observer: ((stats: BatchStats) => void) | undefined): void;

  // Enrolment
  insertJoinToken(token: JoinTokenRecord): Promise<void>;
  findJoinToken(tokenHash: string): Promise<JoinTokenRecord | undefined>;
  /** Atomically marks the token used and creates the node. False if the token was used meanwhile. */
  redeemJoinToken(tokenId: string, node: NodeRecord): Promise<boolean>;
  getNode(id: string): Promise<NodeRecord | undefined>;
  listNodes(): Promise<NodeRecord[]>;
  /** Marks the node revoked and, in the same unit, every certificate of it. False if it was already revoked (or is unknown). */
  revokeNode(id: string, at: number): Promise<boolean>;
  touchNode(id: string, at: number, agentVersion: string, trainingBackend: string): Promise<void>;

  // Node certificates (issue 15, tls.clientCertificates 'issued'): shared by an active/standby pair.
  /** Records a certificate the node CA has just issued (the node must exist). */
  insertNodeCertificate(c: NewNodeCertificate): Promise<void>;
  /** Marks the node's certificates issued before `before` superseded at `at` (it presented a newer one); how many were. */
  supersedeNodeCertificates(nodeId: string, before: number, at: number): Promise<number>;
  /** Every certificate not expired at `notExpiredAt`, oldest first (issued_at, serial). */
  listNodeCertificates(notExpiredAt: number): Promise<NodeCertificateRecord[]>;
  /** Records the node CA certificate unless one is; resolves with the one recorded (this, or the earlier one). */
  recordNodeCa(ca: NodeCaRecord): Promise<NodeCaRecord>;
  getNodeCa(): Promise<NodeCaRecord | undefined>;

  // Studies and rounds
  insertStudy(study: StudyRecord): Promise<void>;
  getStudy(id: string): Promise<StudyRecord | undefined>;
  listStudies(): Promise<StudyRecord[]>;
  setStudyState(id: string, state: StudyStateName, reason: string | null, at: number | null): Promise<void>;
  insertRound(round: Omit<RoundRecord, 'id'>): Promise<number>;
  setRoundState(id: number, state: RoundState, reason: string | null, at: number | null): Promise<void>;
  setRoundParticipants(id: number, participants: number): Promise<void>;
  /** In one transaction: round COMMITTED with its checkpoint and metrics, study advanced. */
  commitRound(id: number, checkpoint: { path: string; sha256: string }, metrics: MetricRecord[], strategyState: string | null, at: number): Promise<void>;
  listRounds(studyId: string): Promise<RoundRecord[]>;
  getCommittedRound(studyId: string, round: number): Promise<RoundRecord | undefined>;
  /** Marks every non-final round of the study FAILED with `reason` (used after a restart). */
  failOpenRounds(studyId: string, reason: string, at: number): Promise<number>;
  /**
   * Every blob digest a row refers to (blob garbage collection keeps these): the checkpoint of
   * every round that has one (any state), the strategy state of every study, and the model of
   * every ASSIGNED task in a round that is not final (evaluation tasks hand out a candidate
   * before its round commits). A strategy_state that is not `{"sha256": …}` JSON throws
   * DATA_LOSS, so a collection never runs on references it cannot read.
   */
  referencedBlobs(): Promise<Set<string>>;

  // Tasks
  insertTask(task: TaskRecord): Promise<void>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /** Records a task's new state and why; `at` is when it ended (null to leave it unset). */
  setTaskState(id: string, state: TaskStateName, detail: string | null, at: number | null): Promise<void>;
  listTasks(roundId: number): Promise<TaskRecord[]>;
  /**
   * A node's tasks in the given states, the most recently ended first (tasks without an end
   * time by creation), at most `limit`: its failures, declines and rejections for operators.
   */
  listNodeTasks(nodeId: string, states: readonly TaskStateName[], limit: number): Promise<TaskRecord[]>;
  /** Open (ASSIGNED) tasks of a node in rounds that are still running. */
  openTasksForNode(nodeId: string): Promise<TaskRecord[]>;
  cancelOpenTasks(roundId: number, detail: string, at: number | null): Promise<string[]>;

  // Contributions and metrics
  insertContribution(c: ContributionRecord): Promise<void>;
  acceptedContribution(taskId: string): Promise<ContributionRecord | undefined>;
  /**
   * An accepted contribution to `studyId` with this payload digest. Scoped to the study: two
   * studies with the same seed and data can legitimately produce identical updates, and so can
   * the same node in a retried attempt of a round (`except` leaves those out).
   */
  findAcceptedBySha256(sha256: string, studyId: string, except?: { nodeId: string; round: number }): Promise<ContributionRecord | undefined>;
  listContributions(filter: { studyId?: string; nodeId?: string }): Promise<ContributionRecord[]>;
  /** Delta norms of a study's accepted updates, oldest first. */
  listNormHistory(studyId: string): Promise<number[]>;
  insertMetrics(metrics: MetricRecord[]): Promise<void>;
  /** Stores a clinic's statistics report (aggregates only) for a task. */
  insertStatistics(s: StatisticsRecord): Promise<void>;
  listStatistics(studyId: string): Promise<StatisticsRecord[]>;
  setStudyParameters(id: string, parameters: string): Promise<void>;
  listMetrics(studyId: string): Promise<(MetricRecord & { round: number })[]>;

  // Operators and the admin audit trail
  insertOperator(o: OperatorRecord): Promise<void>;
  findOperator(tokenHash: string): Promise<OperatorRecord | undefined>;
  insertAdminAction(a: AdminActionRecord): Promise<void>;
  listAdminActions(limit: number): Promise<AdminActionRecord[]>;

  // Paged and aggregated reads for the status and study views (design §5): their cost depends
  // on the page size or the number of rounds, not on the number of clinics.
  /** Nodes in enrolment order (created_at, id), with their summaries. */
  listNodeSummaries(page: PageRequest): Promise<Page<NodeSummaryRecord>>;
  countNodes(): Promise<{ total: number; revoked: number }>;
  /** Task counts of every round of the study, per (round, kind, state); rows ordered by roundId, kind, state. */
  roundTaskCounts(studyId: string): Promise<RoundTaskCount[]>;
  /** Rejected contributions of the study per (round, attempt, reason code), ordered by those. */
  rejectionsByReason(studyId: string): Promise<RejectionCount[]>;
  /** Contribution counts and bytes of the study per (round, attempt), ordered by those. */
  contributionTotals(studyId: string): Promise<ContributionTotals[]>;
  /** Contributions in the order they were recorded. */
  listContributionsPage(filter: ContributionFilter, page: PageRequest): Promise<Page<ContributionRecord>>;
  /** A round's tasks in creation order (created_at, id). */
  listTasksPage(filter: TaskFilter, page: PageRequest): Promise<Page<TaskRecord>>;
  /**
   * Whether the node took part in the study: it approved it (an `approval.record`, written when
   * it first declares for the study's manifest a readiness other than NOT_APPROVED or WITHDRAWN) or has had any task in it. These are the
   * nodes that may download the study's committed models (issue 11), selected or not.
   */
  nodeTookPart(nodeId: string, studyId: string): Promise<boolean>;
  /**
   * A durable write that changes nothing, through the same path as every unit (the storage
   * health probe, storage-health.ts). Rejects (STORAGE_FAULT or STORE_UNAVAILABLE) while the
   * store cannot be written.
   */
  probeWrite(): Promise<void>;

  // Releases (issue 12)
  /** A study name's releases, newest version first (every study name when undefined), at most `limit`. */
  listReleases(studyName: string | undefined, limit: number): Promise<ReleaseRecord[]>;
  getRelease(studyName: string, version: number): Promise<ReleaseRecord | undefined>;
  /** The release made from a study, if any (one per study). */
  releaseOfStudy(studyId: string): Promise<ReleaseRecord | undefined>;
  /** Aliases of a study name (every study name when undefined). */
  listReleaseAliases(studyName: string | undefined): Promise<ReleaseAliasRecord[]>;
  /** Live performance reports of one release, oldest first. */
  listReleasePerformance(studyName: string, version: number): Promise<ReleasePerformanceRecord[]>;
  /**
   * True if the node took part (nodeTookPart) in any study named `studyName`: such a node may
   * fetch every release of that name (a series' runs share their name).
   */
  nodeTookPartInName(nodeId: string, studyName: string): Promise<boolean>;

  // Series (issue 13)
  listSeries(): Promise<SeriesRecord[]>;
  getSeries(name: string): Promise<SeriesRecord | undefined>;
  /** A series' runs, oldest first. */
  listSeriesRuns(name: string): Promise<SeriesRunRecord[]>;
  /** The run a study is, if it is one. */
  seriesRunOfStudy(studyId: string): Promise<SeriesRunRecord | undefined>;
  /** A series' champion decisions, oldest first. */
  listPromotions(name: string): Promise<PromotionRecord[]>;

  close(): Promise<void>;
}
