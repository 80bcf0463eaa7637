import { describe, expect, it } from 'vitest';
import { isHoldout } from './split.js';

describe('isHoldout', () => {
  it('hashes seed and key as documented', () => {
    // First four bytes of SHA-256("7\0<key>") over 2^32, computed with Python's hashlib:
    // r1 → 0.44806, r2 → 0.21499, r3 → 0.17547
    expect(isHoldout('r1', 7, 0.45)).toBe(true);
    expect(isHoldout('r1', 7, 0.448)).toBe(false);
    expect(isHoldout('r2', 7, 0.2)).toBe(false);
    expect(isHoldout('r2', 7, 0.215)).toBe(true);
    expect(isHoldout('r3', 7, 0.2)).toBe(true);
    expect(isHoldout('r3', 7, 0.175)).toBe(false);
  });

  it('is deterministic', () => {
    const keys = Array.from({ length: 500 }, (_, i) => `patient-${i}`);
    expect(keys.map((k) => isHoldout(k, 42, 0.3))).toEqual(keys.map((k) => isHoldout(k, 42, 0.3)));
  });

  it('holds out about the requested fraction of 10 000 keys', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `record-${i}`);
    for (const fraction of [0.1, 0.2, 0.5]) {
      const held = keys.filter((k) => isHoldout(k, 1, fraction)).length;
      // Binomial standard deviation is at most 50; allow 5 of them.
      expect(Math.abs(held - fraction * 10_000)).toBeLessThan(250);
    }
  });

  it('only adds keys to the hold-out as the fraction grows', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    const small = keys.filter((k) => isHoldout(k, 3, 0.1));
    expect(small.every((k) => isHoldout(k, 3, 0.2))).toBe(true);
    expect(keys.some((k) => isHoldout(k, 3, 0.2) && !isHoldout(k, 3, 0.1))).toBe(true);
  });

  it('depends on the seed', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    const a = keys.map((k) => isHoldout(k, 1, 0.5));
    const b = keys.map((k) => isHoldout(k, 2, 0.5));
    const differing = a.filter((v, i) => v !== b[i]).length;
    // Independent splits disagree on about half the keys.
    expect(differing).toBeGreaterThan(400);
    expect(differing).toBeLessThan(600);
  });

  it('holds out nothing at fraction 0 and everything at fraction 1', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    expect(keys.some((k) => isHoldout(k, 0, 0))).toBe(false);
    expect(keys.every((k) => isHoldout(k, 0, 1))).toBe(true);
  });
});
