import * as grpc from '@grpc/grpc-js';
import { FedlhsError, WIRE_STRINGS, sanitizeWireText } from '@fedlhs/core';
import type { AgentInfo, AgentMessage, CoordinatorMessage__Output, Study__Output, StudyProgress__Output, CancelTask__Output, Task__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { NodeCredential } from './agent-state.js';
import { authMetadata, type Clients } from './connection.js';

/** Protocol features this agent advertises in Hello.capabilities (federation.proto, "Announcements"). */
export const AGENT_CAPABILITIES: readonly string[] = ['study-progress'];

/**
 * Applies a StudyProgress to the last announcement of its study, as a re-announcement of the same
 * manifest would: state, last committed round, and the parameters when they changed (empty = unchanged).
 */
export function applyStudyProgress(study: Study__Output, progress: StudyProgress__Output): Study__Output {
  return {
    ...study,
    state: progress.state,
    lastCommittedRound: progress.lastCommittedRound,
    parametersJson: progress.parametersJson === '' ? study.parametersJson : progress.parametersJson,
  };
}

/** Where a session hands what the coordinator says; the agent wires these to its study tracker and task runner. */
export interface SessionHandlers {
  /** After each Welcome: the coordinator starts the session knowing nothing of this node's readiness. */
  welcomed(): void;
  /** On every heartbeat this agent sends. */
  heartbeat(): void;
  /** A study announcement (new, changed, progressed or ended). */
  study(study: Study__Output): void;
  /** A task handed to this node; may be a re-send after a reconnection. */
  task(task: Task__Output): void;
  /** The coordinator no longer wants a task. */
  cancel(cancel: CancelTask__Output): void;
  /** Tasks running now, named in Hello so the coordinator does not hand them out again. */
  activeTaskIds(): string[];
}

/** What a control session needs; the logger is the agent's, so log lines keep its fields. */
export interface ControlSessionOptions {
  clients: Clients;
  credential: NodeCredential;
  coordinatorAddress: string;
  info: AgentInfo;
  log: Logger;
  handlers: SessionHandlers;
}

/**
 * The control stream to the coordinator: Hello, Welcome, heartbeats both ways with a watchdog
 * that drops a silent session, and dispatch of study announcements, tasks and cancellations.
 * One session at a time; `send` writes to the current one, if any.
 */
export class ControlSession {
  private call: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> | undefined;
  /** The last announcement of each study, with progress applied; StudyProgress updates these. */
  private readonly studies = new Map<string, Study__Output>();

  constructor(private readonly options: ControlSessionOptions) {}

  /** Writes to the open session; dropped if there is none (the next session reports afresh). */
  send(message: AgentMessage): void {
    this.call?.write(message);
  }

  /** Cancels the open session, if any. */
  cancel(): void {
    this.call?.cancel();
  }

  /** One session; resolves when it ends, with whether it got as far as Welcome. Rejects only with CREDENTIAL_REJECTED. */
  open(signal: AbortSignal): Promise<boolean> {
    const { clients, credential, handlers, log } = this.options;
    return new Promise<boolean>((resolve, reject) => {
      const call = clients.federation.Session(authMetadata(credential.credential));
      this.call = call;
      let welcomed = false;
      let interval = 5000;
      let lastHeard = Date.now();
      const connectTimeoutMs = 15_000;
      const timer = setInterval(() => {
        const silentFor = Date.now() - lastHeard;
        if (silentFor > (welcomed ? 3 * interval : connectTimeoutMs)) {
          log.warn({ event: 'agent.session_dropped', silentForMs: silentFor }, 'coordinator silent; dropping the session');
          call.cancel();
          return;
        }
        if (welcomed) {
          this.send({ heartbeat: { sentUnixMs: Date.now() } });
          handlers.heartbeat();
        }
      }, 1000);
      const finish = (err?: grpc.ServiceError): void => {
        clearInterval(timer);
        if (this.call === call) this.call = undefined;
        if (err?.code === grpc.status.UNAUTHENTICATED) {
          // Retrying cannot help: the agent stops (main.ts, exit 3).
          reject(new FedlhsError('CREDENTIAL_REJECTED', `the coordinator refused this node's credential: ${err.details}. Re-enrol with a new join token.`));
          return;
        }
        if (err !== undefined && !signal.aborted) log.warn({ event: 'agent.session_ended', code: grpc.status[err.code], details: err.details }, 'session ended');
        resolve(welcomed);
      };
      call.on('data', (message: CoordinatorMessage__Output) => {
        lastHeard = Date.now();
        if (message.welcome) {
          if (message.welcome.nodeId !== credential.nodeId) {
            log.error({ event: 'agent.wrong_node', got: message.welcome.nodeId }, 'coordinator welcomed a different node id; dropping the session');
            call.cancel();
            return;
          }
          welcomed = true;
          interval = message.welcome.heartbeatIntervalMs || 5000;
          clearInterval(timer);
          log.info({ event: 'agent.connected', coordinator: this.options.coordinatorAddress, coordinatorVersion: message.welcome.coordinatorVersion }, 'connected to coordinator');
          handlers.welcomed();
          // Re-arm the watchdog at the coordinator's heartbeat interval.
          const beat = setInterval(() => {
            if (Date.now() - lastHeard > 3 * interval) {
              log.warn({ event: 'agent.session_dropped', silentForMs: Date.now() - lastHeard }, 'no heartbeat from coordinator; reconnecting');
              call.cancel();
              return;
            }
            this.send({ heartbeat: { sentUnixMs: Date.now() } });
            handlers.heartbeat();
          }, interval);
          call.once('close', () => clearInterval(beat));
          call.once('error', () => clearInterval(beat));
        } else if (message.study?.study) {
          this.studies.set(message.study.study.studyId, message.study.study);
          handlers.study(message.study.study);
        } else if (message.progress) {
          const known = this.studies.get(message.progress.studyId);
          if (known === undefined) {
            // The coordinator announces a study before any progress on it; this one was never announced here.
            log.warn({ event: 'agent.progress_unknown_study', studyId: message.progress.studyId }, 'progress for a study never announced on this session; ignored');
            return;
          }
          const study = applyStudyProgress(known, message.progress);
          this.studies.set(study.studyId, study);
          handlers.study(study);
        } else if (message.task) {
          handlers.task(message.task);
        } else if (message.cancel) {
          handlers.cancel(message.cancel);
        }
      });
      call.on('error', (err: grpc.ServiceError) => finish(err));
      call.on('end', () => finish());
      call.write({ hello: { agent: wireAgentInfo(this.options.info), activeTaskIds: handlers.activeTaskIds(), capabilities: [...AGENT_CAPABILITIES] } });
    });
  }
}

/** The agent's labels within the wire's limits (wire-limits.ts): one line each, capped. */
function wireAgentInfo(info: AgentInfo): AgentInfo {
  return {
    agentVersion: sanitizeWireText(info.agentVersion ?? '', WIRE_STRINGS['AgentInfo.agent_version'].max),
    trainingBackend: sanitizeWireText(info.trainingBackend ?? '', WIRE_STRINGS['AgentInfo.training_backend'].max),
    platform: sanitizeWireText(info.platform ?? '', WIRE_STRINGS['AgentInfo.platform'].max),
  };
}
