import { EventEmitter } from 'node:events';
import type { AgentInfo__Output, CoordinatorMessage, Readiness } from '@fedlhs/proto';

export interface ReadinessEntry {
  manifestSha256: string;
  readiness: Readiness;
  /** The agent's detail, as stored: capped (readiness.ts `capDetail`). */
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
  /**
   * The node's declared readiness per study. Change it only through `SessionRegistry.setReadiness`
   * while the session is attached, so the ready index stays exact.
   */
  readonly readiness: Map<string, ReadinessEntry>;
  readonly progress: Map<string, TaskProgress>;
  /** `Hello.capabilities` of the agent (e.g. "study-progress"); absent = none. */
  readonly capabilities?: ReadonlySet<string>;
  send(message: CoordinatorMessage): void;
  /** Ends the stream; `code`/`message` become the agent's gRPC status. */
  close(code: number, message: string): void;
}

/** Sessions per `sendInSlices` slice before yielding to the event loop (design §5). */
export const SEND_SLICE = 500;

/**
 * The nodes that are online right now, at most one session each, and the ready index: per study
 * and manifest hash, the nodes that declared READY for exactly that hash
 * (`Map<studyId, Map<manifestSha256, Set<nodeId>>>`), maintained on attach, detach and readiness
 * changes so that no question about readiness scans the sessions (design §5).
 *
 * Notifications:
 * - `onReady(studyId, fn)`: the study's ready set changed (grew or shrank). Coalesced: however
 *   many changes happen in one synchronous run, each study's listeners run once, in a microtask.
 * - `onOnline(fn)` / `onOffline(fn)`: a node's first session attached / its current session
 *   detached (a session superseded by a newer one of the same node is neither).
 * - the generic 'change' event (EventEmitter), emitted synchronously on every attach, detach
 *   and readiness change, and by `changed()`. Kept for the round engine until it uses the above.
 *
 * Listeners must not throw; if one does, the others still run and the first error is rethrown.
 */
export class SessionRegistry extends EventEmitter {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly ready = new Map<string, Map<string, Set<string>>>();
  private readonly readyListeners = new Map<string, Set<() => void>>();
  private readonly onlineListeners = new Set<(nodeId: string) => void>();
  private readonly offlineListeners = new Set<(nodeId: string) => void>();
  private readonly pendingReady = new Set<string>();
  private flushQueued = false;
  /**
   * Per node and study, the training_rows of the node's latest READY readiness (issue 11): what
   * an update's num_examples may claim. Kept across session ends (an upload may finish while
   * its node reconnects), dropped when the study ends (`forgetStudy`) or the node is revoked
   * (`forgetNode`). Only studies RUNNING here are recorded, so it holds at most
   * nodes × running studies numbers.
   */
  private readonly rows = new Map<string, Map<string, number>>();

  /** Registers a session, replacing (and closing) an older one of the same node. */
  attach(session: NodeSession, abortedCode: number): void {
    const previous = this.sessions.get(session.nodeId);
    if (previous !== undefined) this.unindex(previous);
    this.sessions.set(session.nodeId, session);
    this.index(session);
    previous?.close(abortedCode, 'superseded by a newer session of the same node');
    if (previous === undefined) notify(this.onlineListeners, session.nodeId);
    this.emit('change');
  }

  /** Removes a session if it is still the node's current one. */
  detach(session: NodeSession): void {
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.delete(session.nodeId);
    this.unindex(session);
    notify(this.offlineListeners, session.nodeId);
    this.emit('change');
  }

  /**
   * Records a session's readiness for a study and keeps the ready index exact. True if the
   * readiness or the manifest hash changed (a changed detail alone is not a change).
   */
  setReadiness(session: NodeSession, studyId: string, entry: ReadinessEntry): boolean {
    const previous = session.readiness.get(studyId);
    session.readiness.set(studyId, entry);
    const changed = previous?.readiness !== entry.readiness || previous.manifestSha256 !== entry.manifestSha256;
    if (!changed || this.sessions.get(session.nodeId) !== session) return changed;
    if (previous !== undefined) this.removeReady(studyId, previous, session.nodeId);
    this.addReady(studyId, entry, session.nodeId);
    this.emit('change');
    return changed;
  }

  /**
   * Records the training_rows a node stated with READY for a study; 0 (not stated) forgets
   * what it stated before.
   */
  setTrainingRows(nodeId: string, studyId: string, rows: number): void {
    let byStudy = this.rows.get(nodeId);
    if (rows > 0) {
      if (byStudy === undefined) this.rows.set(nodeId, (byStudy = new Map()));
      byStudy.set(studyId, rows);
      return;
    }
    byStudy?.delete(studyId);
    if (byStudy?.size === 0) this.rows.delete(nodeId);
  }

  /** The training rows of the node's latest READY for the study, if it stated any. */
  trainingRows(nodeId: string, studyId: string): number | undefined {
    return this.rows.get(nodeId)?.get(studyId);
  }

  /**
   * Forgets a study that ended: every online session's readiness for it (the ready index
   * follows) and every node's training rows. O(online sessions); once per study end.
   */
  forgetStudy(studyId: string): void {
    let changed = false;
    for (const s of this.sessions.values()) {
      const entry = s.readiness.get(studyId);
      if (entry === undefined) continue;
      s.readiness.delete(studyId);
      this.removeReady(studyId, entry, s.nodeId);
      changed = true;
    }
    for (const [nodeId, byStudy] of this.rows) {
      if (byStudy.delete(studyId) && byStudy.size === 0) this.rows.delete(nodeId);
    }
    if (changed) this.emit('change');
  }

  /** Forgets what a revoked node stated (its training rows); its session is closed by the revocation. */
  forgetNode(nodeId: string): void {
    this.rows.delete(nodeId);
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  isOnline(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /** Number of online nodes, O(1). */
  get size(): number {
    return this.sessions.size;
  }

  /** Every online session, as a new array (O(N): not for per-event paths; see `size`). */
  online(): NodeSession[] {
    return [...this.sessions.values()];
  }

  /** Online nodes that declared READY for exactly this manifest hash (O(ready), no scan). */
  readyFor(studyId: string, manifestSha256: string): NodeSession[] {
    const ids = this.ready.get(studyId)?.get(manifestSha256);
    if (ids === undefined) return [];
    const out: NodeSession[] = [];
    for (const id of ids) {
      const s = this.sessions.get(id);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /** The ids of `readyFor`, live (do not keep across awaits: it changes with the index). */
  readyIds(studyId: string, manifestSha256: string): ReadonlySet<string> {
    return this.ready.get(studyId)?.get(manifestSha256) ?? EMPTY;
  }

  /** How many online nodes are READY for exactly this hash, O(1). */
  readyCount(studyId: string, manifestSha256: string): number {
    return this.ready.get(studyId)?.get(manifestSha256)?.size ?? 0;
  }

  /** Up to `max` READY node ids in index order, O(max). */
  readySample(studyId: string, manifestSha256: string, max: number): string[] {
    const out: string[] = [];
    if (max <= 0) return out;
    for (const id of this.readyIds(studyId, manifestSha256)) {
      out.push(id);
      if (out.length >= max) break;
    }
    return out;
  }

  /** Calls `listener` (coalesced, in a microtask) whenever the study's ready set changes. Returns an unsubscribe. */
  onReady(studyId: string, listener: () => void): () => void {
    let set = this.readyListeners.get(studyId);
    if (set === undefined) this.readyListeners.set(studyId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.readyListeners.get(studyId) === set) this.readyListeners.delete(studyId);
    };
  }

  /** Calls `listener(nodeId)` synchronously when a node comes online. Returns an unsubscribe. */
  onOnline(listener: (nodeId: string) => void): () => void {
    this.onlineListeners.add(listener);
    return () => this.onlineListeners.delete(listener);
  }

  /** Calls `listener(nodeId)` synchronously when a node goes offline. Returns an unsubscribe. */
  onOffline(listener: (nodeId: string) => void): () => void {
    this.offlineListeners.add(listener);
    return () => this.offlineListeners.delete(listener);
  }

  /** Sends to every online session, synchronously (O(N); announcements use `sendInSlices`). */
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

  /**
   * Sends `messageFor(session)` (nothing when it returns undefined) to the sessions of `nodeIds`
   * online now, `SEND_SLICE` sessions at a time with a `setImmediate` between slices, so that a
   * broadcast to 10 000 nodes never holds the event loop. A session that ends or is replaced
   * meanwhile is skipped (a replacing session was sent the current state when it opened).
   * Resolves with the number of messages sent.
   */
  async sendInSlices(nodeIds: Iterable<string>, messageFor: (s: NodeSession) => CoordinatorMessage | undefined, slice = SEND_SLICE): Promise<number> {
    const targets: NodeSession[] = [];
    for (const id of nodeIds) {
      const s = this.sessions.get(id);
      if (s !== undefined) targets.push(s);
    }
    let sent = 0;
    for (let i = 0; i < targets.length; i++) {
      if (i > 0 && i % slice === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const s = targets[i]!;
      if (this.sessions.get(s.nodeId) !== s) continue;
      const message = messageFor(s);
      if (message === undefined) continue;
      s.send(message);
      sent++;
    }
    return sent;
  }

  /** The ids of every online node, as a snapshot. */
  onlineIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** Emits the generic 'change' event (wakes today's round engine; tests use it to move time). */
  changed(): void {
    this.emit('change');
  }

  private index(session: NodeSession): void {
    for (const [studyId, entry] of session.readiness) this.addReady(studyId, entry, session.nodeId);
  }

  private unindex(session: NodeSession): void {
    for (const [studyId, entry] of session.readiness) this.removeReady(studyId, entry, session.nodeId);
  }

  private addReady(studyId: string, entry: ReadinessEntry, nodeId: string): void {
    if (entry.readiness !== 'READINESS_READY') return;
    let byHash = this.ready.get(studyId);
    if (byHash === undefined) this.ready.set(studyId, (byHash = new Map()));
    let ids = byHash.get(entry.manifestSha256);
    if (ids === undefined) byHash.set(entry.manifestSha256, (ids = new Set()));
    ids.add(nodeId);
    this.readyChanged(studyId);
  }

  private removeReady(studyId: string, entry: ReadinessEntry, nodeId: string): void {
    if (entry.readiness !== 'READINESS_READY') return;
    const byHash = this.ready.get(studyId);
    const ids = byHash?.get(entry.manifestSha256);
    if (byHash === undefined || ids === undefined || !ids.delete(nodeId)) return;
    if (ids.size === 0) byHash.delete(entry.manifestSha256);
    if (byHash.size === 0) this.ready.delete(studyId);
    this.readyChanged(studyId);
  }

  private readyChanged(studyId: string): void {
    this.pendingReady.add(studyId);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flushReady());
  }

  private flushReady(): void {
    this.flushQueued = false;
    const studies = [...this.pendingReady];
    this.pendingReady.clear();
    let first: unknown;
    for (const studyId of studies) {
      const listeners = this.readyListeners.get(studyId);
      if (listeners === undefined) continue;
      try {
        notify(listeners, undefined);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** Calls every listener; rethrows the first error after all of them ran. */
function notify<T>(listeners: ReadonlySet<(arg: T) => void>, arg: T): void {
  let first: unknown;
  for (const fn of [...listeners]) {
    try {
      fn(arg);
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}
