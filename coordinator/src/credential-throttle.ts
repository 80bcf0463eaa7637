import { isIP } from 'node:net';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorMetrics } from './metrics.js';
import { KeyedBuckets } from './rate-limit.js';

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
  // A revoked credential is not a guess either: a revoked clinic that keeps retrying must not
  // lock out the other clinics behind its address.
  return (isFedlhsError(err, 'CREDENTIAL_INVALID') && err.details.why !== 'missing' && err.details.why !== 'revoked') || isFedlhsError(err, 'JOIN_TOKEN_INVALID');
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
