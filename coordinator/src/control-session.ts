import type { AgentMessage__Output, CoordinatorMessage, SeriesDataReport__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { NodeDirectory } from './enrolment.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { StudyRunner } from './engine/study-runner.js';
import type { NodeSession, SessionRegistry } from './sessions.js';
import type { CoordinatorStore, StudyRecord } from './store.js';
import { capDetail, sitePrivacyOf, type ReadinessWithPrivacy } from './readiness.js';
import { toWireStudy, toWireTask } from './wire.js';

/** The `Hello.capabilities` entry of agents that take StudyProgress instead of re-announcements. */
export const STUDY_PROGRESS_CAPABILITY = 'study-progress';

/** Sent to every node in its Welcome, and shown by the admin API. */
export const COORDINATOR_VERSION = 'fedlhs-coordinator/0.1.0';

/** What the control-session handling needs from the coordinator that builds it. */
export interface ControlSessionsOptions {
  store: CoordinatorStore;
  sessions: SessionRegistry;
  /** The coordinator's logger; log lines keep the coordinator's component. */
  log: Logger;
  now: () => number;
  heartbeatIntervalMs: number;
  /** Counts dropped sessions (`fedlhs_session_drops_total`). */
  metrics?: CoordinatorMetrics;
  /**
   * The runner of a study, if it is running. A lookup rather than the runner map itself, because
   * the studies part (which owns the runners) also calls back here to announce.
   */
  runner: (studyId: string) => StudyRunner | undefined;
  /**
   * The in-memory node directory, whose write-behind records last-seen times on session open and
   * close. Without it every open and close writes `store.touchNode` (one fsync each).
   */
  nodes?: NodeDirectory;
  /**
   * Where a node's SeriesDataReport goes (data-triggered series: series/data-trigger.ts). Without
   * it reports are counted as refused and dropped.
   */
  seriesData?: (nodeId: string, report: SeriesDataReport__Output) => Promise<void>;
}

/** A study's announcement, built once per change of the study (design §5). */
interface Announcement {
  readonly record: StudyRecord;
  /** The full StudyAnnouncement, manifest included. */
  readonly full: CoordinatorMessage;
  /** StudyProgress with and without parameters_json, built on first use. */
  progressWithParameters?: CoordinatorMessage;
  progressOnly?: CoordinatorMessage;
}

/** 'full': every session gets the StudyAnnouncement; 'progress': READY sessions get progress. */
type Delivery = 'full' | 'progress';

interface DeliveryQueue {
  tail: Promise<void>;
  /** The delivery waiting behind the running one; later changes merge into it. */
  waiting: { kind: Delivery; done: Promise<void> } | undefined;
}

/** Tasks whose progress one session keeps (the agent runs one at a time; older entries are dropped). */
const PROGRESS_MAX = 8;
/** Longest TaskUpdate reason kept with a declined or failed task. */
const REASON_MAX = 500;
/** Unknown studies logged per node and window; the rest are only counted. */
const UNKNOWN_LOGGED_MAX = 16;
/** The window of UNKNOWN_LOGGED_MAX. */
const UNKNOWN_LOG_WINDOW_MS = 10 * 60_000;
/** Nodes whose logged unknown studies are remembered. */
const UNKNOWN_LOG_NODES = 10_000;

/** The `why` of closeSession when the node's credential was revoked (enrolment.ts). */
const REVOKED_WHY = 'node credential was revoked';

/**
 * Session ends (the `why` of closeSession, set by grpc/services.ts and sessions.ts) that are
 * drops rather than a node leaving, by the reason logged with `session.dropped`.
 */
const DROP_REASONS: ReadonlyMap<string, 'heartbeat_timeout' | 'stream_error' | 'superseded'> = new Map([
  ['heartbeat timeout', 'heartbeat_timeout'],
  ['stream error', 'stream_error'],
  ['superseded by a newer session of the same node', 'superseded'],
]);

/**
 * The coordinator's side of each node's control stream: the Welcome and what a node must hear
 * on (re)connecting, the messages it sends (readiness, task progress and endings), and the
 * study announcements, each built once per change of its study and cached for session opens.
 *
 * Per session open it reads the store once (`openTasksForNode`), plus `getStudy` only for a
 * task of a study not in the cache; last-seen times go write-behind through `nodes`.
 */
export class ControlSessions {
  private readonly store: CoordinatorStore;
  private readonly sessions: SessionRegistry;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly heartbeatIntervalMs: number;
  private readonly runner: (studyId: string) => StudyRunner | undefined;
  private readonly metrics: CoordinatorMetrics | undefined;
  private readonly nodes: NodeDirectory | undefined;
  private readonly seriesData: ((nodeId: string, report: SeriesDataReport__Output) => Promise<void>) | undefined;
  /** Announcements of the RUNNING studies (and of ended ones until their end is delivered). */
  private readonly announcements = new Map<string, Announcement>();
  private loading: Promise<void> | undefined;
  private loaded = false;
  private readonly queues = new Map<string, DeliveryQueue>();
  /** Per session and study, the parameters_json it last received (for StudyProgress). */
  private readonly sentParameters = new WeakMap<NodeSession, Map<string, string>>();
  private builds = 0;
  /**
   * Per node, the unknown study ids whose readiness was logged in the current window (at most
   * UNKNOWN_LOGGED_MAX + 1 ids, UNKNOWN_LOG_NODES nodes, oldest dropped first).
   */
  private readonly unknownLogged = new Map<string, { since: number; studies: Set<string> }>();
  /**
   * Per running study, the nodes whose approval (first READY for its manifest) is recorded or
   * being recorded in this process, so each is written once; dropped when the study ends.
   */
  private readonly approvals = new Map<string, Set<string>>();

  constructor(opts: ControlSessionsOptions) {
    this.store = opts.store;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.now = opts.now;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.runner = opts.runner;
    this.metrics = opts.metrics;
    this.nodes = opts.nodes;
    this.seriesData = opts.seriesData;
  }

  /** How many announcements were built (tests: the cache is rebuilt on change and not otherwise). */
  get announcementBuilds(): number {
    return this.builds;
  }

  /**
   * Reads the RUNNING studies once and builds their announcements. Called by the first session
   * open or announcement if the composition root did not call it at start.
   */
  start(): Promise<void> {
    this.loading ??= this.store.listStudies().then((studies) => {
      for (const study of studies) {
        if (study.state === 'RUNNING' && !this.announcements.has(study.id)) this.announcements.set(study.id, this.build(study));
      }
      this.loaded = true;
    });
    return this.loading;
  }

  /**
   * Tells the nodes that a study changed (started, derived parameters, committed a round, ended).
   * The announcement is built once per change. A new study, a changed manifest or state goes to
   * every session as a full StudyAnnouncement; progress (last committed round, parameters) goes
   * only to the sessions READY for the study, as StudyProgress to agents with the
   * "study-progress" capability and as a full announcement to the others. Sends go out in slices
   * (sessions.ts `sendInSlices`); deliveries of one study never overlap, and changes that arrive
   * while one is running merge into the next. Resolves when the change has been delivered.
   */
  async announce(studyId: string): Promise<void> {
    const fresh = this.loaded;
    await this.start();
    const study = await this.store.getStudy(studyId);
    if (study === undefined) return;
    // Before the cache was first loaded no session has heard of any study: deliver in full.
    const previous = fresh ? this.announcements.get(studyId) : undefined;
    if (previous !== undefined && sameAnnouncement(previous.record, study)) return;
    this.announcements.set(studyId, this.build(study));
    // An ended study's readiness and training rows are no longer needed: the state stays bounded by the running studies.
    if (study.state !== 'RUNNING') {
      this.sessions.forgetStudy(studyId);
      this.approvals.delete(studyId);
    }
    const kind: Delivery =
      previous === undefined || previous.record.manifestHash !== study.manifestHash || previous.record.state !== study.state ? 'full' : 'progress';
    await this.schedule(studyId, kind);
  }

  /** Registers a new session: welcome, study announcements, then the node's open tasks. */
  async openSession(session: NodeSession, abortedCode: number): Promise<void> {
    await this.start();
    if (this.nodes !== undefined) this.nodes.seen(session.nodeId, this.now(), session.agent.agentVersion, session.agent.trainingBackend);
    else await this.store.touchNode(session.nodeId, this.now(), session.agent.agentVersion, session.agent.trainingBackend);
    this.sessions.attach(session, abortedCode);
    session.send({
      welcome: { nodeId: session.nodeId, siteName: session.siteName, heartbeatIntervalMs: this.heartbeatIntervalMs, coordinatorVersion: COORDINATOR_VERSION },
    });
    for (const a of this.announcements.values()) {
      if (a.record.state !== 'RUNNING') continue;
      this.noteParameters(session, a.record);
      session.send(a.full);
    }
    // Secure-aggregation stage tasks are not re-sent: their keys lived only in the lost session,
    // so the clinic has dropped from that round (proto "Secure aggregation").
    const open = (await this.store.openTasksForNode(session.nodeId)).filter((t) => !t.kind.startsWith('SECAGG_'));
    for (const task of open) {
      const study = this.announcements.get(task.studyId)?.record ?? (await this.store.getStudy(task.studyId));
      if (study !== undefined) session.send({ task: toWireTask(task, study.manifestHash, study.parameters) });
    }
    this.log.info(
      { event: 'node.online', nodeId: session.nodeId, siteName: session.siteName, agentVersion: session.agent.agentVersion, trainingBackend: session.agent.trainingBackend, resentTasks: open.length },
      'node online',
    );
  }

  /** Unregisters a session, unless a newer session of the same node has already replaced it. */
  closeSession(session: NodeSession, why: string): void {
    // A drop is logged even for a session already replaced (superseded); a normal end is not.
    const reason = DROP_REASONS.get(why);
    if (reason !== undefined) {
      this.log.warn({ event: 'session.dropped', nodeId: session.nodeId, siteName: session.siteName, reason, why }, 'session dropped');
      this.metrics?.sessionDrops.inc({ reason });
    }
    if (why === REVOKED_WHY) this.sessions.forgetNode(session.nodeId);
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.detach(session);
    this.log.info({ event: 'node.offline', nodeId: session.nodeId, siteName: session.siteName, why }, 'node offline');
    // Last seen = the last message heard (a heartbeat at the latest), not when the loss was noticed.
    if (this.nodes !== undefined) this.nodes.seen(session.nodeId, session.lastHeardAt, session.agent.agentVersion, session.agent.trainingBackend);
    else void this.store.touchNode(session.nodeId, session.lastHeardAt, session.agent.agentVersion, session.agent.trainingBackend);
  }

  /**
   * Records, once per node and study, that the node approved the study (declared for its
   * manifest a readiness that an agent only reaches after its operator approved: see APPROVED):
   * it may then fetch the study's committed models, selected for a round or not (a clinic too
   * small to train still gets the model). A failed write is logged and retried at the next declaration.
   */
  private recordApproval(nodeId: string, study: StudyRecord): void {
    let nodes = this.approvals.get(study.id);
    if (nodes === undefined) this.approvals.set(study.id, (nodes = new Set()));
    if (nodes.has(nodeId)) return;
    nodes.add(nodeId);
    const set = nodes;
    this.store.write([{ op: 'approval.record', studyId: study.id, nodeId, manifestSha256: study.manifestHash, at: this.now() }], 'approval.record').catch((err: unknown) => {
      set.delete(nodeId);
      this.log.warn({ event: 'approval.record_failed', nodeId, studyId: study.id, err }, 'could not record that the node approved the study; retried at its next readiness');
    });
  }

  /**
   * Handles one message of a node's control stream (after Hello), already checked against the
   * wire limits (grpc/validate.ts) and the session's rate. What is kept is bounded per session:
   * readiness only for studies RUNNING here (others are refused, counted and logged once per
   * node and study in a 10-minute window), its detail capped; progress only for the node's own open tasks.
   */
  async onAgentMessage(session: NodeSession, message: AgentMessage__Output): Promise<void> {
    session.lastHeardAt = this.now();
    if (message.readiness) {
      const r = message.readiness;
      if (!this.loaded) await this.start();
      const study = this.announcements.get(r.studyId)?.record;
      if (study === undefined || study.state !== 'RUNNING') {
        this.refuseUnknownStudy(session, r.studyId);
        return;
      }
      const detail = capDetail(r.detail);
      if (r.readiness === 'READINESS_READY') this.sessions.setTrainingRows(session.nodeId, r.studyId, r.trainingRows ?? 0);
      if (APPROVED.has(String(r.readiness)) && r.manifestSha256 === study.manifestHash) this.recordApproval(session.nodeId, study);
      // The clinic's privacy accounting (proto PrivacyBudget), kept with its readiness to show operators.
      const privacy = sitePrivacyOf(r.privacy);
      const entry: ReadinessWithPrivacy = { manifestSha256: r.manifestSha256, readiness: r.readiness, detail, ...(privacy === undefined ? {} : { privacy }) };
      if (this.sessions.setReadiness(session, r.studyId, entry)) {
        this.log.info(
          { event: 'node.readiness', nodeId: session.nodeId, studyId: r.studyId, readiness: r.readiness, detail, ...(r.readiness === 'READINESS_READY' ? { trainingRows: r.trainingRows ?? 0 } : {}), ...(privacy === undefined ? {} : { privacy }) },
          'node readiness changed',
        );
      }
    } else if (message.taskUpdate) {
      const u = message.taskUpdate;
      // One store read per message: bounded by the session's message rate (limits.sessionMessagesPerSecond).
      const task = await this.store.getTask(u.taskId);
      if (task === undefined || task.nodeId !== session.nodeId) return;
      if (task.state !== 'ASSIGNED') {
        session.progress.delete(u.taskId);
        return;
      }
      if (u.state === 'TASK_STATE_RUNNING') {
        session.progress.delete(u.taskId); // re-inserted last: the map's order is the age of its entries
        session.progress.set(u.taskId, { phase: u.phase, epoch: u.epoch, epochs: u.epochs, fraction: u.fraction, at: this.now() });
        for (const oldest of session.progress.keys()) {
          if (session.progress.size <= PROGRESS_MAX) break;
          session.progress.delete(oldest);
        }
      } else if (u.state === 'TASK_STATE_DECLINED' || u.state === 'TASK_STATE_FAILED') {
        session.progress.delete(u.taskId);
        await this.runner(task.studyId)?.endTask(task, u.state === 'TASK_STATE_DECLINED' ? 'DECLINED' : 'FAILED', capDetail(u.reason, REASON_MAX));
      }
    } else if (message.seriesData) {
      // Checked at the edge (grpc/validate.ts); whether it counts (series, run, template, participation) is the series module's.
      if (this.seriesData === undefined) {
        this.metrics?.sessionMessagesRefused.inc({ reason: 'unknown_study' });
        return;
      }
      await this.seriesData(session.nodeId, message.seriesData);
    }
  }

  /** Readiness for a study not RUNNING here: not stored; counted, and logged once per node and study (per window). */
  private refuseUnknownStudy(session: NodeSession, studyId: string): void {
    this.metrics?.sessionMessagesRefused.inc({ reason: 'unknown_study' });
    // Per node rather than per session, so that reconnecting does not buy more log lines; the
    // window lets a legitimate agent that raced a study's end be heard again later.
    const now = this.now();
    let entry = this.unknownLogged.get(session.nodeId);
    if (entry === undefined || now - entry.since > UNKNOWN_LOG_WINDOW_MS) {
      this.unknownLogged.delete(session.nodeId);
      if (this.unknownLogged.size >= UNKNOWN_LOG_NODES) this.unknownLogged.delete(this.unknownLogged.keys().next().value!);
      this.unknownLogged.set(session.nodeId, (entry = { since: now, studies: new Set() }));
    }
    const logged = entry.studies;
    if (logged.has(studyId) || logged.size > UNKNOWN_LOGGED_MAX) return;
    logged.add(studyId);
    const more = logged.size > UNKNOWN_LOGGED_MAX;
    this.log.warn(
      { event: 'session.readiness_refused', nodeId: session.nodeId, siteName: session.siteName, studyId, reason: 'unknown_study' },
      more
        ? `readiness for study ${studyId}, which is not running here, not stored; further unknown studies of this node are counted only for 10 minutes`
        : `readiness for study ${studyId}, which is not running here, not stored`,
    );
  }

  private build(study: StudyRecord): Announcement {
    this.builds++;
    return { record: study, full: { study: { study: toWireStudy(study) } } };
  }

  /** Queues a delivery of the study's latest announcement behind the running one, merging with a waiting one. */
  private schedule(studyId: string, kind: Delivery): Promise<void> {
    let queue = this.queues.get(studyId);
    if (queue === undefined) this.queues.set(studyId, (queue = { tail: Promise.resolve(), waiting: undefined }));
    const q = queue;
    if (q.waiting !== undefined) {
      if (kind === 'full') q.waiting.kind = 'full';
      return q.waiting.done;
    }
    const job: { kind: Delivery; done: Promise<void> } = { kind, done: Promise.resolve() };
    job.done = q.tail.then(() => {
      if (q.waiting === job) q.waiting = undefined;
      return this.deliver(studyId, job.kind);
    });
    q.waiting = job;
    const tail: Promise<void> = job.done.then(
      () => this.dropQueue(studyId, q, tail),
      () => this.dropQueue(studyId, q, tail),
    );
    q.tail = tail;
    return job.done;
  }

  private dropQueue(studyId: string, q: DeliveryQueue, tail: Promise<void>): void {
    if (this.queues.get(studyId) === q && q.tail === tail) this.queues.delete(studyId);
  }

  private async deliver(studyId: string, kind: Delivery): Promise<void> {
    const a = this.announcements.get(studyId);
    if (a === undefined) return;
    const study = a.record;
    if (kind === 'full') {
      const ended = study.state !== 'RUNNING';
      await this.sessions.sendInSlices(this.sessions.onlineIds(), (s) => {
        if (ended) this.sentParameters.get(s)?.delete(studyId);
        else this.noteParameters(s, study);
        return a.full;
      });
      if (ended && this.announcements.get(studyId) === a) this.announcements.delete(studyId);
      return;
    }
    await this.sessions.sendInSlices(this.sessions.readyIds(studyId, study.manifestHash), (s) => this.progressFor(s, a));
  }

  /** What a READY session gets for a progress change: StudyProgress if it can take it, else the announcement. */
  private progressFor(s: NodeSession, a: Announcement): CoordinatorMessage {
    if (s.capabilities?.has(STUDY_PROGRESS_CAPABILITY) !== true) {
      this.noteParameters(s, a.record);
      return a.full;
    }
    const parameters = a.record.parameters ?? '';
    const known = this.sentParameters.get(s)?.get(a.record.id);
    if (known === parameters) {
      a.progressOnly ??= { progress: progressOf(a.record, '') };
      return a.progressOnly;
    }
    this.noteParameters(s, a.record);
    a.progressWithParameters ??= { progress: progressOf(a.record, parameters) };
    return a.progressWithParameters;
  }

  private noteParameters(s: NodeSession, study: StudyRecord): void {
    let known = this.sentParameters.get(s);
    if (known === undefined) this.sentParameters.set(s, (known = new Map()));
    known.set(study.id, study.parameters ?? '');
  }
}

/**
 * Readiness states that imply the clinic's operator approved the manifest (proto Readiness: an
 * agent checks approval before its data), so the node may fetch the study's committed models.
 */
const APPROVED: ReadonlySet<string> = new Set(['READINESS_READY', 'READINESS_COHORT_TOO_SMALL', 'READINESS_FEATURE_SPEC_UNSUPPORTED', 'READINESS_DATA_ERROR']);

/** Whether two records give the same announcement (every field `toWireStudy` sends). */
function sameAnnouncement(a: StudyRecord, b: StudyRecord): boolean {
  return (
    a.id === b.id && a.manifestHash === b.manifestHash && a.manifestJson === b.manifestJson && a.state === b.state &&
    a.lastCommittedRound === b.lastCommittedRound && a.parameters === b.parameters
  );
}

function progressOf(study: StudyRecord, parametersJson: string) {
  return { studyId: study.id, state: `STUDY_STATE_${study.state}` as const, lastCommittedRound: study.lastCommittedRound, parametersJson };
}
