import { binaryAccuracy, rocAuc } from '@fedlhs/core';

/** How well scores rank and how well they are calibrated, on one data set. */
export interface Assessment {
  n: number;
  positives: number;
  auc: number | null;
  accuracy: number;
  /** Mean squared error of the probabilities (lower is better). */
  brier: number;
  /** Expected calibration error over 10 equal-width probability bins. */
  ece: number;
  /** Mean predicted vs observed rate per decile bin (bins without patients omitted). */
  calibration: { predicted: number; observed: number; n: number }[];
}

/** AUC, accuracy at 0.5, Brier score and calibration of probabilities against 0/1 labels. */
export function assess(scores: ArrayLike<number>, labels: ArrayLike<number>): Assessment {
  const n = scores.length;
  let brier = 0;
  let positives = 0;
  const bins = Array.from({ length: 10 }, () => ({ sumP: 0, sumY: 0, n: 0 }));
  for (let i = 0; i < n; i++) {
    const p = scores[i]!;
    const y = labels[i]! >= 0.5 ? 1 : 0;
    positives += y;
    brier += (p - y) ** 2;
    const b = bins[Math.min(9, Math.max(0, Math.floor(p * 10)))]!;
    b.sumP += p;
    b.sumY += y;
    b.n++;
  }
  const calibration = bins.filter((b) => b.n > 0).map((b) => ({ predicted: b.sumP / b.n, observed: b.sumY / b.n, n: b.n }));
  const ece = n === 0 ? 0 : calibration.reduce((s, b) => s + (b.n / n) * Math.abs(b.predicted - b.observed), 0);
  return { n, positives, auc: rocAuc(scores, labels) ?? null, accuracy: binaryAccuracy(scores, labels), brier: n === 0 ? 0 : brier / n, ece, calibration };
}
