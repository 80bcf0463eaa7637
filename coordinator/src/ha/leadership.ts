import { performance } from 'node:perf_hooks';
import type { LeaseClient, LeaseView } from './lease.js';

/** Why an active stops serving. */
export type DemoteReason = 'lease_expired' | 'lease_lost' | 'fenced' | 'start_failed';

/** The part of a logger the keeper uses (pino's fits). */
export interface LeadershipLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LeadershipKeeperOptions {
  lease: LeaseClient;
  leaseMs: number;
  log: LeadershipLogger;
  /**
   * The lease was taken (fence already + 1 in the database): start serving. Called without
   * waiting; renewals go on meanwhile, so a slow start-up does not lose the lease.
   */
  onTakeover(fence: number, previous: string | null): void;
  /** This process must stop serving now (called once per term, before anything else happens). */
  onDemote(reason: DemoteReason, fence: number): void;
  /** Whether a takeover may happen now (false while the previous term is still shutting down). */
  canTakeOver?: () => boolean;
  /** Monotonic milliseconds (tests); default performance.now. */
  monotonic?: () => number;
}

/**
 * Keeps or seeks the leadership lease (lease.ts): every leaseMs/3 an active renews and a standby
 * tries to take it. The active's deadline is the local monotonic time at which it SENT its last
 * successful renewal plus leaseMs: the database computed the expiry from its own `now()`, which
 * is no earlier than that send, so the active always stops serving before a standby can see the
 * lease expired (clock rates aside), even if the renewal's answer never arrives. A timer fires at
 * the deadline, so a renewal that hangs does not delay the demotion.
 */
export class LeadershipKeeper {
  private role: 'standby' | 'active' = 'standby';
  private fenceValue: number | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> | undefined;
  private lastSeen: LeaseView | undefined;
  private readonly now: () => number;
  private readonly interval: number;

  constructor(private readonly opts: LeadershipKeeperOptions) {
    this.now = opts.monotonic ?? (() => performance.now());
    this.interval = Math.max(100, Math.floor(opts.leaseMs / 3));
  }

  /** Whether this process holds the lease. */
  get isActive(): boolean {
    return this.role === 'active';
  }

  /** The fence of the lease this process holds, if it does. */
  get fence(): number | undefined {
    return this.fenceValue;
  }

  /** The holder's advertised address at the last check ('' or undefined when unknown), for NOT_LEADER answers. */
  get leaderAddress(): string | undefined {
    const seen = this.lastSeen;
    return seen === undefined || seen.holder === null || seen.holder === this.opts.lease.holder || seen.address === '' ? undefined : seen.address;
  }

  /** Starts checking, the first time now; resolves when that first check is done. */
  start(): Promise<void> {
    this.ticking = this.tick();
    return this.ticking;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.tickTimer = setTimeout(() => {
      this.ticking = this.tick();
    }, this.interval);
  }

  private async tick(): Promise<void> {
    const sent = this.now();
    try {
      if (this.role === 'active') await this.renew(sent);
      else await this.seek(sent);
    } finally {
      this.schedule();
    }
  }

  private async renew(sent: number): Promise<void> {
    const fence = this.fenceValue!;
    let ok: boolean;
    try {
      ok = await this.opts.lease.renew(fence);
    } catch (err) {
      if (this.role === 'active' && this.fenceValue === fence) {
        this.opts.log.warn({ event: 'ha.lease_renew_failed', fence, err: (err as Error).message, msLeft: Math.round(this.deadlineIn()) }, `could not renew the leadership lease: ${(err as Error).message}`);
      }
      return;
    }
    if (this.role !== 'active' || this.fenceValue !== fence) {
      // Demoted meanwhile (the answer came after the deadline): a lease extended for a process
      // that no longer serves would only delay the standby, so it is let go at once.
      if (ok) await this.opts.lease.release(fence).catch(() => false);
      return;
    }
    if (!ok) {
      this.demote('lease_lost');
      return;
    }
    this.armDeadline(sent + this.opts.leaseMs);
  }

  private deadline = 0;
  private deadlineIn(): number {
    return this.deadline - this.now();
  }

  private armDeadline(at: number): void {
    this.deadline = at;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (this.role === 'active') this.demote('lease_expired');
    }, Math.max(0, at - this.now()));
  }

  private async seek(sent: number): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.opts.canTakeOver?.() === false) {
        this.lastSeen = await this.opts.lease.read();
        return;
      }
      const got = await this.opts.lease.tryAcquire();
      if (got === undefined) {
        this.lastSeen = await this.opts.lease.read();
        return;
      }
      if (this.stopped) {
        await this.opts.lease.release(got.fence).catch(() => undefined);
        return;
      }
      this.role = 'active';
      this.fenceValue = got.fence;
      this.armDeadline(sent + this.opts.leaseMs);
      this.opts.onTakeover(got.fence, got.previous);
    } catch (err) {
      this.opts.log.warn({ event: 'ha.lease_check_failed', err: (err as Error).message }, `could not check the leadership lease: ${(err as Error).message}`);
    }
  }

  /** A write found a newer fence in the database (store fence check): stop serving now. */
  fenced(fence: number): void {
    if (this.role === 'active' && this.fenceValue === fence) this.demote('fenced');
  }

  /** Gives the lease up (a start-up that failed): stop serving and let it expire now. */
  async relinquish(reason: DemoteReason): Promise<void> {
    const fence = this.fenceValue;
    if (this.role !== 'active' || fence === undefined) return;
    this.demote(reason);
    await this.opts.lease.release(fence).catch(() => undefined);
  }

  private demote(reason: DemoteReason): void {
    const fence = this.fenceValue!;
    this.role = 'standby';
    this.fenceValue = undefined;
    clearTimeout(this.deadlineTimer);
    this.opts.onDemote(reason, fence);
  }

  /**
   * Stops checking; an active lets its lease expire now (call after its last write), so a
   * standby takes over at its next check instead of after a whole lease. Returns the fence released.
   */
  async stop(): Promise<number | undefined> {
    this.stopped = true;
    clearTimeout(this.tickTimer);
    clearTimeout(this.deadlineTimer);
    await this.ticking?.catch(() => undefined);
    clearTimeout(this.tickTimer);
    const fence = this.role === 'active' ? this.fenceValue : undefined;
    this.role = 'standby';
    this.fenceValue = undefined;
    let released: number | undefined;
    if (fence !== undefined && (await this.opts.lease.release(fence).catch(() => false))) released = fence;
    await this.opts.lease.close();
    return released;
  }
}
