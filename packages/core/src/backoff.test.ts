import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffDelay } from './backoff.js';

const zero = (): number => 0;
const one = (): number => 1;
const half = (): number => 0.5;

describe('backoffDelay', () => {
  it('uses the documented defaults', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 30_000 });
  });

  it.each<[number, number]>([
    // attempt, min(cap, base·2^attempt) with base 500 and cap 30 000
    [0, 500],
    [1, 1000],
    [3, 4000],
    [5, 16_000],
    [6, 30_000],
    [7, 30_000],
  ])('attempt %d: between 0.5× and 1× of %d', (attempt, ceiling) => {
    expect(backoffDelay(attempt, DEFAULT_BACKOFF, zero)).toBe(ceiling / 2);
    expect(backoffDelay(attempt, DEFAULT_BACKOFF, one)).toBe(ceiling);
    expect(backoffDelay(attempt, DEFAULT_BACKOFF, half)).toBe(ceiling * 0.75);
  });

  it('respects the cap for very large attempts', () => {
    for (const attempt of [31, 100, 1024, 1_000_000]) {
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, one)).toBe(30_000);
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, zero)).toBe(15_000);
    }
    expect(Number.isFinite(backoffDelay(Number.MAX_SAFE_INTEGER, { baseMs: 1, capMs: 5 }, one))).toBe(true);
  });

  it('uses custom options', () => {
    const options = { baseMs: 100, capMs: 1000 };
    expect(backoffDelay(2, options, one)).toBe(400);
    expect(backoffDelay(2, options, zero)).toBe(200);
    expect(backoffDelay(4, options, one)).toBe(1000);
  });

  it('stays within bounds with the real random source', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});
