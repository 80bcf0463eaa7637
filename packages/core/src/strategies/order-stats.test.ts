import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.js';
import type { Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate } from './index.js';
import { krumScores, pairwiseSquaredDistances } from './krum.js';
import { MAX_NETWORK_INPUTS, networkBackend, networkFor, sortingNetwork, useJavaScriptNetwork } from './order-stats.js';

// The per-coordinate implementations the sorting-network code replaced, kept verbatim as the
// reference: the new code must give the same bits on every input.
function before(x: number, y: number): boolean {
  return x < y || (x === 0 && y === 0 && 1 / x < 1 / y);
}
function refSort(a: Float64Array): void {
  const n = a.length;
  if (n > 32) {
    a.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && before(x, a[j]!)) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}
const refMedianOfSorted = (s: Float64Array): number => (s.length % 2 === 1 ? s[s.length >> 1]! : (s[(s.length >> 1) - 1]! + s[s.length >> 1]!) / 2);
function refCoordinateWise(tensorsPerUpdate: readonly Tensor[][], reduce: (values: Float64Array) => number): Float32Array[] {
  const n = tensorsPerUpdate.length;
  const scratch = new Float64Array(n);
  return tensorsPerUpdate[0]!.map((model, t) => {
    const sources = tensorsPerUpdate.map((ts) => ts[t]!.data);
    const out = new Float32Array(model.data.length);
    for (let i = 0; i < out.length; i++) {
      for (let k = 0; k < n; k++) scratch[k] = sources[k]![i]!;
      out[i] = reduce(scratch);
    }
    return out;
  });
}
const refMedian = (us: ClientUpdate[]): Float32Array[] =>
  refCoordinateWise(
    us.map((u) => u.weights),
    (v) => (refSort(v), refMedianOfSorted(v)),
  );
function refTrimmed(us: ClientUpdate[], trim: number): Float32Array[] {
  const n = us.length;
  return refCoordinateWise(
    us.map((u) => u.weights),
    (v) => {
      refSort(v);
      let sum = 0;
      for (let k = trim; k < n - trim; k++) sum += v[k]!;
      return sum / (n - 2 * trim);
    },
  );
}
function refDistances(us: readonly ClientUpdate[]): Float64Array {
  const n = us.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      us[i]!.weights.forEach((a, t) => {
        const x = a.data;
        const y = us[j]!.weights[t]!.data;
        for (let e = 0; e < x.length; e++) {
          const d = x[e]! - y[e]!;
          s += d * d;
        }
      });
      dist[i * n + j] = dist[j * n + i] = s;
    }
  }
  return dist;
}
function refArgmin(scores: Float64Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! < scores[best]!) best = i;
  return best;
}
function refBulyan(us: ClientUpdate[], f: number): Float32Array[] {
  const n = us.length;
  const dist = refDistances(us);
  const remaining = us.map((_, i) => i);
  const selected: number[] = [];
  while (selected.length < n - 2 * f) selected.push(...remaining.splice(refArgmin(krumScores(dist, n, remaining, f)), 1));
  const chosen = selected.map((i) => us[i]!.weights);
  const theta = chosen.length;
  const beta = theta - 2 * f;
  const sorted = new Float64Array(theta);
  const distance = new Float64Array(theta);
  const order = new Int32Array(theta);
  return refCoordinateWise(chosen, (values) => {
    sorted.set(values);
    refSort(sorted);
    const median = refMedianOfSorted(sorted);
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
  });
}

/** Value generators: heavy ties incl. ±0 and values symmetric about the median; wide magnitudes; near-identical updates. */
const TIES = [-2, -1, -0.5, -0, 0, 0.5, 1, 2, 3, 1e-30, 1e30];
const kinds = {
  ties: (r: () => number) => TIES[Math.floor(r() * TIES.length)]!,
  wide: (r: () => number) => (r() - 0.5) * 10 ** Math.floor(r() * 60 - 30),
  near: (r: () => number) => 0.25 + (r() - 0.5) * 1e-6,
  mixed: (r: () => number) => (r() < 0.3 ? TIES[Math.floor(r() * TIES.length)]! : (r() - 0.5) * 10 ** Math.floor(r() * 8 - 4)),
};
// Two tensors, the first spanning two network blocks (4096) and three JavaScript distance blocks (2048).
const SHAPES = [[3, 1500], [7]];

function updates(n: number, kind: keyof typeof kinds, seed: number): ClientUpdate[] {
  const r = mulberry32(seed);
  const gen = kinds[kind];
  return Array.from({ length: n }, (_, k) => ({
    numExamples: 1 + k,
    weights: SHAPES.map((shape) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => gen(r)) })),
  }));
}

const bits = (ts: readonly { data?: Float32Array }[] | Float32Array[]): number[][] =>
  ts.map((t) => Array.from(new Uint32Array((t instanceof Float32Array ? t : t.data!).slice().buffer)));
const zero = SHAPES.map((shape) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }));

describe('sorting networks', () => {
  it('sort every 0/1 input for n = 1..20 (the 0–1 principle: then they sort anything)', () => {
    for (let n = 1; n <= 20; n++) {
      const net = sortingNetwork(n);
      for (let mask = 0; mask < 2 ** Math.min(n, 14); mask++) {
        const v = Array.from({ length: n }, (_, i) => (mask >> i) & 1);
        for (let c = 0; c < net.length; c += 2) {
          const a = net[c]!, b = net[c + 1]!;
          if (v[a]! > v[b]!) [v[a], v[b]] = [v[b]!, v[a]!];
        }
        expect(v).toEqual([...v].sort((x, y) => x - y));
      }
    }
  });

  it('are pruned to what the positions read need', () => {
    expect(sortingNetwork(8).length / 2).toBe(19);
    expect(networkFor(8, 3, 5).length / 2).toBeLessThan(19);
    expect(networkFor(8, 0, 8).length / 2).toBe(19);
  });
});

describe('the network backend', () => {
  it('is WebAssembly on Node (a module that failed to load would silently cost 5×)', () => {
    expect(networkBackend()).toBe('webassembly');
    useJavaScriptNetwork(true);
    expect(networkBackend()).toBe('javascript');
    useJavaScriptNetwork(false);
  });
});

for (const backend of ['webassembly', 'javascript'] as const) describe(`order statistics (${backend}) are bit for bit the per-coordinate sort`, () => {
  beforeAll(() => useJavaScriptNetwork(backend === 'javascript'));
  afterAll(() => useJavaScriptNetwork(false));
  const tested = backend === 'javascript' ? (['ties', 'mixed'] as const) : (Object.keys(kinds) as (keyof typeof kinds)[]);
  for (const kind of tested) {
    it(`${kind} values, n = 3..20: median, trimmed mean, pairwise distances, krum, bulyan`, () => {
      expect(networkBackend()).toBe(backend);
      for (let n = 3; n <= 20; n++) {
        const us = updates(n, kind, n * 101 + kind.length);
        expect(bits(createStrategy({ name: 'fedmedian' }).aggregate(zero, us, 1))).toEqual(bits(refMedian(us)));
        for (const beta of [0, 0.1, 0.2, 0.3, 0.45]) {
          const trim = Math.floor(beta * n + 1e-9);
          expect(bits(createStrategy({ name: 'trimmed-mean', beta }).aggregate(zero, us, 1))).toEqual(bits(refTrimmed(us, trim)));
        }
        expect(Array.from(pairwiseSquaredDistances(us))).toEqual(Array.from(refDistances(us)));
        for (let f = 0; 2 * f + 3 <= n; f++) {
          const winner = refArgmin(krumScores(refDistances(us), n, us.map((_, i) => i), f));
          expect(bits(createStrategy({ name: 'krum', byzantine: f }).aggregate(zero, us, 1))).toEqual(bits(us[winner]!.weights));
        }
        for (let f = 0; 4 * f + 3 <= n; f++) {
          expect(bits(createStrategy({ name: 'bulyan', byzantine: f }).aggregate(zero, us, 1))).toEqual(bits(refBulyan(us, f)));
        }
      }
    });
  }

  it(`beyond ${MAX_NETWORK_INPUTS} updates the per-coordinate path gives the same bits`, () => {
    const us = updates(MAX_NETWORK_INPUTS + 2, 'mixed', 5).map((u) => ({ ...u, weights: [{ shape: [40], data: u.weights[0]!.data.slice(0, 40) }] }));
    const z = [{ shape: [40], data: new Float32Array(40) }];
    expect(bits(createStrategy({ name: 'fedmedian' }).aggregate(z, us, 1))).toEqual(bits(refMedian(us)));
    expect(bits(createStrategy({ name: 'trimmed-mean', beta: 0.2 }).aggregate(z, us, 1))).toEqual(bits(refTrimmed(us, 13)));
    expect(bits(createStrategy({ name: 'bulyan', byzantine: 2 }).aggregate(z, us, 1))).toEqual(bits(refBulyan(us, 2)));
  });
});
