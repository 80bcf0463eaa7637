import { describe, expect, it } from 'vitest';
import { mulberry32, rocAuc } from '@fedlhs/core';
import { MIN_CASES_FOR_AUC, assess, aucWithInterval, differenceVerdict, isStableAuc, noInformationRate, pairedAucDifference } from './evaluation.js';

/** n cases and n non-cases whose scores overlap: the cases' scores are shifted up by `shift`. */
function overlapping(n: number, shift: number, seed: number): { scores: number[]; labels: number[] } {
  const random = mulberry32(seed);
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    scores.push(random(), random() + shift);
    labels.push(0, 1);
  }
  return { scores, labels };
}

describe('aucWithInterval', () => {
  it('gives AUC 1 with interval [1, 1] under perfect separation', () => {
    const e = aucWithInterval([0.1, 0.2, 0.3, 0.8, 0.9], [0, 0, 0, 1, 1]);
    expect(e).toEqual({ auc: 1, ci: { low: 1, high: 1 }, cases: 2, nonCases: 3, stable: false });
  });

  it('counts pairs by hand: 3 of 4 case/non-case pairs ranked right is 0.75, a tie counts one half', () => {
    // Case 0.35 beats non-case 0.1 but not 0.4; case 0.8 beats both.
    expect(aucWithInterval([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]).auc).toBe(0.75);
    // Case 0.5 ties non-case 0.5 (½) and beats 0.2; case 0.9 beats both: 3.5 / 4.
    expect(aucWithInterval([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]).auc).toBe(0.875);
  });

  it('agrees with the core AUC and holds it inside an interval of plausible width', () => {
    const { scores, labels } = overlapping(100, 0.3, 7);
    const e = aucWithInterval(scores, labels);
    expect(e.auc).toBeCloseTo(rocAuc(scores, labels)!, 12);
    expect(e.ci!.low).toBeLessThan(e.auc!);
    expect(e.ci!.high).toBeGreaterThan(e.auc!);
    // Hanley & McNeil's standard error for AUC ≈ 0.75 on 100 + 100 patients is ≈ 0.034: a 95 % width near 0.13.
    expect(e.ci!.high - e.ci!.low).toBeGreaterThan(0.09);
    expect(e.ci!.high - e.ci!.low).toBeLessThan(0.18);
    expect(e).toMatchObject({ cases: 100, nonCases: 100, stable: true });
  });

  it('is deterministic for a seed and moves with another seed', () => {
    const { scores, labels } = overlapping(40, 0.2, 3);
    const a = aucWithInterval(scores, labels, { seed: 11 });
    expect(aucWithInterval(scores, labels, { seed: 11 })).toEqual(a);
    expect(aucWithInterval(scores, labels, { seed: 12 }).ci).not.toEqual(a.ci);
    expect(aucWithInterval(scores, labels, { seed: 12 }).auc).toBe(a.auc);
  });

  it('has no AUC without a case or without a non-case, and flags fewer than 10 of either as unstable', () => {
    expect(aucWithInterval([0.2, 0.4], [0, 0])).toEqual({ auc: null, ci: null, cases: 0, nonCases: 2, stable: false });
    expect(MIN_CASES_FOR_AUC).toBe(10);
    expect(isStableAuc(9, 500)).toBe(false);
    expect(isStableAuc(500, 9)).toBe(false);
    expect(isStableAuc(10, 10)).toBe(true);
  });

  it('refuses a bad resample count and mismatched lengths', () => {
    expect(() => aucWithInterval([0.1, 0.9], [0, 1], { resamples: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'bootstrap resamples must be a positive integer, got 0' }));
    expect(() => aucWithInterval([0.1], [0, 1])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'scores (1) and labels (2) differ in length' }));
  });
});

describe('pairedAucDifference', () => {
  it('of a model against itself is 0 with interval [0, 0]', () => {
    const { scores, labels } = overlapping(30, 0.2, 5);
    expect(pairedAucDifference(scores, scores, labels)).toMatchObject({ difference: 0, ci: { low: 0, high: 0 }, cases: 30, nonCases: 30, stable: true });
  });

  it('is the difference of the two AUCs, and swapping the models mirrors the interval', () => {
    const { scores, labels } = overlapping(60, 0.3, 9);
    const noisy = scores.map((s, i) => s + mulberry32(i + 1)() * 0.8);
    const d = pairedAucDifference(scores, noisy, labels);
    expect(d.a).toBeCloseTo(rocAuc(scores, labels)!, 12);
    expect(d.b).toBeCloseTo(rocAuc(noisy, labels)!, 12);
    expect(d.difference).toBeCloseTo(d.a! - d.b!, 12);
    expect(d.ci!.low).toBeLessThanOrEqual(d.difference!);
    expect(d.ci!.high).toBeGreaterThanOrEqual(d.difference!);
    const back = pairedAucDifference(noisy, scores, labels);
    expect(back.ci!.low).toBeCloseTo(-d.ci!.high, 12);
    expect(back.ci!.high).toBeCloseTo(-d.ci!.low, 12);
  });

  it('is narrower than the two unpaired intervals suggest when the models agree on most patients', () => {
    const { scores, labels } = overlapping(80, 0.3, 13);
    const close = scores.map((s, i) => (i % 10 === 0 ? s + 0.3 : s));
    const d = pairedAucDifference(close, scores, labels);
    const a = aucWithInterval(close, labels);
    expect(d.ci!.high - d.ci!.low).toBeLessThan((a.ci!.high - a.ci!.low) / 2);
  });

  it('reads as above, below, including zero or too few cases', () => {
    const big = overlapping(100, 0.5, 1);
    const worse = big.scores.map((s, i) => (i % 2 === 0 ? s : s - 0.4));
    expect(differenceVerdict(pairedAucDifference(big.scores, worse, big.labels))).toBe('above');
    expect(differenceVerdict(pairedAucDifference(worse, big.scores, big.labels))).toBe('below');
    expect(differenceVerdict(pairedAucDifference(big.scores, big.scores, big.labels))).toBe('includes-zero');
    const small = overlapping(5, 0.5, 1);
    expect(differenceVerdict(pairedAucDifference(small.scores, small.scores.map((s) => -s), small.labels))).toBe('too-few');
    // A hold-out without a single case has no AUC, and is "too few" rather than silently left out.
    expect(differenceVerdict(pairedAucDifference([0.1, 0.2], [0.2, 0.1], [0, 0]))).toBe('too-few');
    expect(differenceVerdict(null)).toBe('none');
  });
});

describe('assess', () => {
  it('puts accuracy beside the no-information rate and carries the AUC interval and counts', () => {
    expect(noInformationRate([1, 0, 0, 0])).toBe(0.75);
    expect(noInformationRate([])).toBe(0);
    // Always predicting "no" is right 3 times in 4: accuracy 0.75, no better than the no-information rate.
    const a = assess([0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0]);
    expect(a).toMatchObject({ n: 4, positives: 1, negatives: 3, accuracy: 0.75, noInformationRate: 0.75, auc: 0, aucCi: { low: 0, high: 0 }, aucStable: false });
    expect(a.calibration.map((b) => b.n)).toEqual([1, 1, 1, 1]);
  });
});
