import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.js';
import { FedlhsError } from './errors.js';
import { applyNormalization, combineStats, computeClinicStats, histogramQuantile, normalizationFrom, type ClinicStats, type FeatureDomain } from './statistics.js';

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
    expect(s.features[0]).toEqual({ name: 'a', count: 8, sum: 40, sumOfSquares: 260, missing: 0, suppressed: false, missingSuppressed: false, histogram: [0, 0, 0, 0, 0], histogramMin: 0, histogramMax: 10 });
    // b: one missing value: only it is withheld; 8 − 3 = 5 of the 7 values are reported.
    expect(s.features[1]).toEqual({ name: 'b', count: 5, sum: 25, sumOfSquares: 125, missing: 0, suppressed: false, missingSuppressed: true, histogram: [], histogramMin: 0, histogramMax: 0 });
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
    expect(n.features).toEqual([{ name: 'v', mean: 5, std: 2, source: 'federated', withheldAt: 0 }]);
    expect(Array.from(applyNormalization(Float32Array.from([5, 9, NaN]), ['v'], n))).toEqual([0, 2, 0]);
    expect(() => applyNormalization(new Float32Array(1), ['w'], n)).toThrow(/does not match feature 0 \(w\)/);
  });

  it('approximates quantiles from combined histograms', () => {
    expect(histogramQuantile({ histogram: [0, 10, 10, 0], histogramMin: 0, histogramMax: 4 }, 0.5)).toBe(2);
    expect(histogramQuantile({ histogram: [0, 0], histogramMin: 0, histogramMax: 1 }, 0.5)).toBeUndefined();
  });
});

/** n rows of one feature: `missing` NaNs among values 20 + (i mod 61), labels alternating. */
function column(rows: number, missing: number, offset = 0): { x: Float32Array; y: Float32Array } {
  const x = Float32Array.from({ length: rows }, (_, i) => (i % Math.max(1, Math.floor(rows / Math.max(missing, 1))) === 0 && i / Math.floor(rows / Math.max(missing, 1)) < missing ? NaN : 20 + ((i + offset) % 61)));
  return { x, y: Float32Array.from({ length: rows }, (_, i) => i % 2) };
}

const meanSd = (values: number[]): [number, number] => {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return [mean, Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length)];
};

describe('small missing counts', () => {
  it('withholds only the missing count: 3 missing of 403 rows keeps mean and SD, count is rows − k', () => {
    const { x, y } = column(403, 3);
    expect(x.filter(Number.isNaN)).toHaveLength(3);
    const s = computeClinicStats(x, y, ['bmi'], 10);
    const f = s.features[0]!;
    expect(f).toMatchObject({ count: 393, missing: 0, suppressed: false, missingSuppressed: true });
    expect(s.rows - f.count).toBe(10);
    const [mean, sd] = meanSd(Array.from(x).filter((v) => !Number.isNaN(v)));
    const n = normalizationFrom(combineStats([s])).features[0]!;
    expect(Math.abs(n.mean - mean)).toBeLessThan(0.5);
    expect(Math.abs(n.std - sd)).toBeLessThan(0.5);
  });

  it('reports count rows − k whatever the small missing count, so differencing recovers nothing', () => {
    // Two features of one report, and the same feature at two clinics: 1, 3, 7 or 9 missing.
    const rows = 120;
    const names = ['m1', 'm3', 'm7', 'm9', 'none'];
    const cols = [column(rows, 1), column(rows, 3, 1), column(rows, 7, 2), column(rows, 9, 3), column(rows, 0, 4)];
    const x = new Float32Array(rows * names.length);
    for (let i = 0; i < rows; i++) cols.forEach((c, j) => (x[i * names.length + j] = c.x[i]!));
    const s = computeClinicStats(x, cols[0]!.y, names, 10);
    expect(s.features.map((f) => [f.count, f.missing, f.missingSuppressed])).toEqual([
      [110, 0, true], [110, 0, true], [110, 0, true], [110, 0, true], [120, 0, false],
    ]);
    // And with 10 or more missing the count is exact again.
    expect(computeClinicStats(column(rows, 12).x, cols[0]!.y, ['m12'], 10).features[0]).toMatchObject({ count: 108, missing: 12, missingSuppressed: false });
  });

  it('leaves out the same values for the same data and seed, others for another seed', () => {
    const { x, y } = column(200, 4);
    const a = computeClinicStats(x, y, ['v'], 10);
    expect(computeClinicStats(x, y, ['v'], 10)).toEqual(a);
    expect(computeClinicStats(x, y, ['v'], 10, [], { seed: 0 })).toEqual(a);
    const b = computeClinicStats(x, y, ['v'], 10, [], { seed: 99 });
    expect(b.features[0]!.count).toBe(a.features[0]!.count);
    expect(b.features[0]!.sum).not.toBe(a.features[0]!.sum);
  });

  it('withholds the feature when fewer than 2k rows leave too few values to report', () => {
    const { x, y } = column(15, 2);
    expect(computeClinicStats(x, y, ['v'], 10).features[0]).toMatchObject({ count: 0, sum: 0, missing: 0, suppressed: true, missingSuppressed: false });
  });

  it('checks ones and zeros of a 0/1 feature, and the histogram, on the reported values', () => {
    // 40 rows, 3 missing, 12 ones among the 37 values: 40 − 10 = 30 are reported.
    const values = Array.from({ length: 40 }, (_, i) => (i < 3 ? NaN : i < 15 ? 1 : 0));
    const y = Float32Array.from({ length: 40 }, (_, i) => i % 2);
    const outcomes = Array.from({ length: 20 }, (_, seed) => computeClinicStats(Float32Array.from(values), y, ['flag'], 10, [{ min: 0, max: 1, bins: 2 }], { seed }).features[0]!);
    const reported = outcomes.filter((o) => !o.suppressed);
    expect(reported.length).toBeGreaterThan(0);
    for (const f of reported) {
      expect(f.count).toBe(30);
      expect(f.sum).toBeGreaterThanOrEqual(10);
      expect(f.count - f.sum).toBeGreaterThanOrEqual(10);
      expect(f.histogram).toEqual([f.count - f.sum, f.sum]);
    }
    // With only 10 ones among 37 values, some seed leaves fewer than 10 ones: withheld then.
    const fewer = Float32Array.from(values, (v, i) => (i >= 13 && i < 15 ? 0 : v));
    const fewerOutcomes = [0, 1, 2, 3, 4, 5].map((seed) => computeClinicStats(fewer, y, ['flag'], 10, [], { seed }).features[0]!);
    expect(fewerOutcomes.some((o) => o.suppressed)).toBe(true);
    for (const o of fewerOutcomes) if (!o.suppressed) expect(o.sum).toBeGreaterThanOrEqual(10);
  });
});

describe('features withheld at every clinic', () => {
  // bmi withheld everywhere (3 values per clinic), female (0/1) withheld everywhere, visits
  // (a count) withheld everywhere, age reported.
  const names = ['age', 'bmi', 'female', 'visits'];
  const domains: FeatureDomain[] = [{ kind: 'range', min: 18, max: 90 }, { kind: 'range', min: 10, max: 80 }, { kind: 'binary' }, { kind: 'count' }];
  function clinic(seed: number): ClinicStats {
    const r = mulberry32(seed);
    const rows = 60;
    const x = new Float32Array(rows * 4);
    for (let i = 0; i < rows; i++) {
      x.set([18 + 72 * r(), i < 3 ? 20 + 40 * r() : NaN, i < 5 ? 1 : 0, Math.floor(5 * r())], i * 4);
    }
    return computeClinicStats(x, Float32Array.from({ length: rows }, (_, i) => i % 2), names, 10);
  }
  const combined = combineStats([clinic(1), clinic(2), clinic(3)]);

  it('are counted per clinic', () => {
    expect(combined.features.map((f) => [f.name, f.count > 0, f.withheldAt])).toEqual([['age', true, 0], ['bmi', false, 3], ['female', false, 3], ['visits', true, 0]]);
  });

  it("fail by default, naming the features, and never become mean 0 / SD 1", () => {
    const withheld = combineStats([clinic(1), clinic(2)].map((c) => ({ ...c, features: c.features.map((f) => (f.name === 'visits' ? { ...f, count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: true } : f)) })));
    let error: unknown;
    try {
      normalizationFrom(withheld);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FedlhsError);
    expect(error).toMatchObject({ code: 'NORMALIZATION_IMPOSSIBLE', status: 'FAILED_PRECONDITION', details: { features: ['bmi', 'female', 'visits'] } });
    expect((error as FedlhsError).message).toMatchInlineSnapshot(`"federated normalisation impossible: statistics of bmi, female, visits withheld at every clinic (small cells); declare data.normalizationFallback or lower data.minCellCount"`);
    expect(() => normalizationFrom(combined, { fallback: 'fail', domains })).toThrow(/statistics of bmi, female withheld at every clinic/);
  });

  it("'range' scales by the declared range (0/1 features 0.5/0.5); a feature without one still fails", () => {
    const n = normalizationFrom(combined, { fallback: 'range', domains });
    expect(n.features.slice(1, 3)).toEqual([
      { name: 'bmi', mean: 45, std: 17.5, source: 'fallback-range', withheldAt: 3 },
      { name: 'female', mean: 0.5, std: 0.5, source: 'fallback-range', withheldAt: 3 },
    ]);
    expect(n.features[0]).toMatchObject({ name: 'age', source: 'federated', withheldAt: 0 });
    expect(n.clinics).toBe(3);
    const noRange = combineStats([clinic(4)].map((c) => ({ ...c, features: c.features.map((f) => (f.name === 'visits' ? { ...f, count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: true } : f)) })));
    expect(() => normalizationFrom(noRange, { fallback: 'range', domains })).toThrow(/statistics of visits withheld at every clinic \(small cells\); it has no declared range/);
    expect(() => normalizationFrom(combined, { fallback: 'range' })).toThrow(/statistics of bmi, female withheld/);
  });

  it("'exclude' makes the feature the constant 0, whatever its value", () => {
    const n = normalizationFrom(combined, { fallback: 'exclude', domains });
    expect(n.features[1]).toEqual({ name: 'bmi', mean: 0, std: 1, excluded: true, source: 'excluded', withheldAt: 3 });
    const x = Float32Array.from([50, 31, 1, 2, 60, NaN, 0, 3]);
    const out = applyNormalization(x, names, n);
    expect([out[1], out[2], out[5], out[6]]).toEqual([0, 0, 0, 0]);
    expect(out[0]).toBeCloseTo((50 - n.features[0]!.mean) / n.features[0]!.std, 5);
  });

  it('a feature with no values anywhere and nothing withheld (local statistics) is excluded', () => {
    const local = combineStats([computeClinicStats(Float32Array.from([NaN, NaN]), Float32Array.from([0, 1]), ['v'], 0)]);
    expect(normalizationFrom(local).features).toEqual([{ name: 'v', mean: 0, std: 1, excluded: true, source: 'excluded', withheldAt: 0 }]);
  });
});

