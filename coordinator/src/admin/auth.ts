import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FedlhsError } from '@fedlhs/core';
import { parseBearer } from '@fedlhs/service';
import type { CredentialThrottle } from '../credential-throttle.js';
import type { CoordinatorStore } from '../store.js';

export type Role = 'viewer' | 'admin';

export interface Operator {
  name: string;
  role: Role;
}

const SESSION_COOKIE = 'fedlhs_session';
const SESSION_TTL_MS = 12 * 3600_000;

const hash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Who is calling the admin API: a bearer token (CLI, scripts) or a dashboard session cookie
 * created from one. Tokens belong to operators with a role; the bootstrap admin token from
 * the configuration is the operator "admin". Tokens are stored hashed; sessions live in memory.
 */
export class OperatorAuth {
  private readonly sessions = new Map<string, { operator: Operator; expires: number }>();
  private readonly bootstrap: Buffer;

  /**
   * `throttle`: failed bearer tokens and dashboard logins per source address
   * (limits.authFailuresPerMinute); none in unit tests that do not need one.
   */
  constructor(private readonly store: CoordinatorStore, bootstrapAdminToken: string, private readonly throttle?: CredentialThrottle) {
    if (bootstrapAdminToken.trim().length < 16) throw new FedlhsError('CONFIG_INVALID', 'admin.token must be at least 16 characters (an empty admin-token file is refused)', { details: { key: 'admin.token' } });
    this.bootstrap = Buffer.from(bootstrapAdminToken);
  }

  /** The operator a token belongs to, or undefined. */
  async fromToken(token: string): Promise<Operator | undefined> {
    if (token === '') return undefined;
    const given = Buffer.from(token);
    if (given.length === this.bootstrap.length && timingSafeEqual(given, this.bootstrap)) return { name: 'admin', role: 'admin' };
    const record = await this.store.findOperator(hash(token));
    return record === undefined || record.revokedAt !== null ? undefined : { name: record.name, role: record.role };
  }

  /**
   * Authenticates a request by bearer token (`parseBearer`: scheme in any case, then spaces or
   * tabs) or session cookie; throws CREDENTIAL_INVALID. Another scheme (a proxy's `Basic`) does not
   * hide a valid session cookie; without one it is named in the error.
   */
  async authenticate(req: IncomingMessage): Promise<Operator> {
    return this.throttle === undefined ? this.check(req) : this.throttle.guard(req.socket.remoteAddress, () => this.check(req));
  }

  private async check(req: IncomingMessage): Promise<Operator> {
    const bearer = parseBearer(req.headers.authorization);
    if (bearer.ok) {
      const operator = await this.fromToken(bearer.credential);
      if (operator !== undefined) return operator;
      throw new FedlhsError('CREDENTIAL_INVALID', 'the operator token is not valid', { details: { why: 'unknown' } });
    }
    const sid = sessionIdOf(req);
    const session = sid === undefined ? undefined : this.sessions.get(sid);
    if (session !== undefined && session.expires > Date.now()) return session.operator;
    if (sid !== undefined) this.sessions.delete(sid);
    if (bearer.why === 'malformed') {
      throw new FedlhsError('CREDENTIAL_INVALID', 'the Authorization header is not "Bearer <operator token>" (and there is no dashboard session)', { details: { why: 'malformed' } });
    }
    throw new FedlhsError('CREDENTIAL_INVALID', 'log in with an operator token (Authorization: Bearer <token>, or the dashboard)', { details: { why: 'missing' } });
  }

  /** Starts a dashboard session for a login from `source` (its remote address); returns the Set-Cookie header value. */
  async login(token: string, source?: string): Promise<{ operator: Operator; cookie: string }> {
    const check = async (): Promise<Operator> => {
      const found = await this.fromToken(token);
      if (found === undefined) throw new FedlhsError('CREDENTIAL_INVALID', 'the operator token is not valid', { details: { why: 'unknown' } });
      return found;
    };
    const operator = this.throttle === undefined ? await check() : await this.throttle.guard(source, check);
    const sid = randomBytes(32).toString('base64url');
    this.sessions.set(sid, { operator, expires: Date.now() + SESSION_TTL_MS });
    return { operator, cookie: `${SESSION_COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}` };
  }

  logout(req: IncomingMessage): string {
    const sid = sessionIdOf(req);
    if (sid !== undefined) this.sessions.delete(sid);
    return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  /** Creates an operator and returns its token (shown once). */
  async createOperator(name: string, role: Role, by: string): Promise<string> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) throw new FedlhsError('INVALID_ARGUMENT', 'name: 1-64 letters, digits, ".", "_", "@" or "-"', { details: { field: 'name' } });
    if (role !== 'viewer' && role !== 'admin') throw new FedlhsError('INVALID_ARGUMENT', `role must be "viewer" or "admin", got ${JSON.stringify(role)}`, { details: { field: 'role' } });
    const token = `fot_${randomBytes(32).toString('base64url')}`;
    try {
      await this.store.insertOperator({ id: `op_${randomBytes(6).toString('hex')}`, name, role, tokenHash: hash(token), createdAt: Date.now(), createdBy: by, revokedAt: null });
    } catch (err) {
      if (/UNIQUE/.test((err as Error).message)) throw new FedlhsError('OPERATOR_EXISTS', `an operator named ${name} exists`, { cause: err });
      throw err;
    }
    return token;
  }
}

function sessionIdOf(req: IncomingMessage): string | undefined {
  const cookie = req.headers.cookie;
  if (cookie === undefined) return undefined;
  for (const part of cookie.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === SESSION_COOKIE && v !== undefined && v !== '') return v;
  }
  return undefined;
}

/** Throws ROLE_REQUIRED unless the operator is an admin. */
export function requireAdmin(operator: Operator, action: string): void {
  if (operator.role !== 'admin') throw new FedlhsError('ROLE_REQUIRED', `${action} needs the admin role; ${operator.name} is a ${operator.role}`, { details: { role: 'admin' } });
}
