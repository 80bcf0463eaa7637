import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { FedlhsError, PayloadReceiver, isFedlhsError } from '@fedlhs/core';
import type {
  EvaluationReceipt,
  EvaluationReport__Output,
  StatisticsReceipt,
  StatisticsReport__Output,
  UpdateChunk__Output,
  UploadReceipt,
} from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore } from './checkpoints.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { Studies } from './studies.js';
import type { CoordinatorStore, NodeRecord, TaskRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';
import { toClinicStats, toEvalMetrics } from './wire.js';

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
}

/**
 * Looks a task up for the node that calls about it: NOT_FOUND (UNKNOWN_TASK) if there is no
 * such task, PERMISSION_DENIED (NOT_ASSIGNED) if it was handed to another node.
 */
export async function ownTask(store: CoordinatorStore, node: NodeRecord, taskId: string): Promise<TaskRecord> {
  const task = await store.getTask(taskId);
  if (task === undefined) throw new FedlhsError('NOT_FOUND', `no task ${JSON.stringify(taskId)}`, { reason: 'UNKNOWN_TASK' });
  if (task.nodeId !== node.id) throw new FedlhsError('PERMISSION_DENIED', `task ${taskId} is assigned to another node`, { reason: 'NOT_ASSIGNED' });
  return task;
}

/**
 * What nodes send back for their tasks: model updates (streamed, checked chunk by chunk and
 * spooled to disk), statistics reports and evaluation reports. Each is checked against its task
 * before it reaches the study's runner; rejections are recorded with their reason.
 */
export class UpdateIntake {
  private readonly uploadsInFlight = new Set<string>();
  private readonly store: CoordinatorStore;
  private readonly checkpoints: CheckpointStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly metrics: CoordinatorMetrics;
  private readonly events: EventEmitter;
  private readonly studies: Pick<Studies, 'runner' | 'openRunner'>;

  constructor(opts: UpdateIntakeOptions) {
    this.store = opts.store;
    this.checkpoints = opts.checkpoints;
    this.log = opts.log;
    this.now = opts.now;
    this.metrics = opts.metrics;
    this.events = opts.events;
    this.studies = opts.studies;
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
    const first = await iterator.next();
    const header = first.done === true ? undefined : first.value.header;
    if (header == null || header.weights == null) {
      // Check (1) of the proto's order: recorded like every other rejection (design §6 item 6).
      const err = new FedlhsError('INVALID_ARGUMENT', 'the first UploadUpdate message must be a header with weights', { reason: 'BAD_HEADER' });
      await this.recordRejection('update', node, err as FedlhsError & { reason: string }, undefined, {
        taskId: header?.taskId ?? '', studyId: header?.studyId ?? '', round: header?.round ?? 0, numExamples: header?.numExamples ?? 0, sha256: '', bytes: 0,
      }, false);
      throw err;
    }
    const rest = { [Symbol.asyncIterator]: () => iterator };
    let task: TaskRecord | undefined;
    try {
      task = await ownTask(this.store, node, header.taskId);
      if (header.nodeId !== node.id) throw new FedlhsError('PERMISSION_DENIED', `header.node_id ${JSON.stringify(header.nodeId)} is not the caller (${node.id})`, { reason: 'NOT_ASSIGNED' });
      return await this.receiveForTask(node, task, header, rest);
    } catch (err) {
      if (isFedlhsError(err) && err.reason !== undefined) {
        await this.recordRejection('update', node, err as FedlhsError & { reason: string }, task, {
          taskId: header.taskId, studyId: header.studyId, round: header.round, numExamples: header.numExamples, sha256: header.weights.sha256.toString('hex'), bytes: header.weights.totalBytes,
        }, err.closesTask);
      }
      throw err;
    }
  }

  /**
   * Records a rejected contribution (an update or a statistics report) against the caller,
   * even for a task that is not its own: stored with its reason, logged, counted.
   */
  private async recordRejection(
    what: 'update' | 'statistics' | 'evaluation',
    node: NodeRecord,
    err: FedlhsError & { reason: string },
    task: TaskRecord | undefined,
    c: { taskId: string; studyId: string; round: number; numExamples: number; sha256: string; bytes: number },
    closesTask: boolean,
  ): Promise<void> {
    const op: WriteOp = {
      op: 'contribution.insert',
      c: {
        taskId: c.taskId.slice(0, 100), studyId: c.studyId.slice(0, 100), round: c.round, attempt: task?.attempt ?? 0, nodeId: node.id, numExamples: c.numExamples,
        sha256: c.sha256, bytes: c.bytes, accepted: false, reasonCode: err.reason, reason: err.message, receivedAt: this.now(),
      },
    };
    // A rejection that closes its task is one unit with the task's end (T3); otherwise, or when
    // the task is no longer open at the runner, the contribution is recorded on its own.
    const ended = closesTask && task !== undefined && (await this.studies.runner(task.studyId)?.endTask(task, 'REJECTED', `${err.reason}: ${err.message}`, [op])) === true;
    if (!ended) await this.store.write([op], 'contribution.rejected');
    this.log.warn({ event: `${what}.rejected`, nodeId: node.id, taskId: c.taskId, round: c.round, reason: err.reason, detail: err.message }, `${what === 'update' ? 'update' : `${what} report`} rejected`);
    this.metrics.rejected.inc({ reason: err.reason });
    this.events.emit('change', { kind: 'round', studyId: c.studyId, nodeId: node.id });
  }

  private async receiveForTask(
    node: NodeRecord,
    task: TaskRecord,
    header: NonNullable<UpdateChunk__Output['header']>,
    chunks: AsyncIterable<UpdateChunk__Output>,
  ): Promise<UploadReceipt> {
    const weights = header.weights!;
    if (task.kind !== 'TRAIN') throw new FedlhsError('FAILED_PRECONDITION', `task ${task.id} is an ${task.kind} task, not TRAIN`, { reason: 'STALE' });
    if (header.studyId !== task.studyId || header.round !== task.round) {
      throw new FedlhsError('FAILED_PRECONDITION', `update is tagged study ${header.studyId} round ${header.round}, but task ${task.id} is study ${task.studyId} round ${task.round}`, { reason: 'STALE' });
    }
    const existing = await this.store.acceptedContribution(task.id);
    const runner = existing === undefined ? this.studies.openRunner(task) : undefined;
    const receiver = new PayloadReceiver(
      { tensors: weights.tensors.map((t) => ({ name: t.name, shape: t.shape })), totalBytes: weights.totalBytes, sha256: weights.sha256, chunkSize: weights.chunkSize },
      { expected: runner?.modelSpecs ?? this.checkpoints.loadSpecs(task.studyId) },
    );
    if (weights.tensors.some((t) => t.dtype !== 'DTYPE_FLOAT32')) throw new FedlhsError('INVALID_ARGUMENT', 'only DTYPE_FLOAT32 tensors are accepted', { reason: 'SHAPE_MISMATCH' });
    // train_metrics are part of the header: checked with it, not after the whole stream (INVALID_METRICS).
    const trainMetrics = toEvalMetrics(header.trainMetrics);

    if (existing !== undefined) {
      // Idempotent re-send: hash what arrives (nothing is stored) and compare.
      for await (const chunk of chunks) if (chunk.data) receiver.push(chunk.data);
      const digest = receiver.finish().toString('hex');
      if (digest !== existing.sha256) {
        throw new FedlhsError('ALREADY_EXISTS', `a different update (sha256 ${existing.sha256}) was already accepted for task ${task.id}`, { reason: 'DUPLICATE_CONFLICT' });
      }
      return { taskId: task.id, sha256: Buffer.from(digest, 'hex'), duplicate: true, receivedBytes: receiver.receivedBytes };
    }
    runner!.modelForTask(task); // throws STALE if the round moved on
    if (Buffer.from(header.baseModelSha256).toString('hex') !== task.modelSha256) {
      throw new FedlhsError('FAILED_PRECONDITION', `update was trained from model ${Buffer.from(header.baseModelSha256).toString('hex') || '(none)'}, the task handed out ${task.modelSha256}`, { reason: 'STALE' });
    }
    if (!(header.numExamples >= 1) || !Number.isSafeInteger(header.numExamples)) {
      throw new FedlhsError('BAD_EXAMPLE_COUNT', `num_examples must be a positive integer, got ${header.numExamples}`);
    }
    if (this.uploadsInFlight.has(task.id)) throw new FedlhsError('ABORTED', `an upload for task ${task.id} is already in progress; retry after it ends`);
    this.uploadsInFlight.add(task.id);
    const spool = this.checkpoints.spoolPath(`${task.id}.${randomBytes(4).toString('hex')}.part`);
    try {
      // ‖update − global‖² is accumulated while the update arrives (reading the same byte range
      // of the base checkpoint), so admitting it later needs no second pass over either file.
      const base = await open(runner!.modelForTask(task).path, 'r');
      const file = await open(spool, 'wx', 0o600).catch(async (err: unknown) => {
        await base.close();
        throw err;
      });
      let squaredDistance = 0;
      let scratch = Buffer.alloc(0);
      try {
        for await (const chunk of chunks) {
          if (!chunk.data) throw new FedlhsError('INVALID_ARGUMENT', 'only the first message may be a header', { reason: 'BAD_HEADER' });
          const { offset, values } = receiver.push(chunk.data);
          if (scratch.length < chunk.data.length) scratch = Buffer.allocUnsafeSlow(chunk.data.length);
          const { bytesRead } = await base.read(scratch, 0, chunk.data.length, offset * 4);
          const g = new Float32Array(scratch.buffer, scratch.byteOffset, bytesRead / 4);
          for (let i = 0; i < g.length; i++) {
            const d = values[i]! - g[i]!;
            squaredDistance += d * d;
          }
          await file.write(chunk.data);
        }
        const digest = receiver.finish().toString('hex');
        await file.close();
        const earlier = await this.store.findAcceptedBySha256(digest, task.studyId, { nodeId: node.id, round: task.round });
        if (earlier !== undefined) {
          throw new FedlhsError('ALREADY_EXISTS', `payload is identical to the update accepted for task ${earlier.taskId} (round ${earlier.round}); replays are refused`, { reason: 'REPLAYED' });
        }
        this.metrics.bytesIn.inc(receiver.receivedBytes);
        await runner!.submit(task, {
          kind: 'update', spoolPath: spool, numExamples: header.numExamples, digest, bytes: receiver.receivedBytes, deltaNorm: Math.sqrt(squaredDistance),
          trainMetrics,
        });
        return { taskId: task.id, sha256: Buffer.from(digest, 'hex'), duplicate: false, receivedBytes: receiver.receivedBytes };
      } finally {
        await file.close().catch(() => undefined);
        await base.close().catch(() => undefined);
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
  async reportStatistics(node: NodeRecord, report: StatisticsReport__Output): Promise<StatisticsReceipt> {
    let task: TaskRecord | undefined;
    try {
      task = await ownTask(this.store, node, report.taskId);
      if (task.kind !== 'STATISTICS') throw new FedlhsError('FAILED_PRECONDITION', `task ${task.id} is a ${task.kind} task, not STATISTICS`, { reason: 'STALE' });
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('FAILED_PRECONDITION', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`, { reason: 'STALE' });
      }
      const stats = toClinicStats(report);
      if (task.state === 'ACCEPTED') {
        // A re-sent report is compared with the one accepted: identical is OK, different is refused.
        const stored = (await this.store.listStatistics(task.studyId)).find((x) => x.taskId === task!.id);
        if (stored !== undefined && stored.report !== JSON.stringify(stats)) {
          throw new FedlhsError('ALREADY_EXISTS', `a different statistics report was already accepted for task ${task.id}`, { reason: 'DUPLICATE_CONFLICT' });
        }
        return { taskId: task.id, duplicate: true };
      }
      await this.studies.openRunner(task).submit(task, { kind: 'statistics', stats });
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.reason !== undefined) {
        await this.recordRejection('statistics', node, err as FedlhsError & { reason: string }, task, {
          taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: 0, sha256: '', bytes: 0,
        }, err.closesTask);
      }
      throw err;
    }
  }

  /**
   * Records a node's hold-out evaluation of a round's model. The metrics are checked first
   * (INVALID_METRICS, which closes the task); every rejection is recorded with its reason.
   */
  async reportEvaluation(node: NodeRecord, report: EvaluationReport__Output): Promise<EvaluationReceipt> {
    let task: TaskRecord | undefined;
    try {
      task = await ownTask(this.store, node, report.taskId);
      if (task.kind !== 'EVALUATE') throw new FedlhsError('FAILED_PRECONDITION', `task ${task.id} is a ${task.kind} task, not EVALUATE`, { reason: 'STALE' });
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('FAILED_PRECONDITION', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`, { reason: 'STALE' });
      }
      const metrics = toEvalMetrics(report.metrics);
      if (metrics === undefined) throw new FedlhsError('INVALID_METRICS', 'metrics are missing');
      if (task.state === 'ACCEPTED') return { taskId: task.id, duplicate: true };
      await this.studies.openRunner(task).submit(task, { kind: 'evaluation', metrics });
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.reason !== undefined) {
        await this.recordRejection('evaluation', node, err as FedlhsError & { reason: string }, task, {
          taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: report.metrics?.numExamples ?? 0, sha256: '', bytes: 0,
        }, err.closesTask);
      }
      throw err;
    }
  }

}
