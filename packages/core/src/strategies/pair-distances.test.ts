import { afterAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.js';
import { BLOCK } from './column-sort.js';
import { addPairDistances } from './pair-distances.js';
import { useJavaScriptNetwork } from './order-stats.js';

// Each pair's sum by the plain loop, from what `dist` held before.
function plain(dist: Float64Array, xs: Float32Array[], start: number, len: number): Float64Array {
  const n = xs.length;
  const out = dist.slice();
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = out[i * n + j]!;
      for (let e = start; e < start + len; e++) {
        const d = xs[i]![e]! - xs[j]![e]!;
        s += d * d;
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

describe('pairwise squared distances in WebAssembly', () => {
  afterAll(() => useJavaScriptNetwork(false));

  it('are the plain loop bit for bit, for n = 2..64 (odd n pads a row; > 16 partners take two calls), and touch only i < j', () => {
    const r = mulberry32(11);
    for (const n of [2, 3, 8, 17, 33, 64]) {
      const length = BLOCK + 37;
      const xs = Array.from({ length: n }, () => Float32Array.from({ length: length }, () => (r() - 0.5) * 10 ** Math.floor(r() * 12 - 6)));
      // Running sums carried in (as DistanceSum does slice by slice), and a marker below the diagonal.
      const dist = Float64Array.from({ length: n * n }, (_, k) => (k % n > Math.floor(k / n) ? r() : -7));
      const want = plain(dist, xs, 3, length - 3);
      expect(addPairDistances(dist, xs, 3, length - 3)).toBe(true);
      expect(Array.from(dist), `n=${n}`).toEqual(Array.from(want));
    }
  });

  it('leave the JavaScript loop to the caller when WebAssembly is off or n > 64', () => {
    expect(addPairDistances(new Float64Array(65 * 65), Array.from({ length: 65 }, () => new Float32Array(4)), 0, 4)).toBe(false);
    useJavaScriptNetwork(true);
    expect(addPairDistances(new Float64Array(4), [new Float32Array(4), new Float32Array(4)], 0, 4)).toBe(false);
  });
});
