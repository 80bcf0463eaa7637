/**
 * A clock for tests of schedules (coordinator EngineClock): real time plus an offset the test
 * moves forward. Timers run on real time as usual and also fire at once when `advance` moves the
 * clock past them, so a test jumps a cron schedule forward a month without sleeping, while
 * everything else (deadlines, grace periods) keeps running on real time.
 */
export class ShiftedClock {
  private offset = 0;
  private timers = new Set<{ at: number; fn: () => void; cancel: () => void }>();

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
    const handle = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, Math.max(0, ms));
    this.timers.add(timer);
    return timer.cancel;
  }

  /** Moves the clock `ms` forward and fires every timer now due, in time order. */
  advance(ms: number): void {
    this.offset += ms;
    const due = [...this.timers].filter((t) => t.at <= this.now()).sort((a, b) => a.at - b.at);
    for (const t of due) {
      t.cancel();
      t.fn();
    }
  }

  /** Moves the clock to `at` (ms since the epoch), if that is later. */
  advanceTo(at: number): void {
    if (at > this.now()) this.advance(at - this.now());
  }
}
