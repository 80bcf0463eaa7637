import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import type { Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate, type Strategy, type StrategyConfig } from './index.js';
import { bulyanSelect, krumScores, pairwiseSquaredDistances } from './krum.js';
import { useJavaScriptNetwork } from './order-stats.js';

const t = (values: number[], shape: number[] = [values.length]): Tensor => ({ shape, data: Float32Array.from(values) });
const up = (numExamples: number, values: number[]): ClientUpdate => ({ numExamples, weights: [t(values)] });
const ones = (...rows: number[][]): ClientUpdate[] => rows.map((v) => up(1, v));
const run = (s: Strategy, updates: ClientUpdate[]): number[] => Array.from(s.aggregate([t(new Array<number>(updates[0]!.weights[0]!.data.length).fill(0))], updates, 1)[0]!.data);

function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('INVALID_ARGUMENT');
    return (err as FedlhsError).message;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

// Five one-value updates 0, 1, 2, 10, −7 with f = 1: each scored on its n − f − 2 = 2 nearest.
//   0: ‖0−1‖² + ‖0−2‖² = 1 + 4 = 5        10: 64 + 81 = 145
//   1: 1 + 1 = 2                          −7: 49 + 64 = 113
//   2: 1 + 4 = 5
const five = (): ClientUpdate[] => [up(1, [0]), up(1, [1]), up(2, [2]), up(4, [10]), up(1, [-7])];

describe('krum', () => {
  it('scores by the sum of squared distances to the n − f − 2 nearest and returns the lowest', () => {
    const updates = five();
    expect(Array.from(krumScores(pairwiseSquaredDistances(updates), 5, [0, 1, 2, 3, 4], 1))).toEqual([5, 2, 5, 145, 113]);
    const krum = createStrategy({ name: 'krum', byzantine: 1 });
    expect(run(krum, updates)).toEqual([1]);
    expect(krum.minUpdates).toBe(5);
    expect(krum.input).toBe('all-updates');
  });

  it('measures L2 distance over every tensor of the model', () => {
    // Pairwise ‖·‖² over both tensors: a–b = 1 + 0 = 1; a–c = 0 + 9 = 9; b–c = 1 + 9 = 10.
    const updates = [
      { numExamples: 1, weights: [t([0]), t([0, 0])] },
      { numExamples: 1, weights: [t([1]), t([0, 0])] },
      { numExamples: 1, weights: [t([0]), t([3, 0])] },
    ];
    expect(Array.from(pairwiseSquaredDistances(updates))).toEqual([0, 1, 9, 1, 0, 10, 9, 10, 0]);
  });

  it('breaks ties by the earliest update in the given order', () => {
    // f = 0, n = 3: one neighbour each. 0, 2, 4: scores 4, 4, 4 — all tied.
    const krum = createStrategy({ name: 'krum', byzantine: 0 });
    expect(run(krum, ones([0], [2], [4]))).toEqual([0]);
    expect(run(krum, ones([4], [2], [0]))).toEqual([4]);
    // 9, 6, 5: scores 9, 1, 1 → 6 and 5 tie; 6 comes first.
    expect(run(krum, ones([9], [6], [5]))).toEqual([6]);
  });

  it('returns a copy of the chosen update, whatever its example count', () => {
    const updates = five();
    const [out] = createStrategy({ name: 'krum', byzantine: 1 }).aggregate([t([0])], updates, 1);
    expect(out!.data).not.toBe(updates[1]!.weights[0]!.data);
    expect(out!.shape).toEqual([1]);
  });
});

describe('multi-krum', () => {
  it('averages the toKeep lowest-scoring updates, weighted by example counts', () => {
    // Scores 5, 2, 5, 145, 113 → order 1 (2), 0 (5), 2 (5, tied with 0: the earlier first), 4, 3.
    // toKeep 3: updates 1, 0, 2 with counts 1, 1, 2 → (1·1 + 1·0 + 2·2)/4 = 1.25.
    expect(run(createStrategy({ name: 'multi-krum', byzantine: 1, toKeep: 3 }), five())).toEqual([1.25]);
    // toKeep 2: updates 1 and 0 (0 wins its tie with 2) → (1 + 0)/2 = 0.5.
    expect(run(createStrategy({ name: 'multi-krum', byzantine: 1, toKeep: 2 }), five())).toEqual([0.5]);
    // toKeep 1 is Krum.
    expect(run(createStrategy({ name: 'multi-krum', byzantine: 1, toKeep: 1 }), five())).toEqual([1]);
  });

  it('keeps n − f by default', () => {
    // n − f = 4: updates 1, 0, 2, 4 (counts 1, 1, 2, 1) → (1 + 0 + 4 − 7)/5 = −0.4; 10 (score 145) goes.
    const s = createStrategy({ name: 'multi-krum', byzantine: 1 });
    expect(s.config).toEqual({ name: 'multi-krum', byzantine: 1 });
    expect(run(s, five())).toEqual([Math.fround(-0.4)]);
  });
});

describe('bulyan', () => {
  // f = 1, n = 7 = 4f + 3: θ = n − 2f = 5 selected, β = θ − 2f = 3 averaged per coordinate.
  // Updates (in order) a0..a6 = 0, 1, 3, 100, 4, 6, 10 (100 is the byzantine one).
  const updates = (): ClientUpdate[] => ones([0], [1], [3], [100], [4], [6], [10]);

  it('selects θ = n − 2f updates by iterated Krum', () => {
    // Pick 1, 7 left, 4 nearest: 0: 1+9+16+36 = 62; 1: 1+4+9+25 = 39; 3: 1+4+9+9 = 23;
    //   4: 1+4+9+16 = 30; 6: 4+9+16+25 = 54; 10: 16+36+49+81 = 182; 100: ≥ 8100·4 → 3 (a2).
    // Pick 2, 6 left, 3 nearest: 0: 1+16+36 = 53; 1: 1+9+25 = 35; 4: 4+9+16 = 29; 6: 4+16+25 = 45;
    //   10: 16+36+81 = 133 → 4 (a4).
    // Pick 3, 5 left, 2 nearest: 0: 1+36 = 37; 1: 1+25 = 26; 6: 16+25 = 41; 10: 16+81 = 97 → 1 (a1).
    // Pick 4, 4 left, max(1, 4−1−2) = 1 nearest: 0: 36; 6: 16; 10: 16; 100: 8100 → tie, 6 (a5) is earlier.
    // Pick 5, 3 left, 1 nearest: 0: 100; 10: 100; 100: 8100 → tie, 0 (a0) is earlier.
    expect(bulyanSelect(updates(), 1)).toEqual([2, 4, 1, 5, 0]);
  });

  it('averages the β values nearest the coordinate-wise median of the selection', () => {
    // Selected 3, 4, 1, 6, 0: median 3; distances 0, 1, 2, 3, 3 → nearest three 3, 4, 1 → 8/3.
    // (The median alone would say 3, the honest mean 4, FedAvg 124/7 ≈ 17.7.)
    const s = createStrategy({ name: 'bulyan', byzantine: 1 });
    expect(s.minUpdates).toBe(7);
    expect(run(s, updates())).toEqual([Math.fround(8 / 3)]);
  });

  it('with f = 0 is the plain unweighted mean of all updates', () => {
    // θ = β = n: (1 + 2 + 6)/3 = 3, whatever the example counts.
    expect(run(createStrategy({ name: 'bulyan', byzantine: 0 }), [up(1, [1]), up(50, [2]), up(7, [6])])).toEqual([3]);
  });
});

describe('too few updates for f', () => {
  const cases: [StrategyConfig, number][] = [
    [{ name: 'krum', byzantine: 2 }, 4],
    [{ name: 'krum', byzantine: 0 }, 2],
    [{ name: 'multi-krum', byzantine: 1 }, 4],
    [{ name: 'multi-krum', byzantine: 1, toKeep: 5 }, 5],
    [{ name: 'bulyan', byzantine: 1 }, 6],
    [{ name: 'bulyan', byzantine: 2 }, 10],
  ];
  const messages = cases.map(([config, n]) => {
    const s = createStrategy(config);
    return `${s.minUpdates} ${rejection(() => s.aggregate([t([0])], Array.from({ length: n }, (_, i) => up(1, [i])), 1))}`;
  });

  it('names f, the bound and n', () => {
    expect(messages).toMatchInlineSnapshot(`
      [
        "7 krum: byzantine=2 needs at least 7 updates (n > 2f + 2), got 4",
        "3 krum: byzantine=0 needs at least 3 updates (n > 2f + 2), got 2",
        "5 multi-krum: byzantine=1 needs at least 5 updates (n > 2f + 2), got 4",
        "6 multi-krum: byzantine=1 and toKeep=5 need at least 6 updates (n > 2f + 2 and n ≥ toKeep + f), got 5",
        "7 bulyan: byzantine=1 needs at least 7 updates (n ≥ 4f + 3), got 6",
        "11 bulyan: byzantine=2 needs at least 11 updates (n ≥ 4f + 3), got 10",
      ]
    `);
  });

  it('accepts exactly minUpdates', () => {
    for (const [config] of cases) {
      const s = createStrategy(config);
      expect(() => s.aggregate([t([0])], Array.from({ length: s.minUpdates }, (_, i) => up(1, [i])), 1)).not.toThrow();
    }
  });

  it('rejects non-finite values before any distance is computed', () => {
    expect(rejection(() => run(createStrategy({ name: 'krum', byzantine: 0 }), ones([0], [NaN], [1])))).toMatchInlineSnapshot(
      `"krum: update 1 tensor 0 has a non-finite value (NaN) at index 0"`,
    );
  });

  // The Krum family finds non-finite values from its distances (robust.ts FiniteByDistances), not
  // by a scan up front: every placement must still be rejected, with the scan's message.
  for (const backend of ['webassembly', 'javascript'] as const) {
    it(`rejects every non-finite value from the distances, with the scan's message (${backend})`, () => {
      useJavaScriptNetwork(backend === 'javascript');
      try {
        const length = 5000;
        const base = (k: number): ClientUpdate => ({ numExamples: 1, weights: [t(Array.from({ length: length }, (_, i) => ((i * 7 + k) % 13) - 6)), t([k, -k])] });
        const placements: [number, number, number, number][] = [
          [0, 0, 0, Number.NaN],
          [6, 0, length - 1, Infinity],
          [3, 1, 1, -Infinity],
          [2, 0, 4097, -3.5e38 * 10],
        ];
        for (const config of cases.map(([c]) => c)) {
          for (const [k, ti, i, bad] of placements) {
            const updates = Array.from({ length: 11 }, (_, j) => base(j));
            updates[k]!.weights[ti]!.data[i] = bad;
            // Infinity at the same index in two updates: ∞ − ∞ is NaN, still non-finite.
            if (bad === Infinity) updates[5]!.weights[ti]!.data[i] = Infinity;
            const global = [t(new Array<number>(length).fill(0)), t([0, 0])];
            const name = config.name;
            const first = bad === Infinity ? Math.min(k, 5) : k;
            expect(rejection(() => createStrategy(config).aggregate(global, updates, 1))).toBe(
              `${name}: update ${first} tensor ${ti} has a non-finite value (${Math.fround(bad)}) at index ${i}`,
            );
          }
        }
      } finally {
        useJavaScriptNetwork(false);
      }
    });
  }
});
