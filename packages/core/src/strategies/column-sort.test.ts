import { describe, expect, it } from 'vitest';
import { hasNonFinite } from './column-sort.js';
import { findNonFinite } from './validate.js';

describe('the non-finite scan (WebAssembly)', () => {
  it('finds NaN and ±Infinity anywhere: first, last, in the unaligned tail, past a 64 Ki-value block', () => {
    for (const length of [1, 3, 4, 5, 17, 65536, 65539, 200_001]) {
      for (const bad of [Number.NaN, Infinity, -Infinity]) {
        for (const at of [0, length - 1, Math.floor(length / 2), length - 2]) {
          if (at < 0) continue;
          const data = new Float32Array(length).fill(1.5);
          data[at] = bad;
          expect(hasNonFinite(data)).toBe(true);
          expect(findNonFinite(data)).toBe(at);
        }
      }
      expect(hasNonFinite(new Float32Array(length).fill(-3e38))).toBe(false);
      expect(findNonFinite(new Float32Array(length))).toBe(-1);
    }
  });

  it('is not fooled by values a previous scan left past the end of a short array', () => {
    expect(hasNonFinite(new Float32Array(8).fill(Number.NaN))).toBe(true);
    expect(hasNonFinite(Float32Array.from([1, 2, 3, 4, 5]))).toBe(false);
    expect(hasNonFinite(new Float32Array(0))).toBe(false);
  });
});
