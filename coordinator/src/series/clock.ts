import { FedlhsError } from '@fedlhs/core';
import type { EngineClock } from '../engine/study-runner.js';

/** Node's timers overflow past 2^31 − 1 ms. */
const MAX_REAL_DELAY = 2 ** 31 - 1;

interface Timer {
  /** When it is due, on this clock. */
  at: number;
  fn: () => void;
  handle: NodeJS.Timeout | undefined;
}

/**
 * A clock operators (or a simulation) move: real time plus an offset. A timer fires when this
 * clock reaches its time: in real time as usual, and at once when the clock is moved past it;
 * after a move, the timers not yet due are re-armed for what is left of them on the moved
 * clock (a timer a few milliseconds past the new time fires a few milliseconds later, not after
 * the real delay it was set with). So a series' cron schedule can be driven through simulated
 * years without waiting, while deadlines and grace periods keep running on real time. Used as the
 * series scheduler's clock when `series.simulatedClock` is on (simulations, `fedlhs-simulate
 * lhs`) and by tests; never for anything a clinic relies on.
 */
export class MovableClock implements EngineClock {
  private offset = 0;
  private moved = false;
  private readonly timers = new Set<Timer>();

  constructor(private readonly base: () => number = Date.now) {}

  now(): number {
    return this.base() + this.offset;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.now() + Math.max(0, ms), fn, handle: undefined };
    this.timers.add(timer);
    this.arm(timer);
    return () => this.cancel(timer);
  }

  /** Moves the clock `ms` forward, fires every timer now due (in time order) and re-arms the others. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new FedlhsError('INVALID_ARGUMENT', `the clock moves forward only (by ${ms} ms)`);
    this.offset += ms;
    this.moved = true;
    const now = this.now();
    const timers = [...this.timers].sort((a, b) => a.at - b.at);
    for (const t of timers) {
      if (t.at <= now) {
        this.cancel(t);
        t.fn();
      } else {
        this.arm(t);
      }
    }
  }

  /** Moves the clock to `at` (ms since the epoch) if that is later; never back. */
  advanceTo(at: number): void {
    if (at > this.now()) this.advance(at - this.now());
  }

  /**
   * Sets the clock to `at`: the first time anywhere (a simulation starts in its own past), after
   * that only forward (INVALID_ARGUMENT naming both times otherwise: a schedule never runs back).
   */
  set(at: number): void {
    if (!Number.isSafeInteger(at) || at < 0) throw new FedlhsError('INVALID_ARGUMENT', `now: a time in ms since 1970 is required, got ${String(at)}`, { details: { field: 'now' } });
    if (!this.moved) {
      this.offset = at - this.base();
      this.moved = true;
      for (const t of this.timers) this.arm(t);
      return;
    }
    if (at < this.now()) throw new FedlhsError('INVALID_ARGUMENT', `now: the series clock moves forward only (${new Date(at).toISOString()} is before ${new Date(this.now()).toISOString()})`, { details: { field: 'now' } });
    this.advanceTo(at);
  }

  /** (Re-)arms the real timeout for what is left of `t` on this clock. */
  private arm(t: Timer): void {
    if (t.handle !== undefined) clearTimeout(t.handle);
    const left = Math.max(0, t.at - this.now());
    t.handle = setTimeout(() => {
      t.handle = undefined;
      if (!this.timers.has(t)) return;
      if (this.now() >= t.at) {
        this.timers.delete(t);
        t.fn();
      } else {
        this.arm(t);
      }
    }, Math.min(left, MAX_REAL_DELAY));
  }

  private cancel(t: Timer): void {
    if (t.handle !== undefined) clearTimeout(t.handle);
    t.handle = undefined;
    this.timers.delete(t);
  }
}
