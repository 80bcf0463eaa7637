import { FedlhsError } from './errors.js';

/**
 * Area under the ROC curve for binary labels (0/1), with tied scores counted as half
 * (the Mann-Whitney U statistic). Returns undefined if only one class is present.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | undefined {
  const n = scores.length;
  if (labels.length !== n) throw new FedlhsError('INVALID_ARGUMENT', `scores (${n}) and labels (${labels.length}) differ in length`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSumPositives = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!]! >= 0.5) {
        positives++;
        rankSumPositives += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return undefined;
  return (rankSumPositives - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Fraction of predictions on the right side of 0.5. */
export function binaryAccuracy(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (scores.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i]! >= 0.5 === labels[i]! >= 0.5) correct++;
  return correct / scores.length;
}

/** Evaluation metrics of one model on one data set. */
export interface EvalMetrics {
  numExamples: number;
  loss: number;
  accuracy: number;
  auc?: number | undefined;
}

/**
 * Example-weighted mean of per-site metrics (AUC over the sites that have one). Each value is
 * weighted by its share of the examples (n / Σn), so the mean lies between the smallest and the
 * largest value and stays finite whatever the counts (Σ v·n could overflow: issue 11, where one
 * loss of 1.7e308 made the global loss Infinity). Non-finite inputs are refused
 * (INVALID_ARGUMENT): the coordinator checks every report before it is averaged.
 */
export function weightedMetrics(sites: readonly EvalMetrics[]): EvalMetrics | undefined {
  for (const m of sites) {
    const bad = !Number.isFinite(m.numExamples) || m.numExamples < 0 ? 'numExamples' : !Number.isFinite(m.loss) ? 'loss' : !Number.isFinite(m.accuracy) ? 'accuracy' : m.auc !== undefined && !Number.isFinite(m.auc) ? 'auc' : undefined;
    if (bad !== undefined) throw new FedlhsError('INVALID_ARGUMENT', `a site's ${bad} is not a finite number (${String(m[bad])}): metrics are checked before they are averaged`, { details: { field: bad } });
  }
  const total = sites.reduce((s, m) => s + m.numExamples, 0);
  if (total === 0) return undefined;
  const mean = (pick: (m: EvalMetrics) => number | undefined): number | undefined => {
    let weight = 0;
    for (const m of sites) if (pick(m) !== undefined) weight += m.numExamples;
    if (weight === 0) return undefined;
    let sum = 0;
    for (const m of sites) {
      const v = pick(m);
      if (v !== undefined) sum += v * (m.numExamples / weight);
    }
    return sum;
  };
  return { numExamples: total, loss: mean((m) => m.loss)!, accuracy: mean((m) => m.accuracy)!, auc: mean((m) => m.auc) };
}
