import { randomBytes } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { formatNodeCredential, hashSecret, newJoinToken, newSecret, parseNodeCredential, sameHash } from './credentials.js';
import type { SessionRegistry } from './sessions.js';
import type { CoordinatorStore, NodeRecord } from './store.js';

/** What enrolment needs from the coordinator that builds it. */
export interface EnrolmentOptions {
  store: CoordinatorStore;
  sessions: SessionRegistry;
  /** The coordinator's logger; log lines keep the coordinator's component. */
  log: Logger;
  now: () => number;
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

  constructor(opts: EnrolmentOptions) {
    this.store = opts.store;
    this.sessions = opts.sessions;
    this.log = opts.log;
    this.now = opts.now;
  }

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
    this.log.info({ event: 'join_token.issued', siteName, expiresAt: new Date(expiresAt).toISOString(), createdBy }, 'join token issued');
    return { token, siteName, expiresAt };
  }

  /** Trades a join token for a node credential. */
  async enrol(joinToken: string, siteName: string, agent: EnrollingAgent | null): Promise<{ nodeId: string; credential: string; siteName: string }> {
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
    this.log.info({ event: 'node.enrolled', nodeId, siteName }, 'node enrolled');
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
    this.log.warn({ event: 'node.revoked', nodeId, by }, 'node revoked');
  }
}
