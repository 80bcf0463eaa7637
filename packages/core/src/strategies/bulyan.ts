import type { Tensor } from '../tensors.js';
import { BLOCK } from './column-sort.js';
import { bulyanWalk, hasBulyanWalk } from './bulyan-column.js';
import { MAX_NETWORK_INPUTS, blockWise, javaScriptNetwork } from './order-stats.js';

/**
 * Bulyan's aggregation step for one coordinate, by definition: `values` in selection order;
 * the median of their sorted copy, then the β values closest to it (ties in distance: earlier
 * in selection order first) summed from +0 in that order, divided by β. `sorted`, `distance`
 * and `order` are scratch of values.length.
 */
export function bulyanCoordinate(values: Float64Array, beta: number, sorted: Float64Array, distance: Float64Array, order: Int32Array): number {
  const theta = values.length;
  sorted.set(values);
  sorted.sort();
  const mid = theta >> 1;
  const median = theta % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  // Stable insertion sort of positions by distance to the median: ties keep selection order.
  for (let j = 0; j < theta; j++) {
    const d = Math.abs(values[j]! - median);
    let p = j - 1;
    while (p >= 0 && distance[p]! > d) {
      distance[p + 1] = distance[p]!;
      order[p + 1] = order[p]!;
      p--;
    }
    distance[p + 1] = d;
    order[p + 1] = j;
  }
  let sum = 0;
  for (let r = 0; r < beta; r++) sum += values[order[r]!]!;
  return sum / beta;
}

/**
 * The walk outward from the median of sorted column `e` of `rows` (θ rows, BLOCK apart): the
 * mean of the β values closest to the median in by-distance order, or NaN where values that
 * differ have the same distance and so selection order decides (the caller then computes the
 * coordinate by `bulyanCoordinate`). Equal values (same bits) and the two first terms (for even
 * θ the two middle values are equidistant: 0 + a + b = 0 + b + a) are harmless ties.
 */
function walkColumn(rows: Float32Array, e: number, theta: number, beta: number): number {
  const mid = theta >> 1;
  const odd = theta % 2 === 1;
  const median = odd ? rows[mid * BLOCK + e]! : (rows[(mid - 1) * BLOCK + e]! + rows[mid * BLOCK + e]!) / 2;
  // Row offsets of the next candidates below and above the median, and their distances.
  const first = e;
  const last = (theta - 1) * BLOCK + e;
  let lo = (odd ? mid : mid - 1) * BLOCK + e;
  let hi = lo + BLOCK;
  let dl = median - rows[lo]!;
  let dh = hi <= last ? rows[hi]! - median : Infinity;
  let sum = 0;
  let picked = 0;
  // The current run of equal distances: its distance, first value, start (pick index), length, and
  // whether it holds different values (then their order, i.e. selection order, matters).
  let runD = -1;
  let runV = 0;
  let runStart = 0;
  let runLen = 0;
  let mixed = false;
  while (dl !== Infinity || dh !== Infinity) {
    let v: number;
    let d: number;
    if (dl <= dh) {
      v = rows[lo]!;
      d = dl;
      lo -= BLOCK;
      dl = lo >= first ? median - rows[lo]! : Infinity;
    } else {
      v = rows[hi]!;
      d = dh;
      hi += BLOCK;
      dh = hi <= last ? rows[hi]! - median : Infinity;
    }
    if (d === runD) {
      runLen++;
      if (v !== runV) mixed = true;
    } else {
      if (picked === beta) break;
      runD = d;
      runV = v;
      runStart = picked;
      runLen = 1;
      mixed = false;
    }
    // (For β = 1 only one of those two is summed: then their order matters too.)
    if (mixed && (runStart !== 0 || runLen !== 2 || beta === 1)) return Number.NaN;
    if (picked < beta) {
      sum += v;
      picked++;
    }
  }
  return sum / beta;
}

/**
 * Bulyan's coordinate-wise step over the θ selected updates (in selection order), bit for bit
 * `bulyanCoordinate` per coordinate. From the sorted column (order-stats.ts), the values closest
 * to the median are taken by walking outward from the middle (distance grows monotonically on
 * each side), which is the by-distance order except where different values have the same
 * distance: such a coordinate (rare: an exact tie) is computed by `bulyanCoordinate`. The walk
 * runs in WebAssembly SIMD for θ ≤ MAX_WINDOW_THETA (bulyan-column.ts), else in JavaScript.
 */
export function bulyanByNetwork(chosen: readonly (readonly Tensor[])[], beta: number): Tensor[] {
  const theta = chosen.length;
  const values = new Float64Array(theta);
  const sorted = new Float64Array(theta);
  const distance = new Float64Array(theta);
  const order = new Int32Array(theta);
  const exact = (sources: readonly Float32Array[], rows: Float32Array, i: number, e: number): number => {
    const r = walkColumn(rows, e, theta, beta);
    if (!Number.isNaN(r)) return r;
    for (let k = 0; k < theta; k++) values[k] = sources[k]![i]!;
    return bulyanCoordinate(values, beta, sorted, distance, order);
  };
  // WebAssembly sorts inside the walk (the rows stay in registers): blockWise then sorts nothing.
  const wasm = theta <= MAX_NETWORK_INPUTS && !javaScriptNetwork() && hasBulyanWalk(theta, beta);
  return blockWise(chosen, 0, wasm ? 0 : theta, (sources, start, len, rows, out, sorter) => {
    const redo = wasm && sorter.backend === 'webassembly' ? bulyanWalk(theta, beta, len, out, start) : null;
    if (wasm && redo === null) throw new Error('bulyan: the WebAssembly walk went away mid-aggregation');
    if (redo === null) {
      for (let e = 0; e < len; e++) out[start + e] = exact(sources, rows, start + e, e);
    } else {
      for (const e of redo) out[start + e] = exact(sources, rows, start + e, e);
    }
  });
}
