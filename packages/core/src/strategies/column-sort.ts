/**
 * Sorting networks applied column-wise to rows of float32 values: row r, column e is the r-th
 * update's value of the e-th coordinate of a block. Every comparator puts min into its first row
 * and max into its second, for all columns at once.
 *
 * Why WebAssembly: in V8 a JavaScript min/max loop costs ~2 ns per value (no vector code), so a
 * median of 8 (17 comparators) could not get near copy speed. A ~100-byte module with f32x4.min
 * and f32x4.max does four columns per instruction (~0.35 ns per comparator and value measured).
 * WebAssembly's min/max order −0 before +0, as Math.min/Math.max and TypedArray sort do, and the
 * values are finite, so the rows end up exactly as a per-coordinate sort would leave them. Where
 * WebAssembly SIMD is unavailable the same network runs in JavaScript (same results, slower).
 */

import { leb, section, sleb, wasmName } from './wasm-bytes.js';

/**
 * Columns per block (a multiple of 4). 4096, not 1024: each block costs a `subarray` and a
 * `set` per row (~0.3 µs each), which at 1024 columns made copying in cost twice a plain copy;
 * 8 rows of 4096 (128 KiB) still sit in L2.
 */
export const BLOCK = 4096;
/** Rows the WebAssembly memory holds; more inputs use the JavaScript network. */
const MAX_ROWS = 64;
/** Byte offset of the comparator table in the module's memory, after the rows. */
const NET_OFFSET = MAX_ROWS * BLOCK * 4;
/** Byte offset of the result row of `meanRows`, after the table (64 KiB). */
const OUT_OFFSET = NET_OFFSET + 65536;
/** Byte offset of the per-column flags of Bulyan's walk (bulyan-column.ts: two i32s a column), after the result row. */
const FLAG_OFFSET = OUT_OFFSET + BLOCK * 4;
/** Byte offset and size of the scratch of further modules (pair-distances.ts), after the flags. */
const SCRATCH_OFFSET = FLAG_OFFSET + BLOCK * 8;
const SCRATCH_BYTES = (MAX_ROWS / 2) * BLOCK * 16 + (MAX_ROWS * (MAX_ROWS + 1) + 16) * 8;


/**
 * Function 0, sort(net, count, bytes): for c < count, rows at byte offsets a = net[2c],
 * b = net[2c + 1]: for each 16-byte step e < bytes, (a+e, b+e) ← (f32x4.min, f32x4.max). Locals:
 * 3 c, 4 a, 5 b, 6 e (i32), 7 x, 8 y (v128). count 0 does nothing; bytes: a positive multiple of 16.
 *
 * Function 1, mean(first, count, bytes, out, divisor): for each column (two per step, 8 bytes),
 * acc = 0 + row₀, then acc += row_r for r < count in row order (rows BLOCK·4 bytes apart from
 * byte offset `first`), in float64 (f64x2, IEEE like JavaScript's +); out ← float32(acc / divisor).
 * Locals: 5 e, 6 p, 7 r (i32), 8 acc, 9 div (v128). bytes: a positive multiple of 8; count ≥ 1.
 *
 * Function 2, nonFinite(ptr, bytes) → i32: 1 if any float32 in [ptr, ptr + bytes) is NaN or
 * ±Infinity (acc += v − v per lane stays 0 exactly when all are finite), else 0. Locals: 2 e
 * (i32), 3 acc, 4 v (v128). bytes: a positive multiple of 16.
 */
function moduleBytes(): Uint8Array {
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const tee = (i: number) => [0x22, i];
  const load = [0xfd, 0x00, 4, 0];
  const store = [0xfd, 0x0b, 4, 0];
  const sort = [
    0x02, 0x40, ...get(1), 0x45, 0x0d, 0, // block; br_if count == 0
    0x03, 0x40, // loop over comparators
    ...get(0), ...get(3), 0x41, 3, 0x74, 0x6a, 0x28, 2, 0, ...set(4), // a = i32.load(net + c·8)
    ...get(0), ...get(3), 0x41, 3, 0x74, 0x6a, 0x28, 2, 4, ...set(5), // b = i32.load(net + c·8 + 4)
    0x41, 0, ...set(6),
    0x03, 0x40, // loop over columns, four at a time
    ...get(4), ...get(6), 0x6a, ...load, ...set(7),
    ...get(5), ...get(6), 0x6a, ...load, ...set(8),
    ...get(4), ...get(6), 0x6a, ...get(7), ...get(8), 0xfd, 0xe8, 0x01, ...store, // f32x4.min
    ...get(5), ...get(6), 0x6a, ...get(7), ...get(8), 0xfd, 0xe9, 0x01, ...store, // f32x4.max
    ...get(6), 0x41, 0x10, 0x6a, ...tee(6), ...get(2), 0x49, 0x0d, 0, // e += 16; br_if e < bytes
    0x0b,
    ...get(3), 0x41, 1, 0x6a, ...tee(3), ...get(1), 0x49, 0x0d, 0, // c++; br_if c < count
    0x0b,
    0x0b,
    0x0b,
  ];
  const two = [0xfd, 0x5d, 3, 0, 0xfd, 0x5f]; // v128.load64_zero, f64x2.promote_low_f32x4
  const mean = [
    ...get(4), 0xfd, 0x14, ...set(9), // div = f64x2.splat(divisor)
    0x41, 0, ...set(5),
    0x03, 0x40, // loop over columns, two at a time
    0xfd, 0x0c, ...new Array<number>(16).fill(0), // v128.const 0
    ...get(0), ...get(5), 0x6a, ...tee(6), ...two, 0xfd, 0xf0, 0x01, ...set(8), // acc = 0 + row₀
    0x41, 1, ...set(7),
    0x02, 0x40, 0x03, 0x40, // while r < count
    ...get(7), ...get(1), 0x4f, 0x0d, 1,
    ...get(8), ...get(6), 0x41, ...sleb(BLOCK * 4), 0x6a, ...tee(6), ...two, 0xfd, 0xf0, 0x01, ...set(8), // acc += row_r
    ...get(7), 0x41, 1, 0x6a, ...set(7),
    0x0c, 0,
    0x0b, 0x0b,
    ...get(3), ...get(5), 0x6a, ...get(8), ...get(9), 0xfd, 0xf3, 0x01, 0xfd, 0x5e, 0xfd, 0x5b, 3, 0, 0, // out ← demote(acc / div), lane 0
    ...get(5), 0x41, 8, 0x6a, ...tee(5), ...get(2), 0x49, 0x0d, 0, // e += 8; br_if e < bytes
    0x0b,
    0x0b,
  ];
  const finite = [
    0x41, 0, ...set(2),
    0x03, 0x40,
    ...get(3), ...get(0), ...get(2), 0x6a, ...load, ...tee(4), ...get(4), 0xfd, 0xe5, 0x01, 0xfd, 0xe4, 0x01, ...set(3), // acc += v − v
    ...get(2), 0x41, 0x10, 0x6a, ...tee(2), ...get(1), 0x49, 0x0d, 0,
    0x0b,
    ...get(3), ...get(3), 0xfd, 0x42, 0xfd, 0x53, // v128.any_true(f32x4.ne(acc, acc))
    0x0b,
  ];
  const finiteBody = [2, 1, 0x7f, 2, 0x7b, ...finite];
  const sortBody = [2, 4, 0x7f, 2, 0x7b, ...sort];
  const meanBody = [2, 3, 0x7f, 2, 0x7b, ...mean];
  const pages = Math.ceil((SCRATCH_OFFSET + SCRATCH_BYTES) / 65536);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [3, 0x60, 3, 0x7f, 0x7f, 0x7f, 0, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7c, 0, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]),
    ...section(3, [3, 0, 1, 2]),
    ...section(5, [1, 0, ...leb(pages)]),
    ...section(7, [4, ...wasmName('sort'), 0, 0, ...wasmName('mean'), 0, 1, ...wasmName('nonFinite'), 0, 2, ...wasmName('mem'), 2, 0]),
    ...section(10, [3, ...leb(sortBody.length), ...sortBody, ...leb(meanBody.length), ...meanBody, ...leb(finiteBody.length), ...finiteBody]),
  ]);
}

/** The part of the WebAssembly global used here (lib ES2022 with Node types does not declare it). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports?: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
};

interface WasmSorter {
  sort: (net: number, count: number, bytes: number) => void;
  mean: (first: number, count: number, bytes: number, out: number, divisor: number) => void;
  nonFinite: (ptr: number, bytes: number) => number;
  rows: Float32Array;
  out: Float32Array;
  table: Int32Array;
  flags: Int32Array;
  memory: unknown;
}

let wasm: WasmSorter | null | undefined;

/** The module, or null where WebAssembly SIMD is not available. */
function loadWasm(): WasmSorter | null {
  if (wasm !== undefined) return wasm;
  try {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()));
    const buffer = (exports['mem'] as { buffer: ArrayBuffer }).buffer;
    wasm = {
      sort: exports['sort'] as WasmSorter['sort'],
      mean: exports['mean'] as WasmSorter['mean'],
      nonFinite: exports['nonFinite'] as WasmSorter['nonFinite'],
      rows: new Float32Array(buffer, 0, MAX_ROWS * BLOCK),
      out: new Float32Array(buffer, OUT_OFFSET, BLOCK),
      table: new Int32Array(buffer, NET_OFFSET, (OUT_OFFSET - NET_OFFSET) / 4),
      flags: new Int32Array(buffer, FLAG_OFFSET, BLOCK * 2),
      memory: exports['mem'],
    };
  } catch {
    wasm = null;
  }
  return wasm;
}

/** n rows of BLOCK float32 columns and a network to sort their columns with. */
export interface ColumnSorter {
  /** Row r is rows[r·BLOCK, (r + 1)·BLOCK). */
  readonly rows: Float32Array;
  /** Applies the network to the first `len` columns (the rest may change too). */
  sort(len: number): void;
  /**
   * out[start + e] = float32((0 + row[from][e] + … + row[to − 1][e]) / divisor) for e < len,
   * summed in float64 in row order.
   */
  meanRows(from: number, to: number, len: number, divisor: number, out: Float32Array, start: number): void;
  /** 'webassembly' or 'javascript': which implementation runs. */
  readonly backend: 'webassembly' | 'javascript';
}

/**
 * A sorter for n rows and the network `net` (comparator row pairs, flattened). Uses the shared
 * WebAssembly memory (one sorter in use at a time: the strategies are synchronous) unless
 * `js` is set, n exceeds its rows or the network its table, or WebAssembly is unavailable.
 */
export function columnSorter(n: number, net: Int32Array, js = false): ColumnSorter {
  const w = js ? null : loadWasm();
  if (w !== null && n <= MAX_ROWS && net.length <= w.table.length) {
    for (let c = 0; c < net.length; c++) w.table[c] = net[c]! * BLOCK * 4;
    const count = net.length / 2;
    return {
      backend: 'webassembly',
      rows: w.rows,
      sort: (len) => w.sort(NET_OFFSET, count, Math.ceil(len / 4) * 16),
      meanRows(from, to, len, divisor, out, start) {
        w.mean(from * BLOCK * 4, to - from, Math.ceil(len / 2) * 8, OUT_OFFSET, divisor);
        out.set(w.out.subarray(0, len), start);
      },
    };
  }
  const rows = new Float32Array(n * BLOCK);
  const acc = new Float64Array(BLOCK);
  return {
    backend: 'javascript',
    rows,
    meanRows(from, to, len, divisor, out, start) {
      let row = from * BLOCK;
      // 0 + x, not x: a sum started at +0 never ends at −0.
      for (let e = 0; e < len; e++) acc[e] = 0 + rows[row + e]!;
      for (let k = from + 1; k < to; k++) {
        row = k * BLOCK;
        for (let e = 0; e < len; e++) acc[e] = acc[e]! + rows[row + e]!;
      }
      for (let e = 0; e < len; e++) out[start + e] = acc[e]! / divisor;
    },
    sort(len) {
      for (let c = 0; c < net.length; c += 2) {
        const a = net[c]! * BLOCK;
        const b = net[c + 1]! * BLOCK;
        for (let e = 0; e < len; e++) {
          const x = rows[a + e]!;
          const y = rows[b + e]!;
          rows[a + e] = Math.min(x, y);
          rows[b + e] = Math.max(x, y);
        }
      }
    },
  };
}

/**
 * Whether `data` has a NaN or ±Infinity: true, false, or undefined where WebAssembly is
 * unavailable (the caller scans in JavaScript). Copied through the module's rows a block at a
 * time (a copy and a vector scan cost less than a scalar scan in JavaScript).
 */
export function hasNonFinite(data: Float32Array): boolean | undefined {
  const w = javascriptOnly ? null : loadWasm();
  if (w === null) return undefined;
  const step = MAX_ROWS * BLOCK;
  for (let start = 0; start < data.length; start += step) {
    const len = Math.min(step, data.length - start);
    w.rows.set(data.subarray(start, start + len));
    // Zeros up to the next 16 bytes: stale values there must not count.
    w.rows.fill(0, len, Math.ceil(len / 4) * 4);
    if (w.nonFinite(0, Math.ceil(len / 4) * 16) !== 0) return true;
  }
  return false;
}

/** The shared module memory for a further module (bulyan-column.ts): its layout and results. */
export interface WasmColumns {
  /** Instantiates `bytes`, which imports the shared memory as m.mem; returns its exports (throws if invalid). */
  instantiate(bytes: Uint8Array): Record<string, unknown>;
  /** Byte offset of the float32 result row (BLOCK values), and that row. */
  readonly outOffset: number;
  readonly out: Float32Array;
  /** Byte offset of 2·BLOCK int32 flags, and those flags. */
  readonly flagOffset: number;
  readonly flags: Int32Array;
  /** Byte offset of SCRATCH_BYTES free for the further module's use during one call, and that memory. */
  readonly scratchOffset: number;
  readonly buffer: ArrayBuffer;
  /** Rows the shared memory holds, and those rows (row r at r·BLOCK). */
  readonly maxRows: number;
  readonly rows: Float32Array;
}

/** The shared memory (rows at byte 0, row r at r·BLOCK·4), or null where WebAssembly SIMD is unavailable or JavaScript is forced. */
export function wasmColumns(): WasmColumns | null {
  const w = javascriptOnly ? null : loadWasm();
  if (w === null) return null;
  return (columns ??= {
    instantiate: (bytes) => new WebAssembly.Instance(new WebAssembly.Module(bytes), { m: { mem: w.memory } }).exports,
    outOffset: OUT_OFFSET,
    out: w.out,
    flagOffset: FLAG_OFFSET,
    flags: w.flags,
    scratchOffset: SCRATCH_OFFSET,
    buffer: w.rows.buffer as ArrayBuffer,
    maxRows: MAX_ROWS,
    rows: w.rows,
  });
}
let columns: WasmColumns | undefined;

let javascriptOnly = false;
/** Tests: use the JavaScript loops instead of WebAssembly (same results). */
export function useJavaScriptColumns(on: boolean): void {
  javascriptOnly = on;
}
