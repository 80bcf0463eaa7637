import { describe, it, expect } from 'vitest';
import { gatherRows, mulberry32, permutation } from './shuffle.js';

describe('shuffle', () => {
  it('draws the same permutation from the same seed, and a different one from another seed', () => {
    const a = permutation(50, mulberry32(1));
    expect(permutation(50, mulberry32(1))).toEqual(a);
    expect(permutation(50, mulberry32(2))).not.toEqual(a);
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('gathers whole rows', () => {
    const m = Float32Array.from([0, 1, 10, 11, 20, 21]);
    expect(gatherRows(m, 2, Uint32Array.from([2, 0, 1]))).toEqual(Float32Array.from([20, 21, 0, 1, 10, 11]));
  });
});
