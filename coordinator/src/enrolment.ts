import { randomBytes } from 'node:crypto';
import { parseBearer } from '@fedlhs/service';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { formatNodeCredential, hashSecret, newJoinToken, newSecret, parseNodeCredential, sameHash } from './credentials.js';
import type { SessionRegistry } from './sessions.js';
import { revokedError, type NodeCalls } from './node-calls.js';
import type { CoordinatorStore, NodeRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';

/** How often pending last-seen times are written, by default. */
export const SEEN_FLUSH_MS = 5000;

export interface NodeDirectoryOptions {
  store: CoordinatorStore;
  /** The coordinator's logger (a failed last-seen flush is logged at warn). */
  log: Logger;
  /** Longest a last-seen time waits in memory before it is written (default SEEN_FLUSH_MS). */
  flushIntervalMs?: number;
}

type SeenOp = Extract<WriteOp, { op: 'node.seen' }>;

/**
 * Every enrolled node in memory (about 100 bytes each), so that authenticating a call reads no
 * database (design §5): loaded once (`load`, or lazily by the first lookup), then kept current by
 * enrolment (`add`) and revocation (`setRevoked`, which takes effect before the store write returns).
 *
 * It also holds the nodes' last-seen times and agent versions write-behind: `seen` updates the
 * record in memory at once and queues one `node.seen` op per node (the latest wins); the queue is
 * written as one `store.write(…, 'node.seen')` unit at most `flushIntervalMs` after its first
 * entry, and by `flush`/`close`. An orderly shutdown (`close`) loses nothing; a crash loses at
 * most one interval of last-seen times, which only inform operators. `list` and `get` always show
 * the in-memory values, so read nodes here rather than from the store.
 */
export class NodeDirectory {
  private readonly store: CoordinatorStore;
  private readonly log: Logger;
  private readonly flushIntervalMs: number;
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly pending = new Map<string, SeenOp>();
  private loading: Promise<void> | undefined;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(opts: NodeDirectoryOptions) {
    this.store = opts.store;
    this.log = opts.log;
    this.flushIntervalMs = opts.flushIntervalMs ?? SEEN_FLUSH_MS;
  }

  /** Reads every node once (later calls return the same promise). */
  load(): Promise<void> {
    this.loading ??= this.store.listNodes().then((rows) => {
      // A node enrolled or seen while the list was read is newer in memory: keep that one.
      for (const n of rows) if (!this.nodes.has(n.id)) this.nodes.set(n.id, n);
      this.loaded = true;
    });
    return this.loading;
  }

  /** A node by id, once loaded (loads on first use). No database read after that. */
  async find(id: string): Promise<NodeRecord | undefined> {
    if (!this.loaded) await this.load();
    return this.nodes.get(id);
  }

  /** A node by id if loaded (undefined before `load` resolved). */
  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /** Every node, in enrolment order, with in-memory last-seen times. */
  async list(): Promise<NodeRecord[]> {
    if (!this.loaded) await this.load();
    return [...this.nodes.values()].sort((a, b) => a.createdAt - b.createdAt).map((n) => ({ ...n }));
  }

  /**
   * Every loaded node without copying (enrolment order: loaded in that order, then appended as
   * they enrol), for views that read each node once per request. Do not modify the records.
   */
  values(): Iterable<Readonly<NodeRecord>> {
    return this.nodes.values();
  }

  /** Number of nodes known (enrolled, revoked included). */
  get size(): number {
    return this.nodes.size;
  }

  /** A node the store has just created (enrolment). */
  add(node: NodeRecord): void {
    this.nodes.set(node.id, { ...node });
  }

  /** Marks a node revoked at `at` (null undoes it, when the store write failed). */
  setRevoked(id: string, at: number | null): void {
    const n = this.nodes.get(id);
    if (n !== undefined) n.revokedAt = at;
  }

  /** Records that a node was seen: in memory now, in the store with the next flush. */
  seen(id: string, at: number, agentVersion: string, trainingBackend: string): void {
    const n = this.nodes.get(id);
    if (n !== undefined) {
      n.lastSeenAt = at;
      n.agentVersion = agentVersion;
      n.trainingBackend = trainingBackend;
    }
    // Re-inserted so that the map's order is the order of the latest sightings.
    this.pending.delete(id);
    this.pending.set(id, { op: 'node.seen', id, at, agentVersion, trainingBackend });
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush().catch(() => undefined); // logged in flush; retried with the next sighting or close
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Last-seen times not yet written. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Writes every pending last-seen time as one unit. On failure the entries go back to the
   * queue (unless a newer sighting replaced them), a warning is logged and the error rethrown.
   */
  flush(): Promise<void> {
    // Flushes run one after another, so an older unit never lands after a newer one.
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and writes what is pending. Call before closing the store. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async flushNow(): Promise<void> {
    if (this.pending.size === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const ops = [...this.pending.values()];
    this.pending.clear();
    try {
      await this.store.write(ops, 'node.seen');
    } catch (err) {
      for (const op of ops) if (!this.pending.has(op.id)) this.pending.set(op.id, op);
      this.log.warn({ event: 'node.seen_flush_failed', err, nodes: ops.length }, 'could not write last-seen times; kept in memory for the next flush');
      if (!this.closed && this.timer === undefined) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.flush().catch(() => undefined);
        }, this.flushIntervalMs);
        this.timer.unref();
      }
      throw err;
    }
  }
}

/** What enrolment needs from the coordinator that builds it. */
export interface EnrolmentOptions {
  store: CoordinatorStore;
  sessions: SessionRegistry;
  /** The coordinator's logger; log lines keep the coordinator's component. */
  log: Logger;
  now: () => number;
  /** The node directory shared with the control sessions; one of its own if absent. */
  nodes?: NodeDirectory;
  /** In-flight calls per node, ended when the node is revoked; none tracked if absent. */
  calls?: NodeCalls;
}

/**
 * What enrolment records of the agent that enrols (the wire's AgentInfo satisfies it); a plain
 * shape so that proto types stay at the edges (design §1.6).
 */
export interface EnrollingAgent {
  agentVersion: string;
  trainingBackend: string;
}

const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Enrolment and authentication of nodes: join tokens, their trade for a node credential, the
 * check of that credential on every call, and revocation.
 */
export class Enrolment {
  private readonly store: CoordinatorStore;
  private readonly sessions: SessionRegistry;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Every node in memory: authentication reads no database. */
  readonly nodes: NodeDirectory;
  private readonly calls: NodeCalls | undefined;

  constructor(opts: EnrolmentOptions) {
    this.store = opts.store;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.now = opts.now;
    this.nodes = opts.nodes ?? new NodeDirectory({ store: opts.store, log: opts.log });
    this.calls = opts.calls;
  }

  /** Issues a one-time join token for a site. The token is returned once and stored hashed. */
  async createJoinToken(siteName: string, ttlSeconds: number, createdBy: string): Promise<{ token: string; siteName: string; expiresAt: number }> {
    if (!SITE_NAME.test(siteName)) throw new FedlhsError('INVALID_ARGUMENT', `site name ${JSON.stringify(siteName)} must be 1-64 letters, digits, ".", "_" or "-"`, { details: { field: 'site' } });
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > 30 * 86400) {
      throw new FedlhsError('INVALID_ARGUMENT', `token lifetime ${ttlSeconds}s must be a whole number of seconds from 60 to 2592000 (30 days)`, { details: { field: 'ttlSeconds' } });
    }
    const token = newJoinToken();
    const createdAt = this.now();
    const expiresAt = createdAt + ttlSeconds * 1000;
    await this.store.insertJoinToken({
      id: `jt_${randomBytes(6).toString('hex')}`, tokenHash: hashSecret(token), siteName, createdAt, expiresAt, usedAt: null, usedByNode: null, createdBy,
    });
    this.log.info({ event: 'join_token.issued', siteName, expiresAt: new Date(expiresAt).toISOString(), createdBy }, 'join token issued');
    return { token, siteName, expiresAt };
  }

  /** Trades a join token for a node credential. */
  async enrol(joinToken: string, siteName: string, agent: EnrollingAgent | null): Promise<{ nodeId: string; credential: string; siteName: string }> {
    if (!/^fjt_[A-Za-z0-9_-]{20,128}$/.test(joinToken)) throw new FedlhsError('INVALID_ARGUMENT', 'join_token is missing or malformed', { details: { field: 'join_token' } });
    if (!SITE_NAME.test(siteName)) throw new FedlhsError('INVALID_ARGUMENT', 'site_name is missing or malformed', { details: { field: 'site_name' } });
    const record = await this.store.findJoinToken(hashSecret(joinToken));
    if (record === undefined) throw new FedlhsError('JOIN_TOKEN_INVALID', 'join token is not valid', { details: { why: 'unknown' } });
    if (record.usedAt !== null) throw new FedlhsError('JOIN_TOKEN_INVALID', `join token was already used on ${new Date(record.usedAt).toISOString()}`, { details: { why: 'used' } });
    if (record.expiresAt <= this.now()) throw new FedlhsError('JOIN_TOKEN_INVALID', `join token expired on ${new Date(record.expiresAt).toISOString()}`, { details: { why: 'expired' } });
    if (record.siteName !== siteName) throw new FedlhsError('SITE_MISMATCH', `join token was issued for site "${record.siteName}", not "${siteName}"`);
    const nodeId = `node_${randomBytes(8).toString('hex')}`;
    const secret = newSecret();
    const node: NodeRecord = {
      id: nodeId, siteName, credentialHash: hashSecret(secret), createdAt: this.now(), revokedAt: null, lastSeenAt: null,
      agentVersion: agent?.agentVersion ?? '', trainingBackend: agent?.trainingBackend ?? '',
    };
    if (!(await this.store.redeemJoinToken(record.id, node))) throw new FedlhsError('JOIN_TOKEN_INVALID', 'join token was already used', { details: { why: 'used' } });
    this.nodes.add(node);
    this.log.info({ event: 'node.enrolled', nodeId, siteName }, 'node enrolled');
    return { nodeId, credential: formatNodeCredential(nodeId, secret), siteName };
  }

  /** Resolves "Bearer fnc_…" metadata to an active node, or throws UNAUTHENTICATED. */
  async authenticate(authorization: string | undefined): Promise<NodeRecord> {
    // RFC 9110 §11.1: the scheme is case-insensitive, then one or more spaces or tabs.
    const bearer = parseBearer(authorization);
    if (!bearer.ok) {
      throw new FedlhsError('CREDENTIAL_INVALID', bearer.why === 'missing'
        ? 'missing "authorization: Bearer <node credential>" metadata'
        : 'the authorization metadata is not "Bearer <node credential>"', { details: { why: bearer.why } });
    }
    const parsed = parseNodeCredential(bearer.credential);
    if (parsed === undefined) throw new FedlhsError('CREDENTIAL_INVALID', 'node credential is malformed', { details: { why: 'malformed' } });
    const node = await this.nodes.find(parsed.nodeId);
    if (node === undefined || !sameHash(node.credentialHash, hashSecret(parsed.secret))) throw new FedlhsError('CREDENTIAL_INVALID', 'node credential is not valid', { details: { why: 'unknown' } });
    if (node.revokedAt !== null) throw new FedlhsError('CREDENTIAL_INVALID', `node credential was revoked on ${new Date(node.revokedAt).toISOString()}`, { details: { why: 'revoked' } });
    return node;
  }

  /**
   * Revokes a node: its calls fail from now on (the in-memory directory refuses the credential
   * before the store write returns) and its session is closed.
   */
  async revokeNode(nodeId: string, by: string, unauthenticatedCode: number): Promise<void> {
    const node = await this.nodes.find(nodeId);
    if (node === undefined) throw new FedlhsError('NOT_FOUND', `no node ${nodeId}`, { details: { what: 'node', id: nodeId } });
    if (node.revokedAt !== null) throw new FedlhsError('ALREADY_REVOKED', `node ${nodeId} is already revoked`);
    const at = this.now();
    this.nodes.setRevoked(nodeId, at);
    let revoked: boolean;
    try {
      revoked = await this.store.revokeNode(nodeId, at);
    } catch (err) {
      this.nodes.setRevoked(nodeId, null);
      throw err;
    }
    if (!revoked) {
      // The store disagrees with memory (revoked meanwhile, or gone): believe the store.
      const stored = await this.store.getNode(nodeId);
      if (stored === undefined) throw new FedlhsError('NOT_FOUND', `no node ${nodeId}`, { details: { what: 'node', id: nodeId } });
      this.nodes.setRevoked(nodeId, stored.revokedAt);
      if (stored.revokedAt === null) throw new FedlhsError('INTERNAL', `node ${nodeId} could not be revoked`);
      throw new FedlhsError('ALREADY_REVOKED', `node ${nodeId} is already revoked`);
    }
    this.sessions.get(nodeId)?.close(unauthenticatedCode, 'node credential was revoked');
    // Every other in-flight call (uploads, downloads) ends now: nothing it sends later counts.
    const ended = this.calls?.abortAll(nodeId, revokedError(at)) ?? 0;
    this.log.warn({ event: 'node.revoked', nodeId, by, callsEnded: ended }, 'node revoked');
  }
}
