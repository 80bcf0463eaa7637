import type { RoundState } from '@fedlhs/core';
import type {
  PromotionRecord, ReleasePerformanceRecord, ReleaseRecord, SeriesRecord, SeriesRunRecord,
  AdminActionRecord,
  ContributionRecord,
  MetricRecord,
  NodeRecord,
  RoundRecord,
  StatisticsRecord,
  StudyRecord,
  StudyStateName,
  TaskRecord,
  TaskStateName,
} from './records.js';

/**
 * Writes as data (design: docs/design/core-redesign.md §2.1–2.2).
 *
 * A caller hands `CoordinatorStore.write` one list of ops that must change together (a "unit"):
 * the store applies the whole list or none of it. Units that arrive close together share one
 * database transaction and one fsync (group commit); each unit runs inside its own SAVEPOINT, so a
 * unit whose guard fails is rolled back alone and the others in the batch still commit.
 * `write` resolves only when the unit is durable.
 *
 * Guards are database facts, not only in-memory ones: `task.end` requires the task to be ASSIGNED
 * (else the unit fails with FedlhsError STALE), so no result is ever counted twice.
 */
export type WriteOp =
  /** Inserts tasks (all ASSIGNED). A phase's whole assignment is one op. */
  | { op: 'task.insert'; tasks: readonly TaskRecord[] }
  /** Ends one open task. Guard: the task exists and is ASSIGNED, else STALE (NOT_FOUND if unknown). */
  | { op: 'task.end'; id: string; to: Exclude<TaskStateName, 'ASSIGNED'>; detail: string | null; at: number }
  /** Cancels every ASSIGNED task of a round (CANCELLED, with `detail`). */
  | { op: 'task.cancelOpen'; roundId: number; detail: string; at: number }
  /** Records an upload/report outcome (accepted or rejected). */
  | { op: 'contribution.insert'; c: ContributionRecord }
  | { op: 'statistics.insert'; s: StatisticsRecord }
  /** Inserts a study (T4: together with its round 0, as a `round.insert` in state COMMITTED). */
  | { op: 'study.insert'; s: StudyRecord }
  | { op: 'study.state'; id: string; state: StudyStateName; reason: string | null; at: number | null }
  | { op: 'study.parameters'; id: string; parameters: string }
  /** Inserts a round; its id is returned in `WriteResult.roundIds`, in op order. */
  | { op: 'round.insert'; r: Omit<RoundRecord, 'id'> }
  /** Moves a round to `state`; `participants` when the cohort is known. `at` = ended_at (final states). */
  | { op: 'round.state'; id: number; state: RoundState; reason: string | null; at: number | null; participants?: number }
  /**
   * Round COMMITTED with its checkpoint, metrics and strategy state; the study's
   * last_committed_round advanced. Guard: the round is not final, else STALE.
   */
  | {
      op: 'round.commit';
      id: number;
      checkpoint: { path: string; sha256: string };
      metrics: readonly MetricRecord[];
      strategyState: string | null;
      at: number;
    }
  | { op: 'metrics.insert'; metrics: readonly MetricRecord[] }
  /** Last-seen bookkeeping; callers coalesce these (write-behind), so order does not matter. */
  | { op: 'node.seen'; id: string; at: number; agentVersion: string; trainingBackend: string }
  | { op: 'node.revoke'; id: string; at: number }
  | { op: 'node.insert'; n: NodeRecord }
  /**
   * A node declared for a study's manifest a readiness that implies its operator approved it (READY, COHORT_TOO_SMALL, FEATURE_SPEC_UNSUPPORTED, DATA_ERROR), so it may fetch the
   * study's committed models even if it was never selected (issue 11). The first one is kept.
   */
  | { op: 'approval.record'; studyId: string; nodeId: string; manifestSha256: string; at: number }
  | { op: 'admin.action'; a: AdminActionRecord }
  /** Inserts a release. Guard: (studyName, version) is new and the study has no release yet, else STALE (two builders raced). */
  | { op: 'release.insert'; r: ReleaseRecord }
  /**
   * Points an alias at a version (replacing where it pointed), or removes it (version null).
   * Guard: the version exists, else NOT_FOUND; removing an alias that is not set is NOT_FOUND too.
   */
  | { op: 'release.alias'; studyName: string; alias: string; version: number | null; setBy: string; at: number }
  /**
   * Records a site's live performance; a second report with the same (studyName, version, nodeId,
   * exportFingerprint) is kept once (the first), without error, and counted in `WriteResult.duplicates`.
   */
  | { op: 'release.performance'; p: ReleasePerformanceRecord }
  /** Creates a series. Guard: the name is new, else ALREADY_EXISTS. */
  | { op: 'series.insert'; s: SeriesRecord }
  /** Replaces a series' template (a new version clinics must approve again) and/or state. Guard: the series exists, else NOT_FOUND. */
  | { op: 'series.update'; name: string; template?: { json: string; sha256: string }; state?: SeriesRecord['state']; at: number }
  /** Records a run. Guard: (seriesName, run) is new, else STALE (two schedulers raced). */
  | { op: 'series.run'; r: SeriesRunRecord }
  /** Records a champion decision (its id is assigned by the store). */
  | { op: 'promotion.insert'; p: Omit<PromotionRecord, 'id'> };

export type WriteOpName = WriteOp['op'];

export interface WriteResult {
  /** Ids of the rounds inserted by `round.insert` ops, in op order. */
  roundIds: number[];
  /** Task ids cancelled by `task.cancelOpen` ops, in op order. */
  cancelled: string[];
  /**
   * How many `release.performance` ops of the unit found their report already stored (kept
   * once, no error); set when the unit has such ops.
   */
  duplicates?: number;
}

/** Group-commit tuning. Defaults (store/group-commit.ts): 0 ms window (the next macrotask), 256 units per batch. */
export interface GroupCommitOptions {
  /** How long the first unit of a batch waits for others to join it (0 = next tick). */
  windowMs?: number;
  /** Most units in one transaction. */
  maxUnits?: number;
}
