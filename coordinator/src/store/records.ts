import type { EvalMetrics, RoundState } from '@fedlhs/core';

/** The coordinator's records, as the store reads and writes them (store.ts has the interface). */

export interface NodeRecord {
  id: string;
  siteName: string;
  credentialHash: string;
  createdAt: number;
  revokedAt: number | null;
  lastSeenAt: number | null;
  agentVersion: string;
  trainingBackend: string;
}

export interface JoinTokenRecord {
  id: string;
  tokenHash: string;
  siteName: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  usedByNode: string | null;
  createdBy: string;
}

export type StudyStateName = 'RUNNING' | 'COMPLETED' | 'STOPPED' | 'FAILED';

export interface StudyRecord {
  id: string;
  name: string;
  manifestJson: string;
  manifestHash: string;
  state: StudyStateName;
  reason: string | null;
  lastCommittedRound: number;
  /** Server-side aggregation state (e.g. optimizer moments), JSON; null for stateless strategies. */
  strategyState: string | null;
  /** Parameters derived during the study (e.g. federated normalisation), JSON; null until then. */
  parameters: string | null;
  createdAt: number;
  endedAt: number | null;
  /**
   * The model's tensor list (names and shapes, JSON `TensorSpec[]`), written once with the study.
   * Stores always return it; null for studies created before it was stored, whose list is the
   * file `studies/<id>/model-spec.json` in the data directory. Optional only so that records
   * built by hand (tests) need not name it.
   */
  modelSpec?: string | null;
}

export interface RoundRecord {
  id: number;
  studyId: string;
  round: number;
  attempt: number;
  state: RoundState;
  reason: string | null;
  startedAt: number;
  endedAt: number | null;
  participants: number;
  checkpointPath: string | null;
  checkpointSha256: string | null;
}

/** A proto TaskKind without its prefix (the SECAGG_ kinds are the secure-aggregation stages, issue 14). */
export type TaskKindName = 'TRAIN' | 'EVALUATE' | 'STATISTICS' | 'SECAGG_KEYS' | 'SECAGG_SHARES' | 'SECAGG_MASKED_INPUT' | 'SECAGG_CONSISTENCY' | 'SECAGG_UNMASK';
/** ASSIGNED: sent; ACCEPTED: result in; REJECTED/DECLINED/FAILED/CANCELLED: ended without result. */
export type TaskStateName = 'ASSIGNED' | 'ACCEPTED' | 'REJECTED' | 'DECLINED' | 'FAILED' | 'CANCELLED';

export interface TaskRecord {
  id: string;
  roundId: number;
  studyId: string;
  round: number;
  attempt: number;
  nodeId: string;
  kind: TaskKindName;
  state: TaskStateName;
  detail: string | null;
  modelSha256: string;
  deadline: number;
  createdAt: number;
  /** When the task left ASSIGNED (null while open, and for tasks ended before this was recorded). */
  endedAt: number | null;
}

export interface ContributionRecord {
  taskId: string;
  studyId: string;
  round: number;
  /** Attempt of the round (0 when the task was not identified). */
  attempt: number;
  nodeId: string;
  numExamples: number;
  sha256: string;
  bytes: number;
  accepted: boolean;
  reasonCode: string | null;
  reason: string | null;
  receivedAt: number;
  /** ‖update − global‖₂ of an accepted update (null for rejected ones). */
  deltaNorm?: number | null;
}

export interface MetricRecord extends EvalMetrics {
  roundId: number;
  /** null for the example-weighted global value. */
  nodeId: string | null;
  /**
   * 'evaluation' (the validation part of the hold-out split, global model; chooses the released
   * round), 'test' (the test part, global model; published with a release only) or 'training'
   * (local split, local weights).
   */
  phase: 'evaluation' | 'training' | 'test' | 'comparison';
  /** The site's or pooled figures with intervals and calibration (core Performance, JSON), when reported. */
  performance?: string | null | undefined;
}

export interface StatisticsRecord {
  studyId: string;
  taskId: string;
  nodeId: string;
  /** The clinic's report as JSON (core ClinicStats). */
  report: string;
  receivedAt: number;
}

/** A person (or program) allowed to use the admin API and dashboard. */
export interface OperatorRecord {
  id: string;
  name: string;
  role: 'viewer' | 'admin';
  tokenHash: string;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
}

/** An admin action, recorded with who did it. */
export interface AdminActionRecord {
  at: number;
  operator: string;
  action: string;
  target: string;
  detail: string | null;
}

/** A page request for lists that grow with the number of clinics: keyset paging, never OFFSET. */
export interface PageRequest {
  /** The `next` of the previous page (opaque; only the store that made it understands it). */
  after?: string;
  /** At most this many items (1..1000). */
  limit: number;
}

/** A page of a list; `next` is null on the last page. Rows inserted after the cursor show up on later pages. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** A node with what the status view shows of its history, read in one query per page. */
export interface NodeSummaryRecord extends NodeRecord {
  /** Distinct (study, round) pairs with an accepted update of this node (failed attempts included). */
  roundsContributed: number;
  /** The node's latest rejected contribution, or null. */
  lastRejection: ContributionRecord | null;
  /** The node's latest task that ended FAILED, DECLINED or REJECTED (by end time, as listNodeTasks), or null. */
  lastProblemTask: TaskRecord | null;
}

/** Tasks of one round of a study per (kind, state): the timeline's counts without reading the tasks. */
export interface RoundTaskCount {
  roundId: number;
  kind: TaskKindName;
  state: TaskStateName;
  count: number;
}

/** Rejected contributions of a study per (round, attempt, reason code). */
export interface RejectionCount {
  round: number;
  attempt: number;
  /** null for rejections recorded without a code. */
  reasonCode: string | null;
  count: number;
}

/** Contributions of a study per (round, attempt): accepted and rejected counts, and bytes received. */
export interface ContributionTotals {
  round: number;
  attempt: number;
  accepted: number;
  rejected: number;
  bytes: number;
}

/** Filter of `listContributionsPage`; every field optional, all given ones must match. */
export interface ContributionFilter {
  studyId?: string;
  nodeId?: string;
  round?: number;
  attempt?: number;
  accepted?: boolean;
}

/** Filter of `listTasksPage`: one round's tasks, optionally only some states and kinds. */
export interface TaskFilter {
  roundId: number;
  states?: readonly TaskStateName[];
  kinds?: readonly TaskKindName[];
}

/** A signed release (issue 12): one version of a study name's released model. */
export interface ReleaseRecord {
  studyName: string;
  /** From 1 per study name. */
  version: number;
  studyId: string;
  round: number;
  manifestSha256: string;
  /** The DSSE envelope JSON. */
  envelope: string;
  /** The bundle's files, in RELEASE_FILES order: name, SHA-256 (also the blob's name) and size. */
  files: { name: string; sha256: string; size: number }[];
  createdAt: number;
  /** The previous version of the same study name, if any. */
  parentVersion: number | null;
}

/** An operator's name for a release version ("champion", ...); one version per (study name, alias). */
export interface ReleaseAliasRecord {
  studyName: string;
  alias: string;
  version: number;
  setBy: string;
  setAt: number;
}

/** How a deployed release did at one site on a refreshed export (aggregates only). */
export interface ReleasePerformanceRecord {
  studyName: string;
  version: number;
  nodeId: string;
  exportFingerprint: string;
  /** core Performance, JSON. */
  performance: string;
  measuredAt: number;
  receivedAt: number;
}

/** A study series (issue 13): a manifest template plus a schedule (core series.ts). */
export interface SeriesRecord {
  /** The series' name, which is also every run's study name. */
  name: string;
  /** The validated template as canonical JSON (what clinics approve by its hash). */
  template: string;
  templateSha256: string;
  /** 'active' runs on its schedule; 'paused' does not start runs (a running one goes on). */
  state: 'active' | 'paused';
  createdBy: string;
  createdAt: number;
  updatedAt: number;
}

/** One run of a series: the study it started, when it was due and why it ran. */
export interface SeriesRunRecord {
  seriesName: string;
  /** From 1, one per run. */
  run: number;
  studyId: string;
  /** When the schedule said the run was due (the time its manifest was derived at). */
  scheduledAt: number;
  startedAt: number;
  /** 'schedule' (cron), 'data' (the clinics' newly labelled patients reached the template's count) or 'operator:<name>' (run-now). */
  trigger: string;
  /** The champion the run was compared with (and, with start champion, trained from), if any. */
  championVersion: number | null;
  /** The template the run was derived from, canonical JSON (its hash is the manifest's series.templateSha256). */
  template: string;
}

/**
 * A champion decision of a series: a promotion (the rule's or an operator's), a challenger kept
 * out by the rule, or a rollback; with its evidence. The alias move, if any, is in the same unit.
 */
export interface PromotionRecord {
  /** Assigned by the store (ignored on insert). */
  id: number;
  seriesName: string;
  /** The run whose release was judged; null for an operator's promotion or rollback outside a run's decision. */
  run: number | null;
  /** The champion before (null when there was none). */
  fromVersion: number | null;
  /** The release judged (promoted, or kept out). */
  toVersion: number;
  action: 'promote' | 'keep' | 'rollback';
  /** 'rule' or 'operator:<name>'. */
  decidedBy: string;
  /** core PromotionDecision (and anything else shown with it) as JSON. */
  evidence: string;
  at: number;
}

/**
 * A node certificate the coordinator's CA issued (tls.clientCertificates 'issued', issue 15). A
 * serial is superseded once the node has presented a newer one (renewal), revoked with its node.
 */
export interface NodeCertificateRecord {
  /** Upper-case hex, as Node's X509Certificate and TLS peer certificates print it. */
  serial: string;
  nodeId: string;
  issuedAt: number;
  notAfter: number;
  supersededAt: number | null;
  revokedAt: number | null;
}

/** The node CA certificate of the coordinator (pair): public; the key stays in <dataDir>/ca. */
export interface NodeCaRecord {
  /** SHA-256 fingerprint of the CA certificate, "AB:CD:…". */
  fingerprint: string;
  certificatePem: string;
  recordedAt: number;
}
