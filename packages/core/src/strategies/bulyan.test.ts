import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.js';
import type { Tensor } from '../tensors.js';
import { MAX_WINDOW_THETA, bulyanWalk } from './bulyan-column.js';
import { bulyanByNetwork } from './bulyan.js';
import { BLOCK, columnSorter } from './column-sort.js';
import { networkFor, useJavaScriptNetwork } from './order-stats.js';

// Bulyan's coordinate step by its definition, written plainly: sort a copy for the median, order
// the positions by distance to it (a stable sort: ties keep selection order), sum the first β
// from +0 in that order, divide by β, round to float32.
function reference(chosen: readonly Float32Array[], beta: number): Float32Array {
  const theta = chosen.length;
  const out = new Float32Array(chosen[0]!.length);
  const values = new Float64Array(theta);
  const sorted = new Float64Array(theta);
  const order: number[] = [];
  for (let i = 0; i < out.length; i++) {
    chosen.forEach((c, k) => (values[k] = c[i]!));
    sorted.set(values);
    sorted.sort(); // numeric, −0 before +0
    const mid = theta >> 1;
    const median = theta % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    order.length = 0;
    for (let j = 0; j < theta; j++) order.push(j);
    order.sort((a, b) => Math.abs(values[a]! - median) - Math.abs(values[b]! - median) || a - b);
    let sum = 0;
    for (let r = 0; r < beta; r++) sum += values[order[r]!]!;
    out[i] = sum / beta;
  }
  return out;
}

const TIES = [-2, -1, -0.5, -0, 0, 0.5, 1, 1.5, 2, 3];
const kinds = {
  // Few distinct values: equal values, and different values at one distance from the median.
  ties: (r: () => number) => TIES[Math.floor(r() * TIES.length)]!,
  // Typical weights: no exact ties.
  plain: (r: () => number) => (r() - 0.5) * 0.1,
  // Magnitudes from 1e-20 to 1e20: the sum's order changes its rounding.
  wide: (r: () => number) => (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20),
  // Magnitudes spread up to 2^24 (around the window's exactness bound, 2^22), full mantissas.
  edge: (r: () => number) => (r() - 0.5) * 2 ** -Math.floor(r() * 25),
  // Whole columns equal (a frozen layer) or nearly so.
  mixed: (r: () => number) => (r() < 0.5 ? 0.25 : r() < 0.5 ? 0.25 + 2 ** -20 : 0.25 - 2 ** -20),
};

const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.slice().buffer));
// A full network block and an odd-length tail.
const LENGTH = BLOCK + 453;

function chosenOf(theta: number, kind: keyof typeof kinds, seed: number): Tensor[][] {
  const r = mulberry32(seed);
  // Whole columns equal sometimes, whatever the kind.
  const frozen = Float32Array.from({ length: LENGTH }, () => (r() < 0.05 ? 1 : 0));
  return Array.from({ length: theta }, () => [{ shape: [LENGTH], data: Float32Array.from({ length: LENGTH }, (_, i) => (frozen[i] === 1 ? 0.5 : kinds[kind](r))) }]);
}

for (const backend of ['webassembly', 'javascript'] as const) {
  describe(`bulyan's coordinate step (${backend}) is bit for bit its definition`, () => {
    beforeAll(() => useJavaScriptNetwork(backend === 'javascript'));
    afterAll(() => useJavaScriptNetwork(false));
    for (const kind of Object.keys(kinds) as (keyof typeof kinds)[]) {
      it(`${kind} values, θ = 1..8 with every β, and larger θ`, () => {
        const thetas = [...Array.from({ length: 12 }, (_, i) => i + 1), ...(backend === 'webassembly' ? [17, MAX_WINDOW_THETA, MAX_WINDOW_THETA + 1] : [17])];
        for (const theta of thetas) {
          const chosen = chosenOf(theta, kind, theta * 31 + kind.length);
          const betas = theta <= 8 ? Array.from({ length: theta }, (_, b) => b + 1) : [1, 2, theta - 4, theta - 1, theta];
          for (const beta of betas) {
            const got = bulyanByNetwork(chosen, beta)[0]!.data;
            expect(bits(got), `θ=${theta} β=${beta}`).toEqual(bits(reference(chosen.map((c) => c[0]!.data), beta)));
          }
        }
      });
    }
  });
}

describe('the WebAssembly walk', () => {
  it('runs on Node up to MAX_WINDOW_THETA (a module that failed to build would silently cost 4×)', () => {
    for (let theta = 1; theta <= MAX_WINDOW_THETA; theta++) expect(bulyanWalk(theta, Math.max(1, theta - 2), 8, new Float32Array(8), 0)).not.toBeNull();
    expect(bulyanWalk(MAX_WINDOW_THETA + 1, 3, 8, new Float32Array(8), 0)).toBeNull();
  });

  it('flags only columns where selection order or rounding could decide (none in typical data)', () => {
    const theta = 7;
    const sorter = columnSorter(theta, networkFor(theta, 0, theta));
    expect(sorter.backend).toBe('webassembly');
    const r = mulberry32(3);
    for (let i = 0; i < theta * BLOCK; i++) sorter.rows[i] = r() - 0.5;
    // Column 5: median 3; 2 and 4 tie (distance 1), as do 1 and 5 (distance 2).
    [1, 2, 3, 4, 5, 100, -100].forEach((v, k) => (sorter.rows[k * BLOCK + 5] = v));
    // Column 6: all equal (ties of equal values are harmless).
    for (let k = 0; k < theta; k++) sorter.rows[k * BLOCK + 6] = 0.5;
    // Column 7: magnitudes 2^34 apart (a sum's order could change its rounding).
    [1e-10, 1, 1, 1, 1, 1, 1].forEach((v, k) => (sorter.rows[k * BLOCK + 7] = v));
    // Columns 8 and 9 pin the exactness bound (MAX_EXPONENT_SPREAD, review rbul): binary
    // exponents 0 … 22 are exact in any order and not flagged; 0 … 23 are flagged. No ties.
    [1, 2, 4, 7, 11, 16, 2 ** 22].forEach((v, k) => (sorter.rows[k * BLOCK + 8] = v));
    [1, 2, 4, 7, 11, 16, 2 ** 23].forEach((v, k) => (sorter.rows[k * BLOCK + 9] = v));
    sorter.sort(BLOCK);
    const out = new Float32Array(BLOCK);
    // β = 4: 3, then 2 and 4, then 1 or 5 — which one, selection order decides.
    expect(bulyanWalk(theta, 4, BLOCK, out, 0)).toEqual([5, 7, 9]);
    expect(out[6]).toBe(0.5);
    expect(out[8]).toBe((7 + 4 + 11 + 2) / 4);
    // β = 3 and β = 1: the ties fall inside the window, or past it: no matter.
    expect(bulyanWalk(theta, 3, BLOCK, out, 0)).toEqual([7, 9]);
    expect(out[5]).toBe(3);
    expect(bulyanWalk(theta, 1, BLOCK, out, 0)).toEqual([7, 9]);
    expect(out[5]).toBe(3);
  });
});
