import type { AgentMessage__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorMetrics } from './metrics.js';
import type { StudyRunner } from './round-engine.js';
import type { NodeSession, SessionRegistry } from './sessions.js';
import type { CoordinatorStore } from './store.js';
import { toWireStudy, toWireTask } from './wire.js';

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
}

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
 * study announcements broadcast to every online node.
 */
export class ControlSessions {
  private readonly store: CoordinatorStore;
  private readonly sessions: SessionRegistry;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly heartbeatIntervalMs: number;
  private readonly runner: (studyId: string) => StudyRunner | undefined;
  private readonly metrics: CoordinatorMetrics | undefined;

  constructor(opts: ControlSessionsOptions) {
    this.store = opts.store;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.now = opts.now;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.runner = opts.runner;
    this.metrics = opts.metrics;
  }

  /** Broadcasts a study's current record to every online node. */
  async announce(studyId: string): Promise<void> {
    const study = await this.store.getStudy(studyId);
    if (study !== undefined) this.sessions.broadcast({ study: { study: toWireStudy(study) } });
  }

  /** Registers a new session: welcome, study announcements, then the node's open tasks. */
  async openSession(session: NodeSession, abortedCode: number): Promise<void> {
    await this.store.touchNode(session.nodeId, this.now(), session.agent.agentVersion, session.agent.trainingBackend);
    this.sessions.attach(session, abortedCode);
    session.send({
      welcome: { nodeId: session.nodeId, siteName: session.siteName, heartbeatIntervalMs: this.heartbeatIntervalMs, coordinatorVersion: COORDINATOR_VERSION },
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
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.detach(session);
    this.log.info({ event: 'node.offline', nodeId: session.nodeId, siteName: session.siteName, why }, 'node offline');
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
        this.log.info({ event: 'node.readiness', nodeId: session.nodeId, studyId: r.studyId, readiness: r.readiness, detail: r.detail }, 'node readiness changed');
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
        await this.runner(task.studyId)?.endTask(task, u.state === 'TASK_STATE_DECLINED' ? 'DECLINED' : 'FAILED', u.reason.slice(0, 500));
      }
    }
  }
}
