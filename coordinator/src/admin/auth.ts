import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import { parseBearer, type Logger } from '@fedlhs/service';
import type { CoordinatorMetrics } from '../metrics.js';
import { KeyedBuckets } from '../rate-limit.js';
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
 * The throttling key of a source address: the IPv4 address (an IPv4-mapped IPv6 address is its
 * IPv4 address), or the /64 prefix of an IPv6 address (one host usually holds a whole /64, so
 * keying by address would let it rotate through 2^64 keys). Also takes gRPC's `getPeer()` form
 * ("10.0.0.1:5300", "::1:5300"). Unknown sources share one key.
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  let ip = address;
  if (isIP(ip) === 0) {
    const colon = ip.lastIndexOf(':');
    ip = colon > 0 ? ip.slice(0, colon) : ip;
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  }
  if (isIP(ip) === 0) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped !== null) return mapped[1]!;
  if (isIP(ip) === 4) return ip;
  return `${expandIpv6(ip).slice(0, 4).join(':')}::/64`;
}

function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.toLowerCase().split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => (g.includes('.') ? g : g.replace(/^0+(?=.)/, '')));
}

/** Why a failed check counts against its source: a credential that was tried and is wrong. */
function countsAsFailure(err: unknown): boolean {
  // A call without any credential ('missing', e.g. a dashboard that is not logged in yet) guesses nothing.
  return (isFedlhsError(err, 'CREDENTIAL_INVALID') && err.details.why !== 'missing') || isFedlhsError(err, 'JOIN_TOKEN_INVALID');
}

export interface CredentialThrottleOptions {
  /** The metric label and log field: which credential check this guards. */
  surface: 'grpc' | 'admin';
  /** `limits.authFailuresPerMinute`: the bucket holds this many failures and refills at this rate. */
  failuresPerMinute: number;
  metrics: Pick<CoordinatorMetrics, 'authFailures' | 'authThrottled'>;
  log: Logger;
  now?: () => number;
}

/**
 * Per-source throttle of failed credential checks (limits.authFailuresPerMinute). Each failed
 * check takes a token from its source's bucket; while the bucket is empty, the source's attempts
 * are refused (RATE_LIMITED) without checking the credential, so guessing costs the guesser
 * time and the coordinator nothing. A source whose checks succeed takes no tokens: clinics or
 * operators behind one NAT are refused only if someone there exhausts the budget with wrong
 * credentials. The refusals are counted (authThrottled{surface}) and logged at warn once per
 * source per episode (event auth.throttled), not per attempt.
 */
export class CredentialThrottle {
  private readonly buckets: KeyedBuckets;
  /**
   * Sources in a throttle episode: when it was last logged and what was refused since. An episode
   * ends when the source's budget is whole again (it stopped failing for a while), not at each
   * token that trickles back during an attack. Bounded like the buckets.
   */
  private readonly episodes = new Map<string, { loggedAt: number; refused: number }>();
  private static readonly MAX_EPISODES = 10_000;
  /** A throttle that lasts is logged again this often, with the refusals since (not per attempt). */
  private static readonly REMIND_MS = 10 * 60_000;
  private readonly now: () => number;

  constructor(private readonly options: CredentialThrottleOptions) {
    const n = options.failuresPerMinute;
    this.now = options.now ?? Date.now;
    this.buckets = new KeyedBuckets(n, n / 60, this.now);
  }

  /**
   * Runs `check` (a credential check) for `source` (a remote address): throws RATE_LIMITED
   * without running it while the source has no budget; counts the failure if it throws a wrong
   * credential.
   */
  async guard<T>(source: string | undefined, check: () => Promise<T>): Promise<T> {
    const key = sourceKey(source);
    this.refuseIfThrottled(key);
    try {
      return await check();
    } catch (err) {
      if (countsAsFailure(err)) this.failed(key);
      throw err;
    }
  }

  /** Throws RATE_LIMITED while `key` has no budget left; ends its episode once it has. */
  private refuseIfThrottled(key: string): void {
    if (this.buckets.allowed(key)) {
      if (this.episodes.has(key) && this.buckets.get(key).full) this.episodes.delete(key);
      return;
    }
    const retryAfterMs = this.buckets.get(key).retryAfterMs;
    this.options.metrics.authThrottled.inc({ surface: this.options.surface });
    const t = this.now();
    const episode = this.episodes.get(key);
    if (episode === undefined || t - episode.loggedAt >= CredentialThrottle.REMIND_MS) {
      if (episode === undefined && this.episodes.size >= CredentialThrottle.MAX_EPISODES) this.episodes.clear();
      this.episodes.set(key, { loggedAt: t, refused: 1 });
      this.options.log.warn(
        {
          event: 'auth.throttled', surface: this.options.surface, source: key, retryAfterMs, failuresPerMinute: this.options.failuresPerMinute,
          ...(episode === undefined ? {} : { refusedSinceLastLog: episode.refused, continuing: true }),
        },
        `too many failed credential checks from ${key}: its attempts are refused for now (limits.authFailuresPerMinute ${this.options.failuresPerMinute})`,
      );
    } else {
      episode.refused++;
    }
    throw new FedlhsError('RATE_LIMITED', `too many failed credential checks from this address (limits.authFailuresPerMinute ${this.options.failuresPerMinute}); retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
      details: { limit: 'limits.authFailuresPerMinute', retryAfterMs },
    });
  }

  private failed(key: string): void {
    this.options.metrics.authFailures.inc({ surface: this.options.surface });
    this.buckets.get(key).take();
  }

  /** Sources tracked now (bounded by KeyedBuckets). */
  get sources(): number {
    return this.buckets.size;
  }
}

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
