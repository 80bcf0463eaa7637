import { randomUUID } from 'node:crypto';
import {
  FedlhsError,
  assertTransition,
  bundleLength,
  createStrategy,
  decideClose,
  isFedlhsError,
  strategyConfigOf,
  type RoundState,
  type StudyManifest,
  type Strategy,
  type Tensor,
  type TensorSpec,
} from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore, StoredModel } from '../checkpoints.js';
import { describePhaseFailure, type PhaseFailure } from '../failure-reasons.js';
import type { CoordinatorMetrics } from '../metrics.js';
import { describeReadiness, siteReadiness } from '../readiness.js';
import type { NodeSession } from '../sessions.js';
import type { CoordinatorStore, StudyRecord, TaskRecord, TaskStateName } from '../store.js';
import { toStorageFault, type StorageHealth } from '../storage-health.js';
import type { WriteOp, WriteResult } from '../store/write-ops.js';
import { Cohort } from './attempt.js';
import { PhaseCounterSet } from './counters.js';
import type { AttemptView, LiveTask, Phase, PhaseContext, PhaseOutput, PhasePlan, PhaseResult, StudyView } from './phase.js';
import { pipelineFor, type PhaseFactory } from './registry.js';

/** Time for the engine: `now` and one-shot timers (tests inject a clock they move). */
export interface EngineClock {
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock = (now: () => number = Date.now): EngineClock => ({
  now,
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
});

/** How the engine reaches clinics: the edge (studies.ts) turns these into proto messages. */
export interface TaskDispatch {
  /**
   * Sends a task to its node if online (false if not: it gets it when it reconnects, unless it
   * has a payload: a secure-aggregation stage is not re-sent, a lost session is a dropout).
   */
  task(record: TaskRecord, parameters: string | null, payload?: string): boolean;
  cancel(nodeId: string, taskId: string, reason: string): void;
}

/**
 * What the engine reads of the sessions: today's SessionRegistry methods and 'change' event, and
 * the ready index's typed notifications when the registry has them (then a phase wakes only for
 * its own nodes, and selection only for its own study).
 */
export interface EngineSessions {
  isOnline(nodeId: string): boolean;
  get(nodeId: string): NodeSession | undefined;
  readyFor(studyId: string, manifestSha256: string): NodeSession[];
  on(name: 'change', listener: () => void): unknown;
  off(name: 'change', listener: () => void): unknown;
  onReady?(studyId: string, listener: () => void): () => void;
  onOnline?(listener: (nodeId: string) => void): () => void;
  onOffline?(listener: (nodeId: string) => void): () => void;
}

export interface EngineOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  sessions: EngineSessions;
  dispatch: TaskDispatch;
  logger: Logger;
  /** After a study has its minimum of READY clinics, how long to wait for its maximum. */
  selectionGraceMs: number;
  now?: () => number;
  /** Overrides `now` and the timers (tests). */
  clock?: EngineClock;
  /** Restored server-side strategy state (from the last committed round's checkpoint). */
  strategyState?: Tensor[] | undefined;
  /** Delta norms of the study's accepted updates so far. */
  normHistory?: number[];
  /**
   * Storage health (storage-health.ts): storage faults are reported there, and the runner waits
   * there for storage to recover instead of spending the study's round attempts. Without it a
   * storage fault is retried after a backoff (1 s doubling to 30 s).
   */
  storage?: StorageGate;
  metrics?: CoordinatorMetrics;
  /** The server strategy (default: the manifest's); wrappers such as central DP noise go here. */
  strategy?: Strategy;
  /** The phases (default: statistics, training, evaluation). */
  pipeline?: readonly PhaseFactory[];
  /** Tasks sent per slice before yielding to the event loop (default 500). */
  sendSlice?: number;
  /**
   * Called whenever a round or the study changes state: 'round' for every round transition,
   * 'committed' when a global model is committed (or the study's parameters change), 'ended'
   * when the study ends.
   */
  onStudyChange?: (studyId: string, change: 'round' | 'committed' | 'ended') => void;
}

/** What the engine uses of StorageHealth. */
export type StorageGate = Pick<StorageHealth, 'report' | 'whenHealthy' | 'healthy' | 'onChange' | 'status'>;

/** How a round attempt ended: committed, failed (counts against maxRoundAttempts), or a storage fault (does not). */
type AttemptOutcome = 'committed' | 'failed' | 'storage';

/** The phase the attempt is in, with its counters and tasks. */
interface ActivePhase {
  readonly phase: Phase;
  readonly plan: PhasePlan;
  readonly quorum: number;
  readonly counters: PhaseCounterSet;
  readonly tasks: LiveTask[];
  /** Results being accepted; the phase decides only once they are in. */
  readonly inflight: Set<Promise<void>>;
  closed: boolean;
  awaitingAlike: boolean;
}

/** The round attempt a runner is working on. */
interface Attempt extends AttemptView {
  cohort: Cohort;
  state: RoundState;
  readonly startedAt: number;
  /** The current phase's deadline (the readiness deadline while waiting; 0 = none). */
  deadline: number;
  readonly phases: Phase[];
  active: ActivePhase | undefined;
  /** Every task of the attempt by id (the engine's O(1) index for results and progress). */
  readonly byId: Map<string, LiveTask>;
  /** Open tasks of the current phase by node (online/offline events reach only these). */
  byNode: Map<string, LiveTask[]>;
  /** Writes a closed phase left for the next unit (cancelling its open tasks, its output). */
  pending: WriteOp[];
  /** Parameters a statistics phase derived, persisted with the next phase's unit (T7). */
  parametersPending: string | undefined;
  outputs: PhaseOutput[];
  /** Set when in-memory state can no longer be trusted (an accepted update whose write failed). */
  poisoned: string | undefined;
  /** The storage fault that poisoned it, if one did (then the attempt fails as a storage fault). */
  poisonedBy: FedlhsError | undefined;
  /** Storage faults met before the attempt (StorageStatus.faults): more at its end means it met one. */
  readonly faultsAtStart: number;
}

/** The runner was stopped or halted: the attempt ends, and the study ends STOPPED unless halting. */
const stopped = (): FedlhsError => new FedlhsError('ATTEMPT_ABORTED', 'the study runner was stopped');
/** The study cannot go on (its message is the study's reason); it ends FAILED, not retried. */
const studyFailed = (reason: string): FedlhsError => new FedlhsError('STUDY_FAILED', reason);

const SEND_SLICE = 500;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs one study's rounds to completion. Each round attempt selects its cohort, then runs the
 * study's pipeline of phases (engine/registry.ts): per phase one unit of work enters it
 * ([round.state, task.insert(all)]), tasks go out in slices, and the phase waits on its own
 * counters, woken only by its own tasks' events and its deadline; closing, failing and
 * committing are one unit each. Never a recount over the tasks on a wake-up.
 */
export class StudyRunner {
  readonly studyId: string;
  private attemptState: Attempt | undefined;
  private readonly abort = new AbortController();
  private stopReason = '';
  private halting = false;
  private wake: (() => void) | undefined;
  private readonly log: Logger;
  private readonly clock: EngineClock;
  private readonly view: StudyView;
  /** The reason the last failed attempt gave, for the study's reason when attempts run out. */
  private lastAttemptFailure = '';
  private selecting = false;
  /** True when the sessions have typed online/offline/ready notifications (then 'change' is not needed). */
  private typedSessionEvents = false;
  private changeQueued = false;
  private readonly onSessionChange = (): void => {
    if (this.changeQueued) return;
    this.changeQueued = true;
    queueMicrotask(() => {
      this.changeQueued = false;
      this.sessionsChanged();
    });
  };
  private readonly onNodeOnline = (nodeId: string): void => this.nodeOnline(nodeId, true);
  private readonly onNodeOffline = (nodeId: string): void => this.nodeOnline(nodeId, false);
  private readonly onReady = (): void => {
    if (this.selecting) this.notify();
  };
  /** Storage faults already reported (an error passes several catch blocks on its way up). */
  private readonly reportedFaults = new WeakSet<FedlhsError>();
  /** Backoff steps taken while waiting for storage without a StorageGate. */
  private storageWaits = 0;
  private readonly onStorageChange = (): void => this.notify();

  constructor(
    private readonly study: StudyRecord,
    private readonly manifest: StudyManifest,
    private readonly specs: TensorSpec[],
    private readonly opts: EngineOptions,
  ) {
    this.studyId = study.id;
    this.log = opts.logger.child({ component: 'round-engine', studyId: study.id, study: study.name });
    this.clock = opts.clock ?? systemClock(opts.now);
    const strategy = opts.strategy ?? createStrategy(strategyConfigOf(manifest));
    if (opts.strategyState !== undefined) strategy.importState(opts.strategyState);
    this.view = { id: study.id, record: study, manifest, specs, strategy, normHistory: [...(opts.normHistory ?? [])] };
  }

  private now(): number {
    return this.clock.now();
  }

  /** The current attempt's round, attempt number, state and deadline, for status displays. */
  get current(): { roundId: number; round: number; attempt: number; state: RoundState; deadline: number } | undefined {
    const a = this.attemptState;
    return a === undefined ? undefined : { roundId: a.roundId, round: a.round, attempt: a.attempt, state: a.state, deadline: a.deadline };
  }

  /** The current phase's counters (tests, status). */
  get counters(): PhaseCounterSet | undefined {
    return this.attemptState?.active?.counters;
  }

  get modelSpecs(): readonly TensorSpec[] {
    return this.specs;
  }

  /** Runs until the study completes, fails or is stopped. Never rejects. */
  async run(): Promise<void> {
    const { sessions } = this.opts;
    const unsubscribe = [
      sessions.onOnline?.(this.onNodeOnline), sessions.onOffline?.(this.onNodeOffline), sessions.onReady?.(this.studyId, this.onReady),
    ];
    this.typedSessionEvents = unsubscribe.every((u) => u !== undefined);
    // The generic 'change' event only for sessions without the typed ones (it fires on every
    // session change of every study: one listener per runner would be work for nothing).
    if (!this.typedSessionEvents) sessions.on('change', this.onSessionChange);
    const unsubscribeStorage = this.opts.storage?.onChange(this.onStorageChange);
    try {
      // Held updates of an attempt a crash interrupted (no attempt of this study runs yet).
      this.tryClearWorkFiles('at start');
      let round = this.study.lastCommittedRound + 1;
      while (round <= this.manifest.rounds) {
        let failed = 0;
        let committed = false;
        while (!committed && failed < this.manifest.deadlines.maxRoundAttempts) {
          // Numbered after the attempts on record (an attempt that a storage fault stopped before
          // its row was written leaves no number behind).
          const attempt = await this.withStorage('read the round attempts', async () => Math.max(0, ...(await this.opts.store.listRounds(this.studyId)).filter((r) => r.round === round).map((r) => r.attempt)) + 1);
          const outcome = await this.runAttempt(round, attempt);
          if (outcome === 'committed') committed = true;
          else if (outcome === 'failed') failed++;
          else await this.recoverFromStorageFault(round);
        }
        if (!committed) {
          await this.endStudy('FAILED', `round ${round} failed ${this.manifest.deadlines.maxRoundAttempts} time(s); last attempt: ${this.lastAttemptFailure}`);
          return;
        }
        round++;
      }
      await this.endStudy('COMPLETED', null);
    } catch (err) {
      try {
        if (isStopped(err)) {
          if (!this.halting) await this.endStudy('STOPPED', this.stopReason);
        } else if (isStudyFailed(err)) {
          await this.endStudy('FAILED', (err as Error).message);
        } else {
          this.log.error({ event: 'study.internal_error', err }, 'study failed with an internal error');
          await this.endStudy('FAILED', `internal error: ${(err as Error).message}`);
        }
      } catch (endErr) {
        // The store refused even the study's end: it stays RUNNING and resumes at the next start.
        this.log.error({ event: 'study.internal_error', err: endErr }, 'could not record the end of the study');
      }
    } finally {
      if (!this.typedSessionEvents) sessions.off('change', this.onSessionChange);
      for (const u of unsubscribe) u?.();
      unsubscribeStorage?.();
      this.tryClearWorkFiles('at the end of the run');
    }
  }

  // ---- storage faults (issue 11) ------------------------------------------------------------

  /** `err` as STORAGE_FAULT if it is a storage fault (reported to the storage health once), else undefined. */
  private storageFault(err: unknown, op: string): FedlhsError | undefined {
    if (err instanceof FedlhsError && this.reportedFaults.has(err)) return err;
    const fault = this.opts.storage?.report(err, op) ?? toStorageFault(err, op);
    if (fault !== undefined) {
      this.reportedFaults.add(fault);
      return fault;
    }
    // A store that went away without saying why (a lost connection): retried like a fault.
    return isStoreFailure(err) && !this.abort.signal.aborted ? (err as FedlhsError) : undefined;
  }

  /**
   * Waits until storage is healthy again (the StorageGate's probes pass; without one, a backoff).
   * Throws ATTEMPT_ABORTED if the runner is stopped meanwhile.
   */
  private async awaitStorage(why: string): Promise<void> {
    if (this.abort.signal.aborted) throw stopped();
    const storage = this.opts.storage;
    const status = storage?.status();
    this.log.warn(
      { event: 'study.waiting_for_storage', why, kind: status?.kind ?? null, since: status?.since ?? null },
      `waiting for storage to recover before going on (${why})`,
    );
    if (storage !== undefined) {
      await storage.whenHealthy(this.abort.signal);
    } else {
      const ms = Math.min(30_000, 1000 * 2 ** this.storageWaits++);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          cancel();
          this.abort.signal.removeEventListener('abort', done);
          resolve();
        };
        const cancel = this.clock.setTimer(ms, done);
        this.abort.signal.addEventListener('abort', done, { once: true });
      });
    }
    if (this.abort.signal.aborted) throw stopped();
  }

  /** Runs `fn`, and after a storage fault waits for storage and runs it again. Other errors pass. */
  private async withStorage<T>(op: string, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const value = await fn();
        this.storageWaits = 0;
        return value;
      } catch (err) {
        const fault = this.storageFault(err, op);
        if (fault === undefined) throw err;
        await this.awaitStorage(`could not ${op}: ${fault.message}`);
      }
    }
  }

  /**
   * After an attempt a storage fault ended: once storage is back, whatever it could not record
   * or clean up is: its round row and open tasks FAILED (nothing committed is touched: only
   * rounds that are not COMMITTED or FAILED), committed names of rounds that never committed and
   * its held updates removed.
   */
  private async recoverFromStorageFault(round: number): Promise<void> {
    await this.awaitStorage(this.lastAttemptFailure);
    await this.withStorage('record the attempt the storage fault ended', () =>
      this.opts.store.failOpenRounds(this.studyId, `round ${round}: ${this.lastAttemptFailure}`, this.now()));
    // What the store says was committed wins over memory: a commit whose write seemed to fail
    // may have gone through, and its checkpoint must stay.
    const stored = await this.withStorage('read the last committed round', () => this.opts.store.getStudy(this.studyId));
    await this.withStorage('remove what the failed attempt left', async () => this.clearWorkFiles(Math.max(this.study.lastCommittedRound, stored?.lastCommittedRound ?? 0)));
  }

  /** Removes held updates and uncommitted checkpoint names of this study (no attempt may be running). */
  private clearWorkFiles(lastCommitted = this.study.lastCommittedRound): void {
    try {
      this.opts.checkpoints.clearHeld(this.studyId);
      this.opts.checkpoints.removeUncommitted(this.studyId, lastCommitted);
    } catch (err) {
      throw this.storageFault(err, 'remove held updates and uncommitted checkpoint names') ?? err;
    }
  }

  /** clearWorkFiles where a failure must not stop the runner: logged; the next start (or recovery) retries. */
  private tryClearWorkFiles(when: string): void {
    try {
      this.clearWorkFiles();
    } catch (err) {
      this.log.warn({ event: 'study.cleanup_failed', when, err }, `could not remove held updates ${when}: ${(err as Error).message}`);
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

  // ---- waking -----------------------------------------------------------------------------

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves on the next notify(), at `until`, or throws ATTEMPT_ABORTED once stopped. */
  private async nextEvent(until: number): Promise<void> {
    if (this.abort.signal.aborted) throw stopped();
    await new Promise<void>((resolve) => {
      const cancel = this.clock.setTimer(until - this.now(), () => {
        this.wake = undefined;
        resolve();
      });
      this.wake = () => {
        cancel();
        resolve();
      };
    });
    if (this.abort.signal.aborted) throw stopped();
  }

  /**
   * A session connected, left or changed readiness. Selection re-reads the READY clinics. In a
   * phase, this matters only while the sessions do not emit typed online/offline events: then
   * the open tasks' online flags are reconciled (O(open tasks of the phase)); once they do, a
   * phase wakes only for its own nodes (nodeOnline).
   */
  private sessionsChanged(): void {
    const active = this.attemptState?.active;
    if (this.selecting || active === undefined) {
      this.notify();
      return;
    }
    if (active.closed) return;
    for (const t of active.tasks) if (t.state === 'ASSIGNED') active.counters.setOnline(t, this.opts.sessions.isOnline(t.nodeId));
    this.notify();
  }

  private nodeOnline(nodeId: string, online: boolean): void {
    const a = this.attemptState;
    const open = a?.byNode.get(nodeId);
    if (a?.active === undefined || open === undefined) return;
    for (const t of open) a.active.counters.setOnline(t, online);
    this.notify();
  }

  // ---- the attempt ------------------------------------------------------------------------

  private async write(ops: readonly WriteOp[], label: string): Promise<WriteResult> {
    return this.opts.store.write(ops, label);
  }

  private context(a: Attempt, phase: Phase): PhaseContext {
    return {
      study: this.view,
      attempt: a,
      checkpoints: this.opts.checkpoints,
      metrics: this.opts.metrics,
      log: this.log.child({ phase: phase.name }),
      now: () => this.now(),
      readyNodes: () => this.opts.sessions.readyFor(this.studyId, this.study.manifestHash).map((s) => s.nodeId),
      enterState: (state) => this.enterState(a, state),
    };
  }

  private async runAttempt(round: number, attempt: number): Promise<AttemptOutcome> {
    const baseRecord = await this.withStorage('read the base checkpoint of the round', () => this.opts.store.getCommittedRound(this.studyId, round - 1));
    if (baseRecord?.checkpointPath == null || baseRecord.checkpointSha256 === null) {
      throw new FedlhsError('INTERNAL', `no committed checkpoint for round ${round - 1}`);
    }
    const startedAt = this.now();
    const faultsAtStart = this.opts.storage?.status().faults ?? 0;
    let roundId: number;
    try {
      [roundId = 0] = (await this.write([{
        op: 'round.insert',
        r: { studyId: this.studyId, round, attempt, state: 'WAITING_FOR_NODES', reason: null, startedAt, endedAt: null, participants: 0, checkpointPath: null, checkpointSha256: null },
      }], 'round.insert')).roundIds;
    } catch (err) {
      const fault = this.storageFault(err, `start round ${round}`);
      if (fault === undefined) throw err;
      if (this.abort.signal.aborted) throw stopped();
      // Nothing of the attempt exists yet: it is retried once storage recovers.
      this.lastAttemptFailure = storageReason(fault);
      this.log.warn({ event: 'round.failed', round, attempt, reason: this.lastAttemptFailure, storageFault: kindOf(fault), failures: [] }, `round ${round} attempt ${attempt} failed`);
      return 'storage';
    }
    const base: StoredModel = { path: baseRecord.checkpointPath, sha256: baseRecord.checkpointSha256, totalBytes: bundleLength(this.specs) * 4 };
    const a: Attempt = {
      // The readiness deadline applies from the start, so a status read never sees a waiting round without it.
      roundId, round, attempt, state: 'WAITING_FOR_NODES', startedAt,
      deadline: this.manifest.deadlines.readinessSeconds === undefined ? 0 : startedAt + this.manifest.deadlines.readinessSeconds * 1000, base, cohort: new Cohort([]), candidate: undefined,
      phases: pipelineFor(this.view, this.opts.pipeline), active: undefined, byId: new Map(), byNode: new Map(), pending: [], parametersPending: undefined,
      outputs: [], poisoned: undefined, poisonedBy: undefined, faultsAtStart,
    };
    this.attemptState = a;
    let committed = false;
    this.log.info({ event: 'round.started', round, attempt }, `round ${round} (attempt ${attempt}) waiting for ${this.manifest.clients.min}-${this.manifest.clients.max} READY clinics`);
    this.opts.onStudyChange?.(this.studyId, 'round');
    try {
      a.cohort = new Cohort(await this.selectNodes(a));
      this.opts.metrics?.participants.observe(a.cohort.size);
      for (const [i, phase] of a.phases.entries()) {
        const failure = await this.runPhase(a, phase, i === 0);
        if (failure !== undefined) {
          // A phase that failed while storage was faulty (uploads refused, results not
          // recorded) failed because of it: retried when storage recovers, not counted.
          const fault = this.faultDuring(a);
          if (fault !== undefined) throw fault;
          await this.failAttempt(a, `${phase.failurePrefix}${failure.reason}`);
          if (failure.sameFailureEverywhere !== undefined) {
            throw studyFailed(`round ${a.round}: ${phase.failurePrefix}${failure.reason} — every clinic failed the same way, so the round was not retried`);
          }
          return 'failed';
        }
      }
      await this.commit(a);
      committed = true;
      return 'committed';
    } catch (err) {
      const fault = isStopped(err) || isStudyFailed(err) ? undefined : this.storageFault(err, `run round ${round}`);
      if (a.state !== 'COMMITTED' && a.state !== 'FAILED') {
        const reason =
          isStopped(err) ? (this.halting ? this.stopReason : `study stopped: ${this.stopReason}`)
          : isStudyFailed(err) ? (err as Error).message
          : fault !== undefined ? storageReason(fault)
          : `internal error: ${(err as Error).message}`;
        try {
          await this.failAttempt(a, reason, fault);
        } catch (failErr) {
          // Storage is down: the round row stays open until it is back (recoverFromStorageFault).
          this.lastAttemptFailure = reason;
          this.log.error({ event: 'round.failed', round, attempt, reason, storageFault: fault === undefined ? undefined : kindOf(fault), err: failErr }, `round ${round} attempt ${attempt} failed, and recording it failed too`);
        }
      }
      // A storage fault fails the attempt; the runner waits for storage, then retries (issue 11).
      if (fault !== undefined && !this.abort.signal.aborted) return 'storage';
      throw err;
    } finally {
      for (const phase of a.phases) {
        try {
          await phase.dispose(this.context(a, phase), committed);
        } catch (err) {
          this.log.error({ event: 'study.internal_error', err, phase: phase.name }, 'a phase failed to free its resources');
        }
      }
      this.attemptState = undefined;
    }
  }

  /** The storage fault the attempt met, if storage is faulty now or a fault was reported since it started. */
  private faultDuring(a: Attempt): FedlhsError | undefined {
    if (a.poisonedBy !== undefined) return a.poisonedBy;
    const status = this.opts.storage?.status();
    if (status === undefined || (status.healthy && status.faults === a.faultsAtStart)) return undefined;
    const fault = new FedlhsError('STORAGE_FAULT', status.detail ?? 'a storage fault occurred during the round (storage has recovered since)', {
      details: { kind: status.kind ?? 'io_error', op: `run round ${a.round}` },
    });
    this.reportedFaults.add(fault);
    return fault;
  }

  /**
   * One phase: plan → one unit [pending, round.state, task.insert] → send in slices → wait on
   * its counters → close. Returns the failure when it must be retried, undefined when it closed.
   */
  private async runPhase(a: Attempt, phase: Phase, first: boolean): Promise<PhaseFailure | undefined> {
    if (this.abort.signal.aborted) throw stopped();
    const ctx = this.context(a, phase);
    const plan = await phase.plan(ctx);
    const at = this.now();
    const records: TaskRecord[] = plan.tasks.map((t) => ({
      id: `task_${randomUUID()}`, roundId: a.roundId, studyId: this.studyId, round: a.round, attempt: a.attempt, nodeId: t.nodeId, kind: t.kind,
      state: 'ASSIGNED', detail: null, modelSha256: t.model?.sha256 ?? '', deadline: plan.deadline, createdAt: at, endedAt: null,
    }));
    // Consecutive phases may share a round state (the secure-aggregation stages are all TRAINING).
    const sameState = a.state === phase.roundState && !first;
    if (!sameState) assertTransition(a.state, phase.roundState);
    const parameters = plan.parameters ?? a.parametersPending;
    const ops: WriteOp[] = [
      ...a.pending,
      ...(parameters === undefined ? [] : [{ op: 'study.parameters' as const, id: this.studyId, parameters }]),
      ...(sameState ? [] : [{ op: 'round.state' as const, id: a.roundId, state: phase.roundState, reason: null, at: null, ...(first ? { participants: a.cohort.size } : {}) }]),
      { op: 'task.insert', tasks: records },
    ];
    const result = await this.write(ops, `phase.${phase.name}`);
    this.applied(a, result, a.pending);
    a.pending = [];
    a.parametersPending = undefined;
    a.state = phase.roundState;
    a.deadline = plan.deadline;
    this.log.info({ event: 'round.phase', round: a.round, attempt: a.attempt, state: a.state, phase: phase.name, tasks: records.length }, `round ${a.round} → ${a.state}`);
    this.opts.onStudyChange?.(this.studyId, 'round');
    if (parameters !== undefined) {
      this.study.parameters = parameters;
      this.opts.onStudyChange?.(this.studyId, 'committed');
    }

    const counters = new PhaseCounterSet();
    const active: ActivePhase = {
      phase, plan, quorum: plan.quorum === 'none' ? 0 : plan.quorum, counters, tasks: [], inflight: new Set(), closed: false, awaitingAlike: false,
    };
    a.byNode = new Map();
    for (const [i, r] of records.entries()) {
      const live: LiveTask = {
        id: r.id, nodeId: r.nodeId, siteName: this.opts.sessions.get(r.nodeId)?.siteName ?? r.nodeId, kind: r.kind, phase: phase.name, state: 'ASSIGNED', detail: null,
        accepting: false, online: this.opts.sessions.isOnline(r.nodeId), model: plan.tasks[i]!.model, payload: plan.tasks[i]!.payload,
      };
      active.tasks.push(live);
      a.byId.set(r.id, live);
      const list = a.byNode.get(r.nodeId);
      if (list === undefined) a.byNode.set(r.nodeId, [live]);
      else list.push(live);
      counters.add(live);
    }
    a.active = active;
    await this.send(records, plan.tasks.map((t) => t.payload));
    this.log.info({ round: a.round, kind: records[0]?.kind ?? phase.taskKinds[0], nodes: records.length }, `${phase.taskKinds.join('/')} tasks sent to ${records.length} clinic(s)`);

    const failure = await this.awaitClose(a, active, ctx);
    active.closed = true;
    a.byNode = new Map();
    if (failure !== undefined) return failure;
    a.pending.push({ op: 'task.cancelOpen', roundId: a.roundId, detail: closeDetail(phase), at: this.now() });
    a.active = undefined;
    const output = await phase.complete(ctx, counters);
    a.outputs.push(output);
    if (output.parameters !== undefined) a.parametersPending = output.parameters;
    if (output.candidate !== undefined) a.candidate = output.candidate.model;
    for (const d of output.drop ?? []) a.cohort.drop(d.nodeId, phase.name, d.reason);
    if (output.failure !== undefined) return { reason: output.failure, sameFailureEverywhere: undefined };
    return undefined;
  }

  /** Sends tasks in slices, yielding to the event loop between slices (results may already arrive). */
  private async send(records: readonly TaskRecord[], payloads: readonly (string | undefined)[]): Promise<void> {
    const slice = this.opts.sendSlice ?? SEND_SLICE;
    for (let i = 0; i < records.length; i += slice) {
      if (i > 0) await yieldToLoop();
      for (let j = i; j < Math.min(records.length, i + slice); j++) {
        const payload = payloads[j];
        if (payload === undefined) this.opts.dispatch.task(records[j]!, this.study.parameters);
        else this.opts.dispatch.task(records[j]!, this.study.parameters, payload);
      }
    }
  }

  /** Waits until the phase's closing rule says close or retry. */
  private async awaitClose(a: Attempt, active: ActivePhase, ctx: PhaseContext): Promise<PhaseFailure | undefined> {
    const { phase, counters, plan } = active;
    for (;;) {
      if (a.poisonedBy !== undefined) throw a.poisonedBy;
      if (a.poisoned !== undefined) throw new FedlhsError('INTERNAL', a.poisoned);
      // Storage went faulty (a probe, or a write elsewhere): results can no longer be recorded,
      // so the attempt ends now with that reason rather than at its deadline with a wrong one.
      if (this.opts.storage?.healthy === false) throw this.faultDuring(a)!;
      const deadlinePassed = this.now() >= plan.deadline;
      const decision = phase.decide?.(ctx, counters, deadlinePassed) ?? decideClose(counters.tally(), active.quorum, deadlinePassed);
      if (decision.action !== 'wait' && active.inflight.size > 0) {
        // Results that arrived in time are still being checked and added: decide only once
        // they are in (they may make the quorum), never underneath them.
        await Promise.allSettled([...active.inflight]);
        continue;
      }
      if (decision.action === 'close') return undefined;
      if (decision.action === 'retry') {
        if (deadlinePassed || !counters.mayFailAlike()) {
          const kind = phase.taskKinds[0] ?? 'TRAIN';
          return describePhaseFailure(kind, active.tasks.map((t) => ({ siteName: t.siteName, state: t.state, detail: t.detail, online: t.online || t.accepting })), active.quorum, deadlinePassed);
        }
        if (!active.awaitingAlike) {
          active.awaitingAlike = true;
          const failed = active.tasks.filter((t) => t.state === 'FAILED');
          const open = counters.openOnline + counters.openOffline;
          this.log.info(
            { event: 'round.awaiting-alike', round: a.round, attempt: a.attempt, kind: phase.taskKinds[0], failed: failed.map((t) => t.siteName).sort(), open },
            `${failed.length} clinic(s) failed the same way and quorum ${active.quorum} is out of reach: waiting for the other ${open} before deciding whether a retry could help`,
          );
        }
      }
      await this.nextEvent(plan.deadline);
    }
  }

  /** A sub-state of the current phase (AGGREGATING), in one unit with the pending writes (T8). */
  private async enterState(a: Attempt, state: RoundState): Promise<void> {
    assertTransition(a.state, state);
    const result = await this.write([...a.pending, { op: 'round.state', id: a.roundId, state, reason: null, at: null }], `round.${state.toLowerCase()}`);
    this.applied(a, result, a.pending);
    a.pending = [];
    a.state = state;
    this.log.info({ event: 'round.phase', round: a.round, attempt: a.attempt, state }, `round ${a.round} → ${state}`);
    this.opts.onStudyChange?.(this.studyId, 'round');
  }

  /** After a unit: the tasks its cancelOpen ops cancelled are told so. */
  private applied(a: Attempt, result: WriteResult, ops: readonly WriteOp[]): void {
    if (result.cancelled.length === 0) return;
    const detail = ops.find((o): o is Extract<WriteOp, { op: 'task.cancelOpen' }> => o.op === 'task.cancelOpen')?.detail ?? 'cancelled';
    for (const id of result.cancelled) {
      const t = a.byId.get(id);
      if (t === undefined) continue;
      t.state = 'CANCELLED';
      this.opts.dispatch.cancel(t.nodeId, id, detail);
    }
  }

  private recordRoundEnd(a: Attempt, outcome: 'committed' | 'failed'): void {
    this.opts.metrics?.rounds.inc({ outcome });
    this.opts.metrics?.roundDuration.observe({ outcome }, (this.now() - a.startedAt) / 1000);
  }

  /** T9: pending writes, open tasks cancelled and the round FAILED, in one unit. */
  private async failAttempt(a: Attempt, reason: string, fault?: FedlhsError): Promise<void> {
    this.lastAttemptFailure = reason;
    const detail = `round failed: ${reason}`;
    const ops: WriteOp[] = [
      ...a.pending,
      { op: 'task.cancelOpen', roundId: a.roundId, detail, at: this.now() },
      { op: 'round.state', id: a.roundId, state: 'FAILED', reason, at: this.now() },
    ];
    const result = await this.write(ops, 'round.fail');
    this.applied(a, result, ops);
    a.pending = [];
    assertTransition(a.state, 'FAILED');
    a.state = 'FAILED';
    if (a.active !== undefined) a.active.closed = true;
    this.recordRoundEnd(a, 'failed');
    this.log.info({ event: 'round.phase', round: a.round, attempt: a.attempt, state: 'FAILED', reason }, `round ${a.round} → FAILED`);
    this.opts.onStudyChange?.(this.studyId, 'round');
    const failures = [...a.byId.values()].filter((t) => t.state === 'FAILED' || t.state === 'DECLINED' || t.state === 'REJECTED');
    this.log.warn(
      {
        event: 'round.failed', round: a.round, attempt: a.attempt, reason, ...(fault === undefined ? {} : { storageFault: kindOf(fault) }),
        failures: failures.map((t) => ({ siteName: t.siteName, nodeId: t.nodeId, kind: t.kind, state: t.state, detail: t.detail })),
      },
      `round ${a.round} attempt ${a.attempt} failed`,
    );
  }

  /** T10: the candidate promoted, then one unit: open tasks cancelled, round COMMITTED with its metrics. */
  private async commit(a: Attempt): Promise<void> {
    const training = a.outputs.find((o) => o.candidate !== undefined)?.candidate;
    if (training === undefined) throw new FedlhsError('INTERNAL', 'the pipeline produced no candidate model');
    const metrics = a.outputs.flatMap((o) => o.metrics ?? []);
    const summaries = a.outputs.flatMap((o) => (o.summary === undefined ? [] : [o.summary]));
    const reason = summaries.length === 0 ? null : summaries.join('; ');
    // The study's parameters as of the commit (adaptive clipping's next norm), in the same unit.
    const parameters = [...a.outputs].reverse().find((o) => o.commitParameters !== undefined)?.commitParameters;
    let committedModel: StoredModel;
    let strategyState: string | null = this.study.strategyState;
    let ops: WriteOp[];
    let result: WriteResult;
    try {
      committedModel = this.opts.checkpoints.promote(this.studyId, a.round, training.model);
      if (training.strategyState !== undefined) {
        const state = this.opts.checkpoints.promote(this.studyId, a.round, training.strategyState, 'state');
        strategyState = JSON.stringify({ path: state.path, sha256: state.sha256, round: a.round });
      }
      ops = [
        ...a.pending,
        { op: 'round.commit', id: a.roundId, checkpoint: { path: committedModel.path, sha256: committedModel.sha256 }, metrics, strategyState, at: this.now() },
        // A degraded commit (e.g. nobody evaluated) says so in the round's own record.
        ...(reason === null ? [] : [{ op: 'round.state' as const, id: a.roundId, state: 'COMMITTED' as const, reason, at: null }]),
        ...(parameters === undefined ? [] : [{ op: 'study.parameters' as const, id: this.studyId, parameters }]),
      ];
      result = await this.write(ops, 'round.commit');
    } catch (err) {
      // The database row is the commit point: without it the promoted names go too (names of
      // rounds after the last committed one only). On a read-only disk that fails as well:
      // recoverFromStorageFault removes them once storage is back, before the round is retried.
      // A failed write's outcome can be unknown (a connection lost after COMMIT): the names are
      // removed only when the store says the round is not committed (not if it cannot say).
      const committed = await this.opts.store.getCommittedRound(this.studyId, a.round).then((r) => r !== undefined, () => true);
      try {
        if (!committed) this.opts.checkpoints.removeUncommitted(this.studyId, a.round - 1);
      } catch (rmErr) {
        this.log.warn({ event: 'study.cleanup_failed', when: 'after a failed commit', err: rmErr }, `could not remove the uncommitted checkpoint names of round ${a.round}: ${(rmErr as Error).message}`);
      }
      throw err;
    }
    this.applied(a, result, ops);
    a.pending = [];
    this.study.strategyState = strategyState;
    if (parameters !== undefined) this.study.parameters = parameters;
    this.study.lastCommittedRound = a.round;
    assertTransition(a.state, 'COMMITTED');
    a.state = 'COMMITTED';
    this.recordRoundEnd(a, 'committed');
    const fields = Object.assign({}, ...a.outputs.map((o) => o.fields ?? {})) as Record<string, unknown>;
    this.log[reason === null ? 'info' : 'warn'](
      { event: 'round.committed', round: a.round, attempt: a.attempt, state: 'COMMITTED', sha256: committedModel.sha256, ...fields, ...(reason === null ? {} : { reason }) },
      reason === null ? `round ${a.round} committed` : `round ${a.round} committed: ${reason}`,
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
    this.selecting = true;
    try {
      for (;;) {
        const ready = this.opts.sessions.readyFor(this.studyId, this.study.manifestHash).map((s) => s.nodeId);
        if (ready.length >= min) {
          graceUntil ??= this.now() + this.opts.selectionGraceMs;
          if (ready.length >= max || this.now() >= graceUntil) return shuffle(ready).slice(0, max);
        } else {
          graceUntil = undefined;
          if (readinessDeadline !== undefined && this.now() >= readinessDeadline) {
            const sites = siteReadiness(await this.opts.store.listNodes(), this.opts.sessions, this.studyId, this.study.manifestHash);
            const reason = `readiness deadline passed (deadlines.readinessSeconds ${readinessSeconds}) before round ${a.round} could start: ${describeReadiness(sites, min)}`;
            this.log.warn(
              { event: 'readiness.deadline', round: a.round, attempt: a.attempt, ready: ready.length, min, sites: sites.map((s) => ({ siteName: s.siteName, nodeId: s.nodeId, readiness: s.readiness, detail: s.detail })) },
              reason,
            );
            throw studyFailed(reason);
          }
          if (ready.length !== lastReported) {
            this.log.info({ ready: ready.length, min }, `waiting for clinics: ${ready.length} READY of ${min} needed`);
            lastReported = ready.length;
          }
        }
        // Without a readiness deadline, wake up now and then anyway (a missed event cannot hang the round).
        await this.nextEvent(graceUntil ?? readinessDeadline ?? this.now() + 60_000);
      }
    } finally {
      this.selecting = false;
    }
  }

  private async endStudy(state: 'COMPLETED' | 'FAILED' | 'STOPPED', reason: string | null): Promise<void> {
    // During a storage fault the study's end waits for storage, like a round (a runner that gave
    // up here would leave a RUNNING study nobody runs until the next restart).
    await this.withStorage(`record the end of the study (${state})`, () => this.write([{ op: 'study.state', id: this.studyId, state, reason, at: this.now() }], 'study.end'));
    this.log[state === 'COMPLETED' ? 'info' : 'warn']({ event: `study.${state.toLowerCase()}`, state, reason }, `study ${state.toLowerCase()}`);
    this.opts.onStudyChange?.(this.studyId, 'ended');
  }

  // ---- called by the edges (update-intake.ts, downloads.ts, control-session.ts) ------------

  /** The model a task hands out, or STALE if the task's round is no longer at that step. */
  modelForTask(task: TaskRecord): StoredModel {
    const { entry } = this.openTask(task);
    if (entry.model === undefined) throw stale(task, 'its round has no model for it');
    return entry.model;
  }

  /**
   * Hands a checked result to the phase its task belongs to (routed by the task's phase, i.e.
   * its kind). The phase's writes commit in one unit with the task's ACCEPTED state; the
   * counters change only after that unit is durable, and the task.end guard in the store makes
   * a second accept of one task STALE, so no result is counted twice.
   */
  async submit(task: TaskRecord, result: PhaseResult): Promise<void> {
    const { a, entry } = this.openTask(task);
    const active = a.active;
    if (active === undefined || active.closed || active.phase.name !== entry.phase) throw stale(task, `round ${a.round} is ${a.state}`);
    if (entry.accepting) throw new FedlhsError('UPLOAD_IN_PROGRESS', `a result for task ${task.id} is already being added; retry after it is`);
    const ctx = this.context(a, active.phase);
    active.counters.setAccepting(entry, true);
    const work = (async () => {
      let accepted;
      try {
        accepted = await active.phase.accept(ctx, entry, result);
      } catch (err) {
        // A full or read-only disk is the coordinator's fault, not the update's: UNAVAILABLE
        // (the agent retries), and the storage health hears of it.
        throw this.storageFault(err, `accept the ${result.kind} of task ${task.id}`) ?? err;
      }
      if (this.attemptState !== a || active.closed) {
        if (result.kind === 'update') a.poisoned = `an update was added to round ${a.round}'s aggregate after its phase closed`;
        throw stale(task, 'its round closed while the result was being added');
      }
      try {
        await this.write([{ op: 'task.end', id: task.id, to: 'ACCEPTED', detail: accepted.detail, at: this.now() }, ...accepted.ops], `accept.${active.phase.name}`);
      } catch (err) {
        const fault = this.storageFault(err, `record the accepted ${result.kind} of task ${task.id}`);
        // The update is in the running aggregate but not on record: this attempt cannot commit.
        if (result.kind === 'update') {
          a.poisoned = `an accepted update for task ${task.id} could not be recorded: ${(err as Error).message}`;
          a.poisonedBy = fault;
        }
        if (fault !== undefined) throw fault;
        // The store's guard: the task ended meanwhile (behind this runner's back).
        throw isFedlhsError(err) && err.code === 'STALE' ? taskClosed(task, (err as Error).message) : err;
      }
      active.counters.end(entry, 'ACCEPTED', accepted.detail);
      accepted.apply?.();
    })();
    active.inflight.add(work);
    try {
      await work;
    } finally {
      active.inflight.delete(work);
      active.counters.setAccepting(entry, false);
      this.notify();
    }
    if (result.kind === 'update') {
      // A small clinic's example count is a small cell: it stays out of the log.
      const shownExamples = result.numExamples >= this.manifest.data.minCellCount ? result.numExamples : null;
      this.log.debug({ event: 'update.accepted', round: a.round, nodeId: task.nodeId, taskId: task.id, numExamples: shownExamples, accepted: active.counters.accepted }, 'update accepted');
    }
  }

  /**
   * Ends an open task without a result (declined, failed, rejected), with `ops` in the same unit
   * (T3: the rejected contribution). Returns false if the task was not open here (the caller
   * then records `ops` on its own).
   */
  async endTask(task: TaskRecord, state: Exclude<TaskStateName, 'ASSIGNED' | 'ACCEPTED'>, detail: string, ops: readonly WriteOp[] = []): Promise<boolean> {
    const a = this.attemptState;
    const entry = a?.roundId === task.roundId ? a.byId.get(task.id) : undefined;
    if (a === undefined || entry === undefined || entry.state !== 'ASSIGNED') return false;
    try {
      await this.write([...ops, { op: 'task.end', id: task.id, to: state, detail, at: this.now() }], `task.${state.toLowerCase()}`);
    } catch (err) {
      if (isFedlhsError(err) && err.code === 'STALE') return false;
      throw err;
    }
    const active = a.active;
    if (active !== undefined && active.phase.name === entry.phase) active.counters.end(entry, state, detail);
    else {
      entry.state = state;
      entry.detail = detail;
    }
    if (state !== 'CANCELLED' && a.phases.find((p) => p.name === entry.phase)?.overCohort === true) a.cohort.drop(task.nodeId, entry.phase, detail);
    this.log.warn(
      { event: `task.${state.toLowerCase()}`, nodeId: task.nodeId, siteName: entry.siteName, taskId: task.id, round: task.round, attempt: task.attempt, kind: task.kind, state, detail },
      `task ${state.toLowerCase()}`,
    );
    this.notify();
    return true;
  }

  /**
   * True if the task is open here: its round attempt is the current one, it is still ASSIGNED,
   * and its deadline has not passed (what `fedlhs-task-open` reports after a rejection).
   */
  isOpen(task: TaskRecord): boolean {
    const a = this.attemptState;
    return a !== undefined && a.roundId === task.roundId && a.byId.get(task.id)?.state === 'ASSIGNED' && this.now() <= a.deadline;
  }

  /**
   * The attempt and the live entry of an open task; TASK_CLOSED if the task has ended
   * (proto "Order of checks" 8), STALE if its attempt is over or its deadline passed (12).
   */
  private openTask(task: TaskRecord): { a: Attempt; entry: LiveTask } {
    const a = this.attemptState;
    if (a === undefined || a.roundId !== task.roundId) throw stale(task, 'its round attempt is over');
    const entry = a.byId.get(task.id);
    if (entry === undefined) throw stale(task, 'its round attempt does not know it');
    if (entry.state !== 'ASSIGNED') throw taskClosed(task, `it is ${entry.state}`);
    if (this.now() > a.deadline) throw stale(task, 'its deadline passed');
    return { a, entry };
  }
}

function closeDetail(phase: Phase): string {
  return phase.name === 'statistics' ? 'statistics collected' : phase.name === 'training' ? 'the round closed with its quorum' : phase.name === 'evaluation' ? 'evaluation closed' : `${phase.name} closed`;
}

/** The round's failure reason for a storage fault (the study's reason if it ever came to that). */
function storageReason(fault: FedlhsError): string {
  return `storage fault: ${fault.message} (kind ${kindOf(fault)}); the round will be retried when storage recovers`;
}

function kindOf(fault: FedlhsError): string {
  return (fault.details as { kind?: string } | undefined)?.kind ?? 'unavailable';
}

function isStoreFailure(err: unknown): boolean {
  return isFedlhsError(err) && err.code === 'STORE_UNAVAILABLE';
}

function isStopped(err: unknown): boolean {
  return isFedlhsError(err, 'ATTEMPT_ABORTED');
}

function isStudyFailed(err: unknown): boolean {
  return isFedlhsError(err) && err.code === 'STUDY_FAILED';
}

function stale(task: TaskRecord, why: string): FedlhsError {
  return new FedlhsError('STALE', `task ${task.id} (study ${task.studyId}, round ${task.round}) is no longer open: ${why}`);
}

/** A call for a task that has ended (proto RejectionReason TASK_CLOSED). */
export function taskClosed(task: Pick<TaskRecord, 'id' | 'studyId' | 'round'>, why: string): FedlhsError {
  return new FedlhsError('TASK_CLOSED', `task ${task.id} (study ${task.studyId}, round ${task.round}) is closed: ${why}`);
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
