import { describe, expect, it } from 'vitest';
import { isFedlhsError } from './errors.js';
import { aucInterval, calibrationBin, calibrationFit, checkPerformance, computePerformance, delongStandardError, pooledPerformance, publishPerformance } from './performance.js';
import { mulberry32 } from './random.js';
import type { Performance, PublishedPerformance } from './release-format.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
const logit = (p: number): number => Math.log(p / (1 - p));

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** n patients with true risks spread over (0.02, 0.98) and outcomes drawn from them (seeded). */
function drawn(seed: number, n: number): { risk: number[]; y: number[] } {
  const rand = mulberry32(seed);
  const risk: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = sigmoid(1.5 * normal(rand) - 0.5);
    risk.push(p);
    y.push(rand() < p ? 1 : 0);
  }
  return { risk, y };
}

describe('delongStandardError', () => {
  it('matches the hand-computed variance on 3 cases and 4 controls', () => {
    // Cases 0.8 0.6 0.4, controls 0.7 0.5 0.3 0.2.
    // V10 (share of controls below each case): 4/4, 3/4, 2/4 → AUC = 0.75.
    // V01 (share of cases above each control): 1/3, 2/3, 1, 1 → mean 0.75.
    // S10 = (0.25² + 0 + 0.25²) / 2 = 1/16.
    // S01 = ((5/12)² + (1/12)² + (1/4)² + (1/4)²) / 3 = (44/144) / 3 = 11/108.
    // Var = S10/3 + S01/4 = 1/48 + 11/432 = 20/432 = 5/108 → SE = √(5/108) ≈ 0.21517.
    const scores = [0.8, 0.6, 0.4, 0.7, 0.5, 0.3, 0.2];
    const labels = [1, 1, 1, 0, 0, 0, 0];
    expect(delongStandardError(scores, labels)).toBeCloseTo(Math.sqrt(5 / 108), 12);
    const p = computePerformance(scores, labels);
    expect(p.auc).toBeCloseTo(0.75, 12);
    expect(p.aucStandardError).toBeCloseTo(Math.sqrt(5 / 108), 12);
  });

  it('counts a tie across classes as one half', () => {
    // Cases 0.5 0.9, controls 0.5 0.1. V10: (½ + 1)/2 = 0.75, 1 → AUC 0.875.
    // V01: control 0.5 → (½ + 1)/2 = 0.75; control 0.1 → 1. S10 = S01 = 2·0.125² / 1 = 1/32.
    // Var = (1/32)/2 + (1/32)/2 = 1/32.
    expect(delongStandardError([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0])).toBeCloseTo(Math.sqrt(1 / 32), 12);
  });

  it('is undefined with fewer than 2 patients in a class', () => {
    expect(delongStandardError([0.9, 0.1, 0.2], [1, 0, 0])).toBeUndefined();
    const p = computePerformance([0.9, 0.1, 0.2], [1, 0, 0]);
    expect(p.auc).toBe(1);
    expect(p.aucStandardError).toBeUndefined();
  });

  it('agrees with the Hanley-McNeil approximation in order of magnitude on a larger sample', () => {
    const rand = mulberry32(7);
    const scores: number[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 300; i++) scores.push(sigmoid(normal(rand) + 1)), labels.push(1);
    for (let i = 0; i < 500; i++) scores.push(sigmoid(normal(rand))), labels.push(0);
    const p = computePerformance(scores, labels);
    const a = p.auc!;
    const q1 = a / (2 - a);
    const q2 = (2 * a * a) / (1 + a);
    const hanley = Math.sqrt((a * (1 - a) + 299 * (q1 - a * a) + 499 * (q2 - a * a)) / (300 * 500));
    expect(a).toBeGreaterThan(0.7);
    expect(p.aucStandardError! / hanley).toBeGreaterThan(0.8);
    expect(p.aucStandardError! / hanley).toBeLessThan(1.25);
  });
});

describe('calibrationFit', () => {
  it('gives slope ≈ 1 and intercept ≈ 0 when outcomes are drawn from the predicted risks', () => {
    const { risk, y } = drawn(11, 20_000);
    const fit = calibrationFit(risk, y)!;
    expect(fit.slope).toBeGreaterThan(0.95);
    expect(fit.slope).toBeLessThan(1.05);
    expect(Math.abs(fit.intercept)).toBeLessThan(0.05);
  });

  it('gives slope < 1 for over-confident predictions and > 1 for under-confident ones', () => {
    const { risk, y } = drawn(12, 20_000);
    const over = calibrationFit(risk.map((p) => sigmoid(2 * logit(p))), y)!;
    expect(over.slope).toBeGreaterThan(0.45);
    expect(over.slope).toBeLessThan(0.55);
    const under = calibrationFit(risk.map((p) => sigmoid(0.5 * logit(p))), y)!;
    expect(under.slope).toBeGreaterThan(1.9);
    expect(under.slope).toBeLessThan(2.1);
  });

  it('is undefined when the risks separate the classes (no finite maximum), or all risks are equal', () => {
    expect(calibrationFit([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 0, 1, 1, 1])).toBeUndefined();
    expect(calibrationFit([0.4, 0.4, 0.4, 0.4], [0, 1, 0, 1])).toBeUndefined();
    const p = computePerformance([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [0, 0, 0, 1, 1, 1]);
    expect(p.calibrationSlope).toBeUndefined();
    expect(p.calibrationIntercept).toBeUndefined();
  });

  it('keeps risks of exactly 0 and 1 finite (clipped before the logit)', () => {
    const fit = calibrationFit([0, 1, 0.3, 0.6, 0.2, 0.7, 0.5, 0.4], [0, 1, 1, 0, 0, 1, 1, 0]);
    expect(fit === undefined || (Number.isFinite(fit.slope) && Number.isFinite(fit.intercept))).toBe(true);
  });
});

describe('computePerformance', () => {
  it('counts, Brier score and bins (a risk of 1.0 in the last bin)', () => {
    const p = computePerformance([0, 0.05, 0.15, 0.95, 1], [0, 0, 1, 1, 1]);
    expect(p.numExamples).toBe(5);
    expect(p.positives).toBe(3);
    // (0 + 0.0025 + 0.7225 + 0.0025 + 0) / 5
    expect(p.brier).toBeCloseTo(0.1455, 12);
    expect(p.calibration).toHaveLength(10);
    expect(p.calibration[0]).toEqual({ count: 2, predictedSum: 0.05, observed: 0 });
    expect(p.calibration[1]).toEqual({ count: 1, predictedSum: 0.15, observed: 1 });
    expect(p.calibration[9]).toEqual({ count: 2, predictedSum: 1.95, observed: 2 });
    expect(calibrationBin(0.1)).toBe(1);
    expect(calibrationBin(0.999)).toBe(9);
  });

  it('has no AUC, SE or calibration fit with one class', () => {
    const p = computePerformance([0.2, 0.4], [0, 0]);
    expect(p.auc).toBeUndefined();
    expect(p.aucStandardError).toBeUndefined();
    expect(p.calibrationSlope).toBeUndefined();
    expect(p.positives).toBe(0);
  });

  it.each<[string, number[], number[], string]>([
    ['no data', [], [], 'no patients'],
    ['a risk above 1', [0.2, 1.5], [0, 1], 'predicted risk 1 is not a number in [0, 1] (1.5)'],
    ['a NaN risk', [Number.NaN], [0], 'predicted risk 0 is not a number in [0, 1] (NaN)'],
    ['a label that is not 0 or 1', [0.2, 0.3], [0, 0.5], 'label 1 is not 0 or 1 (0.5)'],
    ['different lengths', [0.2], [0, 1], 'differ in length'],
  ])('refuses %s', (_what, scores, labels, message) => {
    expect(() => computePerformance(scores, labels)).toThrow(message);
  });
});

const site = (over: Partial<Performance>): Performance => ({ numExamples: 100, positives: 30, auc: 0.7, aucStandardError: 0.05, brier: 0.2, calibrationSlope: 1, calibrationIntercept: 0, calibration: [], ...over });

describe('pooledPerformance', () => {
  it('weights AUC, Brier and calibration by examples and combines SEs as independent', () => {
    const a = computePerformance(...Object.values(drawn(1, 300)) as [number[], number[]]);
    const b = computePerformance(...Object.values(drawn(2, 100)) as [number[], number[]]);
    const p = pooledPerformance([a, b])!;
    expect(p.numExamples).toBe(400);
    expect(p.positives).toBe(a.positives + b.positives);
    expect(p.auc).toBeCloseTo(0.75 * a.auc! + 0.25 * b.auc!, 12);
    expect(p.aucStandardError).toBeCloseTo(Math.sqrt(0.75 ** 2 * a.aucStandardError! ** 2 + 0.25 ** 2 * b.aucStandardError! ** 2), 12);
    expect(p.brier).toBeCloseTo(0.75 * a.brier + 0.25 * b.brier, 12);
    expect(p.calibrationSlope).toBeCloseTo(0.75 * a.calibrationSlope! + 0.25 * b.calibrationSlope!, 12);
    expect(p.calibration.reduce((s, bin) => s + bin.count, 0)).toBe(400);
    expect(p.calibration.reduce((s, bin) => s + bin.observed, 0)).toBe(p.positives);
    expect(() => checkPerformance(p, 'pooled')).not.toThrow();
  });

  it('averages AUC over the sites with one only; no SE unless every such site has one', () => {
    const p = pooledPerformance([site({ numExamples: 300, auc: 0.8 }), site({ numExamples: 100, auc: 0.6, aucStandardError: undefined }), site({ numExamples: 600, positives: 0, auc: undefined, aucStandardError: undefined, calibrationSlope: undefined, calibrationIntercept: undefined })])!;
    expect(p.auc).toBeCloseTo(0.75, 12);
    expect(p.aucStandardError).toBeUndefined();
    expect(p.calibrationSlope).toBe(1);
    expect(p.numExamples).toBe(1000);
  });

  it('is undefined without sites or examples', () => {
    expect(pooledPerformance([])).toBeUndefined();
  });
});

describe('aucInterval and publishPerformance', () => {
  it('clips the interval to [0, 1]', () => {
    expect(aucInterval(0.7, 0.05)).toEqual([0.7 - 0.098, 0.7 + 0.098]);
    expect(aucInterval(0.98, 0.05)).toEqual([0.98 - 0.098, 1]);
    expect(aucInterval(0.02, 0.05)).toEqual([0, 0.02 + 0.098]);
  });

  it('withholds positives and bins under minCellCount', () => {
    const calibration = Array.from({ length: 10 }, () => ({ count: 0, predictedSum: 0, observed: 0 }));
    calibration[1] = { count: 20, predictedSum: 3, observed: 5 };
    calibration[5] = { count: 20, predictedSum: 11, observed: 16 }; // only 4 non-cases
    calibration[9] = { count: 60, predictedSum: 57, observed: 9 };
    const published = publishPerformance(site({ calibration }), 5);
    expect(published.positives).toBe(30);
    expect(published.aucInterval![0]).toBeCloseTo(0.602, 12);
    // Bin 5 alone would give away its 4 non-cases (30 − 5 − 9 cases), so bin 1 is withheld with it.
    expect(published.calibration[5]).toBeNull();
    expect(published.calibration[1]).toBeNull();
    expect(published.calibration[0]).toBeNull();
    expect(published.calibration[9]).toEqual({ lower: 0.9, upper: 1, count: 60, meanPredicted: 0.95, observedRate: 0.15 });
    expect(publishPerformance(site({ positives: 4 }), 5).positives).toBeNull();
    expect(publishPerformance(site({ positives: 97 }), 5).positives).toBeNull();
    expect(publishPerformance(site({ aucStandardError: undefined }), 5).aucInterval).toBeNull();
  });

  const binsOf = (rows: readonly (readonly [count: number, observed: number])[]): Performance['calibration'] =>
    rows.map(([count, observed], b) => ({ count, predictedSum: count * (b + 0.5) / 10, observed }));
  const siteOf = (calibration: Performance['calibration']): Performance =>
    site({ numExamples: calibration.reduce((s, b) => s + b.count, 0), positives: calibration.reduce((s, b) => s + b.observed, 0), calibration });
  /** What the published totals minus the shown bins give away about the withheld bins. */
  const withheldByDifference = (pub: PublishedPerformance): { count: number; cases: number } => {
    const shown = pub.calibration.filter((b) => b !== null);
    return {
      count: pub.numExamples - shown.reduce((s, b) => s + b.count, 0),
      cases: pub.positives! - shown.reduce((s, b) => s + Math.round(b.observedRate * b.count), 0),
    };
  };

  it('withholds a second bin so that totals minus the shown bins do not give a small bin away', () => {
    // Review "hospital" #2 (bins.mjs): 9 bins of 20 patients, bin 9 with 3 patients and 1 case.
    const pub = publishPerformance(siteOf(binsOf([...Array.from({ length: 9 }, () => [20, 10] as const), [3, 1]])), 5);
    expect(pub.positives).toBe(91);
    expect(pub.calibration[9]).toBeNull();
    expect(pub.calibration.filter((b) => b === null)).toHaveLength(2);
    expect(pub.calibration[0]).toBeNull(); // the smallest remaining bin (ties: the lower bin)
    const gap = withheldByDifference(pub);
    expect(gap).toEqual({ count: 23, cases: 11 });
  });

  it('withholds the smallest other bin with a small one, and all bins when no other is left', () => {
    // Bin 3 has 2 cases: totals minus the shown bins would give them away, so bin 1 (smallest of the rest) goes too.
    const pub = publishPerformance(siteOf(binsOf([[0, 0], [10, 5], [11, 5], [8, 2], [12, 6], [50, 25], [50, 25], [50, 25], [50, 25], [50, 25]])), 5);
    expect(pub.calibration.map((b) => b === null)).toEqual([true, true, false, true, false, false, false, false, false, false]);
    expect(withheldByDifference(pub)).toEqual({ count: 18, cases: 7 });
    // The only bin large enough is needed to hide the small one: nothing is shown.
    const all = publishPerformance(siteOf(binsOf([[3, 1], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [40, 20]])), 5);
    expect(all.positives).toBe(21);
    expect(all.calibration.every((b) => b === null)).toBe(true);
  });

  it('shows every bin that is large enough when only empty bins are withheld (no one to give away)', () => {
    const pub = publishPerformance(siteOf(binsOf([[0, 0], [0, 0], [20, 5], [20, 10], [20, 10], [20, 15], [0, 0], [0, 0], [0, 0], [0, 0]])), 5);
    expect(pub.calibration.filter((b) => b !== null)).toHaveLength(4);
  });

  it('never lets totals minus shown bins give away fewer than k patients, cases or non-cases (random tables)', () => {
    const rng = mulberry32(12);
    for (let trial = 0; trial < 500; trial++) {
      const k = 1 + Math.floor(rng() * 10);
      const calibration = binsOf(Array.from({ length: 10 }, () => {
        const count = rng() < 0.3 ? Math.floor(rng() * 2 * k) : Math.floor(rng() * 60);
        return [count, Math.floor(rng() * (count + 1))] as const;
      }));
      const pub = publishPerformance(siteOf(calibration), k);
      if (pub.positives === null) continue;
      const shown = pub.calibration.filter((b) => b !== null);
      for (const b of shown) {
        const cases = Math.round(b.observedRate * b.count);
        expect(Math.min(b.count, cases, b.count - cases)).toBeGreaterThanOrEqual(k);
      }
      const gap = withheldByDifference(pub);
      if (gap.count > 0) expect(Math.min(gap.count, gap.cases, gap.count - gap.cases)).toBeGreaterThanOrEqual(k);
    }
  });

  it('withholds every bin when positives is withheld (the bins would add up to it)', () => {
    const pub = publishPerformance(siteOf(binsOf([[50, 2], [50, 1], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [50, 0]])), 5);
    expect(pub.positives).toBeNull();
    expect(pub.calibration).toHaveLength(10);
    expect(pub.calibration.every((b) => b === null)).toBe(true);
    // The same when the bins alone would all pass: positives hides the class sizes, so the bins must too.
    const big = publishPerformance(site({ positives: 4, calibration: binsOf([[50, 20], [50, 20], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]) }), 5);
    expect(big.positives).toBeNull();
    expect(big.calibration.every((b) => b === null)).toBe(true);
  });
});

describe('checkPerformance', () => {
  const valid = computePerformance([0.1, 0.3, 0.6, 0.8, 0.2, 0.9], [0, 0, 1, 1, 1, 0]);

  it('accepts a computed Performance and drops extra members', () => {
    expect(checkPerformance({ ...valid, _auc: 'auc' } as Performance, 'EvaluationReport.test')).toEqual(valid);
    expect(checkPerformance({ numExamples: 3, positives: 1, auc: null, brier: 0.1, calibration: [] }, 'x')).toEqual({ numExamples: 3, positives: 1, auc: undefined, brier: 0.1, calibration: [] });
  });

  const bins = (): Performance['calibration'] => valid.calibration.map((b) => ({ ...b }));
  it.each<[string, Partial<Performance>, string]>([
    ['num_examples not an integer', { numExamples: 6.5 }, 'v.num_examples'],
    ['no patients', { numExamples: 0, calibration: [] }, 'v.num_examples'],
    ['positives > num_examples', { positives: 7 }, 'v.positives'],
    ['brier NaN', { brier: Number.NaN }, 'v.brier'],
    ['brier > 1', { brier: 1.01 }, 'v.brier'],
    ['auc > 1', { auc: 1.2 }, 'v.auc'],
    ['auc with one class', { positives: 0, calibration: [] }, 'v.auc'],
    ['SE > 0.5', { aucStandardError: 0.6 }, 'v.auc_standard_error'],
    ['SE without auc', { auc: undefined }, 'v.auc_standard_error'],
    ['|slope| > 1000', { calibrationSlope: -1001 }, 'v.calibration_slope'],
    ['intercept Infinity', { calibrationIntercept: Number.POSITIVE_INFINITY }, 'v.calibration_intercept'],
    ['slope without intercept', { calibrationIntercept: undefined }, 'v.calibration_intercept'],
    ['9 bins', { calibration: bins().slice(1) }, 'v.calibration'],
    ['bins not adding up to num_examples', { calibration: bins().map((b, i) => (i === 9 ? { ...b, count: b.count + 1 } : b)) }, 'v.calibration'],
    ['bins not adding up to positives', { calibration: bins().map((b, i) => (i === 8 ? { ...b, observed: 0 } : b)) }, 'v.calibration'],
    ['observed > count', { calibration: bins().map((b, i) => (i === 0 ? { ...b, observed: b.count + 1 } : b)) }, 'v.calibration[0].observed'],
    ['predicted_sum > count', { calibration: bins().map((b, i) => (i === 8 ? { ...b, predictedSum: b.count + 0.5 } : b)) }, 'v.calibration[8].predicted_sum'],
  ])('refuses %s, naming the field', (_what, change, field) => {
    let caught: unknown;
    try {
      checkPerformance({ ...valid, ...change }, 'v');
    } catch (err) {
      caught = err;
    }
    expect(isFedlhsError(caught, 'INVALID_ARGUMENT')).toBe(true);
    expect((caught as { details?: { field?: string } }).details?.field).toBe(field);
    expect((caught as Error).message).toContain(`field ${field}`);
  });
});
