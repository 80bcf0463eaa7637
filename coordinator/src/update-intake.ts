import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { FedlhsError, PayloadReceiver, STUDY_NAME_PATTERN, checkPerformance, isFedlhsError, type ClinicStats, type ComparisonFigures, type EvalMetrics, type Performance } from '@fedlhs/core';
import type {
  EvaluationReceipt,
  EvaluationReport__Output,
  ReleaseComparison__Output,
  StageReceipt,
  StageReport__Output,
  StatisticsReceipt,
  StatisticsReport__Output,
  UpdateChunk__Output,
  UploadReceipt,
} from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore } from './checkpoints.js';
import type { NodeDirectory } from './enrolment.js';
import { DEFAULT_LIMITS, type CoordinatorLimits } from './limits.js';
import type { CoordinatorMetrics } from './metrics.js';
import { revokedError, type NodeCalls } from './node-calls.js';
import { KeyedBuckets } from './rate-limit.js';
import type { StorageHealth } from './storage-health.js';
import type { Studies } from './studies.js';
import type { CoordinatorStore, NodeRecord, TaskRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';
import { evaluationDigest } from './engine/phases/evaluation.js';
import { stageAnswerDigest, stageDigest } from './engine/phases/secagg.js';
import { checkStageVector } from './grpc/validate.js';
import { taskClosed } from './engine/study-runner.js';
import { reportDigest, toClinicStats, toEvalMetrics } from './wire.js';
import { BufferPool } from './blobs/buffer-pool.js';
import { BASE_READ_BYTES, spoolUpload } from './upload-spool.js';

/**
 * Rejections one node may have recorded per minute (with a burst of as many): far above what
 * an agent that retries with backoff produces, far below a loop of bad calls.
 */
export const REJECTIONS_RECORDED_PER_MINUTE = 60;

/** What the update intake needs from the coordinator that builds it. */
export interface UpdateIntakeOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  /** The coordinator's logger; log lines keep the coordinator's component. */
  log: Logger;
  now: () => number;
  metrics: CoordinatorMetrics;
  /** The coordinator's 'change' emitter for live dashboards. */
  events: EventEmitter;
  studies: Pick<Studies, 'runner' | 'openRunner'>;
  /** The coordinator's bounds (limits.ts); default DEFAULT_LIMITS. */
  limits?: Pick<CoordinatorLimits, 'maxExamplesPerUpdate'> | undefined;
  /**
   * The training rows a node stated with its latest READY readiness for a study
   * (StudyReadiness.training_rows; 0 or undefined: not stated), kept after its session ends
   * (coordinator: `sessions.trainingRows`). Without it (embedders that predate the field), an
   * update is bounded only by a statistics report and limits.maxExamplesPerUpdate; with it, a
   * node that stated no rows is refused.
   */
  trainingRows?: ((nodeId: string, studyId: string) => number | undefined) | undefined;
  /**
   * The enrolled nodes in memory, for the revocation check at the moment a contribution is
   * submitted (a node revoked during its call never counts). Default: the store.
   */
  nodes?: Pick<NodeDirectory, 'get'> | undefined;
  /** In-flight calls per node: the reports register there, so that revocation ends them. */
  calls?: NodeCalls | undefined;
  /**
   * Storage health: a spool write that fails for lack of space or a read-only disk is reported
   * there (the coordinator turns degraded at once) and answered STORAGE_FAULT (UNAVAILABLE, so
   * the agent retries) instead of an internal error.
   */
  storage?: Pick<StorageHealth, 'report'> | undefined;
}

/** A report call in flight: set `aborted` when revocation ends it. */
interface ReportCall {
  aborted: FedlhsError | undefined;
}

/** Where an update's bound on num_examples comes from (the BAD_EXAMPLE_COUNT message says). */
interface ExampleBound {
  max: number;
  source: string;
}

/**
 * Looks a task up for the node that calls about it: UNKNOWN_TASK (NOT_FOUND) if there is no
 * such task, NOT_ASSIGNED (PERMISSION_DENIED) if it was handed to another node.
 */
export async function ownTask(store: CoordinatorStore, node: NodeRecord, taskId: string): Promise<TaskRecord> {
  const task = await store.getTask(taskId);
  if (task === undefined) throw new FedlhsError('UNKNOWN_TASK', `no task ${JSON.stringify(taskId)}`);
  if (task.nodeId !== node.id) throw new FedlhsError('NOT_ASSIGNED', `task ${taskId} is assigned to another node`);
  return task;
}

/** A contribution for a task that has ended without one accepted (proto "Order of checks" 8). */
function checkNotClosed(task: TaskRecord): void {
  if (task.state !== 'ASSIGNED') throw taskClosed(task, `it is ${task.state}${task.detail === null ? '' : ` (${task.detail})`}`);
}

/**
 * What nodes send back for their tasks: model updates (streamed, checked chunk by chunk and
 * spooled to disk), statistics reports and evaluation reports. Each is checked against its task
 * before it reaches the study's runner; rejections are recorded with their reason.
 */
export class UpdateIntake {
  private readonly uploadsInFlight = new Set<string>();
  /** Spool batches and base-model reads of uploads (upload-spool.ts): reused, not reallocated per chunk. */
  private readonly pool = new BufferPool();
  /** Per study, the training rows each node reported (see `reportedRows`). */
  private readonly rowsByStudy = new Map<string, Promise<Map<string, number>>>();
  private readonly store: CoordinatorStore;
  private readonly checkpoints: CheckpointStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly metrics: CoordinatorMetrics;
  private readonly events: EventEmitter;
  private readonly studies: Pick<Studies, 'runner' | 'openRunner'>;
  private readonly maxExamples: number;
  /** Per node, rejections it may have recorded (REJECTIONS_RECORDED_PER_MINUTE). */
  private readonly rejectionBudget = new KeyedBuckets(REJECTIONS_RECORDED_PER_MINUTE, REJECTIONS_RECORDED_PER_MINUTE / 60, () => this.now(), 100_000);
  /** Per node, when its unrecorded rejections were last logged. */
  private readonly unrecordedLogged = new Map<string, number>();
  private readonly trainingRows: ((nodeId: string, studyId: string) => number | undefined) | undefined;
  private readonly nodes: Pick<NodeDirectory, 'get'> | undefined;
  private readonly calls: NodeCalls | undefined;
  private readonly storage: Pick<StorageHealth, 'report'> | undefined;

  constructor(opts: UpdateIntakeOptions) {
    this.store = opts.store;
    this.checkpoints = opts.checkpoints;
    this.log = opts.log;
    this.now = opts.now;
    this.metrics = opts.metrics;
    this.events = opts.events;
    this.studies = opts.studies;
    this.maxExamples = (opts.limits ?? DEFAULT_LIMITS).maxExamplesPerUpdate;
    this.trainingRows = opts.trainingRows;
    this.nodes = opts.nodes;
    this.calls = opts.calls;
    this.storage = opts.storage;
  }

  /** Empties the upload spool: partial uploads of an earlier run can never be completed. */
  resetSpool(): void {
    rmSync(this.checkpoints.spoolPath(''), { recursive: true, force: true });
    mkdirSync(this.checkpoints.spoolPath(''), { recursive: true });
  }

  /**
   * Receives an update stream: checks the header against the task and the model, spools the
   * payload to disk while checking every chunk, verifies length and digest, then hands it to
   * the study's runner. Every rejection is recorded with its reason.
   */
  async receiveUpload(node: NodeRecord, messages: AsyncIterable<UpdateChunk__Output>): Promise<UploadReceipt> {
    const iterator = messages[Symbol.asyncIterator]();
    let first: IteratorResult<UpdateChunk__Output>;
    try {
      first = await iterator.next();
    } catch (err) {
      // Stalled or cancelled before a header: recorded against the caller, naming no task.
      if (isFedlhsError(err) && err.isRejection) await this.recordRejection('update', node, err, undefined, { taskId: '', studyId: '', round: 0, numExamples: 0, sha256: '', bytes: 0 });
      throw err;
    }
    const header = first.done === true ? undefined : first.value.header;
    if (header == null || header.weights == null) {
      // Check (1) of the proto's order: recorded like every other rejection (design §6 item 6).
      const err = new FedlhsError('BAD_HEADER', 'the first UploadUpdate message must be a header with weights');
      // A header without weights names its task (fedlhs-task-open is about it); no header names none.
      const named = header == null ? undefined : await this.store.getTask(header.taskId);
      await this.recordRejection('update', node, err, named?.nodeId === node.id ? named : undefined, {
        taskId: header?.taskId ?? '', studyId: header?.studyId ?? '', round: header?.round ?? 0, numExamples: header?.numExamples ?? 0, sha256: '', bytes: 0,
      });
      throw err;
    }
    // Operators (and tests) see an upload in progress before its end; nothing is recorded yet.
    this.log.debug({ event: 'update.receiving', nodeId: node.id, taskId: header.taskId, round: header.round, bytes: header.weights.totalBytes }, 'receiving an update');
    const rest = { [Symbol.asyncIterator]: () => iterator };
    let task: TaskRecord | undefined;
    try {
      task = await ownTask(this.store, node, header.taskId);
      if (header.nodeId !== node.id) throw new FedlhsError('NOT_ASSIGNED', `header.node_id ${JSON.stringify(header.nodeId)} is not the caller (${node.id})`);
      return await this.receiveForTask(node, task, header, rest);
    } catch (err) {
      if (isFedlhsError(err) && err.isRejection) {
        await this.recordRejection('update', node, err, task, {
          taskId: header.taskId, studyId: header.studyId, round: header.round, numExamples: header.numExamples, sha256: header.weights.sha256.toString('hex'), bytes: header.weights.totalBytes,
        });
      } else if (isFedlhsError(err, 'RESOURCE_LIMIT')) {
        // Not a rejection (no reason, not recorded, the task stays as it is), but never quiet.
        this.log.warn({ event: 'update.rejected', nodeId: node.id, taskId: header.taskId, round: header.round, code: err.code, details: err.details, detail: err.message }, 'update refused: a coordinator limit was reached');
      }
      throw err;
    }
  }

  /**
   * Records a rejected contribution (an update, a statistics or an evaluation report) against
   * the caller, even for a task that is not its own: stored with its reason, logged, counted. A
   * closing reason ends the task REJECTED in the same unit. Then sets `err.taskOpen`, which the
   * wire sends as `fedlhs-task-open`: whether a corrected call for the task may still pass.
   */
  private async recordRejection(
    what: 'update' | 'statistics' | 'evaluation' | 'stage',
    node: NodeRecord,
    err: FedlhsError,
    task: TaskRecord | undefined,
    c: { taskId: string; studyId: string; round: number; numExamples: number; sha256: string; bytes: number },
  ): Promise<void> {
    const closesTask = err.closesTask;
    // The RejectionReason: the code, or for an error still in the deprecated form (studies.ts
    // openRunner) its reason.
    const reason = err.reason ?? err.code;
    this.metrics.rejected.inc({ reason });
    // Each recorded rejection is a row, a log line and a dashboard event: a node that sends
    // bad calls in a loop is bounded (REJECTIONS_RECORDED_PER_MINUTE); past it the caller still
    // gets its error but nothing more is recorded for a while. A rejection that closes one of
    // the node's own tasks is always recorded (bounded by its tasks).
    if (!(closesTask && task !== undefined && task.nodeId === node.id) && !this.rejectionBudget.get(node.id).take()) {
      this.noteUnrecorded(node, reason);
      err.taskOpen = this.openForCaller(node, err, task);
      return;
    }
    const op: WriteOp = {
      op: 'contribution.insert',
      c: {
        taskId: c.taskId.slice(0, 128), studyId: c.studyId.slice(0, 128), round: c.round, attempt: task?.attempt ?? 0, nodeId: node.id,
        // As claimed (the reason says why it was refused), within what a BIGINT column holds.
        numExamples: Number.isFinite(c.numExamples) ? Math.min(Math.max(0, Math.trunc(c.numExamples)), Number.MAX_SAFE_INTEGER) : 0,
        sha256: c.sha256, bytes: c.bytes, accepted: false, reasonCode: reason, reason: err.message, receivedAt: this.now(),
      },
    };
    // A rejection that closes its task is one unit with the task's end (T3); otherwise, or when
    // the task is no longer open at the runner, the contribution is recorded on its own.
    const runner = task === undefined ? undefined : this.studies.runner(task.studyId);
    const ended = closesTask && task !== undefined && (await runner?.endTask(task, 'REJECTED', `${reason}: ${err.message}`, [op])) === true;
    if (!ended) await this.store.write([op], 'contribution.rejected');
    // Open for the caller only if it is the caller's, nothing closed it (this rejection, an
    // earlier one, an accepted contribution) and its round still waits for it.
    err.taskOpen = this.openForCaller(node, err, task);
    this.log.warn({ event: `${what}.rejected`, nodeId: node.id, taskId: c.taskId, round: c.round, reason, taskOpen: err.taskOpen, detail: err.message }, `${what === 'update' ? 'update' : `${what} report`} rejected`);
    this.events.emit('change', { kind: 'round', studyId: c.studyId, nodeId: node.id });
  }

  /** Whether the rejected task is still open for the caller (the fedlhs-task-open trailer). */
  private openForCaller(node: NodeRecord, err: FedlhsError, task: TaskRecord | undefined): boolean {
    const runner = task === undefined ? undefined : this.studies.runner(task.studyId);
    return task !== undefined && task.nodeId === node.id && !err.closesTask && err.code !== 'TASK_CLOSED' && err.code !== 'DUPLICATE_CONFLICT' && runner?.isOpen(task) === true;
  }

  /** A rejection past the node's recording budget: counted, and logged once per node per episode. */
  private noteUnrecorded(node: NodeRecord, reason: string): void {
    this.metrics.rejectionsUnrecorded.inc();
    const t = this.now();
    const logged = this.unrecordedLogged.get(node.id);
    if (logged !== undefined && t - logged < 60_000) return;
    if (this.unrecordedLogged.size >= 10_000) this.unrecordedLogged.clear();
    this.unrecordedLogged.set(node.id, t);
    this.log.warn(
      { event: 'rejection.unrecorded', nodeId: node.id, siteName: node.siteName, reason, perMinute: REJECTIONS_RECORDED_PER_MINUTE },
      `node ${node.id} sends more rejected calls than ${REJECTIONS_RECORDED_PER_MINUTE} per minute; further ones are answered but not recorded for now`,
    );
  }

  private async receiveForTask(
    node: NodeRecord,
    task: TaskRecord,
    header: NonNullable<UpdateChunk__Output['header']>,
    chunks: AsyncIterable<UpdateChunk__Output>,
  ): Promise<UploadReceipt> {
    const weights = header.weights!;
    if (task.kind !== 'TRAIN') throw new FedlhsError('STALE', `task ${task.id} is an ${task.kind} task, not TRAIN`);
    if (header.studyId !== task.studyId || header.round !== task.round) {
      throw new FedlhsError('STALE', `update is tagged study ${header.studyId} round ${header.round}, but task ${task.id} is study ${task.studyId} round ${task.round}`);
    }
    const existing = await this.store.acceptedContribution(task.id);
    if (existing === undefined) checkNotClosed(task);
    const runner = existing === undefined ? this.studies.openRunner(task) : undefined;
    const receiver = new PayloadReceiver(
      { tensors: weights.tensors.map((t) => ({ name: t.name, shape: t.shape })), totalBytes: weights.totalBytes, sha256: weights.sha256, chunkSize: weights.chunkSize },
      // A new update's finiteness is checked by spoolUpload in the same pass as its norm
      // (upload-spool.ts); a re-send is only hashed, so the receiver checks it.
      { expected: runner?.modelSpecs ?? this.checkpoints.loadSpecs(task.studyId), requireFinite: existing !== undefined },
    );
    const other = weights.tensors.find((t) => t.dtype !== 'DTYPE_FLOAT32');
    if (other !== undefined) throw new FedlhsError('SHAPE_MISMATCH', `only DTYPE_FLOAT32 tensors are accepted; ${JSON.stringify(other.name)} is ${other.dtype}`, { details: { tensor: other.name } });
    // train_metrics are part of the header: checked with it, not after the whole stream (INVALID_METRICS).
    const trainMetrics = toEvalMetrics(header.trainMetrics, this.maxExamples);

    if (existing !== undefined) {
      // Idempotent re-send: hash what arrives (nothing is stored) and compare.
      for await (const chunk of chunks) if (chunk.data) receiver.push(chunk.data);
      const digest = receiver.finish().toString('hex');
      if (digest !== existing.sha256) {
        throw new FedlhsError('DUPLICATE_CONFLICT', `a different update (sha256 ${existing.sha256}) was already accepted for task ${task.id}`);
      }
      return { taskId: task.id, sha256: Buffer.from(digest, 'hex'), duplicate: true, receivedBytes: receiver.receivedBytes };
    }
    runner!.modelForTask(task); // throws STALE if the round moved on
    if (Buffer.from(header.baseModelSha256).toString('hex') !== task.modelSha256) {
      throw new FedlhsError('STALE', `update was trained from model ${Buffer.from(header.baseModelSha256).toString('hex') || '(none)'}, the task handed out ${task.modelSha256}`);
    }
    if (!(header.numExamples >= 1) || !Number.isSafeInteger(header.numExamples)) {
      throw new FedlhsError('BAD_EXAMPLE_COUNT', `num_examples must be a positive integer, got ${header.numExamples}`);
    }
    const bound = await this.exampleBound(task.studyId, node.id);
    if (header.numExamples > bound.max) {
      throw new FedlhsError('BAD_EXAMPLE_COUNT', `num_examples ${header.numExamples} exceeds ${bound.source}`);
    }
    if (this.uploadsInFlight.has(task.id)) throw new FedlhsError('UPLOAD_IN_PROGRESS', `an upload for task ${task.id} is already in progress; retry after it ends`);
    this.uploadsInFlight.add(task.id);
    const spool = this.checkpoints.spoolPath(`${task.id}.${randomBytes(4).toString('hex')}.part`);
    try {
      // ‖update − global‖² is accumulated while the update arrives (reading the same byte range
      // of the base checkpoint, read in step through the checkpoint store: a file or a blob
      // locator), so admitting it later needs no second pass over either. Receipt, checks and
      // spool writes overlap (upload-spool.ts).
      const base = this.checkpoints.read(runner!.modelForTask(task).path, BASE_READ_BYTES, { pool: this.pool });
      const file = await open(spool, 'wx', 0o600).catch(async (err: unknown) => {
        await base.return(undefined);
        throw this.storage?.report(err, 'spool the upload', spool) ?? err;
      });
      try {
        const squaredDistance = await spoolUpload({
          chunks, receiver, base, file, pool: this.pool,
          writeFailed: (err) => this.storage?.report(err, 'spool the upload', spool),
        });
        const digest = receiver.finish().toString('hex');
        await file.close();
        const earlier = await this.store.findAcceptedBySha256(digest, task.studyId, { nodeId: node.id, round: task.round });
        if (earlier !== undefined) {
          throw new FedlhsError('REPLAYED', `payload is identical to the update accepted for task ${earlier.taskId} (round ${earlier.round}); replays are refused`);
        }
        this.metrics.bytesIn.inc(receiver.receivedBytes);
        // Revoked while the update arrived (its last chunks after the revocation): never counts.
        await this.checkNotRevoked(node);
        await runner!.submit(task, {
          kind: 'update', spoolPath: spool, numExamples: header.numExamples, digest, bytes: receiver.receivedBytes, deltaNorm: Math.sqrt(squaredDistance),
          trainMetrics, dpClipIndicator: header.dpClipIndicator,
        });
        return { taskId: task.id, sha256: Buffer.from(digest, 'hex'), duplicate: false, receivedBytes: receiver.receivedBytes };
      } finally {
        await file.close().catch(() => undefined);
      }
    } finally {
      this.uploadsInFlight.delete(task.id);
      rmSync(spool, { force: true });
    }
  }

  /**
   * Records a node's statistics report for a STATISTICS task, after the study's runner has
   * checked it (core validateClinicStats). Every rejection is recorded with its reason; an
   * inconsistent report ends the task REJECTED, and the phase goes on with the other clinics.
   */
  reportStatistics(node: NodeRecord, report: StatisticsReport__Output): Promise<StatisticsReceipt> {
    return this.registered(node, (call) => this.statisticsFor(node, report, call));
  }

  private async statisticsFor(node: NodeRecord, report: StatisticsReport__Output, call: ReportCall): Promise<StatisticsReceipt> {
    let task: TaskRecord | undefined;
    let digest = '';
    try {
      task = await ownTask(this.store, node, report.taskId);
      if (task.kind !== 'STATISTICS') throw new FedlhsError('STALE', `task ${task.id} is a ${task.kind} task, not STATISTICS`);
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('STALE', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`);
      }
      const stats = toClinicStats(report);
      if (stats.rows > this.maxExamples) {
        throw new FedlhsError('INCONSISTENT_STATISTICS', `rows ${stats.rows} exceeds limits.maxExamplesPerUpdate (${this.maxExamples})`);
      }
      digest = reportDigest(stats);
      if (task.state === 'ACCEPTED') {
        // A re-sent report is compared with the one accepted: identical is OK, different is refused.
        const stored = (await this.store.listStatistics(task.studyId)).find((x) => x.taskId === task!.id);
        if (stored !== undefined && reportDigest(JSON.parse(stored.report) as typeof stats) !== digest) {
          throw new FedlhsError('DUPLICATE_CONFLICT', `a different statistics report was already accepted for task ${task.id}`);
        }
        return { taskId: task.id, duplicate: true };
      }
      checkNotClosed(task);
      const runner = this.studies.openRunner(task);
      await this.checkNotRevoked(node, call);
      await runner.submit(task, { kind: 'statistics', stats });
      this.noteRows(task.studyId, node.id, stats);
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.isRejection) {
        await this.recordRejection('statistics', node, err, task, {
          taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: 0, sha256: digest, bytes: 0,
        });
      }
      throw err;
    }
  }

  /**
   * Records a node's hold-out evaluation of a round's model, in the proto's order of checks:
   * the task (kind, tag), a re-sent report compared by digest with the accepted one, a closed
   * task (TASK_CLOSED), the study, the metrics (INVALID_METRICS, which closes the task), then
   * the round. Every rejection is recorded with its reason.
   */
  reportEvaluation(node: NodeRecord, report: EvaluationReport__Output): Promise<EvaluationReceipt> {
    return this.registered(node, (call) => this.evaluationFor(node, report, call));
  }

  private async evaluationFor(node: NodeRecord, report: EvaluationReport__Output, call: ReportCall): Promise<EvaluationReceipt> {
    let task: TaskRecord | undefined;
    let digest = '';
    try {
      task = await ownTask(this.store, node, report.taskId);
      if (task.kind !== 'EVALUATE') throw new FedlhsError('STALE', `task ${task.id} is a ${task.kind} task, not EVALUATE`);
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('STALE', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`);
      }
      // Impossible figures are impossible metrics: INVALID_METRICS, recorded, closing the task
      // (proto ReportEvaluation), with checkPerformance's message naming the field.
      const performance = (p: typeof report.validation, field: string): ReturnType<typeof checkPerformance> | undefined => {
        if (p == null) return undefined;
        try {
          return checkPerformance(p, field);
        } catch (err) {
          throw new FedlhsError('INVALID_METRICS', (err as Error).message);
        }
      };
      let figures: { validation: ReturnType<typeof checkPerformance> | undefined; test: ReturnType<typeof checkPerformance> | undefined } = { validation: undefined, test: undefined };
      let comparisons: ComparisonFigures[] = [];
      const checked = (): EvalMetrics => {
        figures = { validation: performance(report.validation, 'EvaluationReport.validation'), test: performance(report.test, 'EvaluationReport.test') };
        comparisons = checkComparisons(report.comparisons ?? [], figures.test, performance);
        const m = toEvalMetrics(report.metrics, this.maxExamples);
        if (m === undefined) throw new FedlhsError('INVALID_METRICS', 'metrics are missing');
        // Both describe the validation part (proto EvaluationReport): other counts are impossible.
        if (figures.validation !== undefined && figures.validation.numExamples !== m.numExamples) {
          throw new FedlhsError('INVALID_METRICS', `validation.num_examples (${figures.validation.numExamples}) differs from metrics.num_examples (${m.numExamples}): both are of the validation part`);
        }
        // The figures count in the digest (a re-sent report with other figures conflicts); absent,
        // canonical JSON leaves them out, so a report without them keeps its earlier digest.
        const whole = { ...m, validation: figures.validation, test: figures.test, comparisons: comparisons.length === 0 ? undefined : comparisons };
        digest = reportDigest(whole);
        return m;
      };
      if (task.state === 'ACCEPTED') {
        // A re-sent report is compared with the accepted one by digest (kept with the task:
        // the metrics themselves may be withheld). Impossible metrics cannot be identical.
        checked();
        const accepted = evaluationDigest(task.detail);
        // Accepted before digests were kept: nothing to compare with, so identical is assumed.
        if (accepted !== undefined && accepted !== digest) {
          throw new FedlhsError('DUPLICATE_CONFLICT', `a different evaluation report (sha256 ${accepted}) was already accepted for task ${task.id}`);
        }
        return { taskId: task.id, duplicate: true };
      }
      checkNotClosed(task);
      const runner = this.studies.openRunner(task);
      const metrics = checked();
      await this.checkNotRevoked(node, call);
      await runner.submit(task, { kind: 'evaluation', metrics, digest, ...(figures.validation === undefined ? {} : { validation: figures.validation }), ...(figures.test === undefined ? {} : { test: figures.test }), ...(comparisons.length === 0 ? {} : { comparisons }) });
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.isRejection) {
        await this.recordRejection('evaluation', node, err, task, {
          taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: report.metrics?.numExamples ?? 0, sha256: digest, bytes: 0,
        });
      }
      throw err;
    }
  }

  /**
   * Records a node's answer to a secure-aggregation stage task (proto ReportStage), in the order
   * of ReportEvaluation's checks: the task (ownership, kind, tag), the vector against the stage
   * (only the masked input carries one, and it must), a re-sent answer compared by digest (of
   * body and vector) with the accepted one, a closed task (a stage task cancelled because its
   * stage closed is STALE: the answer came too late), then the stage's own checks
   * (SecAggServer: a body that is not the stage's answer, a masked vector of the wrong length or
   * with padding bits set, a bad signature, is INVALID_ARGUMENT and leaves the task open).
   * Nothing of the body or the vector is logged or stored but their digest.
   */
  reportStage(node: NodeRecord, report: StageReport__Output): Promise<StageReceipt> {
    return this.registered(node, (call) => this.stageFor(node, report, call));
  }

  private async stageFor(node: NodeRecord, report: StageReport__Output, call: ReportCall): Promise<StageReceipt> {
    let task: TaskRecord | undefined;
    let digest = '';
    try {
      task = await ownTask(this.store, node, report.taskId);
      if (!task.kind.startsWith('SECAGG_')) throw new FedlhsError('STALE', `task ${task.id} is a ${task.kind} task, not a secure-aggregation stage`);
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('STALE', `stage answer is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`);
      }
      const bytes = Buffer.from(report.body ?? Buffer.alloc(0));
      const vector: Uint8Array = report.vector ?? new Uint8Array(0);
      checkStageVector(task.kind, vector);
      digest = stageAnswerDigest(bytes, vector);
      if (task.state === 'ACCEPTED') {
        const accepted = stageDigest(task.detail);
        if (accepted !== undefined && accepted !== digest) {
          throw new FedlhsError('DUPLICATE_CONFLICT', `a different answer (sha256 ${accepted}) was already accepted for task ${task.id}`);
        }
        return { taskId: task.id, duplicate: true };
      }
      if (task.state === 'CANCELLED') throw new FedlhsError('STALE', `task ${task.id} (study ${task.studyId}, round ${task.round}): its stage has closed${task.detail === null ? '' : ` (${task.detail})`}`);
      checkNotClosed(task);
      const runner = this.studies.openRunner(task);
      let body: unknown;
      try {
        body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      } catch (err) {
        throw new FedlhsError('INVALID_ARGUMENT', `StageReport.body: not UTF-8 JSON: ${(err as Error).message}`, { details: { field: 'StageReport.body' } });
      }
      await this.checkNotRevoked(node, call);
      await runner.submit(task, { kind: 'stage', body, vector, digest });
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.isRejection) {
        await this.recordRejection('stage', node, err, task, { taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: 0, sha256: digest, bytes: 0 });
      }
      throw err;
    }
  }

  /**
   * Runs a report call of `node` registered with the in-flight calls (node-calls.ts): a
   * revocation marks it aborted, and `checkNotRevoked` refuses it before anything is submitted.
   */
  private async registered<T>(node: NodeRecord, work: (call: ReportCall) => Promise<T>): Promise<T> {
    const call: ReportCall = { aborted: undefined };
    const unregister = this.calls?.register(node.id, (err) => {
      call.aborted = err;
    });
    try {
      return await work(call);
    } finally {
      unregister?.();
    }
  }

  /**
   * Refuses a contribution of a node revoked since its call began (CREDENTIAL_INVALID, not a
   * rejection: nothing is recorded and nothing counts). Checked at the moment of submitting,
   * after the last await before it, so a revocation during the call is always seen.
   */
  private async checkNotRevoked(node: NodeRecord, call?: ReportCall): Promise<void> {
    if (call?.aborted !== undefined) throw call.aborted;
    const current = this.nodes?.get(node.id) ?? (await this.store.getNode(node.id));
    if (current === undefined || current.revokedAt !== null) {
      this.log.warn({ event: 'contribution.revoked', nodeId: node.id }, 'contribution refused: its node was revoked during the call');
      throw revokedError(current?.revokedAt ?? this.now());
    }
  }

  /**
   * The most examples an update of this node may claim in the study (proto "Order of checks"
   * 14): limits.maxExamplesPerUpdate, and the rows the clinic stated for its cohort: those of
   * its accepted, not suppressed statistics report when the study had a statistics phase, else
   * the training_rows of its READY readiness. A node that stated neither cannot be weighted:
   * BAD_EXAMPLE_COUNT (issue 11: num_examples up to 2^53 - 1 was accepted, so one clinic
   * could own the weighted average).
   */
  private async exampleBound(studyId: string, nodeId: string): Promise<ExampleBound> {
    const limit: ExampleBound = { max: this.maxExamples, source: `limits.maxExamplesPerUpdate (${this.maxExamples})` };
    const reported = await this.reportedRows(studyId, nodeId);
    if (reported === undefined && this.trainingRows === undefined) return limit;
    const declared = this.trainingRows?.(nodeId, studyId);
    const stated: ExampleBound | undefined = reported !== undefined
      ? { max: reported, source: `the ${reported} training rows this node reported in the study's statistics` }
      : declared !== undefined && declared > 0
        ? { max: declared, source: `the ${declared} training rows this node declared READY with (StudyReadiness.training_rows)` }
        : undefined;
    if (stated === undefined) {
      throw new FedlhsError(
        'BAD_EXAMPLE_COUNT',
        `this node did not state its training rows for study ${studyId} (StudyReadiness.training_rows with READY, or a statistics report), so its num_examples cannot be checked`,
      );
    }
    return stated.max <= limit.max ? stated : limit;
  }

  /**
   * The training rows this node reported in the study's statistics (proto StatisticsReport.rows,
   * the bound of num_examples), or undefined: no statistics phase, no report from this node, or
   * a suppressed report (rows below the minimum cell count are sent as 0, so there is no bound).
   * Read from the store once per study and process, then kept up to date by `noteRows`.
   */
  private async reportedRows(studyId: string, nodeId: string): Promise<number | undefined> {
    let rows = this.rowsByStudy.get(studyId);
    if (rows === undefined) {
      rows = this.store.listStatistics(studyId).then((list) => {
        const byNode = new Map<string, number>();
        for (const r of list) {
          const stats = JSON.parse(r.report) as Pick<ClinicStats, 'rows' | 'suppressed'>;
          if (stats.suppressed) byNode.delete(r.nodeId);
          else byNode.set(r.nodeId, stats.rows);
        }
        return byNode;
      });
      this.rowsByStudy.set(studyId, rows);
      rows.catch(() => this.rowsByStudy.delete(studyId));
    }
    return (await rows).get(nodeId);
  }

  /** An accepted statistics report changes its node's bound (if the study's rows were read already). */
  private noteRows(studyId: string, nodeId: string, stats: ClinicStats): void {
    const rows = this.rowsByStudy.get(studyId);
    void rows?.then((byNode) => (stats.suppressed ? byNode.delete(nodeId) : byNode.set(nodeId, stats.rows)), () => undefined);
  }
}

/** At most this many comparisons in one report (a run names one champion; room for more later). */
const MAX_COMPARISONS = 8;

/**
 * The report's paired comparisons (proto ReleaseComparison), checked: a study name and version,
 * possible figures on the test part (the same patients as EvaluationReport.test, so the same
 * counts), a difference in [−1, 1] present exactly when the figures have an AUC, and a standard
 * error in [0, 1]. Anything else is INVALID_METRICS naming the field. Which release a study may
 * compare with is the evaluation phase's check (it knows the manifest).
 */
function checkComparisons(
  wire: readonly ReleaseComparison__Output[],
  test: Performance | undefined,
  performance: (p: ReleaseComparison__Output['test'], field: string) => Performance | undefined,
): ComparisonFigures[] {
  if (wire.length > MAX_COMPARISONS) throw new FedlhsError('INVALID_METRICS', `comparisons: at most ${MAX_COMPARISONS}, not ${wire.length}`);
  return wire.map((c, i) => {
    const field = `EvaluationReport.comparisons[${i}]`;
    if (!STUDY_NAME_PATTERN.test(c.studyName)) throw new FedlhsError('INVALID_METRICS', `${field}.study_name: not a study name`);
    if (!(c.version >= 1)) throw new FedlhsError('INVALID_METRICS', `${field}.version: must be at least 1`);
    const champion = performance(c.test, `${field}.test`);
    if (champion === undefined) throw new FedlhsError('INVALID_METRICS', `${field}.test: required (the release's figures on the test part)`);
    if (test === undefined) throw new FedlhsError('INVALID_METRICS', `${field}: a comparison needs EvaluationReport.test (the task model on the same patients)`);
    if (champion.numExamples !== test.numExamples || champion.positives !== test.positives) {
      throw new FedlhsError('INVALID_METRICS', `${field}.test: ${champion.numExamples} patients with ${champion.positives} cases, but EvaluationReport.test has ${test.numExamples} with ${test.positives}: a comparison is on the same patients`);
    }
    const difference = c.aucDifference ?? undefined;
    const se = c.aucDifferenceStandardError ?? undefined;
    if (difference !== undefined && !(Number.isFinite(difference) && difference >= -1 && difference <= 1)) throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference: must be a number in [-1, 1]`);
    if ((difference === undefined) !== (champion.auc === undefined)) throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference: present exactly when both models have an AUC on the test part`);
    if (se !== undefined && !(Number.isFinite(se) && se >= 0 && se <= 1)) throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference_standard_error: must be a number in [0, 1]`);
    if (se !== undefined && difference === undefined) throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference_standard_error: given without auc_difference`);
    // On the same patients the paired difference is the difference of the two AUCs (up to rounding).
    if (difference !== undefined && test.auc !== undefined && Math.abs(difference - (test.auc - champion.auc!)) > 1e-9) {
      throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference: ${difference} is not EvaluationReport.test.auc − ${field}.test.auc (${test.auc - champion.auc!}) on the same patients`);
    }
    // DeLong's variance needs two patients of each class.
    if (se !== undefined && (champion.positives < 2 || champion.numExamples - champion.positives < 2)) {
      throw new FedlhsError('INVALID_METRICS', `${field}.auc_difference_standard_error: cannot be estimated with fewer than 2 cases or 2 non-cases`);
    }
    return { studyName: c.studyName, version: c.version, n: champion.numExamples, cases: champion.positives, difference, standardError: se, champion };
  });
}
