/**
 * Seeded shuffling for training epochs. tfjs' own `fit({ shuffle: true })` draws from
 * Math.random, which makes a clinic's local update impossible to reproduce.
 */

export { mulberry32 } from '@fedlhs/core';

/** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, random: () => number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

/** Copies rows of a row-major matrix with `width` columns into the given order. */
export function gatherRows(values: Float32Array, width: number, order: Uint32Array): Float32Array {
  const out = new Float32Array(order.length * width);
  for (let i = 0; i < order.length; i++) {
    const src = order[i]! * width;
    out.set(values.subarray(src, src + width), i * width);
  }
  return out;
}
