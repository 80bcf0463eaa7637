/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`; each event takes one. Used for the
 * control-session message rate (one bucket per session) and for failed credential checks (one
 * bucket per source address, see `KeyedBuckets`). Time comes from `now` so tests move it.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly capacity: number, private readonly perSecond: number, private readonly now: () => number = Date.now) {
    if (!(capacity >= 1) || !(perSecond > 0)) throw new RangeError(`TokenBucket: capacity ${capacity} must be at least 1 and perSecond ${perSecond} above 0`);
    this.tokens = capacity;
    this.last = now();
  }

  /** Takes one token if there is one; false means the event is over the rate. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is available now, without taking it. */
  get available(): boolean {
    this.refill();
    return this.tokens >= 1;
  }

  /** Whether the bucket is full (nothing taken that has not been refilled): a keyed bucket can be forgotten. */
  get full(): boolean {
    this.refill();
    return this.tokens >= this.capacity;
  }

  /** Milliseconds until the next token. */
  get retryAfterMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }

  private refill(): void {
    const t = this.now();
    if (t > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.perSecond);
      this.last = t;
    }
  }
}

/**
 * One `TokenBucket` per key (e.g. a source address), created on first use. Full buckets are
 * forgotten by `sweep()`, and at most `maxKeys` keys are kept (the oldest are dropped first), so
 * the state is bounded whatever the number of sources.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  /** The bucket of `key` (created full). */
  get(key: string): TokenBucket {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.sweep();
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
      b = new TokenBucket(this.capacity, this.perSecond, this.now);
      this.buckets.set(key, b);
    }
    return b;
  }

  /** Whether `key` has budget left now (an unknown key has). */
  allowed(key: string): boolean {
    return this.buckets.get(key)?.available ?? true;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Forgets the buckets that are full again. */
  sweep(): void {
    for (const [key, b] of this.buckets) if (b.full) this.buckets.delete(key);
  }
}
