import { EventEmitter } from 'node:events';
import type { AgentInfo__Output, CoordinatorMessage, Readiness } from '@fedlhs/proto';

export interface ReadinessEntry {
  manifestSha256: string;
  readiness: Readiness;
  detail: string;
}

export interface TaskProgress {
  phase: string;
  epoch: number;
  epochs: number;
  fraction: number;
  at: number;
}

/** One live control stream of a node. */
export interface NodeSession {
  readonly id: number;
  readonly nodeId: string;
  readonly siteName: string;
  readonly agent: AgentInfo__Output;
  readonly connectedAt: number;
  lastHeardAt: number;
  readonly readiness: Map<string, ReadinessEntry>;
  readonly progress: Map<string, TaskProgress>;
  send(message: CoordinatorMessage): void;
  /** Ends the stream; `code`/`message` become the agent's gRPC status. */
  close(code: number, message: string): void;
}

/**
 * The nodes that are online right now, at most one session each. Emits 'change' whenever a
 * node connects, disconnects or changes its readiness, which wakes the round engines.
 */
export class SessionRegistry extends EventEmitter {
  private readonly sessions = new Map<string, NodeSession>();

  /** Registers a session, replacing (and closing) an older one of the same node. */
  attach(session: NodeSession, abortedCode: number): void {
    const previous = this.sessions.get(session.nodeId);
    this.sessions.set(session.nodeId, session);
    previous?.close(abortedCode, 'superseded by a newer session of the same node');
    this.emit('change');
  }

  /** Removes a session if it is still the node's current one. */
  detach(session: NodeSession): void {
    if (this.sessions.get(session.nodeId) === session) {
      this.sessions.delete(session.nodeId);
      this.emit('change');
    }
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  isOnline(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  online(): NodeSession[] {
    return [...this.sessions.values()];
  }

  /** Online nodes that declared READY for exactly this manifest hash. */
  readyFor(studyId: string, manifestSha256: string): NodeSession[] {
    return this.online().filter((s) => {
      const r = s.readiness.get(studyId);
      return r !== undefined && r.manifestSha256 === manifestSha256 && r.readiness === 'READINESS_READY';
    });
  }

  broadcast(message: CoordinatorMessage): void {
    for (const s of this.sessions.values()) s.send(message);
  }

  /** Sends to one node if online; false if it is not. */
  sendTo(nodeId: string, message: CoordinatorMessage): boolean {
    const s = this.sessions.get(nodeId);
    if (s === undefined) return false;
    s.send(message);
    return true;
  }

  changed(): void {
    this.emit('change');
  }
}
