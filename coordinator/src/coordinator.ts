import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  FedlhsError,
  PayloadReceiver,
  bundleLength,
  canonicalManifestJson,
  createStrategy,
  splitTensors,
  strategyConfigOf,
  isFedlhsError,
  manifestHash,
  parseManifest,
  validateManifest,
  type StudyManifest,
  type Tensor,
  type TensorSpec,
} from '@fedlhs/core';
import type {
  AgentInfo__Output,
  AgentMessage__Output,
  DownloadModelRequest__Output,
  EvaluationReceipt,
  EvaluationReport__Output,
  StatisticsReceipt,
  StatisticsReport__Output,
  TensorBundleHeader,
  UpdateChunk__Output,
  UploadReceipt,
} from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { CheckpointStore } from './checkpoints.js';
import { DataDirLock } from './data-dir-lock.js';
import { siteReadiness, type SiteReadiness } from './readiness.js';
import { CoordinatorMetrics } from './metrics.js';
import { formatNodeCredential, hashSecret, newJoinToken, newSecret, parseNodeCredential, sameHash } from './credentials.js';
import { StudyRunner } from './round-engine.js';
import { toClinicStats, toEvalMetrics, toWireStudy, toWireTask } from './wire.js';
import { SessionRegistry, type NodeSession } from './sessions.js';
import { SqliteStore } from './sqlite-store.js';
import type { CoordinatorStore, NodeRecord, StudyRecord, TaskRecord } from './store.js';

export const COORDINATOR_VERSION = 'fedlhs-coordinator/0.1.0';

/** Builds a study's initial global model from its manifest (TF.js runs only on the coordinator). */
export type InitialModelBuilder = (manifest: StudyManifest) => Promise<{ specs: TensorSpec[]; weights: Float32Array }>;

export interface CoordinatorOptions {
  dataDir: string;
  logger: Logger;
  heartbeatIntervalMs: number;
  selectionGraceMs: number;
  chunkBytes: number;
  /** Memory an order-statistic strategy may use to hold one round's updates. */
  maxHeldUpdateBytes: number;
  buildInitialModel: InitialModelBuilder;
  store?: CoordinatorStore;
  metrics?: CoordinatorMetrics;
  now?: () => number;
}

const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The coordinator's domain: enrolment and authentication of nodes, their sessions, the
 * study runners, and the checks every model transfer passes. Transport adapters (gRPC, the
 * admin HTTP API) only decode, call these methods and encode.
 */
export class Coordinator {
  readonly sessions = new SessionRegistry();
  /** 'change' events ({ kind: 'study' | 'round' | 'node', studyId?, nodeId? }) for live dashboards. */
  readonly events = new EventEmitter();
  readonly metrics: CoordinatorMetrics;
  readonly checkpoints: CheckpointStore;
  private readonly runners = new Map<string, { runner: StudyRunner; done: Promise<void> }>();
  private readonly uploadsInFlight = new Set<string>();
  private readonly log: Logger;
  private readonly now: () => number;

  private constructor(readonly store: CoordinatorStore, private readonly opts: CoordinatorOptions, private readonly lock: DataDirLock) {
    this.checkpoints = new CheckpointStore(opts.dataDir);
    this.log = opts.logger.child({ component: 'coordinator' });
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? new CoordinatorMetrics();
    this.events.setMaxListeners(1000);
    this.sessions.on('change', () => {
      this.metrics.connectedNodes.set(this.sessions.online().length);
      this.events.emit('change', { kind: 'node' });
    });
  }

  /**
   * Opens the data directory, refusing it (FAILED_PRECONDITION, reason DATA_DIR_LOCKED) while
   * another coordinator holds it (data-dir-lock.ts), then the store inside it.
   */
  static create(opts: CoordinatorOptions): Coordinator {
    mkdirSync(opts.dataDir, { recursive: true });
    const lock = DataDirLock.acquire(opts.dataDir, opts.logger);
    try {
      return new Coordinator(opts.store ?? new SqliteStore(join(opts.dataDir, 'coordinator.db')), opts, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  get heartbeatIntervalMs(): number {
    return this.opts.heartbeatIntervalMs;
  }

  get chunkBytes(): number {
    return this.opts.chunkBytes;
  }

  /** Resumes every RUNNING study from its last committed round, after checking that checkpoint. */
  async start(): Promise<void> {
    rmSync(this.checkpoints.spoolPath(''), { recursive: true, force: true });
    mkdirSync(this.checkpoints.spoolPath(''), { recursive: true });
    for (const study of await this.store.listStudies()) {
      if (study.state !== 'RUNNING') continue;
      const failed = await this.store.failOpenRounds(study.id, 'coordinator restarted before the round committed', this.now());
      this.checkpoints.clearCandidates(study.id);
      const orphans = this.checkpoints.removeUncommitted(study.id, study.lastCommittedRound);
      if (orphans.length > 0) this.log.warn({ studyId: study.id, files: orphans }, 'removed checkpoint files of rounds that never committed');
      const last = await this.store.getCommittedRound(study.id, study.lastCommittedRound);
      try {
        if (last?.checkpointPath == null || last.checkpointSha256 === null) {
          throw new FedlhsError('DATA_LOSS', `committed round ${study.lastCommittedRound} has no checkpoint record (the coordinator stopped while creating the study?)`);
        }
        await this.checkpoints.verify(last.checkpointPath, last.checkpointSha256);
      } catch (err) {
        // One broken study must not keep the coordinator (and every other study) down.
        this.log.error({ studyId: study.id, err: (err as Error).message }, 'cannot resume study; marking it FAILED');
        await this.store.setStudyState(study.id, 'FAILED', `cannot resume: ${(err as Error).message}`, this.now());
        continue;
      }
      this.log.info({ studyId: study.id, lastCommittedRound: study.lastCommittedRound, abandonedAttempts: failed }, 'resuming study from its last committed round');
      await this.launch(study);
    }
  }

  /** Halts the runners without ending their studies, so a restart resumes them. */
  async shutdown(): Promise<void> {
    for (const { runner } of this.runners.values()) runner.halt();
    await Promise.allSettled([...this.runners.values()].map((r) => r.done));
    try {
      await this.store.close();
    } finally {
      this.lock.release();
    }
  }

  /** Every enrolled site's readiness for a study (online state, declared readiness and its reason). */
  async siteReadiness(study: Pick<StudyRecord, 'id' | 'manifestHash'>): Promise<SiteReadiness[]> {
    return siteReadiness(await this.store.listNodes(), this.sessions, study.id, study.manifestHash);
  }

  private async launch(study: StudyRecord): Promise<void> {
    const manifest = validateManifest(JSON.parse(study.manifestJson));
    const specs = this.checkpoints.loadSpecs(study.id);
    let strategyState: Tensor[] | undefined;
    if (study.strategyState !== null) {
      // Server-side strategy state (momentum, moments) is part of the checkpoint.
      const ref = JSON.parse(study.strategyState) as { path: string; sha256: string };
      await this.checkpoints.verify(ref.path, ref.sha256);
      const flat = await this.checkpoints.readAll(ref.path);
      const length = bundleLength(specs);
      strategyState = [];
      for (let offset = 0; offset < flat.length; offset += length) strategyState.push(...splitTensors(specs, flat.slice(offset, offset + length)));
    }
    const runner = new StudyRunner(study, manifest, specs, {
      store: this.store,
      checkpoints: this.checkpoints,
      sessions: this.sessions,
      logger: this.opts.logger,
      selectionGraceMs: this.opts.selectionGraceMs,
      now: this.now,
      strategyState,
      normHistory: await this.store.listNormHistory(study.id),
      metrics: this.metrics,
      onStudyChange: (id, change) => {
        if (change !== 'round') void this.announce(id);
        this.events.emit('change', { kind: change === 'round' ? 'round' : 'study', studyId: id });
      },
    });
    const done = runner.run().finally(() => {
      this.runners.delete(study.id);
    });
    this.runners.set(study.id, { runner, done });
  }

  /** Waits until a study's runner has finished (for tests and the CLI). */
  async waitForStudy(studyId: string): Promise<void> {
    await this.runners.get(studyId)?.done;
  }

  runner(studyId: string): StudyRunner | undefined {
    return this.runners.get(studyId)?.runner;
  }

  private async announce(studyId: string): Promise<void> {
    const study = await this.store.getStudy(studyId);
    if (study !== undefined) this.sessions.broadcast({ study: { study: toWireStudy(study) } });
  }

  // ---- enrolment and authentication ---------------------------------------------------------

  /** Issues a one-time join token for a site. The token is returned once and stored hashed. */
  async createJoinToken(siteName: string, ttlSeconds: number, createdBy: string): Promise<{ token: string; siteName: string; expiresAt: number }> {
    if (!SITE_NAME.test(siteName)) throw new FedlhsError('INVALID_ARGUMENT', `site name ${JSON.stringify(siteName)} must be 1-64 letters, digits, ".", "_" or "-"`);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > 30 * 86400) {
      throw new FedlhsError('INVALID_ARGUMENT', `token lifetime ${ttlSeconds}s must be a whole number of seconds from 60 to 2592000 (30 days)`);
    }
    const token = newJoinToken();
    const createdAt = this.now();
    const expiresAt = createdAt + ttlSeconds * 1000;
    await this.store.insertJoinToken({
      id: `jt_${randomBytes(6).toString('hex')}`, tokenHash: hashSecret(token), siteName, createdAt, expiresAt, usedAt: null, usedByNode: null, createdBy,
    });
    this.log.info({ siteName, expiresAt: new Date(expiresAt).toISOString(), createdBy }, 'join token issued');
    return { token, siteName, expiresAt };
  }

  /** Trades a join token for a node credential. */
  async enrol(joinToken: string, siteName: string, agent: AgentInfo__Output | null): Promise<{ nodeId: string; credential: string; siteName: string }> {
    if (!/^fjt_[A-Za-z0-9_-]{20,128}$/.test(joinToken)) throw new FedlhsError('INVALID_ARGUMENT', 'join_token is missing or malformed');
    if (!SITE_NAME.test(siteName)) throw new FedlhsError('INVALID_ARGUMENT', 'site_name is missing or malformed');
    const record = await this.store.findJoinToken(hashSecret(joinToken));
    if (record === undefined) throw new FedlhsError('UNAUTHENTICATED', 'join token is not valid');
    if (record.usedAt !== null) throw new FedlhsError('UNAUTHENTICATED', `join token was already used on ${new Date(record.usedAt).toISOString()}`);
    if (record.expiresAt <= this.now()) throw new FedlhsError('UNAUTHENTICATED', `join token expired on ${new Date(record.expiresAt).toISOString()}`);
    if (record.siteName !== siteName) throw new FedlhsError('PERMISSION_DENIED', `join token was issued for site "${record.siteName}", not "${siteName}"`);
    const nodeId = `node_${randomBytes(8).toString('hex')}`;
    const secret = newSecret();
    const node: NodeRecord = {
      id: nodeId, siteName, credentialHash: hashSecret(secret), createdAt: this.now(), revokedAt: null, lastSeenAt: null,
      agentVersion: agent?.agentVersion ?? '', trainingBackend: agent?.trainingBackend ?? '',
    };
    if (!(await this.store.redeemJoinToken(record.id, node))) throw new FedlhsError('UNAUTHENTICATED', 'join token was already used');
    this.log.info({ nodeId, siteName }, 'node enrolled');
    return { nodeId, credential: formatNodeCredential(nodeId, secret), siteName };
  }

  /** Resolves "Bearer fnc_…" metadata to an active node, or throws UNAUTHENTICATED. */
  async authenticate(authorization: string | undefined): Promise<NodeRecord> {
    if (authorization === undefined || !authorization.startsWith('Bearer ')) {
      throw new FedlhsError('UNAUTHENTICATED', 'missing "authorization: Bearer <node credential>" metadata');
    }
    const parsed = parseNodeCredential(authorization.slice(7).trim());
    if (parsed === undefined) throw new FedlhsError('UNAUTHENTICATED', 'node credential is malformed');
    const node = await this.store.getNode(parsed.nodeId);
    if (node === undefined || !sameHash(node.credentialHash, hashSecret(parsed.secret))) throw new FedlhsError('UNAUTHENTICATED', 'node credential is not valid');
    if (node.revokedAt !== null) throw new FedlhsError('UNAUTHENTICATED', `node credential was revoked on ${new Date(node.revokedAt).toISOString()}`);
    return node;
  }

  /** Revokes a node: its calls fail from now on and its session is closed. */
  async revokeNode(nodeId: string, by: string, unauthenticatedCode: number): Promise<void> {
    if (!(await this.store.revokeNode(nodeId, this.now()))) {
      const node = await this.store.getNode(nodeId);
      throw new FedlhsError(node === undefined ? 'NOT_FOUND' : 'FAILED_PRECONDITION', node === undefined ? `no node ${nodeId}` : `node ${nodeId} is already revoked`);
    }
    this.sessions.get(nodeId)?.close(unauthenticatedCode, 'node credential was revoked');
    this.log.warn({ nodeId, by }, 'node revoked');
  }

  // ---- sessions -------------------------------------------------------------------------

  /** Registers a new session: welcome, study announcements, then the node's open tasks. */
  async openSession(session: NodeSession, abortedCode: number): Promise<void> {
    await this.store.touchNode(session.nodeId, this.now(), session.agent.agentVersion, session.agent.trainingBackend);
    this.sessions.attach(session, abortedCode);
    session.send({
      welcome: { nodeId: session.nodeId, siteName: session.siteName, heartbeatIntervalMs: this.opts.heartbeatIntervalMs, coordinatorVersion: COORDINATOR_VERSION },
    });
    for (const study of await this.store.listStudies()) {
      if (study.state === 'RUNNING') session.send({ study: { study: toWireStudy(study) } });
    }
    const open = await this.store.openTasksForNode(session.nodeId);
    for (const task of open) {
      const study = await this.store.getStudy(task.studyId);
      if (study !== undefined) session.send({ task: toWireTask(task, study.manifestHash, study.parameters) });
    }
    this.log.info(
      { nodeId: session.nodeId, siteName: session.siteName, agentVersion: session.agent.agentVersion, trainingBackend: session.agent.trainingBackend, resentTasks: open.length },
      'node online',
    );
  }

  closeSession(session: NodeSession, why: string): void {
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.detach(session);
    this.log.info({ nodeId: session.nodeId, siteName: session.siteName, why }, 'node offline');
    // Last seen = the last message heard (a heartbeat at the latest), not when the loss was noticed.
    void this.store.touchNode(session.nodeId, session.lastHeardAt, session.agent.agentVersion, session.agent.trainingBackend);
  }

  /** Handles one message of a node's control stream (after Hello). */
  async onAgentMessage(session: NodeSession, message: AgentMessage__Output): Promise<void> {
    session.lastHeardAt = this.now();
    if (message.readiness) {
      const r = message.readiness;
      const previous = session.readiness.get(r.studyId);
      session.readiness.set(r.studyId, { manifestSha256: r.manifestSha256, readiness: r.readiness, detail: r.detail });
      if (previous?.readiness !== r.readiness || previous.manifestSha256 !== r.manifestSha256) {
        this.log.info({ nodeId: session.nodeId, studyId: r.studyId, readiness: r.readiness, detail: r.detail }, 'node readiness changed');
        this.sessions.changed();
      }
    } else if (message.taskUpdate) {
      const u = message.taskUpdate;
      const task = await this.store.getTask(u.taskId);
      if (task === undefined || task.nodeId !== session.nodeId) return;
      if (u.state === 'TASK_STATE_RUNNING') {
        session.progress.set(u.taskId, { phase: u.phase, epoch: u.epoch, epochs: u.epochs, fraction: u.fraction, at: this.now() });
      } else if (u.state === 'TASK_STATE_DECLINED' || u.state === 'TASK_STATE_FAILED') {
        session.progress.delete(u.taskId);
        await this.runners.get(task.studyId)?.runner.endTask(task, u.state === 'TASK_STATE_DECLINED' ? 'DECLINED' : 'FAILED', u.reason.slice(0, 500));
      }
    }
  }

  // ---- studies --------------------------------------------------------------------------

  /** Validates a manifest, checkpoints its initial model as round 0 and starts the study. */
  async startStudy(manifestText: string, by: string): Promise<StudyRecord> {
    const manifest = parseManifest(manifestText);
    const json = canonicalManifestJson(manifest);
    const hash = manifestHash(manifest);
    const { specs, weights } = await this.opts.buildInitialModel(manifest);
    const strategy = createStrategy(strategyConfigOf(manifest));
    if (strategy.input === 'all-updates') {
      const held = manifest.clients.max * weights.byteLength;
      if (held > this.opts.maxHeldUpdateBytes) {
        throw new FedlhsError(
          'INVALID_MANIFEST',
          `aggregation.strategy ${strategy.name} holds every update of a round in memory: clients.max ${manifest.clients.max} × ${(weights.byteLength / 1048576).toFixed(1)} MiB exceeds this coordinator's maxHeldUpdateBytes (${(this.opts.maxHeldUpdateBytes / 1048576).toFixed(0)} MiB)`,
        );
      }
    }
    const id = `${manifest.name}-${randomBytes(3).toString('hex')}`;
    this.checkpoints.saveSpecs(id, specs);
    const candidate = await this.checkpoints.writeCandidate(id, 0, 1, [weights]);
    const initial = this.checkpoints.promote(id, 0, candidate);
    const study: StudyRecord = {
      id, name: manifest.name, manifestJson: json, manifestHash: hash, state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null,
      createdAt: this.now(), endedAt: null,
    };
    await this.store.insertStudy(study);
    const roundId = await this.store.insertRound({
      studyId: id, round: 0, attempt: 1, state: 'WAITING_FOR_NODES', reason: 'initial model', startedAt: this.now(), endedAt: null, participants: 0,
      checkpointPath: null, checkpointSha256: null,
    });
    await this.store.commitRound(roundId, { path: initial.path, sha256: initial.sha256 }, [], null, this.now());
    this.log.info({ studyId: id, manifestSha256: hash, parameters: bundleLength(specs), rounds: manifest.rounds, strategy: manifest.aggregation.strategy, by }, 'study started');
    await this.launch(study);
    await this.announce(id);
    return study;
  }

  async stopStudy(studyId: string, by: string): Promise<void> {
    const entry = this.runners.get(studyId);
    if (entry === undefined) {
      const study = await this.store.getStudy(studyId);
      throw new FedlhsError(study === undefined ? 'NOT_FOUND' : 'FAILED_PRECONDITION', study === undefined ? `no study ${studyId}` : `study ${studyId} is ${study.state}`);
    }
    entry.runner.stop(`stopped by ${by}`);
    await entry.done;
  }

  async listStudies(includeEnded: boolean): Promise<StudyRecord[]> {
    return (await this.store.listStudies()).filter((s) => includeEnded || s.state === 'RUNNING');
  }

  // ---- model transfer -------------------------------------------------------------------

  private async ownTask(node: NodeRecord, taskId: string): Promise<TaskRecord> {
    const task = await this.store.getTask(taskId);
    if (task === undefined) throw new FedlhsError('NOT_FOUND', `no task ${JSON.stringify(taskId)}`, { reason: 'UNKNOWN_TASK' });
    if (task.nodeId !== node.id) throw new FedlhsError('PERMISSION_DENIED', `task ${taskId} is assigned to another node`, { reason: 'NOT_ASSIGNED' });
    return task;
  }

  private openRunner(task: TaskRecord): StudyRunner {
    const runner = this.runners.get(task.studyId)?.runner;
    if (runner === undefined) throw new FedlhsError('FAILED_PRECONDITION', `study ${task.studyId} is not running`, { reason: 'STALE' });
    return runner;
  }

  /** Resolves what a download request may read: the header to send and the file behind it. */
  async openDownload(node: NodeRecord, request: DownloadModelRequest__Output): Promise<{ header: TensorBundleHeader; path: string }> {
    let studyId: string;
    let stored: { path: string; sha256: string };
    if (request.taskId !== undefined && request.selector === 'taskId') {
      const task = await this.ownTask(node, request.taskId);
      stored = this.openRunner(task).modelForTask(task);
      studyId = task.studyId;
    } else if (request.committed) {
      const { studyId: id, round } = request.committed;
      const record = await this.store.getCommittedRound(id, round);
      if (record?.checkpointPath == null || record.checkpointSha256 === null) throw new FedlhsError('NOT_FOUND', `study ${id} has no committed round ${round}`);
      stored = { path: record.checkpointPath, sha256: record.checkpointSha256 };
      studyId = id;
    } else {
      throw new FedlhsError('INVALID_ARGUMENT', 'DownloadModelRequest needs task_id or committed');
    }
    const specs = this.runners.get(studyId)?.runner.modelSpecs ?? this.checkpoints.loadSpecs(studyId);
    return {
      header: {
        tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })),
        totalBytes: bundleLength(specs) * 4,
        sha256: Buffer.from(stored.sha256, 'hex'),
        chunkSize: this.opts.chunkBytes,
      },
      path: stored.path,
    };
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
      throw new FedlhsError('INVALID_ARGUMENT', 'the first UploadUpdate message must be a header with weights', { reason: 'BAD_HEADER' });
    }
    const rest = { [Symbol.asyncIterator]: () => iterator };
    let task: TaskRecord | undefined;
    try {
      task = await this.ownTask(node, header.taskId);
      if (header.nodeId !== node.id) throw new FedlhsError('PERMISSION_DENIED', `header.node_id ${JSON.stringify(header.nodeId)} is not the caller (${node.id})`, { reason: 'NOT_ASSIGNED' });
      return await this.receiveForTask(node, task, header, rest);
    } catch (err) {
      if (isFedlhsError(err) && err.reason !== undefined) {
        await this.recordRejection('update', node, err as FedlhsError & { reason: string }, task, {
          taskId: header.taskId, studyId: header.studyId, round: header.round, numExamples: header.numExamples, sha256: header.weights.sha256.toString('hex'), bytes: header.weights.totalBytes,
        });
        if (task !== undefined && ['SHAPE_MISMATCH', 'NON_FINITE', 'REPLAYED', 'BAD_HEADER', 'NORM_BOUND'].includes(err.reason)) {
          await this.runners.get(task.studyId)?.runner.endTask(task, 'REJECTED', `${err.reason}: ${err.message}`);
        }
      }
      throw err;
    }
  }

  /**
   * Records a rejected contribution (an update or a statistics report) against the caller,
   * even for a task that is not its own: stored with its reason, logged, counted.
   */
  private async recordRejection(
    what: 'update' | 'statistics',
    node: NodeRecord,
    err: FedlhsError & { reason: string },
    task: TaskRecord | undefined,
    c: { taskId: string; studyId: string; round: number; numExamples: number; sha256: string; bytes: number },
  ): Promise<void> {
    await this.store.insertContribution({
      taskId: c.taskId.slice(0, 100), studyId: c.studyId.slice(0, 100), round: c.round, attempt: task?.attempt ?? 0, nodeId: node.id, numExamples: c.numExamples,
      sha256: c.sha256, bytes: c.bytes, accepted: false, reasonCode: err.reason, reason: err.message, receivedAt: this.now(),
    });
    this.log.warn({ event: `${what}.rejected`, nodeId: node.id, taskId: c.taskId, round: c.round, reason: err.reason, detail: err.message }, `${what === 'update' ? 'update' : 'statistics report'} rejected`);
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
    const runner = existing === undefined ? this.openRunner(task) : undefined;
    const receiver = new PayloadReceiver(
      { tensors: weights.tensors.map((t) => ({ name: t.name, shape: t.shape })), totalBytes: weights.totalBytes, sha256: weights.sha256, chunkSize: weights.chunkSize },
      { expected: runner?.modelSpecs ?? this.checkpoints.loadSpecs(task.studyId) },
    );
    if (weights.tensors.some((t) => t.dtype !== 'DTYPE_FLOAT32')) throw new FedlhsError('INVALID_ARGUMENT', 'only DTYPE_FLOAT32 tensors are accepted', { reason: 'SHAPE_MISMATCH' });

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
      throw new FedlhsError('INVALID_ARGUMENT', `num_examples must be a positive integer, got ${header.numExamples}`, { reason: 'BAD_HEADER' });
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
        await runner!.acceptUpdate(task, spool, header.numExamples, digest, receiver.receivedBytes, toEvalMetrics(header.trainMetrics), Math.sqrt(squaredDistance));
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
      task = await this.ownTask(node, report.taskId);
      if (task.kind !== 'STATISTICS') throw new FedlhsError('FAILED_PRECONDITION', `task ${task.id} is a ${task.kind} task, not STATISTICS`, { reason: 'STALE' });
      if (report.studyId !== task.studyId || report.round !== task.round) {
        throw new FedlhsError('FAILED_PRECONDITION', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`, { reason: 'STALE' });
      }
      if (task.state === 'ACCEPTED') return { taskId: task.id, duplicate: true };
      await this.openRunner(task).acceptStatistics(task, toClinicStats(report));
      return { taskId: task.id, duplicate: false };
    } catch (err) {
      if (isFedlhsError(err) && err.reason !== undefined) {
        await this.recordRejection('statistics', node, err as FedlhsError & { reason: string }, task, {
          taskId: report.taskId, studyId: report.studyId, round: report.round, numExamples: 0, sha256: '', bytes: 0,
        });
        if (task !== undefined && err.reason === 'INCONSISTENT_STATISTICS') {
          await this.runners.get(task.studyId)?.runner.endTask(task, 'REJECTED', `${err.reason}: ${err.message}`);
        }
      }
      throw err;
    }
  }

  /** Records a node's hold-out evaluation of a round's model. */
  async reportEvaluation(node: NodeRecord, report: EvaluationReport__Output): Promise<EvaluationReceipt> {
    const task = await this.ownTask(node, report.taskId);
    if (task.kind !== 'EVALUATE') throw new FedlhsError('FAILED_PRECONDITION', `task ${task.id} is a ${task.kind} task, not EVALUATE`, { reason: 'STALE' });
    if (report.studyId !== task.studyId || report.round !== task.round) {
      throw new FedlhsError('FAILED_PRECONDITION', `report is tagged study ${report.studyId} round ${report.round}, task is study ${task.studyId} round ${task.round}`, { reason: 'STALE' });
    }
    if (task.state === 'ACCEPTED') return { taskId: task.id, duplicate: true };
    const metrics = toEvalMetrics(report.metrics);
    if (metrics === undefined) throw new FedlhsError('INVALID_ARGUMENT', 'metrics are missing');
    await this.openRunner(task).acceptEvaluation(task, metrics);
    return { taskId: task.id, duplicate: false };
  }
}

