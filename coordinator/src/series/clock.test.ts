import { afterEach, describe, expect, it, vi } from 'vitest';
import { MovableClock } from './clock.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('MovableClock', () => {
  it('fires a timer moved past at once, and one set a few ms past the new time a few ms later (not after its real delay)', () => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.UTC(2026, 10, 30, 11, 0, 0));
    const clock = new MovableClock();
    const due = Date.UTC(2026, 11, 1);
    const fired: string[] = [];
    // Set as a scheduler does: the delay computed a moment before the timer is made, so its time lands a little after `due`.
    const delay = due - clock.now();
    vi.advanceTimersByTime(5);
    clock.setTimer(delay, () => fired.push('late by 5 ms'));
    clock.setTimer(due - clock.now() - 1000, () => fired.push('before'));
    clock.advanceTo(due);
    expect(fired).toEqual(['before']);
    // Re-armed for what is left on the moved clock: 5 ms of real time, not 13 hours.
    vi.advanceTimersByTime(5);
    expect(fired).toEqual(['before', 'late by 5 ms']);
  });

  it('runs on real time between moves, a cancelled timer never fires, and it moves forward only', () => {
    vi.useFakeTimers();
    const clock = new MovableClock();
    const fired: number[] = [];
    const cancel = clock.setTimer(1000, () => fired.push(1));
    clock.setTimer(2000, () => fired.push(2));
    cancel();
    vi.advanceTimersByTime(2000);
    expect(fired).toEqual([2]);
    clock.set(Date.UTC(2020, 0, 1));
    expect(() => clock.set(Date.UTC(2019, 0, 1))).toThrow(/moves forward only/);
    expect(() => clock.advance(-1)).toThrow(/forward only/);
  });
});
