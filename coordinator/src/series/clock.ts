import { FedlhsError } from '@fedlhs/core';
import type { EngineClock } from '../engine/study-runner.js';

/**
 * A clock operators (or a simulation) move: real time plus an offset. Timers run on real time as
 * usual and also fire at once when the clock is moved past them, so a series' cron schedule can
 * be driven through simulated years without waiting, while deadlines and grace periods keep
 * running on real time. Used as the series scheduler's clock when `series.simulatedClock` is on
 * (simulations, `fedlhs-simulate lhs`) and by tests; never for anything a clinic relies on.
 */
export class MovableClock implements EngineClock {
  private offset = 0;
  private moved = false;
  private readonly timers = new Set<{ at: number; fn: () => void; cancel: () => void }>();

  constructor(private readonly base: () => number = Date.now) {}

  now(): number {
    return this.base() + this.offset;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = {
      at: this.now() + Math.max(0, ms),
      fn,
      cancel: () => {
        clearTimeout(handle);
        this.timers.delete(timer);
      },
    };
    // Node's timers overflow past 2^31 − 1 ms: a later timer is re-armed when it fires early.
    const handle = setTimeout(() => {
      this.timers.delete(timer);
      if (this.now() >= timer.at) fn();
      else this.timers.add({ ...timer, cancel: this.setTimer(timer.at - this.now(), fn) });
    }, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    this.timers.add(timer);
    return () => timer.cancel();
  }

  /** Moves the clock `ms` forward and fires every timer now due, in time order. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new FedlhsError('INVALID_ARGUMENT', `the clock moves forward only (by ${ms} ms)`);
    this.offset += ms;
    this.moved = true;
    const due = [...this.timers].filter((t) => t.at <= this.now()).sort((a, b) => a.at - b.at);
    for (const t of due) {
      t.cancel();
      t.fn();
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
      return;
    }
    if (at < this.now()) throw new FedlhsError('INVALID_ARGUMENT', `now: the series clock moves forward only (${new Date(at).toISOString()} is before ${new Date(this.now()).toISOString()})`, { details: { field: 'now' } });
    this.advanceTo(at);
  }
}
