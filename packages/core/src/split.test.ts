import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isHoldout } from './split.js';

interface SplitVector {
  key: string;
  seed: number;
  holdoutFraction: number;
  hashInputHex: string;
  sha256Hex: string;
  first4BytesUint32: number;
  holdout: boolean;
}

const vectorsPath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto', 'fedlhs', 'v1', 'vectors', 'split.json');
const { vectors } = JSON.parse(readFileSync(vectorsPath, 'utf8')) as { vectors: SplitVector[] };

describe('split vectors of the protocol (proto/fedlhs/v1/vectors/split.json)', () => {
  it('has five vectors, both outcomes among them', () => {
    expect(vectors).toHaveLength(5);
    expect(new Set(vectors.map((v) => v.holdout))).toEqual(new Set([true, false]));
  });

  it.each(vectors.map((v) => [JSON.stringify(v.key), v] as const))('key %s: the documented steps give the recorded bytes, digest and outcome', (_key, v) => {
    // The documented algorithm, step by step, independent of split.ts.
    const input = Buffer.concat([Buffer.from(String(v.seed), 'utf8'), Buffer.from([0]), Buffer.from(v.key, 'utf8')]);
    expect(input.toString('hex')).toBe(v.hashInputHex);
    const digest = createHash('sha256').update(input).digest();
    expect(digest.toString('hex')).toBe(v.sha256Hex);
    expect(digest.readUInt32BE(0)).toBe(v.first4BytesUint32);
    expect(v.first4BytesUint32 / 2 ** 32 < v.holdoutFraction).toBe(v.holdout);
  });

  it.each(vectors.map((v) => [JSON.stringify(v.key), v] as const))('key %s: isHoldout, the function agents use, agrees', (_key, v) => {
    expect(isHoldout(v.key, v.seed, v.holdoutFraction)).toBe(v.holdout);
    // And it is the position that decides: just above and just below it, the outcome flips.
    const position = v.first4BytesUint32 / 2 ** 32;
    expect(isHoldout(v.key, v.seed, position)).toBe(false);
    expect(isHoldout(v.key, v.seed, position + 2 ** -33)).toBe(true);
  });
});

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
