import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AgentInfo__Output,
  AgentMessage__Output,
  DownloadModelRequest__Output,
  EvaluationReceipt,
  EvaluationReport__Output,
  StageReceipt,
  StageReport__Output,
  StatisticsReceipt,
  StatisticsReport__Output,
  TensorBundleHeader,
  UpdateChunk__Output,
  UploadReceipt,
} from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { BlobCollector } from './blobs/blob-gc.js';
import type { BlobStore } from './blobs/blob-store.js';
import { CheckpointStore } from './checkpoints.js';
import { ControlSessions } from './control-session.js';
import { DataDirLock } from './data-dir-lock.js';
import { Downloads } from './downloads.js';
import { Enrolment, NodeDirectory } from './enrolment.js';
import { NodeCalls } from './node-calls.js';
import { loadOrCreateReleaseKey, type ReleaseKey } from './release-key.js';
import { ReleaseBuilder, type ReleaseFailure } from './releases/builder.js';
import { ReleaseDistribution } from './releases/distribution.js';
import { resolveLimits, type CoordinatorLimits } from './limits.js';
import { siteReadiness, type SiteReadiness } from './readiness.js';
import { CoordinatorMetrics } from './metrics.js';
import { systemClock, type EngineClock, type StudyRunner } from './engine/study-runner.js';
import { SeriesDecider } from './series/decide.js';
import { SeriesScheduler } from './series/scheduler.js';
import { SeriesService } from './series/service.js';
import { SessionRegistry, type NodeSession } from './sessions.js';
import { SqliteStore } from './sqlite-store.js';
import { StorageHealth, directoryProbe, type CoordinatorHealth, type StorageProbe } from './storage-health.js';
import type { CoordinatorStore, NodeRecord, StudyRecord } from './store.js';
import { Studies, type InitialModelBuilder } from './studies.js';
import { UpdateIntake } from './update-intake.js';

export { COORDINATOR_VERSION } from './control-session.js';
export type { InitialModelBuilder } from './studies.js';

/** Default grace period and interval of blob garbage collection: one hour. */
export const DEFAULT_BLOB_GC_MS = 3_600_000;

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
  /** Where checkpoints and other blobs live; default: files in the data directory. */
  blobs?: BlobStore;
  /**
   * Blob garbage collection: blobs no row references and older than `graceMs` are deleted at
   * start (after resuming), after each study ends and every `intervalMs` (0: not periodically).
   * Default: one hour each.
   */
  blobGc?: { graceMs: number; intervalMs: number };
  metrics?: CoordinatorMetrics;
  /** Storage health probes (storage-health.ts): interval while healthy and during a fault; defaults 10 s and 1 s. */
  storageProbe?: { intervalMs: number; faultIntervalMs: number };
  /** Bounds on what one node may cost the coordinator (limits.ts); default DEFAULT_LIMITS. */
  limits?: Partial<CoordinatorLimits>;
  now?: () => number;
  /** The round engine's clock (tests that move time); default: `now` and real timers. */
  clock?: EngineClock;
  /**
   * The series scheduler's clock (series/scheduler.ts): when runs are due, what a run is derived
   * at, when a series was created. Tests move it (months) while studies run in real time.
   * Default: `clock`, else `now` and real timers.
   */
  seriesClock?: EngineClock;
}

/** How often releases that failed to build are tried again (also when storage recovers). */
const RELEASE_RETRY_MS = 5 * 60_000;

/**
 * The coordinator's domain: enrolment and authentication of nodes, their sessions, the
 * study runners, and the checks every model transfer passes. Transport adapters (gRPC, the
 * admin HTTP API) only decode, call these methods and encode.
 *
 * This is the composition root: it owns the data directory, the store and the shared parts
 * (sessions, checkpoints, metrics, change events), builds enrolment.ts, control-session.ts,
 * studies.ts, update-intake.ts and downloads.ts over them, and delegates to those. The
 * delegates keep the adapters and tests independent of that split.
 */
export class Coordinator {
  readonly sessions = new SessionRegistry();
  /** In-flight calls per node (node-calls.ts): revocation ends them all. */
  readonly calls = new NodeCalls();
  /**
   * 'change' events ({ kind: 'study' | 'round' | 'node' | 'release' | 'series', studyId?, nodeId?,
   * seriesName?, run? }) for live dashboards; a series event with `run` says that run started.
   */
  readonly events = new EventEmitter();
  readonly metrics: CoordinatorMetrics;
  /** Bounds on what one node may cost (limits.ts), resolved against the defaults. */
  readonly limits: CoordinatorLimits;
  readonly checkpoints: CheckpointStore;
  /** Every enrolled node in memory: authentication and last-seen times (written behind). */
  readonly nodes: NodeDirectory;
  private readonly enrolment: Enrolment;
  private readonly control: ControlSessions;
  private readonly studies: Studies;
  private readonly intake: UpdateIntake;
  private readonly downloads: Downloads;
  /** Deletes blobs no row references (blobs/blob-gc.ts). */
  readonly blobCollector: BlobCollector;
  /**
   * The release signing key (release-key.ts, `<dataDir>/release-key.pem`, created on first
   * start): agents pin its public half at enrolment.
   */
  readonly releaseKey: ReleaseKey;
  /** Whether this start created the release key (the start-up log says so). */
  readonly releaseKeyCreated: boolean;
  /** Storage health (storage-health.ts): faults reported and probed; 'degraded' while storage is faulty. */
  readonly storage: StorageHealth;
  /**
   * Signed releases (issue 12, releases/distribution.ts): list, get, readFile, recordPerformance,
   * for the gRPC handlers (with the calling node) and the admin API (without one).
   */
  readonly releases: ReleaseDistribution;
  /** Makes the release of each study that completes (releases/builder.ts). */
  private readonly releaseBuilder: ReleaseBuilder;
  /** Study series (issue 13, series/service.ts): the admin API, CLI and dashboard call these. */
  readonly series: SeriesService;
  /** Champion decisions on series runs' releases (series/decide.ts). */
  private readonly seriesDecider: SeriesDecider;
  /** Starts series runs on their schedules (series/scheduler.ts). */
  readonly seriesScheduler: SeriesScheduler;
  private releaseRetry: NodeJS.Timeout | undefined;
  private releaseRetryUnsubscribe: (() => void) | undefined;

  private constructor(readonly store: CoordinatorStore, private readonly opts: CoordinatorOptions, private readonly lock: DataDirLock) {
    this.checkpoints = new CheckpointStore(opts.dataDir, opts.blobs === undefined ? {} : { blobs: opts.blobs });
    const release = loadOrCreateReleaseKey(opts.dataDir);
    this.releaseKey = release.key;
    this.releaseKeyCreated = release.created;
    // One logger for every part, so their log lines keep component 'coordinator'.
    const log = opts.logger.child({ component: 'coordinator' });
    const now = opts.clock === undefined ? (opts.now ?? Date.now) : () => opts.clock!.now();
    this.metrics = opts.metrics ?? new CoordinatorMetrics();
    this.limits = resolveLimits(opts.limits);
    this.events.setMaxListeners(1000);
    this.sessions.on('change', () => {
      this.metrics.connectedNodes.set(this.sessions.size);
      this.events.emit('change', { kind: 'node' });
    });
    store.onBatch((b) => this.metrics.observeStoreBatch(b));
    const storeProbe: StorageProbe[] = [{ name: 'store', run: () => store.probeWrite() }];
    this.storage = new StorageHealth({
      log, metrics: this.metrics, now, ...opts.storageProbe,
      probes: [directoryProbe('data directory', () => this.checkpoints.writableDirs()), ...storeProbe],
    });
    const { sessions, checkpoints, metrics, events, storage } = this;
    this.nodes = new NodeDirectory({ store, log });
    this.enrolment = new Enrolment({ store, sessions, log, now, nodes: this.nodes, calls: this.calls });
    // Studies announce through the control sessions, which look runners up in studies: the
    // callback breaks that cycle (it is only called once a study starts or changes).
    this.studies = new Studies({
      store, checkpoints, sessions, logger: opts.logger, log, now, clock: opts.clock, metrics, events, storage,
      selectionGraceMs: opts.selectionGraceMs, maxHeldUpdateBytes: opts.maxHeldUpdateBytes, modelMemoryBytes: this.limits.modelMemoryBytes, buildInitialModel: opts.buildInitialModel,
      announce: (studyId) => this.control.announce(studyId),
      // A COMPLETED study is released before its end is announced (agents look for the release
      // when they hear it); the builder ignores FAILED and STOPPED ones, and logs
      // (release.failed) rather than throws.
      // A series run's release is then judged against the champion (series/decide.ts, never
      // throws), and only then may the series' next run start (its champion may have changed).
      release: async (studyId) => {
        try {
          if ((await this.releaseBuilder.ensure(studyId)) !== undefined) await this.seriesDecider.decide(studyId);
        } finally {
          this.seriesScheduler.studyEnded(studyId);
        }
      },
      onStudyEnded: () => void this.blobCollector.run('study-ended'),
    });
    this.control = new ControlSessions({
      store, sessions, log, now, metrics, heartbeatIntervalMs: opts.heartbeatIntervalMs, runner: (studyId) => this.studies.runner(studyId), nodes: this.nodes,
      seriesData: (nodeId, report) => this.series.data.receive(nodeId, report),
    });
    this.intake = new UpdateIntake({
      store, checkpoints, log, now, metrics, events, studies: this.studies, limits: this.limits, nodes: this.nodes, calls: this.calls, storage,
      trainingRows: (nodeId, studyId) => this.sessions.trainingRows(nodeId, studyId),
    });
    this.downloads = new Downloads({ store, checkpoints, chunkBytes: opts.chunkBytes, studies: this.studies });
    this.releases = new ReleaseDistribution({
      store, blobs: checkpoints.blobs, now,
      onPerformance: (r) => {
        log.info({ event: 'release.performance_received', studyName: r.studyName, version: r.version, nodeId: r.nodeId }, `live performance of release ${r.studyName} v${r.version} from node ${r.nodeId}`);
        this.events.emit('change', { kind: 'release', studyName: r.studyName, version: r.version, nodeId: r.nodeId });
      },
    });
    this.releaseBuilder = new ReleaseBuilder({ store, checkpoints, releaseKey: this.releaseKey, log, now, chunkBytes: opts.chunkBytes,
      onCreated: (r) => {
        this.events.emit('change', { kind: 'release', studyId: r.studyId, studyName: r.studyName, version: r.version });
        // Releases built at start or on retry are series runs' too (the decider is idempotent).
        void this.seriesDecider.decide(r.studyId);
      },
    });
    const seriesClock = opts.seriesClock ?? opts.clock ?? systemClock(now);
    const seriesNow = (): number => seriesClock.now();
    this.series = new SeriesService({ store, log, now: seriesNow, events, startStudy: (text, by, extras) => this.studies.startStudy(text, by, extras) });
    this.seriesDecider = new SeriesDecider({ store, log, now: seriesNow, events, lock: (name, fn) => this.series.locked(name, fn) });
    this.seriesScheduler = new SeriesScheduler({ store, service: this.series, decider: this.seriesDecider, clock: seriesClock, log, events });
    this.blobCollector = new BlobCollector({
      store, log, collect: (referenced, graceMs) => checkpoints.collect(referenced, graceMs),
      graceMs: opts.blobGc?.graceMs ?? DEFAULT_BLOB_GC_MS, intervalMs: opts.blobGc?.intervalMs ?? DEFAULT_BLOB_GC_MS,
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
    // Held updates and spooled uploads of a run that crashed: no attempt or upload outlives it.
    const left = this.checkpoints.removeWorkFiles();
    if (left.held + left.spooled > 0) {
      this.opts.logger.child({ component: 'coordinator' }).info({ event: 'storage.work_files_removed', ...left }, `removed ${left.held} held-update director(ies) and ${left.spooled} spooled upload(s) left by an earlier run`);
    }
    this.intake.resetSpool();
    this.storage.start();
    // The series templates of running runs first: the announcements control.start() builds carry them.
    await Promise.all([this.nodes.load(), this.series.load()]);
    await this.control.start();
    await this.studies.resume();
    // Studies that completed without a release (a build failed, or the coordinator stopped
    // first) are released now, in the background; failures are logged (release.failed). Series
    // are scheduled after that: a run's next one starts from the champion its release decides.
    void this.releaseBuilder.ensureReleases().then(() => this.seriesScheduler.start()).catch((err: unknown) => {
      this.opts.logger.child({ component: 'coordinator' }).error({ event: 'series.scheduler_failed', err }, `the series scheduler did not start: ${(err as Error).message}`);
    });
    // A release that failed (a storage fault, a missing blob) is tried again when storage
    // recovers and every few minutes, not only at the next start.
    this.releaseRetryUnsubscribe = this.storage.onChange((status) => {
      if (status.healthy) void this.releaseBuilder.retryFailed();
    });
    this.releaseRetry = setInterval(() => void this.releaseBuilder.retryFailed(), RELEASE_RETRY_MS);
    this.releaseRetry.unref();
    // In the background: start-up does not wait for it (its outcome is logged, blob.collected).
    void this.blobCollector.run('start');
    this.blobCollector.start();
  }

  /** Halts the runners without ending their studies, so a restart resumes them. */
  async shutdown(): Promise<void> {
    // First: halted runners are not ended studies, and a run must not outlive the store.
    await this.blobCollector.stop();
    await this.seriesScheduler.stop();
    this.storage.stop();
    await this.studies.halt();
    if (this.releaseRetry !== undefined) clearInterval(this.releaseRetry);
    this.releaseRetryUnsubscribe?.();
    await this.releaseBuilder.idle();
    await this.seriesDecider.idle();
    this.series.stop();
    try {
      try {
        // Last-seen times are written behind: flush them before the store closes.
        await this.nodes.close();
        await this.checkpoints.blobs.close();
      } finally {
        await this.store.close();
      }
    } finally {
      this.lock.release();
    }
  }

  /** Every enrolled site's readiness for a study (online state, declared readiness and its reason). */
  async siteReadiness(study: Pick<StudyRecord, 'id' | 'manifestHash'>): Promise<SiteReadiness[]> {
    return siteReadiness(await this.nodes.list(), this.sessions, study.id, study.manifestHash);
  }

  // The delegates below return the parts' promises unchanged (no extra async step).

  /** 'ok', or 'degraded' while storage is faulty (kind, since, detail): /healthz and the gRPC health service. */
  health(): CoordinatorHealth {
    return this.storage.health();
  }

  /** Waits until a study's runner has finished (for tests and the CLI). */
  waitForStudy(studyId: string): Promise<void> {
    return this.studies.waitForStudy(studyId);
  }

  /** The runner of a study, if it is running. */
  runner(studyId: string): StudyRunner | undefined {
    return this.studies.runner(studyId);
  }

  /**
   * Makes the release of every COMPLETED study that has none (also done at start and when a
   * study completes); never throws: failures are logged (release.failed) and kept for
   * `releaseFailure`.
   */
  ensureReleases(): Promise<{ released: number; failed: number }> {
    return this.releaseBuilder.ensureReleases();
  }

  /** Why the release of a COMPLETED study could not be made (until it is), for the study's detail. */
  releaseFailure(studyId: string): ReleaseFailure | undefined {
    return this.releaseBuilder.failure(studyId);
  }

  // ---- enrolment and authentication (enrolment.ts) ------------------------------------------

  /** Issues a one-time join token for a site. The token is returned once and stored hashed. */
  createJoinToken(siteName: string, ttlSeconds: number, createdBy: string): Promise<{ token: string; siteName: string; expiresAt: number }> {
    return this.enrolment.createJoinToken(siteName, ttlSeconds, createdBy);
  }

  /** Trades a join token for a node credential (and hands out the release key the node pins). */
  enrol(joinToken: string, siteName: string, agent: AgentInfo__Output | null): Promise<{ nodeId: string; credential: string; siteName: string }> {
    return this.enrolment.enrol(joinToken, siteName, agent);
  }

  /** Resolves "Bearer fnc_…" metadata to an active node, or throws UNAUTHENTICATED. */
  authenticate(authorization: string | undefined): Promise<NodeRecord> {
    return this.enrolment.authenticate(authorization);
  }

  /** Revokes a node: its calls fail from now on and its session is closed. */
  revokeNode(nodeId: string, by: string, unauthenticatedCode: number): Promise<void> {
    return this.enrolment.revokeNode(nodeId, by, unauthenticatedCode);
  }

  // ---- sessions (control-session.ts) ------------------------------------------------------

  /** Registers a new session: welcome, study announcements, then the node's open tasks. */
  openSession(session: NodeSession, abortedCode: number): Promise<void> {
    return this.control.openSession(session, abortedCode);
  }

  /** Unregisters a session, unless a newer session of the same node has already replaced it. */
  closeSession(session: NodeSession, why: string): void {
    this.control.closeSession(session, why);
  }

  /** Handles one message of a node's control stream (after Hello). */
  onAgentMessage(session: NodeSession, message: AgentMessage__Output): Promise<void> {
    return this.control.onAgentMessage(session, message);
  }

  // ---- studies (studies.ts) ---------------------------------------------------------------

  /** Validates a manifest, checkpoints its initial model as round 0 and starts the study. */
  startStudy(manifestText: string, by: string): Promise<StudyRecord> {
    return this.studies.startStudy(manifestText, by);
  }

  /** Asks a running study's runner to stop, and waits until it has finished. */
  stopStudy(studyId: string, by: string): Promise<void> {
    return this.studies.stopStudy(studyId, by);
  }

  /** The studies, RUNNING ones only unless `includeEnded`. */
  listStudies(includeEnded: boolean): Promise<StudyRecord[]> {
    return this.studies.listStudies(includeEnded);
  }

  // ---- model transfer (downloads.ts, update-intake.ts) ------------------------------------

  /** Resolves what a download request may read: the header to send and the file behind it. */
  openDownload(node: NodeRecord, request: DownloadModelRequest__Output): Promise<{ header: TensorBundleHeader; path: string }> {
    return this.downloads.openDownload(node, request);
  }

  /**
   * Receives an update stream: checks the header against the task and the model, spools the
   * payload to disk while checking every chunk, verifies length and digest, then hands it to
   * the study's runner. Every rejection is recorded with its reason.
   */
  receiveUpload(node: NodeRecord, messages: AsyncIterable<UpdateChunk__Output>): Promise<UploadReceipt> {
    return this.intake.receiveUpload(node, messages);
  }

  /** Records a node's statistics report for a STATISTICS task (see update-intake.ts). */
  reportStatistics(node: NodeRecord, report: StatisticsReport__Output): Promise<StatisticsReceipt> {
    return this.intake.reportStatistics(node, report);
  }

  /** Records a node's hold-out evaluation of a round's model. */
  reportEvaluation(node: NodeRecord, report: EvaluationReport__Output): Promise<EvaluationReceipt> {
    return this.intake.reportEvaluation(node, report);
  }

  /** A secure-aggregation stage answer (proto ReportStage; update-intake.ts). */
  reportStage(node: NodeRecord, report: StageReport__Output): Promise<StageReceipt> {
    return this.intake.reportStage(node, report);
  }
}
