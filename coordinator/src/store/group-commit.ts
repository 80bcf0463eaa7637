import type { GroupCommitOptions } from './write-ops.js';

/** What one batch did, for metrics (`fedlhs_store_batch_size`, `fedlhs_store_commit_seconds`). */
export interface BatchStats {
  /** Units in the batch (committed and failed). */
  units: number;
  /** Units rolled back alone (their guard or a constraint failed). */
  failed: number;
  /** Ops in the batch's units, where the backend counts them (0 for closure units). */
  ops: number;
  /** Wall time of the batch's transaction, BEGIN to COMMIT, in milliseconds. */
  ms: number;
  /** False if the whole batch failed (nothing committed: a storage fault). */
  committed: boolean;
}

/** The outcome of one unit in a batch that committed. */
export type UnitOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Runs one batch as one transaction, each unit under its own SAVEPOINT. Resolves after COMMIT,
 * with one outcome per unit in order (a unit that failed was rolled back to its savepoint alone).
 * Throws if the batch as a whole failed and nothing of it committed.
 */
export type BatchRunner<U, R> = (units: readonly U[]) => Promise<UnitOutcome<R>[]> | UnitOutcome<R>[];

export interface GroupCommitterOptions<U> extends GroupCommitOptions {
  /** Called after every batch (committed or not); must not throw. */
  onBatch?: (stats: BatchStats) => void;
  /** Ops in a unit, for `BatchStats.ops`. */
  countOps?: (unit: U) => number;
  /** Turns a driver error (a failed unit's, or the batch's) into what the caller sees, e.g. STORE_UNAVAILABLE. */
  mapError?: (err: unknown) => unknown;
}

// The real timers, taken at load: a test that fakes timers (vi.useFakeTimers) must not be able to
// stall a real store's commits, which it does not mean to control.
const timers = { setImmediate, clearImmediate, setTimeout, clearTimeout };

interface Pending<U, R> {
  unit: U;
  resolve: (value: R) => void;
  reject: (err: unknown) => void;
}

/**
 * 0 = the next macrotask. Measured (2000 accepted updates, SQLite WAL synchronous=FULL): a 2–5 ms
 * window gained nothing over 0 with many callers (units pile up while the previous batch's fsync
 * runs anyway) and added 2–5 ms to every lone unit.
 */
export const DEFAULT_WINDOW_MS = 0;
export const DEFAULT_MAX_UNITS = 256;

/**
 * Group commit (design §2.1): units queue up; the first unit of a batch waits `windowMs` for
 * others (0 = the next macrotask), then up to `maxUnits` run in one transaction with one fsync.
 * Batches run one at a time, in arrival order, so the order of one caller's units is kept.
 * A unit's promise settles only after its batch's COMMIT (or rollback).
 *
 * Generic over the backend: SQLite runs a batch synchronously (better-sqlite3), PostgreSQL on
 * its one committer connection.
 */
export class GroupCommitter<U, R> {
  private readonly queue: Pending<U, R>[] = [];
  private readonly windowMs: number;
  private readonly maxUnits: number;
  /** Cancels the scheduled flush, if one is scheduled. */
  private timer: (() => void) | undefined;
  private running = false;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly run: BatchRunner<U, R>,
    private readonly options: GroupCommitterOptions<U> = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.maxUnits = options.maxUnits ?? DEFAULT_MAX_UNITS;
    if (!(this.windowMs >= 0) || !Number.isInteger(this.maxUnits) || this.maxUnits < 1) {
      throw new RangeError(`group commit needs windowMs >= 0 and an integer maxUnits >= 1, not ${this.windowMs} and ${this.maxUnits}`);
    }
  }

  /** Queues a unit; resolves with its value once committed, rejects with its (mapped) error. */
  submit(unit: U): Promise<R> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ unit, resolve, reject });
      this.schedule();
    });
  }

  /** Units waiting for a batch. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stops accepting units and resolves once every queued unit has settled. */
  async drain(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) {
      this.clearTimer();
      void this.flush();
    }
    if (!this.running && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.running) return; // the running batch schedules the next one when it ends
    if (this.queue.length >= this.maxUnits) {
      this.clearTimer();
      void this.flush();
      return;
    }
    if (this.timer !== undefined) return;
    this.later(this.windowMs);
  }

  private later(ms: number): void {
    if (ms === 0) {
      const handle = timers.setImmediate(() => this.fire());
      this.timer = () => timers.clearImmediate(handle);
    } else {
      const handle = timers.setTimeout(() => this.fire(), ms);
      this.timer = () => timers.clearTimeout(handle);
    }
  }

  private fire(): void {
    this.timer = undefined;
    void this.flush();
  }

  private clearTimer(): void {
    this.timer?.();
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    if (this.running) return;
    const batch = this.queue.splice(0, this.maxUnits);
    if (batch.length === 0) return this.settleIdle();
    this.running = true;
    const mapError = this.options.mapError ?? ((e: unknown) => e);
    const started = performance.now();
    let outcomes: UnitOutcome<R>[] | undefined;
    let batchError: unknown;
    try {
      outcomes = await this.run(batch.map((p) => p.unit));
      if (outcomes.length !== batch.length) throw new Error(`batch runner returned ${outcomes.length} outcomes for ${batch.length} units`);
    } catch (err) {
      outcomes = undefined;
      batchError = mapError(err);
    }
    const ms = performance.now() - started;
    let failed = 0;
    batch.forEach((p, i) => {
      const o = outcomes?.[i];
      if (o === undefined) {
        failed++;
        p.reject(batchError);
      } else if (o.ok) p.resolve(o.value);
      else {
        failed++;
        p.reject(mapError(o.error));
      }
    });
    const countOps = this.options.countOps;
    try {
      this.options.onBatch?.({ units: batch.length, failed, ops: countOps === undefined ? 0 : batch.reduce((s, p) => s + countOps(p.unit), 0), ms, committed: outcomes !== undefined });
    } catch {
      // An observer's fault must not stall the store.
    }
    this.running = false;
    if (this.queue.length > 0) {
      // Units that arrived while this batch ran have waited at least as long as a window: go now,
      // but on the next macrotask, so the settled callers' continuations run (and may add units) first.
      if (this.queue.length >= this.maxUnits || this.closed) void this.flush();
      else if (this.timer === undefined) this.later(0);
    } else this.settleIdle();
  }

  private settleIdle(): void {
    if (this.running || this.queue.length > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
