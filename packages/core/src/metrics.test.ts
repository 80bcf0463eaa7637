import { describe, expect, it } from 'vitest';
import { binaryAccuracy, rocAuc, weightedMetrics } from './metrics.js';

describe('rocAuc', () => {
  it.each<[string, number[], number[], number]>([
    // Sorted: 0.1(0) 0.35(1) 0.4(0) 0.8(1); positive ranks 2+4=6; (6 - 3) / (2·2)
    ['one misordered pair', [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75],
    ['perfect ranking', [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1],
    ['inverted ranking', [0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0],
    ['all scores tied', [0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5],
    // Ranks 1, 2.5, 2.5, 4; positives 2.5+4=6.5; (6.5 - 3) / 4
    ['a tie across classes counted as half', [0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875],
    // 1 positive, 3 negatives: beats 0.1 and 0.3, loses to 0.9 → 2/3
    ['unbalanced classes', [0.1, 0.9, 0.3, 0.6], [0, 0, 0, 1], 2 / 3],
    // labels are thresholded at 0.5
    ['soft labels', [0.1, 0.4, 0.35, 0.8], [0.2, 0.4, 0.5, 0.9], 0.75],
  ])('%s', (_label, scores, labels, expected) => {
    expect(rocAuc(scores, labels)).toBeCloseTo(expected, 12);
  });

  it('accepts typed arrays', () => {
    expect(rocAuc(Float32Array.from([0.1, 0.4, 0.35, 0.8]), Uint8Array.from([0, 0, 1, 1]))).toBe(0.75);
  });

  it('is undefined when only one class is present, or there is no data', () => {
    expect(rocAuc([0.1, 0.9, 0.5], [1, 1, 1])).toBeUndefined();
    expect(rocAuc([0.1, 0.9, 0.5], [0, 0, 0])).toBeUndefined();
    expect(rocAuc([], [])).toBeUndefined();
  });

  it('throws when scores and labels differ in length', () => {
    expect(() => rocAuc([0.1, 0.2, 0.3], [0, 1])).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: scores (3) and labels (2) differ in length]`);
  });
});

describe('binaryAccuracy', () => {
  it('counts predictions on the right side of 0.5 (0.5 itself predicts positive)', () => {
    // 0.2→0 ✓, 0.5→1 ✓, 0.7→1 ✗, 0.49→0 ✓
    expect(binaryAccuracy([0.2, 0.5, 0.7, 0.49], [0, 1, 0, 0])).toBe(0.75);
    expect(binaryAccuracy([0.9, 0.1], [1, 0])).toBe(1);
    expect(binaryAccuracy([0.9, 0.1], [0, 1])).toBe(0);
  });

  it('is 0 for no data', () => {
    expect(binaryAccuracy([], [])).toBe(0);
  });
});

describe('weightedMetrics', () => {
  it('weights each metric by example count and averages AUC only over sites that have it', () => {
    const m = weightedMetrics([
      { numExamples: 10, loss: 1, accuracy: 0.5, auc: 0.6 },
      { numExamples: 30, loss: 2, accuracy: 0.9 },
      { numExamples: 20, loss: 0.5, accuracy: 0.7, auc: 0.9 },
    ]);
    expect(m).toBeDefined();
    expect(m!.numExamples).toBe(60);
    // loss (10 + 60 + 10) / 60; accuracy (5 + 27 + 14) / 60; auc (6 + 18) / 30
    expect(m!.loss).toBeCloseTo(80 / 60, 12);
    expect(m!.accuracy).toBeCloseTo(46 / 60, 12);
    expect(m!.auc).toBeCloseTo(0.8, 12);
  });

  it('has no AUC when no site has one', () => {
    const m = weightedMetrics([{ numExamples: 4, loss: 1, accuracy: 1 }]);
    expect(m).toEqual({ numExamples: 4, loss: 1, accuracy: 1, auc: undefined });
  });

  it('ignores sites with no examples', () => {
    const m = weightedMetrics([
      { numExamples: 0, loss: 100, accuracy: 0, auc: 0 },
      { numExamples: 5, loss: 0.25, accuracy: 0.8, auc: 0.7 },
    ]);
    expect(m).toEqual({ numExamples: 5, loss: 0.25, accuracy: 0.8, auc: 0.7 });
  });

  it('is undefined with no sites or no examples at all', () => {
    expect(weightedMetrics([])).toBeUndefined();
    expect(weightedMetrics([{ numExamples: 0, loss: 1, accuracy: 1 }])).toBeUndefined();
  });
});

describe('weightedMetrics bounds (issue 11)', () => {
  it('stays finite when a value times its example count overflows a double', () => {
    // One report of 1.7e308 made the stored global loss Infinity: Σ v·n overflowed.
    const m = weightedMetrics([
      { numExamples: 100, loss: 1.7e308, accuracy: 0.5 },
      { numExamples: 100, loss: 0.5, accuracy: 0.7 },
    ]);
    expect(Number.isFinite(m!.loss)).toBe(true);
    expect(m!.loss).toBeCloseTo(0.85e308 + 0.25, -300);
    expect(m!.accuracy).toBeCloseTo(0.6, 12);
  });

  it('never leaves the range of its inputs', () => {
    const sites = [
      { numExamples: 9_007_199_254_740_991, loss: 3, accuracy: 1 },
      { numExamples: 1, loss: 1e6, accuracy: 0 },
    ];
    const m = weightedMetrics(sites)!;
    expect(m.loss).toBeGreaterThanOrEqual(3);
    expect(m.loss).toBeLessThanOrEqual(1e6);
    expect(m.accuracy).toBeLessThanOrEqual(1);
  });

  it.each([
    ['loss', { numExamples: 4, loss: Number.POSITIVE_INFINITY, accuracy: 0.5 }],
    ['accuracy', { numExamples: 4, loss: 1, accuracy: Number.NaN }],
    ['auc', { numExamples: 4, loss: 1, accuracy: 0.5, auc: Number.NaN }],
    ['numExamples', { numExamples: Number.POSITIVE_INFINITY, loss: 1, accuracy: 0.5 }],
  ])('refuses a non-finite %s (INVALID_ARGUMENT) instead of averaging it', (field, site) => {
    expect(() => weightedMetrics([site])).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field } }));
  });
});
