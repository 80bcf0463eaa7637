import type { ClinicStats, CloseDecision, ComparisonFigures, EvalMetrics, Performance, RoundState, StudyManifest, Strategy, TensorSpec } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore, StoredModel } from '../checkpoints.js';
import type { CoordinatorMetrics } from '../metrics.js';
import type { MetricRecord, StudyRecord, TaskKindName, TaskStateName } from '../store.js';
import type { WriteOp } from '../store/write-ops.js';
import type { Cohort } from './attempt.js';

/**
 * The phase pipeline's interfaces (design docs/design/core-redesign.md §1.2). A round attempt is
 * a cohort selection followed by phases (statistics, training, evaluation; later secure-aggregation
 * stages); each phase plans its tasks, accepts the results routed to it by task kind, decides when
 * it closes from O(1) counters, and completes with an output the engine persists. Neither this
 * file nor any phase imports proto or gRPC: results arrive already decoded and checked at the edge.
 */

/** A proto TaskKind without its prefix; new phases may add kinds. */
export type TaskKind = TaskKindName;

/** What one clinic is asked to do (routed per clinic, so later stages can send each its own payload). */
export interface TaskPlan {
  nodeId: string;
  kind: TaskKind;
  /** The model the task hands out (DownloadModel by task id); empty for STATISTICS. */
  model: StoredModel | undefined;
  /**
   * This clinic's input for the task (Task.payload), e.g. a secure-aggregation stage request as
   * JSON. Held in memory only: tasks with a payload are not re-sent after a reconnection.
   */
  payload?: string;
}

export interface PhasePlan {
  tasks: TaskPlan[];
  /** ms since epoch. */
  deadline: number;
  /** Default closing rule: 'none' = close at the deadline or when nobody is left. */
  quorum: number | 'none';
  /**
   * The study's parameters (Task.parameters_json) this phase's tasks must carry, when they change
   * here (training: the first adaptive clipping norm): written in the phase's unit, before any
   * task is sent, in place of parameters a previous phase left pending (merge them in).
   */
  parameters?: string | undefined;
}

/** A result, decoded and checked at the edge (ownership, framing, digest, shapes) before it gets here. */
export type PhaseResult =
  | {
      kind: 'update';
      /** The spooled payload (raw float32), consumed by the phase. */
      spoolPath: string;
      numExamples: number;
      digest: string;
      bytes: number;
      /** ‖update − base‖₂, measured while it arrived. */
      deltaNorm: number;
      trainMetrics: EvalMetrics | undefined;
      /** UpdateHeader.dp_clip_indicator (adaptive DP clipping), finite when present; the training phase checks it against the manifest. */
      dpClipIndicator?: number | undefined;
    }
  | { kind: 'statistics'; stats: ClinicStats }
  | {
      /** A secure-aggregation stage answer (ReportStage.body), parsed JSON; the stage's phase checks it. */
      kind: 'stage';
      body: unknown;
      /** StageReport.vector: the packed masked input (masked-input stage; empty for every other stage, checked at intake). */
      vector: Uint8Array;
      /** SHA-256 (hex) of the answer (update-intake.ts `stageAnswerDigest`), kept with the ACCEPTED task (duplicates compare it). */
      digest: string;
    }
  | {
      kind: 'evaluation';
      /** On the validation part of the node's hold-out split. */
      metrics: EvalMetrics;
      /** SHA-256 (hex) of the report's canonical JSON (wire.ts `reportDigest`), kept with the ACCEPTED task. */
      digest: string;
      /** Figures on the validation and test parts (proto EvaluationReport), when the node sent them (checked). */
      validation?: Performance | undefined;
      test?: Performance | undefined;
      /** Paired comparisons with the series' champion on the same test patients (proto ReleaseComparison), checked for plausibility. */
      comparisons?: ComparisonFigures[] | undefined;
    };

/** Counters the engine keeps per phase, updated on each event (never recounted). */
export interface PhaseCounters {
  readonly assigned: number;
  readonly accepted: number;
  /** Ended without a result: rejected, declined, failed. */
  readonly ended: number;
  /** Of `ended`, those FAILED (the agent's own failure). */
  readonly failed: number;
  /** Open (ASSIGNED) tasks whose node is online now, or whose result is being accepted. */
  readonly openOnline: number;
  /** Open tasks whose node is offline now. */
  readonly openOffline: number;
  /** Results being accepted right now. */
  readonly inflight: number;
  /** FAILED tasks by their detail, for "every clinic failed the same way". */
  readonly failuresByDetail: ReadonlyMap<string, number>;
}

/** The engine's in-memory entry for a task of the attempt. */
export interface LiveTask {
  readonly id: string;
  readonly nodeId: string;
  readonly siteName: string;
  readonly kind: TaskKind;
  readonly phase: string;
  state: TaskStateName;
  detail: string | null;
  accepting: boolean;
  online: boolean;
  /** The model the task hands out. */
  readonly model: StoredModel | undefined;
  /** The task's per-clinic input (TaskPlan.payload), if any. */
  readonly payload?: string | undefined;
}

/** What a phase sees of its study (read-only, except `parameters` which statistics sets). */
export interface StudyView {
  readonly id: string;
  readonly record: StudyRecord;
  readonly manifest: StudyManifest;
  readonly specs: readonly TensorSpec[];
  readonly strategy: Strategy;
  /** ‖update − global‖ of accepted updates in this study, oldest first (adaptive norm bounds). */
  readonly normHistory: number[];
}

/** What a phase sees of the attempt. */
export interface AttemptView {
  readonly roundId: number;
  readonly round: number;
  readonly attempt: number;
  /** The model TRAIN tasks start from (committed round − 1). */
  readonly base: StoredModel;
  readonly cohort: Cohort;
  /** The candidate model, once training completed. */
  candidate: StoredModel | undefined;
  /** Parameters a closed phase derived (statistics), not yet written: the next phase's unit persists them. */
  readonly parametersPending?: string | undefined;
}

export interface PhaseContext {
  readonly study: StudyView;
  readonly attempt: AttemptView;
  readonly checkpoints: CheckpointStore;
  readonly metrics: CoordinatorMetrics | undefined;
  readonly log: Logger;
  now(): number;
  /** Online clinics READY for this study's manifest (statistics and evaluation ask all of them). */
  readyNodes(): string[];
  /**
   * Moves the round to a sub-state of the phase (training → AGGREGATING), in one unit with the
   * writes the closed phase left pending (cancelling its open tasks).
   */
  enterState(state: RoundState): Promise<void>;
}

/** What accepting one result writes and changes. */
export interface Accepted {
  /** Committed in one unit with the task's `task.end ACCEPTED`. */
  ops: WriteOp[];
  /** The detail stored with the ACCEPTED state (e.g. "clipped to 80% of its delta"). */
  detail: string | null;
  /** Applied in memory once the unit is durable. */
  apply?: () => void;
}

export interface Phase {
  /** 'statistics' | 'training' | 'evaluation' | later 'secagg.keys' … */
  readonly name: string;
  /** rounds.state while it runs. */
  readonly roundState: RoundState;
  /** Results of these kinds are routed to this phase. */
  readonly taskKinds: readonly TaskKind[];
  /** Prefix of the attempt's failure reason when this phase fails it ('statistics: '). */
  readonly failurePrefix: string;
  /**
   * True if the phase plans over the cohort (training, secagg stages): a clinic whose task ends
   * without a result here is dropped from the cohort. Phases that ask all READY clinics
   * (statistics, evaluation) leave the cohort alone.
   */
  readonly overCohort: boolean;
  plan(ctx: PhaseContext): Promise<PhasePlan> | PhasePlan;
  /** Checks and applies one result; throws FedlhsError to reject (its reason says whether the task closes). */
  accept(ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted>;
  /** Optional closing rule; default: core decideClose over the counters and the plan's quorum. */
  decide?(ctx: PhaseContext, c: PhaseCounters, deadlinePassed: boolean): CloseDecision;
  /** After close: what the phase contributes to the attempt. May throw STUDY_FAILED. */
  complete(ctx: PhaseContext, c: PhaseCounters): Promise<PhaseOutput>;
  /** Frees what the phase holds (spool, held updates), committed or not; `committed` says which. */
  dispose(ctx: PhaseContext, committed: boolean): Promise<void> | void;
}

export interface PhaseOutput {
  /** statistics → the study's parameters (normalisation), persisted with the next unit. */
  parameters?: string;
  /**
   * The study's parameters once the round commits (training: the next adaptive clipping norm),
   * written in one unit with the commit and never if the attempt fails.
   */
  commitParameters?: string;
  /** training → the candidate model (and the strategy state candidate). */
  candidate?: { model: StoredModel; strategyState: StoredModel | undefined };
  /** Metrics to commit with the round. */
  metrics?: MetricRecord[];
  /** A summary for the round's record when something is degraded (e.g. "0 of 40 sites evaluated"). */
  summary?: string;
  /** Cohort members lost (secagg dropouts). */
  drop?: { nodeId: string; reason: string }[];
  /**
   * The attempt cannot go on (e.g. secure aggregation lost too many clinics): it fails with this
   * reason (after the phase's failurePrefix) and is retried like any failed attempt.
   */
  failure?: string;
  /** Fields for the round.committed log line. */
  fields?: Record<string, unknown>;
}
