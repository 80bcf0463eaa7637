import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { backoffDelay, float32Bytes, isFedlhsError, verifyManifestJson, type Normalization, type StudyManifest } from '@fedlhs/core';
import { createModelRuntime, type ModelRuntime } from '@fedlhs/model';
import type { AgentInfo, AgentMessage, CoordinatorMessage__Output, ListStudiesResponse__Output, Readiness__Output as Readiness, Study__Output, Task__Output } from '@fedlhs/proto';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import type { AgentState, NodeCredential } from './agent-state.js';
import { RETRYABLE_CODES, authMetadata, deadlineIn, isServiceError, type Clients } from './client.js';
import type { AgentConfig } from './config.js';
import { LocalData } from './local-data.js';
import { downloadModel, uploadUpdate } from './transfer.js';

export const AGENT_VERSION = 'fedlhs-agent/0.1.0';

/** Lifecycle of the agent process. */
export type AgentLifecycle = 'INITIALIZED' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

interface KnownStudy {
  study: Study__Output;
  manifest: StudyManifest | undefined;
  readiness: Readiness;
  detail: string;
}

/** Thrown when the coordinator refuses the credential: retrying cannot help. */
export class CredentialRejected extends Error {
  override readonly name = 'CredentialRejected';
}

const abortable = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/**
 * The clinic's node agent: keeps one control session to the coordinator (dialling out,
 * reconnecting with jittered backoff), reports readiness per study, and runs the tasks it is
 * given one at a time — only for manifests its own operator approved. What it sends is
 * weights, example counts and aggregate metrics; each is written to the audit log first.
 */
export class Agent {
  lifecycle: AgentLifecycle = 'INITIALIZED';
  private readonly log: Logger;
  private readonly data: LocalData;
  private readonly studies = new Map<string, KnownStudy>();
  private readonly seenTasks = new Set<string>();
  private readonly cancelled = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private currentTask: string | undefined;
  private call: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> | undefined;
  private readonly info: AgentInfo;

  constructor(
    private readonly config: AgentConfig,
    private readonly state: AgentState,
    private readonly credential: NodeCredential,
    private readonly clients: Clients,
    logger: Logger,
    backend: string,
  ) {
    this.log = logger.child({ component: 'agent', nodeId: credential.nodeId, site: credential.siteName });
    this.data = new LocalData({ format: config.data.format, path: config.data.path, keyColumn: config.data.keyColumn, minCohort: config.minCohort, encoding: config.data.encoding });
    this.info = { agentVersion: AGENT_VERSION, trainingBackend: backend, platform: `${platform()}-${arch()} node-${process.versions.node}` };
  }

  /** Runs sessions until `signal` aborts. Rejects only with CredentialRejected. */
  async run(signal: AbortSignal): Promise<void> {
    this.lifecycle = 'RUNNING';
    let attempt = 0;
    signal.addEventListener('abort', () => this.call?.cancel(), { once: true });
    try {
      while (!signal.aborted) {
        const welcomed = await this.session(signal);
        if (signal.aborted) break;
        attempt = welcomed ? 0 : attempt + 1;
        const delay = backoffDelay(attempt, this.config.reconnect);
        this.log.info({ retryInMs: Math.round(delay) }, `reconnecting to ${this.config.coordinator.address} in ${(delay / 1000).toFixed(1)}s`);
        await abortable(delay, signal);
      }
      // A task still running is abandoned, not awaited: the coordinator re-sends open tasks
      // on the next session and uploads are idempotent, so stopping never loses work.
      this.lifecycle = 'STOPPED';
    } catch (err) {
      this.lifecycle = 'FAILED';
      throw err;
    }
  }

  /** One session; resolves when it ends, with whether it got as far as Welcome. */
  private session(signal: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const call = this.clients.federation.Session(authMetadata(this.credential.credential));
      this.call = call;
      let welcomed = false;
      let interval = 5000;
      let lastHeard = Date.now();
      const connectTimeoutMs = 15_000;
      const timer = setInterval(() => {
        const silentFor = Date.now() - lastHeard;
        if (silentFor > (welcomed ? 3 * interval : connectTimeoutMs)) {
          this.log.warn({ silentForMs: silentFor }, 'coordinator silent; dropping the session');
          call.cancel();
          return;
        }
        if (welcomed) {
          this.send({ heartbeat: { sentUnixMs: Date.now() } });
          this.recheckApprovals();
        }
      }, 1000);
      const finish = (err?: grpc.ServiceError): void => {
        clearInterval(timer);
        if (this.call === call) this.call = undefined;
        if (err?.code === grpc.status.UNAUTHENTICATED) {
          reject(new CredentialRejected(`the coordinator refused this node's credential: ${err.details}. Re-enrol with a new join token.`));
          return;
        }
        if (err !== undefined && !signal.aborted) this.log.warn({ code: grpc.status[err.code], details: err.details }, 'session ended');
        resolve(welcomed);
      };
      call.on('data', (message: CoordinatorMessage__Output) => {
        lastHeard = Date.now();
        if (message.welcome) {
          if (message.welcome.nodeId !== this.credential.nodeId) {
            this.log.error({ got: message.welcome.nodeId }, 'coordinator welcomed a different node id; dropping the session');
            call.cancel();
            return;
          }
          welcomed = true;
          // A new session starts with no readiness on the coordinator's side: report afresh.
          this.studies.clear();
          interval = message.welcome.heartbeatIntervalMs || 5000;
          clearInterval(timer);
          this.log.info({ coordinator: this.config.coordinator.address, coordinatorVersion: message.welcome.coordinatorVersion }, 'connected to coordinator');
          void this.catchUpFinalModels();
          // Re-arm the watchdog at the coordinator's heartbeat interval.
          const beat = setInterval(() => {
            if (Date.now() - lastHeard > 3 * interval) {
              this.log.warn({ silentForMs: Date.now() - lastHeard }, 'no heartbeat from coordinator; reconnecting');
              call.cancel();
              return;
            }
            this.send({ heartbeat: { sentUnixMs: Date.now() } });
            this.recheckApprovals();
          }, interval);
          call.once('close', () => clearInterval(beat));
          call.once('error', () => clearInterval(beat));
        } else if (message.study?.study) {
          void this.onStudy(message.study.study);
        } else if (message.task) {
          this.onTask(message.task);
        } else if (message.cancel) {
          this.cancelled.add(message.cancel.taskId);
          this.log.info({ taskId: message.cancel.taskId, reason: message.cancel.reason }, 'task cancelled by coordinator');
        }
      });
      call.on('error', (err: grpc.ServiceError) => finish(err));
      call.on('end', () => finish());
      call.write({ hello: { agent: this.info, activeTaskIds: this.currentTask === undefined ? [] : [this.currentTask] } });
    });
  }

  private send(message: AgentMessage): void {
    this.call?.write(message);
  }

  // ---- studies and readiness ------------------------------------------------------------

  private async onStudy(study: Study__Output): Promise<void> {
    if (study.state !== 'STUDY_STATE_RUNNING') {
      const known = this.studies.get(study.studyId);
      this.studies.delete(study.studyId);
      if (study.state === 'STUDY_STATE_COMPLETED' && known?.readiness === 'READINESS_READY') await this.fetchFinalModel(study);
      return;
    }
    let manifest: StudyManifest | undefined;
    try {
      manifest = verifyManifestJson(study.manifestJson, study.manifestSha256);
    } catch (err) {
      this.log.error({ studyId: study.studyId, err: (err as Error).message }, 'announced manifest failed verification; not taking part');
    }
    if (manifest !== undefined) this.state.recordManifest({ hash: study.manifestSha256, studyId: study.studyId, name: manifest.name, json: study.manifestJson });
    const previous = this.studies.get(study.studyId);
    if (previous !== undefined && previous.study.manifestSha256 === study.manifestSha256) {
      previous.study = study; // a progress announcement: readiness only changes if something local did
      return;
    }
    const known: KnownStudy = { study, manifest, readiness: 'READINESS_UNSPECIFIED', detail: '' };
    this.studies.set(study.studyId, known);
    await this.evaluateReadiness(known, true);
  }

  private async evaluateReadiness(known: KnownStudy, force: boolean): Promise<void> {
    const { study, manifest } = known;
    let readiness: Readiness;
    let detail = '';
    if (manifest === undefined) {
      readiness = 'READINESS_WITHDRAWN';
      detail = 'manifest failed verification against its hash';
    } else {
      if (!this.state.isApproved(study.manifestSha256) && this.config.autoApprove) {
        this.state.approve(study.manifestSha256, 'auto-approve');
        this.log.warn({ studyId: study.studyId, manifestSha256: study.manifestSha256 }, '!!! AUTO-APPROVED study manifest without operator review (--auto-approve: demos and simulations only) !!!');
      }
      if (!this.state.isApproved(study.manifestSha256)) {
        readiness = 'READINESS_NOT_APPROVED';
        detail = 'waiting for this clinic\'s operator to review and approve the manifest';
      } else {
        const check = await this.data.check(manifest);
        readiness = check.ok ? 'READINESS_READY' : check.readiness;
        // READY with warnings (data the study needs that this export lacks) tells the operator too.
        detail = check.ok ? (check.warnings.length === 0 ? '' : `ready, with warnings: ${check.warnings.join('; ')}`) : check.detail;
        if (check.ok && check.warnings.length > 0 && detail !== known.detail) {
          this.log.warn({ event: 'data.warning', studyId: study.studyId, warnings: check.warnings }, `study ${study.studyId}: ${check.warnings.join('; ')}`);
        }
      }
    }
    const changed = readiness !== known.readiness || detail !== known.detail;
    known.readiness = readiness;
    known.detail = detail;
    if (changed || force) {
      if (readiness === 'READINESS_NOT_APPROVED') {
        this.log.warn({ studyId: study.studyId, manifestSha256: study.manifestSha256 }, `study ${study.studyId} awaits approval: run \`fedlhs-agent review\`, then \`fedlhs-agent approve ${study.manifestSha256}\``);
      } else {
        this.log.info({ studyId: study.studyId, readiness, detail }, 'readiness');
      }
      this.send({ readiness: { studyId: study.studyId, manifestSha256: study.manifestSha256, readiness, detail } });
      this.state.audit({
        event: 'readiness_sent', coordinator: this.config.coordinator.address, studyId: study.studyId, outcome: readiness, detail,
        sent: { readiness: { studyId: study.studyId, manifestSha256: study.manifestSha256, readiness, detail } },
      });
    }
  }

  /** Picks up approvals given with `fedlhs-agent approve` while the agent runs. */
  private recheckApprovals(): void {
    for (const known of this.studies.values()) {
      if (known.readiness === 'READINESS_NOT_APPROVED' && this.state.isApproved(known.study.manifestSha256)) void this.evaluateReadiness(known, false);
    }
  }

  /**
   * Dissemination for a clinic that was offline when a study it approved completed: after each
   * Welcome, fetch the final model of every completed, locally approved study not yet saved.
   */
  private async catchUpFinalModels(): Promise<void> {
    try {
      const res = await new Promise<ListStudiesResponse__Output>((resolve, reject) => {
        this.clients.federation.ListStudies({ includeEnded: true }, authMetadata(this.credential.credential), { deadline: deadlineIn(15_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
      });
      for (const study of res.studies) {
        if (study.state !== 'STUDY_STATE_COMPLETED' || !this.state.isApproved(study.manifestSha256)) continue;
        if (existsSync(join(this.state.dir, 'models', study.studyId, `round-${study.lastCommittedRound}.f32`))) continue;
        await this.fetchFinalModel(study);
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'could not check for completed studies');
    }
  }

  /** Dissemination: keeps the final global model of a completed study this clinic took part in. */
  private async fetchFinalModel(study: Study__Output): Promise<void> {
    try {
      // The header's tensor list is authoritative here: the digest proves the payload.
      const { weights, sha256, specs } = await downloadModel(this.clients.federation, this.credential.credential, { committed: { studyId: study.studyId, round: study.lastCommittedRound } }, undefined, 600_000);
      const dir = join(this.state.dir, 'models', study.studyId);
      writeFileAtomic(join(dir, `round-${study.lastCommittedRound}.f32`), float32Bytes(weights));
      writeFileAtomic(join(dir, `round-${study.lastCommittedRound}.json`), JSON.stringify({ studyId: study.studyId, round: study.lastCommittedRound, sha256: sha256.toString('hex'), manifestSha256: study.manifestSha256, tensors: specs }, null, 1));
      this.log.info({ studyId: study.studyId, round: study.lastCommittedRound, path: dir }, 'study completed; final global model saved locally');
    } catch (err) {
      this.log.warn({ studyId: study.studyId, err: (err as Error).message }, 'could not fetch the final model');
    }
  }

  // ---- tasks ----------------------------------------------------------------------------

  private onTask(task: Task__Output): void {
    if (this.seenTasks.has(task.taskId)) return; // re-sent after a reconnection: already running or done
    this.seenTasks.add(task.taskId);
    this.queue = this.queue.then(() => this.execute(task));
  }

  private progress(task: Task__Output, phase: string, fraction: number, epoch = 0, epochs = 0): void {
    this.send({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_RUNNING', phase, fraction, epoch, epochs } });
  }

  private decline(task: Task__Output, reason: string): void {
    this.log.warn({ taskId: task.taskId, studyId: task.studyId, round: task.round, reason }, 'declining task');
    this.send({ taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_DECLINED', reason } });
    this.state.audit({
      event: 'task_declined', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, detail: reason,
      sent: { taskUpdate: { taskId: task.taskId, state: 'TASK_STATE_DECLINED', reason } },
    });
  }

  private async execute(task: Task__Output): Promise<void> {
    if (this.cancelled.has(task.taskId)) return;
    const known = this.studies.get(task.studyId);
    if (known?.manifest === undefined || known.study.manifestSha256 !== task.manifestSha256) {
      this.decline(task, 'the agent has no verified manifest with this hash for the study');
      return;
    }
    if (!this.state.isApproved(task.manifestSha256)) {
      this.decline(task, 'the manifest is not approved by this clinic\'s operator');
      return;
    }
    const manifest = known.manifest;
    const kind = task.kind === 'TASK_KIND_TRAIN' ? 'train' : task.kind === 'TASK_KIND_EVALUATE' ? 'evaluate' : 'statistics';
    const log = this.log.child({ taskId: task.taskId, studyId: task.studyId, round: task.round, kind });
    this.currentTask = task.taskId;
    let runtime: ModelRuntime | undefined;
    try {
      if (task.kind === 'TASK_KIND_STATISTICS') {
        await this.reportStatistics(task, manifest, log);
        return;
      }
      const parameters = task.parametersJson === '' ? undefined : (JSON.parse(task.parametersJson) as { normalization?: Normalization });
      const data = await this.data.prepared(manifest, parameters?.normalization);
      runtime = await createModelRuntime({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer });
      const timeoutMs = Math.max(10_000, task.deadlineUnixMs - Date.now() + 30_000);
      log.info(`round ${task.round}: ${kind} task received`);
      const rt = runtime;
      const sha256 = await this.withRetry(task, log, 'download', () => this.loadTaskModel(task, rt, timeoutMs, log));

      if (task.kind === 'TASK_KIND_TRAIN') {
        const steps = manifest.training.localSteps;
        const epochs = steps === undefined ? manifest.training.localEpochs : 1;
        // FedProx: the local objective gains (mu/2)·‖w − w_global‖², anchored at this round's model.
        const mu = manifest.aggregation.strategy === 'fedprox' ? (manifest.aggregation.parameters.mu ?? 0) : 0;
        await runtime.fit(data.train.x, data.train.y, {
          epochs,
          // Reproducible local training: the shuffle depends only on the study, round, attempt and node.
          shuffleSeed: createHash('sha256').update(`${manifest.seed}/${task.round}/${task.attempt}/${this.credential.nodeId}`).digest().readUInt32BE(0),
          ...(steps === undefined ? {} : { steps }),
          ...(mu > 0 ? { proximal: { mu, reference: runtime.getWeights() } } : {}),
          batchSize: manifest.training.batchSize,
          onEpochEnd: (epoch, loss) => {
            log.info({ epoch: epoch + 1, epochs, loss }, `round ${task.round}: epoch ${epoch + 1}/${epochs} loss ${loss.toFixed(4)}`);
            this.progress(task, 'train', (epoch + 1) / epochs, epoch + 1, epochs);
          },
        });
        if (this.cancelled.has(task.taskId)) {
          log.info('task cancelled during training; nothing sent');
          return;
        }
        const trained = runtime.getWeights();
        const trainMetrics = await runtime.evaluate(data.train.x, data.train.y);
        const uploadStart = performance.now();
        // Audit before anything leaves, then the outcome: a crash or a rejection mid-send still shows what was sent.
        // The update header exactly as sent, and what the payload is (its size; its digest once the coordinator confirms it).
        const sentHeader = {
          taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: this.credential.nodeId, baseModelSha256: sha256,
          numExamples: data.train.rows, trainMetrics: { numExamples: trainMetrics.numExamples, loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc },
          weights: { tensors: runtime.specs.length, dtype: 'float32', totalBytes: trained.byteLength, contents: 'the trained model weights' },
        };
        this.state.audit({
          event: 'update_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
          bytes: trained.byteLength, numExamples: data.train.rows, metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: 'sending',
          sent: { updateHeader: sentHeader },
        });
        const receipt = await this.withRetry(task, log, 'upload', () =>
          uploadUpdate(this.clients.federation, this.credential.credential, {
            taskId: task.taskId, studyId: task.studyId, round: task.round, nodeId: this.credential.nodeId, baseModelSha256: sha256,
            numExamples: data.train.rows, trainMetrics, specs: runtime!.specs, weights: trained, chunkBytes: this.config.chunkBytes,
          }, timeoutMs, this.transferProgress(task, 'upload', log)),
        );
        const uploadMs = performance.now() - uploadStart;
        log.info({ bytes: trained.byteLength, ms: Math.round(uploadMs), mbPerS: Number((trained.byteLength / 1048576 / (uploadMs / 1000)).toFixed(1)) }, 'update uploaded and accepted');
        this.state.audit({
          event: 'update_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
          bytes: trained.byteLength, sha256: receipt.sha256.toString('hex'), numExamples: data.train.rows,
          metrics: { loss: trainMetrics.loss, accuracy: trainMetrics.accuracy, auc: trainMetrics.auc }, outcome: receipt.duplicate ? 'accepted (duplicate)' : 'accepted',
          sent: { updateHeader: { ...sentHeader, weights: { ...sentHeader.weights, sha256: receipt.sha256.toString('hex') } } },
        });
        log.info({ bytes: trained.byteLength, numExamples: data.train.rows, trainLoss: trainMetrics.loss }, `round ${task.round}: update accepted by coordinator`);
      } else {
        const metrics = await runtime.evaluate(data.holdout.x, data.holdout.y);
        const sentReport = { evaluationReport: { taskId: task.taskId, studyId: task.studyId, round: task.round, metrics: { numExamples: metrics.numExamples, loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc } } };
        this.state.audit({
          event: 'evaluation_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
          numExamples: metrics.numExamples, metrics: { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, outcome: 'sending', sent: sentReport,
        });
        await this.withRetry(task, log, 'report', () =>
          new Promise((resolve, reject) => {
            this.clients.federation.ReportEvaluation(
              { taskId: task.taskId, studyId: task.studyId, round: task.round, metrics: { numExamples: metrics.numExamples, loss: metrics.loss, accuracy: metrics.accuracy, ...(metrics.auc === undefined ? {} : { auc: metrics.auc }) } },
              authMetadata(this.credential.credential),
              { deadline: deadlineIn(30_000) },
              (err, receipt) => (err === null ? resolve(receipt) : reject(err)),
            );
          }),
        );
        this.state.audit({
          event: 'evaluation_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
          numExamples: metrics.numExamples, metrics: { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, outcome: 'accepted', sent: sentReport,
        });
        log.info({ loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc }, `round ${task.round}: hold-out evaluation reported`);
      }
    } catch (err) {
      if (isServiceError(err) && (err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.NOT_FOUND)) {
        log.info({ details: err.details }, 'task abandoned: the coordinator no longer needs it');
        this.state.audit({ event: 'task_declined', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, outcome: `abandoned: ${grpc.status[err.code]}` });
      } else if (isServiceError(err) && RETRYABLE_CODES.has(err.code)) {
        // Transient (the coordinator was unreachable): if it re-sends the task, start again.
        this.seenTasks.delete(task.taskId);
        log.warn({ code: grpc.status[err.code], details: err.details }, 'task interrupted; it runs again if the coordinator re-sends it');
      } else if (isServiceError(err)) {
        log.error({ code: grpc.status[err.code], details: err.details, rejection: err.metadata.get('fedlhs-rejection-reason')[0] }, 'coordinator rejected the task result');
        this.state.audit({ event: task.kind === 'TASK_KIND_TRAIN' ? 'update_sent' : task.kind === 'TASK_KIND_STATISTICS' ? 'statistics_sent' : 'evaluation_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, outcome: `rejected: ${grpc.status[err.code]}`, detail: err.details });
      } else if (isFedlhsError(err) && err.reason?.startsWith('READINESS_')) {
        this.decline(task, err.message);
      } else {
        log.error({ err }, 'task failed');
        const taskUpdate = { taskId: task.taskId, state: 'TASK_STATE_FAILED' as const, reason: (err as Error).message.slice(0, 300) };
        this.state.audit({ event: 'task_failed', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, detail: taskUpdate.reason, sent: { taskUpdate } });
        this.send({ taskUpdate });
      }
    } finally {
      runtime?.dispose();
      this.currentTask = undefined;
    }
  }

  /** Computes and reports the training split's sufficient statistics (aggregates, small cells suppressed). */
  private async reportStatistics(task: Task__Output, manifest: StudyManifest, log: Logger): Promise<void> {
    const stats = await this.data.statistics(manifest);
    const message = { taskId: task.taskId, studyId: task.studyId, round: task.round, rows: stats.rows, positives: stats.positives, suppressed: stats.suppressed, features: stats.features };
    // The audit holds the report exactly as sent: label counts (positives) included.
    const sent = { statisticsReport: message };
    this.state.audit({
      event: 'statistics_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: stats.rows, outcome: 'sending', sent,
      detail: `training records ${stats.suppressed && stats.rows === 0 ? 'withheld' : stats.rows}, label positives ${stats.suppressed ? 'withheld' : stats.positives}; ${stats.features.length} feature(s): count, sum, sum of squares, missing, histogram`,
    });
    await this.withRetry(task, log, 'statistics', () =>
      new Promise((resolve, reject) => {
        this.clients.federation.ReportStatistics(
          message,
          authMetadata(this.credential.credential),
          { deadline: deadlineIn(30_000) },
          (err, receipt) => (err === null ? resolve(receipt) : reject(err)),
        );
      }),
    );
    this.state.audit({
      event: 'statistics_sent', coordinator: this.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: stats.rows, outcome: 'accepted', sent,
      detail: `training records ${stats.suppressed && stats.rows === 0 ? 'withheld' : stats.rows}, label positives ${stats.suppressed ? 'withheld' : stats.positives}; ${stats.features.length} feature(s): count, sum, sum of squares, missing, histogram; counts < ${manifest.data.minCellCount} withheld`,
    });
    log.info({ rows: stats.rows, suppressed: stats.suppressed }, `round ${task.round}: feature statistics reported`);
  }

  /** Reports transfer progress to the log and the coordinator every 25 % (and at 100 %). */
  private transferProgress(task: Task__Output, phase: 'download' | 'upload', log: Logger): (fraction: number) => void {
    let lastPct = -1;
    return (fraction) => {
      const pct = Math.floor(fraction * 100);
      if (pct >= lastPct + 25 || pct === 100) {
        lastPct = pct;
        log.info(`round ${task.round}: ${phase} ${pct}%`);
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
      this.clients.federation, this.credential.credential, { taskId: task.taskId }, runtime.specs, timeoutMs, this.transferProgress(task, 'download', log),
    );
    const ms = performance.now() - start;
    log.info({ bytes: weights.byteLength, ms: Math.round(ms), mbPerS: Number((weights.byteLength / 1048576 / (ms / 1000)).toFixed(1)) }, 'model downloaded and verified');
    if (!sha256.equals(task.modelSha256)) throw new Error(`downloaded model hashes to ${sha256.toString('hex')}, the task announced ${task.modelSha256.toString('hex')}`);
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
        const delay = backoffDelay(attempt, this.config.reconnect);
        if (!retryable || Date.now() + delay > task.deadlineUnixMs || this.cancelled.has(task.taskId)) throw err;
        log.warn({ code: grpc.status[err.code], retryInMs: Math.round(delay) }, `${what} failed; retrying`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
