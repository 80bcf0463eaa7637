import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import {
  FedlhsError,
  concatTensors,
  createStrategy,
  strategyConfigOf,
  assertTransition,
  bundleLength,
  combineStats,
  decideClose,
  normalizationFrom,
  statisticsExpectations,
  studyNormalizationOptions,
  unnormalisable,
  validateClinicStats,
  type ClinicStats,
  type EvalMetrics,
  type Normalization,
  type RoundState,
  type StatisticsExpectations,
  type StudyManifest,
  type TaskTally,
  type Strategy,
  type Tensor,
  type TensorSpec,
} from '@fedlhs/core';
import { join } from 'node:path';
import { RoundAggregator } from './aggregation.js';
import { disclosableMetrics } from './disclosure.js';
import { describePhaseFailure, type PhaseFailure } from './failure-reasons.js';
import { describeReadiness, siteReadiness } from './readiness.js';
import { toWireTask } from './wire.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore, StoredModel } from './checkpoints.js';
import type { SessionRegistry } from './sessions.js';
import type { CoordinatorStore, MetricRecord, StudyRecord, TaskKindName, TaskRecord, TaskStateName } from './store.js';

export interface EngineOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  sessions: SessionRegistry;
  logger: Logger;
  /** After a study has its minimum of READY clinics, how long to wait for its maximum. */
  selectionGraceMs: number;
  now?: () => number;
  /** Restored server-side strategy state (from the last committed round's checkpoint). */
  strategyState?: Tensor[] | undefined;
  /** Delta norms of the study's accepted updates so far. */
  normHistory?: number[];
  metrics?: CoordinatorMetrics;
  /**
   * Called whenever a round or the study changes state: 'round' for every round transition,
   * 'committed' when a global model is committed, 'ended' when the study ends.
   */
  onStudyChange?: (studyId: string, change: 'round' | 'committed' | 'ended') => void;
}

/** The round attempt a runner is working on. */
interface Attempt {
  roundId: number;
  round: number;
  attempt: number;
  state: RoundState;
  startedAt: number;
  deadline: number;
  /** The model TRAIN tasks start from (committed round - 1). */
  base: StoredModel;
  /** The aggregated model EVALUATE tasks evaluate. */
  candidate: StoredModel | undefined;
  tasks: Map<string, AttemptTask>;
  /** Updates being added right now; aggregation waits for them. */
  inflight: Set<Promise<void>>;
  aggregator: RoundAggregator;
  /** Server-side strategy state before this attempt's aggregation, restored if it does not commit. */
  stateBefore: Tensor[] | undefined;
  /** The candidate's strategy state file, promoted with the checkpoint. */
  stateCandidate: StoredModel | undefined;
  trainingMetrics: MetricRecord[];
  evaluations: Map<string, EvalMetrics>;
  statistics: Map<string, ClinicStats>;
  /** Whether the current phase is waiting to see if every clinic fails the same way (logged once). */
  awaitingAlike: boolean;
}

/** A task of the current attempt, as the runner tracks it. */
interface AttemptTask {
  nodeId: string;
  siteName: string;
  kind: TaskKindName;
  state: TaskStateName;
  /** Why it ended without a result (the agent's or the coordinator's words). */
  detail: string | null;
  accepting: boolean;
}

class Stopped extends Error {}
/** The study cannot go on (its message is the study's reason); it ends FAILED, not retried. */
class StudyFailed extends Error {}

/**
 * Runs one study's rounds to completion as an explicit state machine per round attempt:
 * WAITING_FOR_NODES → TRAINING → AGGREGATING → EVALUATING → COMMITTED, or FAILED with a
 * reason. Event-driven: it wakes on node, readiness and task changes and on its deadlines,
 * never on a polling sleep. Federated averaging accumulates each accepted update as it is
 * checked, so memory is O(model) whatever the number of clinics.
 */
export class StudyRunner {
  readonly studyId: string;
  private attemptState: Attempt | undefined;
  private readonly abort = new AbortController();
  private stopReason = '';
  private halting = false;
  private wake: (() => void) | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly onSessionChange = (): void => this.notify();
  private readonly strategy: Strategy;
  /** ‖update − global‖ of accepted updates in this study, oldest first (for adaptive bounds). */
  private readonly normHistory: number[];
  /** What every statistics report of this study must satisfy. */
  private readonly expectations: StatisticsExpectations;
  /** The reason the last failed attempt gave, for the study's reason when attempts run out. */
  private lastAttemptFailure = '';

  constructor(
    private readonly study: StudyRecord,
    private readonly manifest: StudyManifest,
    private readonly specs: TensorSpec[],
    private readonly opts: EngineOptions,
  ) {
    this.studyId = study.id;
    this.log = opts.logger.child({ component: 'round-engine', studyId: study.id, study: study.name });
    this.now = opts.now ?? Date.now;
    this.strategy = createStrategy(strategyConfigOf(manifest));
    this.normHistory = [...(opts.normHistory ?? [])];
    this.expectations = statisticsExpectations(manifest);
    if (opts.strategyState !== undefined) this.strategy.importState(opts.strategyState);
  }

  /** The current attempt's round, attempt number, state and deadline, for status displays. */
  get current(): { roundId: number; round: number; attempt: number; state: RoundState; deadline: number } | undefined {
    const a = this.attemptState;
    return a === undefined ? undefined : { roundId: a.roundId, round: a.round, attempt: a.attempt, state: a.state, deadline: a.deadline };
  }

  get modelSpecs(): readonly TensorSpec[] {
    return this.specs;
  }

  /** Runs until the study completes, fails or is stopped. Never rejects. */
  async run(): Promise<void> {
    this.opts.sessions.on('change', this.onSessionChange);
    try {
      let round = this.study.lastCommittedRound + 1;
      while (round <= this.manifest.rounds) {
        const previous = (await this.opts.store.listRounds(this.studyId)).filter((r) => r.round === round).length;
        let committed = false;
        for (let i = 1; i <= this.manifest.deadlines.maxRoundAttempts && !committed; i++) {
          committed = await this.runAttempt(round, previous + i);
        }
        if (!committed) {
          await this.endStudy('FAILED', `round ${round} failed ${this.manifest.deadlines.maxRoundAttempts} time(s); last attempt: ${this.lastAttemptFailure}`);
          return;
        }
        round++;
      }
      await this.endStudy('COMPLETED', null);
    } catch (err) {
      if (err instanceof Stopped) {
        if (!this.halting) await this.endStudy('STOPPED', this.stopReason);
      } else if (err instanceof StudyFailed) {
        await this.endStudy('FAILED', err.message);
      } else {
        this.log.error({ event: 'study.internal_error', err }, 'study failed with an internal error');
        await this.endStudy('FAILED', `internal error: ${(err as Error).message}`);
      }
    } finally {
      this.opts.sessions.off('change', this.onSessionChange);
    }
  }

  /** Stops the study: the current round fails with `reason`, open tasks are cancelled. */
  stop(reason: string): void {
    this.stopReason = reason;
    this.abort.abort();
    this.notify();
  }

  /** Stops work for a coordinator shutdown; the study stays RUNNING and resumes at restart. */
  halt(): void {
    this.halting = true;
    this.stop('coordinator shutting down');
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves on the next notify(), at `until`, or throws Stopped. */
  private async nextEvent(until: number): Promise<void> {
    if (this.abort.signal.aborted) throw new Stopped();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, until - this.now()));
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (this.abort.signal.aborted) throw new Stopped();
  }

  private async transition(a: Attempt, to: RoundState, reason: string | null = null): Promise<void> {
    assertTransition(a.state, to);
    a.state = to;
    const final = to === 'COMMITTED' || to === 'FAILED';
    await this.opts.store.setRoundState(a.roundId, to, reason, final ? this.now() : null);
    if (final) this.recordRoundEnd(a, to === 'COMMITTED' ? 'committed' : 'failed');
    this.log.info({ event: 'round.phase', round: a.round, attempt: a.attempt, state: to, ...(reason === null ? {} : { reason }) }, `round ${a.round} → ${to}`);
    this.opts.onStudyChange?.(this.studyId, 'round');
  }

  private recordRoundEnd(a: Attempt, outcome: 'committed' | 'failed'): void {
    this.opts.metrics?.rounds.inc({ outcome });
    this.opts.metrics?.roundDuration.observe({ outcome }, (this.now() - a.startedAt) / 1000);
  }

  private async runAttempt(round: number, attempt: number): Promise<boolean> {
    const baseRecord = await this.opts.store.getCommittedRound(this.studyId, round - 1);
    if (baseRecord?.checkpointPath == null || baseRecord.checkpointSha256 === null) {
      throw new FedlhsError('INTERNAL', `no committed checkpoint for round ${round - 1}`);
    }
    const roundId = await this.opts.store.insertRound({
      studyId: this.studyId, round, attempt, state: 'WAITING_FOR_NODES', reason: null,
      startedAt: this.now(), endedAt: null, participants: 0, checkpointPath: null, checkpointSha256: null,
    });
    const a: Attempt = {
      roundId, round, attempt, state: 'WAITING_FOR_NODES', startedAt: this.now(), deadline: 0,
      base: { path: baseRecord.checkpointPath, sha256: baseRecord.checkpointSha256, totalBytes: bundleLength(this.specs) * 4 },
      candidate: undefined, tasks: new Map(), trainingMetrics: [], evaluations: new Map(), statistics: new Map(), inflight: new Set(), awaitingAlike: false,
      aggregator: undefined as unknown as RoundAggregator, stateBefore: undefined, stateCandidate: undefined,
    };
    a.aggregator = new RoundAggregator(
      this.strategy, this.specs, a.base, this.opts.checkpoints, join(this.opts.checkpoints.studyDir(this.studyId), 'held', `round-${round}-attempt-${attempt}`),
      this.manifest.updateValidation, this.manifest.aggregation.maxUpdatesHeld,
    );
    this.attemptState = a;
    this.log.info({ event: 'round.started', round, attempt }, `round ${round} (attempt ${attempt}) waiting for ${this.manifest.clients.min}-${this.manifest.clients.max} READY clinics`);
    this.opts.onStudyChange?.(this.studyId, 'round');
    try {
      const selected = await this.selectNodes(a);
      await this.opts.store.setRoundParticipants(roundId, selected.length);
      this.opts.metrics?.participants.observe(selected.length);
      if (this.needsStatistics()) {
        a.deadline = this.now() + this.manifest.deadlines.roundSeconds * 1000;
        await this.transition(a, 'STATISTICS');
        const ready = this.opts.sessions.readyFor(this.studyId, this.study.manifestHash).map((s) => s.nodeId);
        await this.assign(a, ready, 'STATISTICS', '');
        const collected = await this.closePhase(a, this.manifest.clients.quorum);
        if (collected.action === 'retry') {
          await this.failPhase(a, collected, 'statistics: ');
          return false;
        }
        await this.cancelOpen(a, 'statistics collected');
        await this.deriveParameters(a);
      }
      a.deadline = this.now() + this.manifest.deadlines.roundSeconds * 1000;
      await this.transition(a, 'TRAINING');
      await this.assign(a, selected, 'TRAIN', a.base.sha256);
      const training = await this.closePhase(a, this.manifest.clients.quorum);
      if (training.action === 'retry') {
        await this.failPhase(a, training, '');
        return false;
      }
      await this.cancelOpen(a, 'the round closed with its quorum');
      await this.transition(a, 'AGGREGATING');
      a.stateBefore = this.strategy.exportState().map((t) => ({ shape: [...t.shape], data: Float32Array.from(t.data) }));
      a.candidate = await this.opts.checkpoints.writeCandidate(this.studyId, round, attempt, await a.aggregator.finish(round));
      const state = this.strategy.exportState();
      if (state.length > 0) a.stateCandidate = await this.opts.checkpoints.writeCandidate(this.studyId, round, attempt, [concatTensors(state)], 'state');
      this.log.info(
        { event: 'round.aggregated', round, strategy: this.strategy.name, updates: a.aggregator.count, examples: a.aggregator.totalExamples, sha256: a.candidate.sha256 },
        `aggregated ${a.aggregator.count} update(s) with ${this.strategy.name}`,
      );

      a.deadline = this.now() + this.manifest.deadlines.evaluationSeconds * 1000;
      await this.transition(a, 'EVALUATING');
      const evaluators = this.opts.sessions.readyFor(this.studyId, this.study.manifestHash).map((s) => s.nodeId);
      await this.assign(a, evaluators, 'EVALUATE', a.candidate.sha256);
      // Evaluation has no quorum: the model is committed with whatever sites reported in time.
      await this.closePhase(a, 0);
      await this.cancelOpen(a, 'evaluation closed');
      await this.commit(a);
      return true;
    } catch (err) {
      if (a.state !== 'COMMITTED' && a.state !== 'FAILED') {
        if (err instanceof Stopped) await this.failAttempt(a, this.halting ? this.stopReason : `study stopped: ${this.stopReason}`);
        else if (err instanceof StudyFailed) await this.failAttempt(a, err.message);
        else await this.failAttempt(a, `internal error: ${(err as Error).message}`);
      }
      throw err;
    } finally {
      if (a.state !== 'COMMITTED') {
        if (a.candidate !== undefined) await rm(a.candidate.path, { force: true });
        if (a.stateCandidate !== undefined) await rm(a.stateCandidate.path, { force: true });
        // The strategy stepped its server state for a model that was never committed: undo it.
        if (a.stateBefore !== undefined) this.strategy.importState(a.stateBefore);
      }
      a.aggregator.dispose();
      this.attemptState = undefined;
    }
  }

  private needsStatistics(): boolean {
    return this.manifest.data.normalization === 'federated-zscore' && this.study.parameters === null;
  }

  /**
   * Combines the clinics' statistics into the study's normalisation and persists it. A feature
   * withheld at every clinic is never scaled silently: the manifest's normalizationFallback
   * applies (logged as statistics.fallback), or the study fails before training, naming it.
   */
  private async deriveParameters(a: Attempt): Promise<void> {
    const combined = combineStats([...a.statistics.values()]);
    const options = studyNormalizationOptions(this.manifest);
    let normalization: Normalization;
    try {
      normalization = normalizationFrom(combined, options);
    } catch (err) {
      const features = unnormalisable(combined, options);
      this.log.warn({ event: 'statistics.withheld', round: a.round, clinics: combined.clinics, features }, (err as Error).message);
      throw new StudyFailed((err as Error).message);
    }
    const fallbacks = normalization.features.filter((f) => f.source !== 'federated');
    if (fallbacks.length > 0) {
      this.log.warn(
        {
          event: 'statistics.fallback', round: a.round, clinics: combined.clinics, fallback: this.manifest.data.normalizationFallback,
          features: fallbacks.map((f) => ({ name: f.name, source: f.source, withheldAt: f.withheldAt, mean: f.mean, std: f.std })),
        },
        `no federated statistics for ${fallbacks.map((f) => f.name).join(', ')}: ${fallbacks
          .map((f) => `${f.name} ${f.withheldAt === 0 ? 'has no value at any clinic' : `withheld at ${f.withheldAt} clinic(s)`}, ${f.source === 'excluded' ? 'excluded (constant 0)' : 'scaled by its declared range'}`)
          .join('; ')}`,
      );
    }
    const parameters = JSON.stringify({ normalization });
    await this.opts.store.setStudyParameters(this.studyId, parameters);
    this.study.parameters = parameters;
    this.log.info(
      { event: 'statistics.derived', round: a.round, clinics: a.statistics.size, rows: combined.rows, positives: combined.positives, features: normalization.features },
      `federated statistics from ${a.statistics.size} clinic(s): ${combined.rows} training records, normalisation fixed for the study`,
    );
    this.opts.onStudyChange?.(this.studyId, 'committed');
  }

  /**
   * Waits (on session and readiness events) for clients.min READY clinics, then up to
   * selectionGraceMs more for clients.max. With deadlines.readinessSeconds, a round that has
   * waited that long without its minimum fails the study, naming each site's readiness.
   */
  private async selectNodes(a: Attempt): Promise<string[]> {
    const { min, max } = this.manifest.clients;
    const readinessSeconds = this.manifest.deadlines.readinessSeconds;
    const readinessDeadline = readinessSeconds === undefined ? undefined : a.startedAt + readinessSeconds * 1000;
    a.deadline = readinessDeadline ?? 0;
    let graceUntil: number | undefined;
    let lastReported = -1;
    for (;;) {
      const ready = this.opts.sessions.readyFor(this.studyId, this.study.manifestHash).map((s) => s.nodeId);
      if (ready.length >= min) {
        graceUntil ??= this.now() + this.opts.selectionGraceMs;
        if (ready.length >= max || this.now() >= graceUntil) {
          return shuffle(ready).slice(0, max);
        }
      } else {
        graceUntil = undefined;
        if (readinessDeadline !== undefined && this.now() >= readinessDeadline) {
          const sites = siteReadiness(await this.opts.store.listNodes(), this.opts.sessions, this.studyId, this.study.manifestHash);
          const reason = `readiness deadline passed (deadlines.readinessSeconds ${readinessSeconds}) before round ${a.round} could start: ${describeReadiness(sites, min)}`;
          this.log.warn(
            { event: 'readiness.deadline', round: a.round, attempt: a.attempt, ready: ready.length, min, sites: sites.map((s) => ({ siteName: s.siteName, nodeId: s.nodeId, readiness: s.readiness, detail: s.detail })) },
            reason,
          );
          throw new StudyFailed(reason);
        }
        if (ready.length !== lastReported) {
          this.log.info({ ready: ready.length, min }, `waiting for clinics: ${ready.length} READY of ${min} needed`);
          lastReported = ready.length;
        }
      }
      // Without a readiness deadline, wake up now and then anyway (a missed event cannot hang the round).
      await this.nextEvent(graceUntil ?? readinessDeadline ?? this.now() + 60_000);
    }
  }

  private async assign(a: Attempt, nodeIds: string[], kind: TaskKindName, modelSha256: string): Promise<void> {
    for (const nodeId of nodeIds) {
      const task: TaskRecord = {
        id: `task_${randomUUID()}`, roundId: a.roundId, studyId: this.studyId, round: a.round, attempt: a.attempt,
        nodeId, kind, state: 'ASSIGNED', detail: null, modelSha256, deadline: a.deadline, createdAt: this.now(), endedAt: null,
      };
      await this.opts.store.insertTask(task);
      a.tasks.set(task.id, { nodeId, siteName: this.opts.sessions.get(nodeId)?.siteName ?? nodeId, kind, state: 'ASSIGNED', detail: null, accepting: false });
      this.opts.sessions.sendTo(nodeId, { task: toWireTask(task, this.study.manifestHash, this.study.parameters) });
    }
    this.log.info({ round: a.round, kind, nodes: nodeIds.length }, `${kind} tasks sent to ${nodeIds.length} clinic(s)`);
  }

  private tally(a: Attempt, kind: TaskKindName): TaskTally {
    const t: TaskTally = { accepted: 0, outstanding: 0, disconnected: 0, ended: 0 };
    for (const task of a.tasks.values()) {
      if (task.kind !== kind) continue;
      if (task.state === 'ACCEPTED') t.accepted++;
      else if (task.state !== 'ASSIGNED') t.ended++;
      else if (task.accepting) t.outstanding++;
      else if (this.opts.sessions.isOnline(task.nodeId)) t.outstanding++;
      else t.disconnected++;
    }
    return t;
  }

  private async closePhase(a: Attempt, quorum: number): Promise<{ action: 'close' } | ({ action: 'retry' } & PhaseFailure)> {
    const kind: TaskKindName = a.state === 'TRAINING' ? 'TRAIN' : a.state === 'STATISTICS' ? 'STATISTICS' : 'EVALUATE';
    for (;;) {
      const deadlinePassed = this.now() >= a.deadline;
      const decision = decideClose(this.tally(a, kind), quorum, deadlinePassed);
      if (decision.action !== 'wait' && a.inflight.size > 0) {
        // Updates that arrived in time are still being checked and added: decide only once
        // they are in (they may make the quorum), never underneath them.
        await Promise.allSettled([...a.inflight]);
        continue;
      }
      if (decision.action === 'close') return decision;
      if (decision.action === 'retry') {
        const tasks = [...a.tasks.values()].filter((t) => t.kind === kind);
        if (deadlinePassed || !this.mayFailAlike(tasks)) {
          return {
            action: 'retry',
            ...describePhaseFailure(kind, tasks.map((t) => ({ siteName: t.siteName, state: t.state, detail: t.detail, online: this.opts.sessions.isOnline(t.nodeId) })), quorum, deadlinePassed),
          };
        }
        if (!a.awaitingAlike) {
          a.awaitingAlike = true;
          const failed = tasks.filter((t) => t.state === 'FAILED');
          this.log.info(
            { event: 'round.awaiting-alike', round: a.round, attempt: a.attempt, kind, failed: failed.map((t) => t.siteName).sort(), open: tasks.length - failed.length },
            `${failed.length} clinic(s) failed the same way and quorum ${quorum} is out of reach: waiting for the other ${tasks.length - failed.length} before deciding whether a retry could help`,
          );
        }
      }
      await this.nextEvent(a.deadline);
    }
  }

  /**
   * True while every task of the phase that has ended FAILED with one identical reason and the
   * others are still being worked on by online clinics. The round is lost already, but waiting
   * for the rest (at most until the deadline) tells a deterministic failure — every clinic
   * failing the same way, which a retry would repeat — from a chance one.
   */
  private mayFailAlike(tasks: readonly AttemptTask[]): boolean {
    const ended = tasks.filter((t) => t.state !== 'ASSIGNED');
    const open = tasks.filter((t) => t.state === 'ASSIGNED');
    return (
      ended.length > 0 && open.length > 0 && ended.every((t) => t.state === 'FAILED') && new Set(ended.map((t) => t.detail)).size === 1 &&
      open.every((t) => t.accepting || this.opts.sessions.isOnline(t.nodeId))
    );
  }

  /**
   * Fails an attempt whose phase missed its quorum, with the causes as its reason. If every
   * clinic failed the same way, the failure would only repeat: the study fails at once.
   */
  private async failPhase(a: Attempt, failure: PhaseFailure, prefix: string): Promise<void> {
    await this.failAttempt(a, `${prefix}${failure.reason}`);
    if (failure.sameFailureEverywhere !== undefined) {
      throw new StudyFailed(`round ${a.round}: ${prefix}${failure.reason} — every clinic failed the same way, so the round was not retried`);
    }
  }

  private async cancelOpen(a: Attempt, reason: string): Promise<void> {
    const ids = await this.opts.store.cancelOpenTasks(a.roundId, reason, this.now());
    for (const id of ids) {
      const t = a.tasks.get(id);
      if (t === undefined) continue;
      t.state = 'CANCELLED';
      this.opts.sessions.sendTo(t.nodeId, { cancel: { taskId: id, reason } });
    }
  }

  private async failAttempt(a: Attempt, reason: string): Promise<void> {
    this.lastAttemptFailure = reason;
    await this.cancelOpen(a, `round failed: ${reason}`);
    await this.transition(a, 'FAILED', reason);
    const failures = [...a.tasks.values()].filter((t) => t.state === 'FAILED' || t.state === 'DECLINED' || t.state === 'REJECTED');
    this.log.warn(
      { event: 'round.failed', round: a.round, attempt: a.attempt, reason, failures: failures.map((t) => ({ siteName: t.siteName, nodeId: t.nodeId, kind: t.kind, state: t.state, detail: t.detail })) },
      `round ${a.round} attempt ${a.attempt} failed`,
    );
  }

  private async commit(a: Attempt): Promise<void> {
    const candidate = a.candidate!;
    const committed = this.opts.checkpoints.promote(this.studyId, a.round, candidate);
    a.candidate = undefined;
    let strategyState: string | null = this.study.strategyState;
    if (a.stateCandidate !== undefined) {
      const state = this.opts.checkpoints.promote(this.studyId, a.round, a.stateCandidate, 'state');
      a.stateCandidate = undefined;
      strategyState = JSON.stringify({ path: state.path, sha256: state.sha256, round: a.round });
    }
    // The database row is the commit point: if recording it fails, the promoted files go too,
    // so the round can be run again (a crash in between is cleaned up at the next start).
    const unpromote = (): void => void this.opts.checkpoints.removeUncommitted(this.studyId, a.round - 1);
    const metrics = [...this.storedMetrics(a, 'training', a.trainingMetrics), ...this.storedMetrics(a, 'evaluation', [...a.evaluations].map(([nodeId, m]) => ({ ...m, nodeId })))];
    const global = metrics.find((m) => m.phase === 'evaluation' && m.nodeId === null);
    try {
      await this.opts.store.commitRound(a.roundId, { path: committed.path, sha256: committed.sha256 }, metrics, strategyState, this.now());
    } catch (err) {
      unpromote();
      throw err;
    }
    this.study.strategyState = strategyState;
    // commitRound recorded the state change with the checkpoint, in one transaction.
    assertTransition(a.state, 'COMMITTED');
    a.state = 'COMMITTED';
    this.recordRoundEnd(a, 'committed');
    this.log.info(
      {
        event: 'round.committed', round: a.round, attempt: a.attempt, state: 'COMMITTED', sha256: committed.sha256, updates: a.aggregator.count, examples: a.aggregator.totalExamples,
        evaluatedSites: a.evaluations.size, ...(global === undefined ? {} : { loss: global.loss, accuracy: global.accuracy, auc: global.auc }),
      },
      `round ${a.round} committed`,
    );
    if (global === undefined) {
      this.log.warn({ event: 'evaluation.missing', round: a.round }, a.evaluations.size === 0 ? 'no clinic evaluated the new model in time' : `the evaluation covers fewer than minCellCount (${this.manifest.data.minCellCount}) examples: no global metric stored`);
    }
    this.opts.onStudyChange?.(this.studyId, 'committed');
  }

  /**
   * A phase's metrics as stored: the example-weighted global value (if it covers at least
   * minCellCount examples) and each site's own, except the sites withheld by the small-cell
   * rule (disclosure.ts), whose figures count only in the global value.
   */
  private storedMetrics(a: Attempt, phase: 'training' | 'evaluation', sites: (EvalMetrics & { nodeId: string | null })[]): MetricRecord[] {
    const k = this.manifest.data.minCellCount;
    const { shown, global, withheld } = disclosableMetrics(sites, k);
    if (withheld > 0) this.log.info({ event: 'metrics.withheld', round: a.round, phase, sites: withheld, minCellCount: k }, `${withheld} site(s)' ${phase} metrics kept only in the global value (small cells)`);
    return [
      ...shown.map((m) => ({ ...m, roundId: a.roundId, phase })),
      ...(global === undefined ? [] : [{ ...global, roundId: a.roundId, nodeId: null, phase }]),
    ];
  }

  private async endStudy(state: 'COMPLETED' | 'FAILED' | 'STOPPED', reason: string | null): Promise<void> {
    await this.opts.store.setStudyState(this.studyId, state, reason, this.now());
    this.log[state === 'COMPLETED' ? 'info' : 'warn']({ event: `study.${state.toLowerCase()}`, state, reason }, `study ${state.toLowerCase()}`);
    this.opts.onStudyChange?.(this.studyId, 'ended');
  }

  // ---- called by the transport handlers -------------------------------------------------

  /** The model a task hands out, or STALE if the task's round is no longer at that step. */
  modelForTask(task: TaskRecord): StoredModel {
    const a = this.openAttempt(task);
    if (task.kind === 'TRAIN') return a.base;
    if (a.candidate === undefined) throw stale(task, 'its round has no candidate model');
    return a.candidate;
  }

  /**
   * Adds a checked, spooled update to the running average and records it, if the task is
   * still open. The spool file is read in slices and deleted afterwards.
   */
  async acceptUpdate(
    task: TaskRecord, spoolPath: string, numExamples: number, sha256: string, bytes: number, trainMetrics: EvalMetrics | undefined, deltaNorm: number,
  ): Promise<void> {
    const a = this.openAttempt(task);
    if (a.state !== 'TRAINING') throw stale(task, `round ${a.round} is ${a.state}`);
    const entry = a.tasks.get(task.id)!;
    if (entry.accepting) throw new FedlhsError('ABORTED', `an update for task ${task.id} is already being added`);
    entry.accepting = true;
    const work = (async () => {
      const scale = a.aggregator.admit(deltaNorm, this.normHistory);
      await a.aggregator.add(spoolPath, numExamples, scale, task.id);
      if (this.attemptState !== a || a.state !== 'TRAINING') throw stale(task, 'its round closed while the update was being added');
      entry.state = 'ACCEPTED';
      this.normHistory.push(deltaNorm);
      await this.opts.store.setTaskState(task.id, 'ACCEPTED', scale < 1 ? `clipped to ${(scale * 100).toFixed(1)}% of its delta` : null, this.now());
      await this.opts.store.insertContribution({
        taskId: task.id, studyId: task.studyId, round: task.round, attempt: task.attempt, nodeId: task.nodeId, numExamples, sha256, bytes,
        accepted: true, reasonCode: scale < 1 ? 'CLIPPED' : null, reason: scale < 1 ? `delta norm ${deltaNorm.toPrecision(4)} clipped by ${scale.toPrecision(4)}` : null,
        receivedAt: this.now(), deltaNorm,
      });
      if (trainMetrics !== undefined) a.trainingMetrics.push({ ...trainMetrics, roundId: a.roundId, nodeId: task.nodeId, phase: 'training' });
    })();
    a.inflight.add(work);
    try {
      await work;
    } finally {
      a.inflight.delete(work);
      entry.accepting = false;
      this.notify();
    }
    // A small clinic's example count is a small cell: it stays out of the log.
    const shownExamples = numExamples >= this.manifest.data.minCellCount ? numExamples : null;
    this.log.info({ event: 'update.accepted', round: a.round, nodeId: task.nodeId, taskId: task.id, numExamples: shownExamples, accepted: a.aggregator.count }, 'update accepted');
  }

  /** Records a clinic's statistics report for the round's statistics phase. */
  async acceptStatistics(task: TaskRecord, stats: ClinicStats): Promise<void> {
    const a = this.openAttempt(task);
    if (a.state !== 'STATISTICS') throw stale(task, `round ${a.round} is ${a.state}`);
    validateClinicStats(stats, this.expectations);
    a.statistics.set(task.nodeId, stats);
    a.tasks.get(task.id)!.state = 'ACCEPTED';
    await this.opts.store.setTaskState(task.id, 'ACCEPTED', null, this.now());
    await this.opts.store.insertStatistics({ studyId: this.studyId, taskId: task.id, nodeId: task.nodeId, report: JSON.stringify(stats), receivedAt: this.now() });
    this.notify();
  }

  /** Records a hold-out evaluation of the round's candidate model. */
  async acceptEvaluation(task: TaskRecord, metrics: EvalMetrics): Promise<void> {
    const a = this.openAttempt(task);
    if (a.state !== 'EVALUATING') throw stale(task, `round ${a.round} is ${a.state}`);
    a.evaluations.set(task.nodeId, metrics);
    a.tasks.get(task.id)!.state = 'ACCEPTED';
    await this.opts.store.setTaskState(task.id, 'ACCEPTED', null, this.now());
    this.notify();
  }

  /** Ends a task without a result (declined, failed, rejected update). */
  async endTask(task: TaskRecord, state: Exclude<TaskStateName, 'ASSIGNED' | 'ACCEPTED'>, detail: string): Promise<void> {
    const entry = this.attemptState?.roundId === task.roundId ? this.attemptState.tasks.get(task.id) : undefined;
    if (entry === undefined || entry.state !== 'ASSIGNED') return;
    entry.state = state;
    entry.detail = detail;
    await this.opts.store.setTaskState(task.id, state, detail, this.now());
    this.log.warn(
      { event: `task.${state.toLowerCase()}`, nodeId: task.nodeId, siteName: entry.siteName, taskId: task.id, round: task.round, attempt: task.attempt, kind: task.kind, state, detail },
      `task ${state.toLowerCase()}`,
    );
    this.notify();
  }

  private openAttempt(task: TaskRecord): Attempt {
    const a = this.attemptState;
    if (a === undefined || a.roundId !== task.roundId) throw stale(task, 'its round attempt is over');
    const entry = a.tasks.get(task.id);
    if (entry === undefined || entry.state !== 'ASSIGNED') throw stale(task, `it is ${entry?.state ?? 'unknown'}`);
    if (this.now() > a.deadline) throw stale(task, 'its deadline passed');
    return a;
  }
}

function stale(task: TaskRecord, why: string): FedlhsError {
  return new FedlhsError('FAILED_PRECONDITION', `task ${task.id} (study ${task.studyId}, round ${task.round}) is no longer open: ${why}`, { reason: 'STALE' });
}


function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
