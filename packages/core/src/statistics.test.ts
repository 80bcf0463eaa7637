import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.js';
import { applyNormalization, combineStats, computeClinicStats, histogramQuantile, normalizationFrom } from './statistics.js';

function matrix(rows: number, seed: number, missingRate: number): { x: Float32Array; y: Float32Array } {
  const r = mulberry32(seed);
  const x = new Float32Array(rows * 3);
  const y = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    x[i * 3] = r() < missingRate ? NaN : 20 + 60 * r();
    x[i * 3 + 1] = r() < missingRate ? NaN : 80 + 40 * r();
    x[i * 3 + 2] = r() < 0.5 ? 1 : 0;
    y[i] = r() < 0.3 ? 1 : 0;
  }
  return { x, y };
}

const names = ['age', 'glucose', 'flag'];
const ranges = [{ min: 0, max: 100, bins: 10 }, { min: 50, max: 150, bins: 20 }, { min: 0, max: 1, bins: 2 }];

describe('federated statistics', () => {
  it('combined clinic statistics equal the pooled statistics', () => {
    const clinics = [matrix(500, 1, 0.1), matrix(230, 2, 0.3), matrix(61, 3, 0)];
    const pooled = {
      x: Float32Array.from(clinics.flatMap((c) => Array.from(c.x))),
      y: Float32Array.from(clinics.flatMap((c) => Array.from(c.y))),
    };
    const combined = combineStats(clinics.map((c) => computeClinicStats(c.x, c.y, names, 0, ranges)));
    const direct = combineStats([computeClinicStats(pooled.x, pooled.y, names, 0, ranges)]);
    expect(combined.rows).toBe(791);
    expect(combined.positives).toBe(direct.positives);
    combined.features.forEach((f, j) => {
      const p = direct.features[j]!;
      expect([f.count, f.missing, f.histogram]).toEqual([p.count, p.missing, p.histogram]);
      expect(f.sum).toBeCloseTo(p.sum, 6);
      expect(f.sumOfSquares).toBeCloseTo(p.sumOfSquares, 3);
      expect(f.mean).toBeCloseTo(p.mean, 10);
      expect(f.std).toBeCloseTo(p.std, 10);
    });
    // And the mean agrees with a plain computation over the pooled non-missing values.
    const glucose = Array.from(pooled.x).filter((_, i) => i % 3 === 1 && !Number.isNaN(pooled.x[i]!));
    expect(combined.features[1]!.mean).toBeCloseTo(glucose.reduce((s, v) => s + v, 0) / glucose.length, 9);
  });

  it('suppresses every count below the minimum cell count, and what would reveal one', () => {
    // 8 rows; a: continuous, no missing; b: one missing value; c: binary with two ones.
    const rows = [
      [1, 5, 0], [2, 5, 0], [3, 5, 1], [4, NaN, 0], [6, 5, 0], [7, 5, 1], [8, 5, 0], [9, 5, 0],
    ];
    const x = Float32Array.from(rows.flat());
    const y = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0]);
    const s = computeClinicStats(x, y, ['a', 'b', 'c'], 3, [{ min: 0, max: 10, bins: 5 }]);
    expect(s.rows).toBe(8);
    expect(s.positives).toBe(4);
    expect(s.suppressed).toBe(false);
    // a: bins [0,2) [2,4) [4,6) [6,8) [8,10) hold 1, 2, 1, 2, 2: all below 3 are zeroed.
    expect(s.features[0]).toEqual({ name: 'a', count: 8, sum: 40, sumOfSquares: 260, missing: 0, suppressed: false, histogram: [0, 0, 0, 0, 0], histogramMin: 0, histogramMax: 10 });
    // b: one missing value would be revealed (rows − count): the feature is withheld.
    expect(s.features[1]).toMatchObject({ name: 'b', count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: true });
    // c: a 0/1 feature's sum is the number of ones (2 < 3): withheld.
    expect(s.features[2]).toMatchObject({ name: 'c', count: 0, sum: 0, suppressed: true });
    const tiny = computeClinicStats(Float32Array.from([1, 2]), Float32Array.from([0, 1]), ['a'], 10);
    expect(tiny).toMatchObject({ rows: 0, positives: 0, suppressed: true, features: [{ count: 0, sum: 0, sumOfSquares: 0, suppressed: true }] });
  });

  it('hides a single small histogram cell together with the next smallest', () => {
    const values = [...Array(5).fill(1), ...Array(2).fill(3), ...Array(6).fill(5), ...Array(8).fill(7)];
    const s = computeClinicStats(Float32Array.from(values), new Float32Array(values.length).fill(0.5), ['v'], 3, [{ min: 0, max: 8, bins: 4 }]);
    // Cells 5, 2, 6, 8: the 2 is hidden, and so is the 5 (else 21 − 5 − 6 − 8 = 2 gives it away).
    expect(s.features[0]!.histogram).toEqual([0, 0, 6, 8]);
  });

  it('normalises with the combined mean and std, imputing missing values as the mean', () => {
    const stats = combineStats([computeClinicStats(Float32Array.from([2, 4, 4, 4, 5, 5, 7, 9]), new Float32Array(8), ['v'], 0)]);
    const n = normalizationFrom(stats);
    expect(n.features).toEqual([{ name: 'v', mean: 5, std: 2 }]);
    expect(Array.from(applyNormalization(Float32Array.from([5, 9, NaN]), ['v'], n))).toEqual([0, 2, 0]);
    expect(() => applyNormalization(new Float32Array(1), ['w'], n)).toThrow(/does not match feature 0 \(w\)/);
  });

  it('approximates quantiles from combined histograms', () => {
    expect(histogramQuantile({ histogram: [0, 10, 10, 0], histogramMin: 0, histogramMax: 4 }, 0.5)).toBe(2);
    expect(histogramQuantile({ histogram: [0, 0], histogramMin: 0, histogramMax: 1 }, 0.5)).toBeUndefined();
  });
});
