import * as grpc from '@grpc/grpc-js';
import { FedlhsError, WIRE_NUMBERS, WIRE_STRINGS, backoffDelay, isFedlhsError, sanitizeWireText, type Normalization, type StudyManifest } from '@fedlhs/core';
import { createModelRuntime, type ModelRuntime } from '@fedlhs/model';
import type { AgentMessage, CancelTask__Output, Task__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { AgentState, NodeCredential } from './agent-state.js';
import type { AgentConfig } from './config.js';
import { RETRYABLE_CODES, isServiceError, type Clients } from './connection.js';
import type { LocalData } from './local-data.js';
import type { StudyTracker } from './studies.js';
import { downloadModel, type Progress } from './transfer.js';
import { beforeTask } from './failpoints.js';

/** Least time between two RUNNING updates of one task and phase (see TaskRunner.progress). */
const PROGRESS_INTERVAL_MS = 1000;
/** Longest reason a FAILED task update carries (error messages can be long). */
const FAILED_REASON_MAX = 300;

/** The task's local data, split and normalised as the study asks. */
export type PreparedData = Awaited<ReturnType<LocalData['prepared']>>;

/** A model task's inputs: the prepared data and a runtime holding the task's verified model. */
export interface LoadedModel {
  data: PreparedData;
  runtime: ModelRuntime;
  /** SHA-256 of the downloaded model, as the task announced it. */
  sha256: Buffer;
  /** Per-transfer timeout: the task's deadline plus slack, at least 10 s. */
  timeoutMs: number;
}

/** Where the agent's kept releases come from: the release fetcher, and the key they verify with. */
export interface ReleaseAccess {
  /** The release key pinned at enrolment, with the keys it replaced (PEM); undefined: none pinned. */
  pinnedPem: string | undefined;
  /** Fetches, verifies and keeps one release (ReleaseFetcher.fetchRelease). */
  fetchRelease(studyName: string, version: number): Promise<void>;
}

/** What a task handler may use; everything is scoped to the one task it runs. */
export interface TaskContext {
  /** The verified, locally approved manifest of the task's study. */
  readonly manifest: StudyManifest;
  /** The agent's logger with taskId, studyId, round and kind. */
  readonly log: Logger;
  readonly config: AgentConfig;
  readonly state: AgentState;
  readonly credential: NodeCredential;
  readonly clients: Clients;
  readonly data: LocalData;
  /** Whether the coordinator cancelled the task. */
  isCancelled(): boolean;
  /** Retries `call` on transient codes until the task's deadline (see TaskRunner). */
  withRetry<T>(what: string, call: () => Promise<T>): Promise<T>;
  /** Sends a RUNNING task update. */
  progress(phase: string, fraction: number, epoch?: number, epochs?: number): void;
  /** A transfer progress callback that logs and reports every 25 %. */
  transferProgress(phase: 'download' | 'upload'): Progress;
  /** Prepares the data, builds the runtime and downloads the task's model into it. The runner disposes the runtime. */
  loadModel(): Promise<LoadedModel>;
  /** Kept releases and the key they verify with (a series' champion is scored beside the task's model); absent: none. */
  readonly releases?: ReleaseAccess | undefined;
  /** Declines the task (TaskUpdate DECLINED with `why`, logged and audited); the handler then returns. */
  decline?(why: string): void;
  /**
   * Fails the task with `why` (TaskUpdate FAILED, audited task_failed) for a refusal the handler
   * has already logged (a secure-aggregation request this clinic will not answer); the handler then returns.
   */
  fail?(why: string): void;
  /**
   * The study's privacy ledger changed: after a spend the readiness is sent again with the new
   * PrivacyBudget; after a round declined on budget (`declined`) the clinic withdraws if no round fits.
   */
  privacyChanged?(declined: boolean): void;
}

/** Runs one kind of task. Adding a kind is a new `tasks/*.ts` and one entry in the agent's handler list. */
export interface TaskHandler {
  readonly kind: Task__Output['kind'];
  /** The `kind` field of the task's log lines. */
  readonly name: string;
  /** The audit event that records the coordinator rejecting this kind's result. */
  readonly sentEvent: 'update_sent' | 'evaluation_sent' | 'statistics_sent' | 'secagg_stage_sent';
  run(task: Task__Output, ctx: TaskContext): Promise<void>;
}

/** What the task runner needs; `send` writes to the current control session. */
export interface TaskRunnerOptions {
  config: AgentConfig;
  state: AgentState;
  credential: NodeCredential;
  clients: Clients;
  data: LocalData;
  log: Logger;
  studies: StudyTracker;
  handlers: readonly TaskHandler[];
  /** Runs tasks of a kind no handler claims. */
  fallback: TaskHandler;
  send: (message: AgentMessage) => void;
  /** Kept releases, for the champion comparison of a series run's evaluations. */
  releases?: ReleaseAccess | undefined;
}

/**
 * Runs the tasks the coordinator hands out, one at a time and each at most once per process,
 * only for manifests this clinic's operator approved. Declines what it cannot run, reports
 * progress, retries transient failures until the task's deadline, and records every outcome
 * that leaves the clinic in the audit log.
 */
export class TaskRunner {
  private readonly seenTasks = new Set<string>();
  private readonly cancelled = new Set<string>();
  private readonly handlers: ReadonlyMap<Task__Output['kind'], TaskHandler>;
  private queue: Promise<void> = Promise.resolve();
  private currentTask: string | undefined;
  /** The last RUNNING update sent, for the progress throttle. */
  private lastProgress: { taskId: string; phase: string; at: number } | undefined;

  constructor(private readonly options: TaskRunnerOptions) {
    this.handlers = new Map(options.handlers.map((h) => [h.kind, h]));
  }

  /** The task running now, if any, for Hello. */
  activeTaskIds(): string[] {
    return this.currentTask === undefined ? [] : [this.currentTask];
  }

  /** Queues a task behind the running one. */
  onTask(task: Task__Output): void {
    if (this.seenTasks.has(task.taskId)) return; // re-sent after a reconnection: already running or done
    this.seenTasks.add(task.taskId);
    this.queue = this.queue.then(() => this.execute(task));
  }

  /** Marks a task cancelled: a queued one never starts, a running one stops before sending. */
  onCancel(cancel: CancelTask__Output): void {
    this.cancelled.add(cancel.taskId);
    this.options.log.info({ event: 'task.cancelled', taskId: cancel.taskId, reason: cancel.reason }, 'task cancelled by coordinator');
  }

  /**
   * Sends a RUNNING update, at most one per PROGRESS_INTERVAL_MS per task except a new phase or
   * the end of one: a model that runs hundreds of epochs a second must not exceed the
   * coordinator's limits.sessionMessagesPerSecond (which ends the session).
   */
  private progress(task: Task__Output, phase: string, fraction: number, epoch = 0, epochs = 0): void {
    const now = Date.now();
    const last = this.lastProgress;
    const sameTask = last?.taskId === task.taskId && last.phase === phase;
    if (sameTask && fraction < 1 && now - last.at < PROGRESS_INTERVAL_MS) return;
    this.lastProgress = { taskId: task.taskId, phase, at: now };
    const clamp = (n: number, max: number): number => (Number.isFinite(n) ? Math.min(Math.max(n, 0), max) : 0);
    this.options.send({
      taskUpdate: {
        taskId: task.taskId, state: 'TASK_STATE_RUNNING', phase: sanitizeWireText(phase, WIRE_STRINGS['TaskUpdate.phase'].max),
        fraction: clamp(fraction, 1), epoch: clamp(epoch, WIRE_NUMBERS['TaskUpdate.epoch'].max), epochs: clamp(epochs, WIRE_NUMBERS['TaskUpdate.epochs'].max),
      },
    });
  }

  private decline(task: Task__Output, why: string): void {
    const { config, log, send, state } = this.options;
    const reason = sanitizeWireText(why, WIRE_STRINGS['TaskUpdate.reason'].max);
    log.warn({ event: 'task.declined', taskId: task.taskId, studyId: task.studyId, round: task.round, reason }, 'declining task');
    send({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_DECLINED', reason } });
    state.audit({
      event: 'task_declined', coordinator: config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, detail: reason,
      sent: { taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_DECLINED', reason } },
    });
  }

  /** Sends FAILED with `why` (cut to FAILED_REASON_MAX) and audits it. */
  private fail(task: Task__Output, why: string): void {
    const taskUpdate = { taskId: task.taskId, state: 'TASK_STATE_FAILED' as const, reason: sanitizeWireText(why, FAILED_REASON_MAX) };
    this.options.state.audit({ event: 'task_failed', coordinator: this.options.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, detail: taskUpdate.reason, sent: { taskUpdate } });
    this.options.send({ taskUpdate });
  }

  private async execute(task: Task__Output): Promise<void> {
    const { config, state } = this.options;
    if (this.cancelled.has(task.taskId)) return;
    const known = this.options.studies.get(task.studyId);
    if (known?.manifest === undefined || known.study.manifestSha256 !== task.manifestSha256) {
      this.decline(task, 'the agent has no verified manifest with this hash for the study');
      return;
    }
    if (!this.options.studies.approval(task.studyId, task.manifestSha256).approved) {
      this.decline(task, 'the manifest is not approved by this clinic\'s operator');
      return;
    }
    const manifest = known.manifest;
    const handler = this.handlers.get(task.kind) ?? this.options.fallback;
    const log = this.options.log.child({ taskId: task.taskId, studyId: task.studyId, round: task.round, kind: handler.name });
    beforeTask(task.kind); // test fault injection (failpoints.ts): inert unless FEDLHS_FAILPOINTS is set
    this.currentTask = task.taskId;
    const owned: { runtime?: ModelRuntime } = {};
    try {
      await handler.run(task, this.context(task, manifest, handler.name, log, owned));
    } catch (err) {
      if (isServiceError(err) && (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND)) {
        log.info({ event: 'task.abandoned', details: err.details }, 'task abandoned: the coordinator no longer needs it');
        state.audit({ event: 'task_declined', coordinator: config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, outcome: `abandoned: ${grpc.status[err.code]}` });
      } else if (isServiceError(err) && RETRYABLE_CODES.has(err.code)) {
        // Transient (the coordinator was unreachable): if it re-sends the task, start again.
        this.seenTasks.delete(task.taskId);
        log.warn({ event: 'task.interrupted', code: grpc.status[err.code], details: err.details }, 'task interrupted; it runs again if the coordinator re-sends it');
      } else if (isServiceError(err)) {
        log.error({ event: 'task.rejected', code: grpc.status[err.code], details: err.details, rejection: err.metadata.get('fedlhs-rejection-reason')[0] }, 'coordinator rejected the task result');
        state.audit({ event: handler.sentEvent, coordinator: config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, outcome: `rejected: ${grpc.status[err.code]}`, detail: err.details });
      } else if (isFedlhsError(err, 'DATA_NOT_READY')) {
        this.decline(task, err.message);
      } else {
        log.error({ event: 'task.failed', err }, 'task failed');
        this.fail(task, (err as Error).message);
      }
    } finally {
      owned.runtime?.dispose();
      this.currentTask = undefined;
    }
  }

  /** The handler's view of one task; a runtime it loads lands in `owned`, which `execute` disposes. */
  private context(task: Task__Output, manifest: StudyManifest, kind: string, log: Logger, owned: { runtime?: ModelRuntime }): TaskContext {
    const { config, state, credential, clients, data } = this.options;
    return {
      manifest, log, config, state, credential, clients, data, releases: this.options.releases,
      decline: (why) => this.decline(task, why),
      fail: (why) => this.fail(task, why),
      privacyChanged: (declined) => void this.options.studies.privacyChanged(task.studyId, declined),
      isCancelled: () => this.cancelled.has(task.taskId),
      withRetry: (what, call) => this.withRetry(task, log, what, call),
      progress: (phase, fraction, epoch, epochs) => this.progress(task, phase, fraction, epoch, epochs),
      transferProgress: (phase) => this.transferProgress(task, phase, log),
      loadModel: async () => {
        const parameters = task.parametersJson === '' ? undefined : (JSON.parse(task.parametersJson) as { normalization?: Normalization });
        const prepared = await data.prepared(manifest, parameters?.normalization);
        const runtime = (owned.runtime = await createModelRuntime({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer }));
        const timeoutMs = Math.max(10_000, task.deadlineUnixMs - Date.now() + 30_000);
        log.info({ event: 'task.received' }, `round ${task.round}: ${kind} task received`);
        const sha256 = await this.withRetry(task, log, 'download', () => this.loadTaskModel(task, runtime, timeoutMs, log));
        return { data: prepared, runtime, sha256, timeoutMs };
      },
    };
  }

  /** Reports transfer progress to the log and the coordinator every 25 % (and at 100 %). */
  private transferProgress(task: Task__Output, phase: 'download' | 'upload', log: Logger): Progress {
    let lastPct = -1;
    return (fraction) => {
      const pct = Math.floor(fraction * 100);
      if (pct >= lastPct + 25 || pct === 100) {
        lastPct = pct;
        log.info({ event: 'task.progress', phase, percent: pct }, `round ${task.round}: ${phase} ${pct}%`);
        this.progress(task, phase, fraction);
      }
    };
  }

  /**
   * Downloads the task's model into the runtime. The downloaded array goes out of scope on
   * return, so only the runtime's copy is alive while training.
   */
  private async loadTaskModel(task: Task__Output, runtime: ModelRuntime, timeoutMs: number, log: Logger): Promise<Buffer> {
    const start = performance.now();
    const { weights, sha256 } = await downloadModel(
      this.options.clients.federation, this.options.credential.credential, { taskId: task.taskId }, runtime.specs, timeoutMs, this.transferProgress(task, 'download', log),
    );
    const ms = performance.now() - start;
    log.info({ event: 'model.downloaded', bytes: weights.byteLength, ms: Math.round(ms), mbPerS: Number((weights.byteLength / 1048576 / (ms / 1000)).toFixed(1)) }, 'model downloaded and verified');
    if (!sha256.equals(task.modelSha256)) {
      throw new FedlhsError('MODEL_DIGEST_MISMATCH', `downloaded model hashes to ${sha256.toString('hex')}, the task announced ${task.modelSha256.toString('hex')}`);
    }
    runtime.setWeights(weights);
    return sha256;
  }

  /** Retries a call on transient codes with jittered backoff until the task's deadline. */
  private async withRetry<T>(task: Task__Output, log: Logger, what: string, call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        const retryable = isServiceError(err) && RETRYABLE_CODES.has(err.code);
        const delay = backoffDelay(attempt, this.options.config.reconnect);
        if (!retryable || Date.now() + delay > task.deadlineUnixMs || this.cancelled.has(task.taskId)) throw err;
        log.warn({ event: 'task.retrying', code: grpc.status[err.code], retryInMs: Math.round(delay) }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
