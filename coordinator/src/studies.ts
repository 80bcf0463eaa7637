import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import {
  FedlhsError,
  bundleLength,
  canonicalManifestJson,
  createStrategy,
  manifestHash,
  parseManifest,
  splitTensors,
  strategyConfigOf,
  validateManifest,
  type StudyManifest,
  type Tensor,
  type TensorSpec,
} from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CheckpointStore } from './checkpoints.js';
import { DEFAULT_LIMITS } from './limits.js';
import type { CoordinatorMetrics } from './metrics.js';
import { estimateBytes, memoryEstimate, topologyParameters } from './model-memory.js';
import { StudyRunner, type EngineClock, type StorageGate } from './engine/study-runner.js';
import type { SessionRegistry } from './sessions.js';
import type { CoordinatorStore, StudyRecord, TaskRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';
import { toWireTask } from './wire.js';

/** Builds a study's initial global model from its manifest (TF.js runs only on the coordinator). */
export type InitialModelBuilder = (manifest: StudyManifest) => Promise<{ specs: TensorSpec[]; weights: Float32Array }>;

/** What the studies part needs from the coordinator that builds it. */
export interface StudiesOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  sessions: SessionRegistry;
  /** The root logger, handed to each runner (which makes its own child). */
  logger: Logger;
  /** The coordinator's logger; log lines keep the coordinator's component. */
  log: Logger;
  now: () => number;
  /** The engine's clock (tests); default: `now` and real timers. */
  clock?: EngineClock | undefined;
  metrics: CoordinatorMetrics;
  /** The coordinator's 'change' emitter for live dashboards. */
  events: EventEmitter;
  selectionGraceMs: number;
  /** Memory an order-statistic strategy may use to hold one round's updates. */
  maxHeldUpdateBytes: number;
  /**
   * limits.modelMemoryBytes: the memory the running studies' models may need together (size ×
   * the strategy's factor, model-memory.ts); a study beyond it is refused at start. Default:
   * DEFAULT_LIMITS (a quarter of the machine's memory).
   */
  modelMemoryBytes?: number | undefined;
  buildInitialModel: InitialModelBuilder;
  /**
   * Broadcasts a study's record to the online nodes. A callback because the control sessions
   * (which own announcements) also look runners up here.
   */
  announce: (studyId: string) => Promise<void>;
  /** Called when a study's runner has finished (the coordinator collects unreferenced blobs then). */
  onStudyEnded?: (studyId: string) => void;
  /**
   * Makes a study's release (a no-op for studies that did not complete) before its end is
   * announced, so an agent that looks for the release when it hears COMPLETED finds it. Never
   * rejects (the builder logs its failures).
   */
  release?: (studyId: string) => Promise<unknown>;
  /** Storage health: runners wait there during a storage fault instead of spending round attempts. */
  storage?: StorageGate;
}

/** What a caller other than an operator (a series run) adds to a study start. */
export interface StudyStartExtras {
  /** Write ops recorded in the same unit as the study and its round 0 (a series run's record and audit row). */
  ops?: (study: StudyRecord) => WriteOp[];
  /** Called once that unit is written, before the study runs and is announced (the series template cache). */
  recorded?: (study: StudyRecord) => void;
}

/**
 * The studies and their runners: starting a study from a manifest, resuming RUNNING studies
 * after a restart, stopping them, and the lookup every task-bound call goes through.
 */
export class Studies {
  private readonly runners = new Map<string, { runner: StudyRunner; done: Promise<void>; memoryBytes: number }>();

  constructor(private readonly opts: StudiesOptions) {}

  /** Resumes every RUNNING study from its last committed round, after checking that checkpoint. */
  async resume(): Promise<void> {
    const { store, checkpoints, log, now } = this.opts;
    const studies = await store.listStudies();
    // Every study's tensor list, for the synchronous readers (downloads of committed rounds,
    // update checks, views); older studies without one in the row keep their file (checkpoints.ts).
    for (const study of studies) if (study.modelSpec != null) checkpoints.rememberSpecs(study.id, study.modelSpec);
    for (const study of studies) {
      if (study.state !== 'RUNNING') continue;
      const failed = await store.failOpenRounds(study.id, 'coordinator restarted before the round committed', now());
      checkpoints.clearCandidates(study.id);
      const orphans = checkpoints.removeUncommitted(study.id, study.lastCommittedRound);
      if (orphans.length > 0) log.warn({ event: 'checkpoint.orphans_removed', studyId: study.id, files: orphans }, 'removed checkpoint files of rounds that never committed');
      const last = await store.getCommittedRound(study.id, study.lastCommittedRound);
      try {
        if (last?.checkpointPath == null || last.checkpointSha256 === null) {
          throw new FedlhsError('DATA_LOSS', `committed round ${study.lastCommittedRound} has no checkpoint record (the coordinator stopped while creating the study?)`);
        }
        await checkpoints.verify(last.checkpointPath, last.checkpointSha256);
        checkpoints.loadSpecs(study.id); // a missing or unreadable tensor list fails the study here, by name
      } catch (err) {
        // One broken study must not keep the coordinator (and every other study) down.
        log.error({ event: 'study.resume_failed', studyId: study.id, err: (err as Error).message }, 'cannot resume study; marking it FAILED');
        await store.setStudyState(study.id, 'FAILED', `cannot resume: ${(err as Error).message}`, now());
        continue;
      }
      log.info({ event: 'study.resumed', studyId: study.id, lastCommittedRound: study.lastCommittedRound, abandonedAttempts: failed }, 'resuming study from its last committed round');
      await this.launch(study);
    }
  }

  /** Halts the runners without ending their studies (so a restart resumes them) and waits for them. */
  async halt(): Promise<void> {
    for (const { runner } of this.runners.values()) runner.halt();
    await Promise.allSettled([...this.runners.values()].map((r) => r.done));
  }

  private async launch(study: StudyRecord): Promise<void> {
    const { store, checkpoints, now } = this.opts;
    const manifest = validateManifest(JSON.parse(study.manifestJson));
    const specs = checkpoints.loadSpecs(study.id);
    let strategyState: Tensor[] | undefined;
    if (study.strategyState !== null) {
      // Server-side strategy state (momentum, moments) is part of the checkpoint.
      const ref = JSON.parse(study.strategyState) as { path: string; sha256: string };
      await checkpoints.verify(ref.path, ref.sha256);
      const flat = await checkpoints.readAll(ref.path);
      const length = bundleLength(specs);
      strategyState = [];
      for (let offset = 0; offset < flat.length; offset += length) strategyState.push(...splitTensors(specs, flat.slice(offset, offset + length)));
    }
    const { sessions } = this.opts;
    const memoryBytes = estimateBytes(memoryEstimate(createStrategy(strategyConfigOf(manifest)), manifest.clients.max), bundleLength(specs));
    const runner = new StudyRunner(study, manifest, specs, {
      store,
      checkpoints,
      sessions,
      // The engine speaks no proto: tasks become wire messages here, at the edge.
      dispatch: {
        task: (record, parameters, payload) => sessions.sendTo(record.nodeId, { task: toWireTask(record, study.manifestHash, parameters, payload) }),
        cancel: (nodeId, taskId, reason) => void sessions.sendTo(nodeId, { cancel: { taskId, reason } }),
      },
      ...(this.opts.clock === undefined ? {} : { clock: this.opts.clock }),
      logger: this.opts.logger,
      selectionGraceMs: this.opts.selectionGraceMs,
      now,
      strategyState,
      normHistory: await store.listNormHistory(study.id),
      metrics: this.opts.metrics,
      ...(this.opts.storage === undefined ? {} : { storage: this.opts.storage }),
      onStudyChange: (id, change) => {
        const release = this.opts.release;
        if (change === 'ended' && release !== undefined) void release(id).catch(() => undefined).then(() => this.opts.announce(id));
        else if (change !== 'round') void this.opts.announce(id);
        this.opts.events.emit('change', { kind: change === 'round' ? 'round' : 'study', studyId: id });
      },
    });
    const done = runner.run().finally(() => {
      this.runners.delete(study.id);
      this.opts.onStudyEnded?.(study.id);
    });
    this.runners.set(study.id, { runner, done, memoryBytes });
  }

  /** Waits until a study's runner has finished (for tests and the CLI). */
  async waitForStudy(studyId: string): Promise<void> {
    await this.runners.get(studyId)?.done;
  }

  /** The runner of a study, if it is running. */
  runner(studyId: string): StudyRunner | undefined {
    return this.runners.get(studyId)?.runner;
  }

  /** The runner of a task's study, or FAILED_PRECONDITION (reason STALE) if the study is not running. */
  openRunner(task: TaskRecord): StudyRunner {
    const runner = this.runners.get(task.studyId)?.runner;
    if (runner === undefined) throw new FedlhsError('STALE', `study ${task.studyId} is not running`);
    return runner;
  }

  /**
   * The weights.bin of a release (warm start): it must exist, have the SHA-256 the manifest pins
   * and as many values as the topology (MANIFEST_INVALID naming model.initialWeights otherwise).
   */
  private async releaseWeights(ref: { studyName: string; version: number; weightsSha256: string }, parameters: number): Promise<Float32Array> {
    const path = 'model.initialWeights';
    const release = await this.opts.store.getRelease(ref.studyName, ref.version);
    if (release === undefined) throw new FedlhsError('MANIFEST_INVALID', `${path}: no release ${ref.studyName} v${ref.version} on this coordinator`, { details: { path } });
    const file = release.files.find((f) => f.name === 'weights.bin');
    if (file === undefined || file.sha256 !== ref.weightsSha256) {
      throw new FedlhsError('MANIFEST_INVALID', `${path}: release ${ref.studyName} v${ref.version} has weights ${file?.sha256 ?? '(none)'}, not the ${ref.weightsSha256} the manifest pins`, { details: { path } });
    }
    if (file.size !== parameters * 4) {
      throw new FedlhsError('MANIFEST_INVALID', `${path}: release ${ref.studyName} v${ref.version} has ${file.size / 4} weights, this topology ${parameters}`, { details: { path } });
    }
    const parts: Buffer[] = [];
    for await (const c of this.opts.checkpoints.blobs.read({ sha256: file.sha256, length: file.size }, { chunkBytes: 1 << 20 })) parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    const bytes = Buffer.concat(parts);
    if (createHash('sha256').update(bytes).digest('hex') !== file.sha256) throw new FedlhsError('DATA_LOSS', `the weights of release ${ref.studyName} v${ref.version} do not match their digest in the blob store`);
    // A copy: a Float32Array view needs 4-byte alignment and must outlive the chunks.
    return new Float32Array(Uint8Array.from(bytes).buffer);
  }

  /**
   * Validates a manifest, checkpoints its initial model as round 0 and starts the study. A series
   * run passes `extras`: its record goes in the same unit as the study (and fails it, STALE, when
   * another coordinator recorded that run first).
   */
  async startStudy(manifestText: string, by: string, extras: StudyStartExtras = {}): Promise<StudyRecord> {
    const { store, checkpoints, now } = this.opts;
    const manifest = parseManifest(manifestText);
    const json = canonicalManifestJson(manifest);
    const hash = manifestHash(manifest);
    const strategy = createStrategy(strategyConfigOf(manifest));
    // Before the model is built (which alone takes 6× its size): from the topology's shapes.
    const estimated = topologyParameters(manifest.model.topology);
    if (estimated !== undefined) this.checkMemory(manifest, strategy, estimated, by);
    const built = await this.opts.buildInitialModel(manifest);
    const { specs } = built;
    // Warm start (manifest model.initialWeights): round 0 is the pinned release's weights.
    const weights = manifest.model.initialWeights === undefined ? built.weights : await this.releaseWeights(manifest.model.initialWeights.release, built.weights.length);
    // Exact now; a topology whose shapes could not be followed is checked here (after building).
    if (estimated !== weights.length) this.checkMemory(manifest, strategy, weights.length, by);
    if (strategy.input === 'all-updates') {
      const held = manifest.clients.max * weights.byteLength;
      if (held > this.opts.maxHeldUpdateBytes) {
        throw new FedlhsError(
          'MANIFEST_INVALID',
          `aggregation.strategy ${strategy.name} holds every update of a round in memory: clients.max ${manifest.clients.max} × ${(weights.byteLength / 1048576).toFixed(1)} MiB exceeds this coordinator's maxHeldUpdateBytes (${(this.opts.maxHeldUpdateBytes / 1048576).toFixed(0)} MiB)`,
          { details: { path: 'aggregation.strategy' } },
        );
      }
    }
    const id = `${manifest.name}-${randomBytes(3).toString('hex')}`;
    const modelSpec = JSON.stringify(specs.map((s) => ({ name: s.name, shape: s.shape })));
    checkpoints.rememberSpecs(id, modelSpec);
    const candidate = await checkpoints.writeCandidate(id, 0, 1, [weights]);
    const initial = checkpoints.promote(id, 0, candidate);
    const study: StudyRecord = {
      id, name: manifest.name, manifestJson: json, manifestHash: hash, state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null,
      createdAt: now(), endedAt: null, modelSpec,
    };
    // T4: the study and its committed round 0 in one unit (the model file is durable already), so a
    // crash can no longer leave a RUNNING study without round 0.
    const at = now();
    await store.write([
      { op: 'study.insert', s: study },
      {
        op: 'round.insert',
        r: { studyId: id, round: 0, attempt: 1, state: 'COMMITTED', reason: manifest.model.initialWeights === undefined ? 'initial model' : `initial model: release ${manifest.model.initialWeights.release.studyName} v${manifest.model.initialWeights.release.version} (warm start)`, startedAt: at, endedAt: at, participants: 0, checkpointPath: initial.path, checkpointSha256: initial.sha256 },
      },
      ...(extras.ops?.(study) ?? []),
    ], 'study.start');
    extras.recorded?.(study);
    this.opts.log.info({ event: 'study.started', studyId: id, manifestSha256: hash, parameters: bundleLength(specs), rounds: manifest.rounds, strategy: manifest.aggregation.strategy, by }, 'study started');
    await this.launch(study);
    await this.opts.announce(id);
    return study;
  }

  /**
   * Refuses (RESOURCE_LIMIT) a study whose model would not fit limits.modelMemoryBytes beside
   * the running studies': parameters × 4 bytes × the strategy's factor, plus its fixed bytes
   * (model-memory.ts).
   */
  private checkMemory(manifest: StudyManifest, strategy: ReturnType<typeof createStrategy>, parameters: number, by: string): void {
    const budget = this.opts.modelMemoryBytes ?? DEFAULT_LIMITS.modelMemoryBytes;
    const { factor, fixedBytes } = memoryEstimate(strategy, manifest.clients.max);
    const estimate = estimateBytes({ factor, fixedBytes }, parameters);
    let running = 0;
    for (const r of this.runners.values()) running += r.memoryBytes;
    if (estimate + running <= budget) return;
    const mib = (b: number): string => `${(b / 1048576).toFixed(0)} MiB`;
    const err = new FedlhsError(
      'RESOURCE_LIMIT',
      `the study's model does not fit this coordinator: ${parameters} parameters × 4 bytes × ${factor}${fixedBytes > 0 ? ` + ${mib(fixedBytes)} of slices for ${manifest.clients.max} clients` : ''} (aggregation.strategy ${strategy.name}) = ${mib(estimate)}` +
        `${running > 0 ? ` beside ${mib(running)} for the running studies` : ''} exceeds limits.modelMemoryBytes (${mib(budget)})`,
      { details: { limit: 'limits.modelMemoryBytes', value: estimate + running, max: budget } },
    );
    this.opts.metrics.studiesRefused.inc();
    this.opts.log.warn({ event: 'study.refused', name: manifest.name, parameters, factor, fixedBytes, estimateBytes: estimate, runningBytes: running, budgetBytes: budget, by }, err.message);
    throw err;
  }

  /** Asks a running study's runner to stop, and waits until it has finished. */
  async stopStudy(studyId: string, by: string): Promise<void> {
    const entry = this.runners.get(studyId);
    if (entry === undefined) {
      const study = await this.opts.store.getStudy(studyId);
      if (study === undefined) throw new FedlhsError('NOT_FOUND', `no study ${studyId}`, { details: { what: 'study', id: studyId } });
      throw new FedlhsError('STUDY_NOT_RUNNING', `study ${studyId} is ${study.state}`);
    }
    entry.runner.stop(`stopped by ${by}`);
    await entry.done;
  }

  /** The studies, RUNNING ones only unless `includeEnded`. */
  async listStudies(includeEnded: boolean): Promise<StudyRecord[]> {
    return (await this.opts.store.listStudies()).filter((s) => includeEnded || s.state === 'RUNNING');
  }
}
