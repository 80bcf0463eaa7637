/**
 * Squared L2 distances between every pair of n ≤ 64 updates in WebAssembly SIMD, bit for bit
 * the plain loop `s = 0; for e: d = x[e] − y[e]; s += d·d` per pair (float64, model order).
 *
 * Why it is shaped like this: each pair's sum is one sequential chain, so vector lanes can only
 * be different pairs. Rows are interleaved two by two as float64 — P[p][e] = (row 2p [e],
 * row 2p + 1 [e]) — so the partners 2p and 2p + 1 of a row i are one aligned f64x2 load, and
 * x = row i [e] one splat load: (x − y)² + s for two pairs in three instructions. A row i is
 * paired with the vectors from the one holding row i + 1 (for even i its other lane is the
 * diagonal, computed and dropped), up to 8 vectors (16 partners) per call, the sums kept in
 * registers across a block of BLOCK columns.
 */

import { BLOCK, wasmColumns, type WasmColumns } from './column-sort.js';
import { leb, section, sleb, wasmName } from './wasm-bytes.js';

const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const tee = (i: number) => [0x22, i];
const simd = (op: number, ...imm: number[]) => [0xfd, ...leb(op), ...imm];
const memarg = (align: number, offset: number) => [align, ...leb(offset)];
/** Vectors of partners one call covers (sums held in locals). */
const MAX_VECTORS = 8;
const PAIR_STRIDE = BLOCK * 16;

/**
 * Function 0, interleave(pairs, bytes): for p < pairs and the f32 columns [0, bytes / 4) of rows
 * 2p and 2p + 1 (bytes: a positive multiple of 16), P[p][e] ← (f64 row 2p [e], f64 row 2p+1 [e]),
 * P at `pOffset`, P[p] PAIR_STRIDE bytes apart. Locals: 2 p, 3 row, 4 dst, 5 e, 6 t (i32), 7 lo, 8 hi (v128).
 *
 * Functions m = 1 … MAX_VECTORS, sums_m(q, xoff, acc, end): for each 16-byte step of q until end,
 * x = splat(f64 at q + xoff); for k < m: s_k += (x − f64x2 at q + k·PAIR_STRIDE)², s_k the
 * f64x2 at acc + 16k (loaded before, stored after). Locals: 4 x, 5 d, 6… s_k (v128).
 */
function moduleBytes(pOffset: number): Uint8Array {
  const lo = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const hi = lo.map((b) => b + 8);
  const upper = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const inter = [
    0x41, 0, ...set(2),
    0x03, 0x40,
    ...get(2), 0x41, ...sleb(8 * BLOCK), 0x6c, ...set(3), // row = p · 2 · BLOCK · 4
    ...get(2), 0x41, ...sleb(PAIR_STRIDE), 0x6c, ...set(4), // dst = p · PAIR_STRIDE
    0x41, 0, ...set(5),
    0x03, 0x40,
    ...get(3), ...get(5), 0x6a, ...tee(6), ...simd(0x00, ...memarg(0, 0)), ...get(6), ...simd(0x00, ...memarg(0, BLOCK * 4)), ...simd(0x0d, ...lo), ...set(7),
    ...get(6), ...simd(0x00, ...memarg(0, 0)), ...get(6), ...simd(0x00, ...memarg(0, BLOCK * 4)), ...simd(0x0d, ...hi), ...set(8),
    ...get(4), ...get(5), 0x41, 2, 0x74, 0x6a, ...tee(6), ...get(7), ...simd(0x5f), ...simd(0x0b, ...memarg(0, pOffset)),
    ...get(6), ...get(7), ...get(7), ...simd(0x0d, ...upper), ...simd(0x5f), ...simd(0x0b, ...memarg(0, pOffset + 16)),
    ...get(6), ...get(8), ...simd(0x5f), ...simd(0x0b, ...memarg(0, pOffset + 32)),
    ...get(6), ...get(8), ...get(8), ...simd(0x0d, ...upper), ...simd(0x5f), ...simd(0x0b, ...memarg(0, pOffset + 48)),
    ...get(5), 0x41, 16, 0x6a, ...tee(5), ...get(1), 0x49, 0x0d, 0, // e += 16; br_if e < bytes
    0x0b,
    ...get(2), 0x41, 1, 0x6a, ...tee(2), ...get(0), 0x49, 0x0d, 0, // p++; br_if p < pairs
    0x0b,
    0x0b,
  ];
  const bodies = [[2, 5, 0x7f, 2, 0x7b, ...inter]];
  for (let m = 1; m <= MAX_VECTORS; m++) {
    const b: number[] = [];
    for (let k = 0; k < m; k++) b.push(...get(2), ...simd(0x00, ...memarg(0, 16 * k)), ...set(6 + k));
    b.push(0x03, 0x40, ...get(0), ...get(1), 0x6a, ...simd(0x0a, ...memarg(3, 0)), ...set(4));
    for (let k = 0; k < m; k++) {
      b.push(...get(6 + k), ...get(4), ...get(0), ...simd(0x00, ...memarg(0, k * PAIR_STRIDE)), ...simd(0xf1), ...tee(5), ...get(5), ...simd(0xf2), ...simd(0xf0), ...set(6 + k));
    }
    b.push(...get(0), 0x41, 16, 0x6a, ...tee(0), ...get(3), 0x49, 0x0d, 0, 0x0b); // q += 16; br_if q < end
    for (let k = 0; k < m; k++) b.push(...get(2), ...get(6 + k), ...simd(0x0b, ...memarg(0, 16 * k)));
    b.push(0x0b);
    bodies.push([1, 2 + m, 0x7b, ...b]);
  }
  const exports = bodies.map((_, f) => [...wasmName(f === 0 ? 'interleave' : `sums${f}`), 0, f]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [2, 0x60, 2, 0x7f, 0x7f, 0, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 0]),
    ...section(2, [1, ...wasmName('m'), ...wasmName('mem'), 2, 0, 0]),
    ...section(3, [bodies.length, 0, ...new Array<number>(MAX_VECTORS).fill(1)]),
    ...section(7, [exports.length, ...exports.flat()]),
    ...section(10, [bodies.length, ...bodies.flatMap((b) => [...leb(b.length), ...b])]),
  ]);
}

interface Kernel {
  w: WasmColumns;
  interleave: (pairs: number, bytes: number) => void;
  sums: ((q: number, xoff: number, acc: number, end: number) => void)[];
  accOffset: number;
  acc: Float64Array;
}
let kernel: Kernel | null | undefined;

function load(w: WasmColumns): Kernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const ex = w.instantiate(moduleBytes(w.scratchOffset));
    const accOffset = w.scratchOffset + (w.maxRows / 2) * PAIR_STRIDE;
    kernel = {
      w,
      interleave: ex['interleave'] as Kernel['interleave'],
      sums: Array.from({ length: MAX_VECTORS + 1 }, (_, m) => ex[`sums${m}`] as Kernel['sums'][number]),
      accOffset,
      acc: new Float64Array(w.buffer, accOffset, w.maxRows * (w.maxRows + 1) + 16),
    };
  } catch {
    kernel = null;
  }
  return kernel;
}

/**
 * Adds to `dist` (n×n, row-major, upper triangle i < j; nothing else is touched) the squared L2
 * distances between the n sources over columns [start, start + len), each pair's sum over the
 * columns in order, s ← s + (x − y)² — the same additions a plain loop makes. False (nothing
 * done) where WebAssembly is unavailable or n > 64: the caller loops in JavaScript.
 */
export function addPairDistances(dist: Float64Array, sources: readonly Float32Array[], start: number, len: number): boolean {
  const n = sources.length;
  const w = wasmColumns();
  const k = w === null || n > w.maxRows ? null : load(w);
  if (k === null || w === null) return false;
  if (n < 2) return true;
  // Sums in a matrix of row stride n + 1 (room for the lanes past the last row); rows pad to even.
  const stride = n + 1;
  const acc = k.acc;
  acc.fill(0, 0, n * stride + 16);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) acc[i * stride + j] = dist[i * n + j]!;
  const pairs = (n + 1) >> 1;
  const rows = w.rows;
  const p = w.scratchOffset;
  for (let from = start; from < start + len; from += BLOCK) {
    const cols = Math.min(BLOCK, start + len - from);
    for (let r = 0; r < n; r++) rows.set(sources[r]!.subarray(from, from + cols), r * BLOCK);
    if (n % 2 === 1) rows.fill(0, n * BLOCK, (n + 1) * BLOCK);
    k.interleave(pairs, Math.ceil(cols / 4) * 16);
    for (let i = 0; i < n - 1; i++) {
      // Partners from i + 1 on: the vector holding row i + 1 (its other lane i itself for even i).
      for (let v = (i + 1) >> 1; v < pairs; v += MAX_VECTORS) {
        const m = Math.min(MAX_VECTORS, pairs - v);
        const q = p + v * PAIR_STRIDE;
        k.sums[m]!(q, ((i >> 1) - v) * PAIR_STRIDE + (i & 1) * 8, k.accOffset + (i * stride + 2 * v) * 8, q + cols * 16);
      }
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) dist[i * n + j] = acc[i * stride + j]!;
  return true;
}
