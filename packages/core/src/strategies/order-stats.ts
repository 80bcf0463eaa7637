import type { Tensor } from '../tensors.js';
import { tensorOf } from './validate.js';

import { BLOCK, columnSorter, useJavaScriptColumns, type ColumnSorter } from './column-sort.js';
import { addPairDistances } from './pair-distances.js';

/**
 * Coordinate-wise order statistics over n updates, fast and bit for bit equal to sorting each
 * coordinate's n values (−0 before +0) and reading the sorted values.
 *
 * Why it is shaped like this: a per-coordinate sort (a call, a branchy insertion sort) costs
 * ~100 ns per coordinate, 50× a copy. Here the model is cut into blocks of BLOCK coordinates;
 * each update's block is copied into one row of a float32 scratch (n × BLOCK, in cache), and a
 * sorting network is applied row against row, four columns per instruction (column-sort.ts).
 * Min and max order −0 before +0 exactly as TypedArray sort does, and the values are finite
 * (the strategies check), so after the network row r holds, for every coordinate, the value a
 * sort would put at position r — the same bits. Comparators that cannot reach the positions a
 * statistic reads are pruned.
 */

/** Above this many updates the per-coordinate sort is used (a network grows as n log² n). */
export const MAX_NETWORK_INPUTS = 64;

const networks = new Map<string, Int32Array>();

/**
 * Batcher's odd–even merge sort for n inputs, as comparator pairs (i, j), i < j, flattened:
 * after min into i and max into j for each pair in order, the values are sorted. Built for the
 * next power of two; comparators touching the padding (+∞ values that never move) are dropped.
 */
export function sortingNetwork(n: number): number[] {
  let size = 1;
  while (size < n) size *= 2;
  const pairs: number[] = [];
  for (let p = 1; p < size; p *= 2) {
    for (let k = p; k >= 1; k = k >> 1) {
      for (let j = k % p; j + k < size; j += 2 * k) {
        for (let i = 0; i < k && i + j + k < size; i++) {
          if (Math.floor((i + j) / (2 * p)) === Math.floor((i + j + k) / (2 * p)) && i + j + k < n) pairs.push(i + j, i + j + k);
        }
      }
    }
  }
  return pairs;
}

/**
 * The comparators of `sortingNetwork(n)` that can affect sorted positions [from, to): walking
 * back from the outputs, a comparator is kept if either of its wires is still needed, and then
 * both are. The kept ones leave those positions exactly as the whole network does.
 */
export function networkFor(n: number, from: number, to: number): Int32Array {
  const key = `${n}:${from}:${to}`;
  const cached = networks.get(key);
  if (cached !== undefined) return cached;
  const all = sortingNetwork(n);
  const needed = new Uint8Array(n);
  needed.fill(1, from, to);
  const kept: number[] = [];
  for (let c = all.length - 2; c >= 0; c -= 2) {
    const a = all[c]!;
    const b = all[c + 1]!;
    if (needed[a] === 1 || needed[b] === 1) {
      needed[a] = 1;
      needed[b] = 1;
      kept.push(b, a);
    }
  }
  const net = Int32Array.from(kept.reverse());
  networks.set(key, net);
  return net;
}

let javascriptOnly = false;
/** Tests: run the networks and distance sums in JavaScript instead of WebAssembly (same results). */
export function useJavaScriptNetwork(on: boolean): void {
  javascriptOnly = on;
  useJavaScriptColumns(on);
}

/** Whether tests forced the JavaScript network (`useJavaScriptNetwork`). */
export function javaScriptNetwork(): boolean {
  return javascriptOnly;
}

/** Which implementation the networks run on here ('javascript' only where WebAssembly SIMD is missing). */
export function networkBackend(): ColumnSorter['backend'] {
  return columnSorter(2, networkFor(2, 0, 2), javascriptOnly).backend;
}

/**
 * Runs `fill(sources, start, len, rows, out)` block by block over every tensor, after the block's
 * values are gathered and sorted (positions [from, to) exact), and returns the float32 results.
 */
export function blockWise(
  tensorsPerUpdate: readonly (readonly Tensor[])[],
  from: number,
  to: number,
  fill: (sources: readonly Float32Array[], start: number, len: number, rows: Float32Array, out: Float32Array, sorter: ColumnSorter) => void,
): Tensor[] {
  const n = tensorsPerUpdate.length;
  const sorter = columnSorter(n, networkFor(n, from, to), javascriptOnly);
  const rows = sorter.rows;
  return tensorsPerUpdate[0]!.map((model, t) => {
    const sources = tensorsPerUpdate.map((ts) => ts[t]!.data);
    const out = new Float32Array(model.data.length);
    for (let start = 0; start < out.length; start += BLOCK) {
      const len = Math.min(BLOCK, out.length - start);
      for (let k = 0; k < n; k++) rows.set(sources[k]!.subarray(start, start + len), k * BLOCK);
      sorter.sort(len);
      fill(sources, start, len, rows, out, sorter);
    }
    return tensorOf(model.shape, out);
  });
}

/**
 * Coordinate-wise median (the middle value, or the float64 mean of the two middle ones) of
 * n ≤ MAX_NETWORK_INPUTS updates' tensors, rounded to float32.
 */
export function medianByNetwork(tensorsPerUpdate: readonly (readonly Tensor[])[]): Tensor[] {
  const n = tensorsPerUpdate.length;
  const mid = n >> 1;
  const odd = n % 2 === 1;
  return blockWise(tensorsPerUpdate, odd ? mid : mid - 1, mid + 1, (_s, start, len, rows, out) => {
    const hi = mid * BLOCK;
    if (odd) {
      out.set(rows.subarray(hi, hi + len), start);
    } else {
      const lo = hi - BLOCK;
      for (let e = 0; e < len; e++) out[start + e] = (rows[lo + e]! + rows[hi + e]!) / 2;
    }
  });
}

/**
 * Coordinate-wise mean of sorted positions [trim, n − trim), summed in float64 in ascending order
 * from +0 (as a loop `sum = 0; sum += s[k]` does), divided once, rounded to float32.
 */
export function trimmedMeanByNetwork(tensorsPerUpdate: readonly (readonly Tensor[])[], trim: number): Tensor[] {
  const n = tensorsPerUpdate.length;
  const kept = n - 2 * trim;
  return blockWise(tensorsPerUpdate, trim, n - trim, (_s, start, len, _rows, out, sorter) => sorter.meanRows(trim, n - trim, len, kept, out, start));
}

/**
 * Squared L2 distances between every pair of n updates, fed in order: `add(values)` takes every
 * update's next values (the same count from each; tensors in model order, slices in order), and
 * `result()` is the symmetric n×n float64 matrix (row-major). Each pair's sum runs over the
 * coordinates in model order from +0 — the same additions, in the same order, as one loop per
 * pair over the whole model — in WebAssembly block by block (pair-distances.ts), else in
 * JavaScript four pairs at a time so the additions overlap.
 */
export class DistanceSum {
  private readonly dist: Float64Array;

  constructor(readonly n: number) {
    this.dist = new Float64Array(n * n);
  }

  add(xs: readonly Float32Array[]): void {
    const n = this.n;
    const dist = this.dist;
    const len = xs[0]?.length ?? 0;
    if (len === 0 || addPairDistances(dist, xs, 0, len)) return;
    for (let start = 0; start < len; start += DIST_BLOCK) {
      const end = Math.min(len, start + DIST_BLOCK);
      for (let i = 0; i < n; i++) {
        const x = xs[i]!;
        let j = i + 1;
        for (; j + 3 < n; j += 4) {
          const a = xs[j]!, b = xs[j + 1]!, c = xs[j + 2]!, d = xs[j + 3]!;
          let s0 = dist[i * n + j]!, s1 = dist[i * n + j + 1]!, s2 = dist[i * n + j + 2]!, s3 = dist[i * n + j + 3]!;
          for (let e = start; e < end; e++) {
            const v = x[e]!;
            const d0 = v - a[e]!, d1 = v - b[e]!, d2 = v - c[e]!, d3 = v - d[e]!;
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
          }
          dist[i * n + j] = s0;
          dist[i * n + j + 1] = s1;
          dist[i * n + j + 2] = s2;
          dist[i * n + j + 3] = s3;
        }
        for (; j < n; j++) {
          const a = xs[j]!;
          let s = dist[i * n + j]!;
          for (let e = start; e < end; e++) {
            const d0 = x[e]! - a[e]!;
            s += d0 * d0;
          }
          dist[i * n + j] = s;
        }
      }
    }
  }

  result(): Float64Array {
    const n = this.n;
    const d = this.dist.slice();
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) d[j * n + i] = d[i * n + j]!;
    return d;
  }
}

/** Coordinates per block of the JavaScript distance loop: n blocks of 8 KiB stay in L1/L2. */
const DIST_BLOCK = 2048;

/** Squared L2 distances between every pair of updates' tensors (see `DistanceSum`). */
export function squaredDistances(weights: readonly (readonly Tensor[])[]): Float64Array {
  const sum = new DistanceSum(weights.length);
  for (let t = 0; t < (weights[0]?.length ?? 0); t++) sum.add(weights.map((w) => w[t]!.data));
  return sum.result();
}
