/**
 * Bulyan's coordinate-wise step in WebAssembly SIMD, four columns per loop step (the sort in
 * f32x4, the rest in two f64x2 halves: float64, the precision the JavaScript walk sums in), no
 * branch per value — bit for bit the walk in bulyan.ts, or the column is flagged for it.
 *
 * Why a window, not a walk: the β values closest to the median m are β consecutive sorted
 * values, rows [s, s + β), and s follows from θ − β = 2f row comparisons: the window moves past
 * row k exactly when R_{k+β} − m < m − R_k (the k-closest-elements test, signed so that it is
 * monotone in k even among equal values; an equal distance keeps the lower row, as the walk
 * does). The walk sums the window in by-distance order; here it is summed in row order (rows
 * outside masked to +0), the same bits whenever every order gives the exact sum. That is checked
 * per column: all θ values (zeros aside) within 2^22 of each other in magnitude — then, counted
 * in the smallest one's float32 ulp, every partial sum of ≤ 64 of them, the median and every
 * distance fit float64's 53 bits, so no order rounds and distances compare exactly. A column that
 * fails the check, or where rows k and k + β differ but are equally far from m (selection order
 * would decide), is flagged and walked in JavaScript. Typical weights pass (in the benchmark 28
 * of 4 M columns are flagged); wide or tied columns stay exact, only slower.
 *
 * Why one module per (θ, β): the sorting network, the window tests and the masks are unrolled
 * with the rows in locals, so nothing is stored and reloaded between comparators.
 */

import { BLOCK, wasmColumns } from './column-sort.js';
import { networkFor } from './order-stats.js';
import { leb, section, wasmName } from './wasm-bytes.js';

/** Largest θ the window is generated for (the shared memory's rows); more use JavaScript. */
export const MAX_WINDOW_THETA = 64;
/** Largest allowed spread of the values' binary exponents (see above; ≤ 29 − log₂ 64). */
const MAX_EXPONENT_SPREAD = 22;

const f64Const = (x: number): number[] => {
  const b = new Uint8Array(16);
  new Float64Array(b.buffer).fill(x);
  return [0xfd, 0x0c, ...b];
};
const i32Const = (x: number): number[] => {
  const b = new Uint8Array(16);
  new Int32Array(b.buffer).fill(x);
  return [0xfd, 0x0c, ...b];
};

/**
 * walk(bytes) → i32 over columns [0, bytes / 4) four at a time (bytes: a positive multiple of
 * 16): rows r at byte offset r·BLOCK·4 (sorted by column), results as float32 at `outOffset`,
 * per column a flag (two i32s, non-zero: recompute by the walk) at `flagOffset` + 2·(byte
 * offset); returns 1 if any column was flagged. The exponent check runs on the float32 bits
 * (i32x4, four columns); the window on two f64x2 halves.
 */
function windowModule(theta: number, beta: number, net: Int32Array, outOffset: number, flagOffset: number): Uint8Array {
  const mid = theta >> 1;
  const odd = theta % 2 === 1;
  const x = theta - beta;
  // Locals: 0 bytes (param), 1 e (i32); v128 from 2.
  let next = 2;
  const alloc = (count: number) => Array.from({ length: count }, () => next++);
  const halves = [0, 1].map(() => ({ R: alloc(theta), C: alloc(x), m: next++, sum: next++, bad: next++ }));
  const F = alloc(theta);
  const [v, any, maxAbs, minNz, dk, dkb, res] = alloc(7) as [number, number, number, number, number, number, number];
  // Constants in locals, set before the loop (V8 would rebuild a v128.const at every use).
  const [kAbs, kOne, kTwo, kBeta, kSpread, kZero] = alloc(6) as [number, number, number, number, number, number];
  const v128Locals = next - 2;
  const get = (i: number) => [0x20, ...leb(i)];
  const set = (i: number) => [0x21, ...leb(i)];
  const simd = (op: number) => [0xfd, ...leb(op)];
  const zero = get(kZero);
  const high = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const abs = [...get(kAbs), ...simd(0x4e)];
  const body: number[] = [];
  body.push(...i32Const(0x7fffffff), ...set(kAbs), ...i32Const(1), ...set(kOne), ...f64Const(2), ...set(kTwo));
  body.push(...f64Const(beta), ...set(kBeta), ...i32Const(MAX_EXPONENT_SPREAD), ...set(kSpread), ...i32Const(0), ...set(kZero));
  body.push(...zero, ...set(any), 0x41, 0, ...set(1), 0x03, 0x40); // any = 0; e = 0; loop
  body.push(...i32Const(-1), ...set(minNz));
  // Sort the four columns in registers (the network of order-stats.ts) and store them back (a
  // flagged column is walked from the rows). Each comparator swaps when b < a: f32x4.pmin(a, b)
  // and pmax(b, a), one instruction each, where min and max (NaN and ±0 rules) cost ~7 in V8.
  // Values are finite; −0 and +0 may stay unordered, which changes no result: they compare
  // equal, and a sum from +0 (never −0) is the same with either.
  for (let r = 0; r < theta; r++) body.push(...get(1), ...simd(0x00), 4, ...leb(r * BLOCK * 4), ...set(F[r]!));
  for (let c = 0; c < net.length; c += 2) {
    const [ra, rb] = [F[net[c]!]!, F[net[c + 1]!]!];
    body.push(...get(ra), ...get(rb), ...simd(0xea), ...get(rb), ...get(ra), ...simd(0xeb), ...set(rb), ...set(ra));
  }
  for (let r = 0; r < theta; r++) body.push(...get(1), ...get(F[r]!), ...simd(0x0b), 4, ...leb(r * BLOCK * 4));
  for (let r = 0; r < theta; r++) {
    body.push(...get(F[r]!), ...set(v));
    body.push(...get(v), ...simd(0x5f), ...set(halves[0]!.R[r]!), ...get(v), ...get(v), ...simd(0x0d), ...high, ...simd(0x5f), ...set(halves[1]!.R[r]!));
    // Smallest non-zero magnitude (|v| − 1 unsigned: a zero becomes the largest); the largest is row 0's or row θ − 1's.
    body.push(...get(minNz), ...get(v), ...abs, ...get(kOne), ...simd(0xb1), ...simd(0xb7), ...set(minNz));
    if (r === 0) body.push(...get(v), ...abs, ...set(maxAbs));
    if (r === theta - 1) body.push(...get(maxAbs), ...get(v), ...abs, ...simd(0xb9), ...set(maxAbs));
  }
  // Exponents (a subnormal's ulp is that of exponent 1; an all-zero column: spread −1, passes).
  body.push(...get(maxAbs), 0x41, 23, ...simd(0xad), ...get(minNz), ...get(kOne), ...simd(0xae), 0x41, 23, ...simd(0xad), ...get(kOne), ...simd(0xb8));
  body.push(...simd(0xb1), ...get(kSpread), ...simd(0x3b), ...set(v)); // v = spread > MAX (per column)
  halves.forEach(({ R, C, m, sum, bad }, h) => {
    body.push(...get(v), ...simd(h === 0 ? 0xc7 : 0xc8), ...set(bad)); // i64x2.extend_{low,high}_i32x4_s
    if (odd) body.push(...get(R[mid]!), ...set(m));
    else body.push(...get(R[mid - 1]!), ...get(R[mid]!), ...simd(0xf0), ...get(kTwo), ...simd(0xf3), ...set(m)); // (a + b) / 2
    for (let k = 0; k < x; k++) {
      // c_k: R_{k+β} − m < m − R_k (signed: a row on the other side is always passed); equal and
      // different values: flag.
      body.push(...get(m), ...get(R[k]!), ...simd(0xf1), ...set(dk), ...get(R[k + beta]!), ...get(m), ...simd(0xf1), ...set(dkb));
      body.push(...get(dkb), ...get(dk), ...simd(0x49), ...set(C[k]!));
      body.push(...get(bad), ...get(dkb), ...get(dk), ...simd(0x47), ...get(R[k]!), ...get(R[k + beta]!), ...simd(0x48), ...simd(0x4e), ...simd(0x50), ...set(bad));
    }
    body.push(...zero, ...set(sum));
    for (let r = 0; r < theta; r++) {
      body.push(...get(sum), ...get(R[r]!));
      // Row r is in the window [s, s + β): s ≤ r (not c_r) for r < x, and r < s + β (c_{r−β}) for r ≥ β.
      const masks: number[][] = [];
      if (r < x) masks.push([...get(C[r]!), ...simd(0x4d)]);
      if (r >= beta) masks.push(get(C[r - beta]!));
      if (masks.length > 0) {
        body.push(...masks[0]!);
        if (masks.length > 1) body.push(...masks[1]!, ...simd(0x4e));
        body.push(...simd(0x4e));
      }
      body.push(...simd(0xf0), ...set(sum));
    }
    // float32(sum / β) into lanes 2h, 2h + 1 of res; flags of columns 2h, 2h + 1; any |= bad.
    body.push(...get(sum), ...get(kBeta), ...simd(0xf3), ...simd(0x5e));
    if (h === 0) body.push(...set(res));
    else body.push(...get(res), ...simd(0x0d), 16, 17, 18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7, ...set(res)); // (res₀, res₁, new₀, new₁)
    body.push(...get(1), ...get(1), 0x6a, ...get(bad), ...simd(0x0b), 4, ...leb(flagOffset + 16 * h));
    body.push(...get(any), ...get(bad), ...simd(0x50), ...set(any));
  });
  body.push(...get(1), ...get(res), ...simd(0x0b), 4, ...leb(outOffset));
  body.push(...get(1), 0x41, 16, 0x6a, 0x22, 1, ...get(0), 0x49, 0x0d, 0, 0x0b); // e += 16; br_if e < bytes
  body.push(...get(any), ...simd(0x53), 0x0b); // v128.any_true(any)
  const fn = [2, 1, 0x7f, ...leb(v128Locals), 0x7b, ...body];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
    ...section(2, [1, ...wasmName('m'), ...wasmName('mem'), 2, 0, 0]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...wasmName('walk'), 0, 0]),
    ...section(10, [1, ...leb(fn.length), ...fn]),
  ]);
}

const walks = new Map<string, ((bytes: number) => number) | null>();

/** The compiled walk for (θ, β), or null where WebAssembly is unavailable or θ exceeds MAX_WINDOW_THETA. */
function walkFor(theta: number, beta: number): ((bytes: number) => number) | null {
  const w = wasmColumns();
  if (w === null || theta > MAX_WINDOW_THETA || theta < 1 || beta < 1 || beta > theta) return null;
  const key = `${theta}:${beta}`;
  let walk = walks.get(key);
  if (walk === undefined) {
    try {
      walk = w.instantiate(windowModule(theta, beta, networkFor(theta, 0, theta), w.outOffset, w.flagOffset))['walk'] as (bytes: number) => number;
    } catch {
      walk = null;
    }
    walks.set(key, walk);
  }
  return walk;
}

/** Whether `bulyanWalk` runs (in WebAssembly) for θ and β here. */
export function hasBulyanWalk(theta: number, beta: number): boolean {
  return walkFor(theta, beta) !== null;
}

/**
 * Bulyan's step over the first `len` columns of the shared rows (θ rows, unsorted): sorts them
 * (in place, by column), then out[start + e] for e < len, and returns the columns to recompute
 * by the walk from the sorted rows (empty when none). Null (nothing done) where
 * `hasBulyanWalk` is false.
 */
export function bulyanWalk(theta: number, beta: number, len: number, out: Float32Array, start: number): number[] | null {
  const walk = walkFor(theta, beta);
  const w = wasmColumns();
  if (walk === null || w === null) return null;
  const flagged = walk(Math.ceil(len / 4) * 16) !== 0;
  out.set(w.out.subarray(0, len), start);
  if (!flagged) return [];
  const redo: number[] = [];
  for (let e = 0; e < len; e++) if (w.flags[2 * e] !== 0) redo.push(e);
  return redo;
}
