import { describe, expect, it } from 'vitest';
import { KeyedBuckets, TokenBucket } from './rate-limit.js';

describe('TokenBucket', () => {
  it('allows a burst of capacity, then refills at the rate', () => {
    let t = 0;
    const b = new TokenBucket(3, 2, () => t);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([true, true, true, false]);
    expect(b.retryAfterMs).toBe(500);
    t = 499;
    expect(b.take()).toBe(false);
    t = 500;
    expect(b.take()).toBe(true);
    t = 100_000;
    expect(b.full).toBe(true);
  });

  it('refuses nonsense parameters', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError);
  });
});

describe('KeyedBuckets', () => {
  it('keeps one bucket per key and a bounded number of keys', () => {
    let t = 0;
    const k = new KeyedBuckets(1, 1, () => t, 2);
    expect(k.get('a').take()).toBe(true);
    expect(k.allowed('a')).toBe(false);
    expect(k.allowed('b')).toBe(true);
    k.get('b').take();
    k.get('c').take();
    expect(k.size).toBe(2);
    t = 10_000;
    k.sweep();
    expect(k.size).toBe(0);
  });
});
