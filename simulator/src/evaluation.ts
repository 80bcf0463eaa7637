import { FedlhsError, binaryAccuracy, mulberry32 } from '@fedlhs/core';

/**
 * Bootstrap resamples behind every interval in the reports. 2000 keeps the Monte Carlo error of
 * a 2.5 % / 97.5 % percentile well below the third decimal the reports print.
 */
export const BOOTSTRAP_RESAMPLES = 2000;
/** Default seed of the bootstrap: the same scores and labels always give the same interval. */
export const BOOTSTRAP_SEED = 1;
/** An AUC resting on fewer cases or fewer non-cases than this is shown, flagged, and never used for a headline. */
export const MIN_CASES_FOR_AUC = 10;
/** The flag shown beside an AUC (or an AUC difference) resting on too few cases or non-cases. */
export const UNSTABLE_AUC = 'too few cases for a stable AUC';

/** A 95 % interval. */
export interface Interval {
  low: number;
  high: number;
}

export interface BootstrapOptions {
  /** Number of resamples (default {@link BOOTSTRAP_RESAMPLES}). */
  resamples?: number;
  /** Seed of the resampling (default {@link BOOTSTRAP_SEED}). */
  seed?: number;
}

/** An AUC, its 95 % interval and what it rests on. */
export interface AucEstimate {
  /** null when the labels hold no case or no non-case. */
  auc: number | null;
  /** Stratified percentile bootstrap 95 % interval; null with `auc`, or when a score is not a finite number. */
  ci: Interval | null;
  cases: number;
  nonCases: number;
  /** false with fewer than {@link MIN_CASES_FOR_AUC} cases or non-cases: {@link UNSTABLE_AUC}. */
  stable: boolean;
}

/** The AUC of model a minus that of model b, scored on the same patients, with a paired bootstrap interval. */
export interface PairedAucDifference {
  a: number | null;
  b: number | null;
  difference: number | null;
  /** Paired (the same resampled patients for both models), stratified percentile bootstrap 95 % interval. */
  ci: Interval | null;
  cases: number;
  nonCases: number;
  stable: boolean;
}

/** How well scores rank and how well they are calibrated, on one data set. */
export interface Assessment {
  n: number;
  /** Cases (label 1). */
  positives: number;
  /** Non-cases (label 0). */
  negatives: number;
  auc: number | null;
  /** 95 % stratified bootstrap interval of `auc` ({@link aucWithInterval}). */
  aucCi: Interval | null;
  /** false with fewer than {@link MIN_CASES_FOR_AUC} cases or non-cases. */
  aucStable: boolean;
  /** Share of predictions on the right side of 0.5. */
  accuracy: number;
  /** Share of the majority class: the accuracy of always predicting it. Read accuracy against this. */
  noInformationRate: number;
  /** Mean squared error of the probabilities (lower is better). */
  brier: number;
  /** Expected calibration error over 10 equal-width probability bins. */
  ece: number;
  /** Mean predicted vs observed rate per decile bin (bins without patients omitted). */
  calibration: { predicted: number; observed: number; n: number }[];
}

const isCase = (y: number): boolean => y >= 0.5;

/**
 * Scores sorted once, with tie groups and classes, so the AUC of any weighting of the patients
 * (a bootstrap resample is a vector of multiplicities) costs one O(n) sweep.
 */
interface Ranked {
  order: Int32Array;
  /** groupEnd[k] = 1 when sorted position k ends a group of tied scores. */
  groupEnd: Uint8Array;
  cases: Uint8Array;
}

function rank(scores: ArrayLike<number>, labels: ArrayLike<number>): Ranked {
  const n = scores.length;
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const groupEnd = new Uint8Array(n);
  for (let k = 0; k < n; k++) groupEnd[k] = k + 1 === n || scores[order[k + 1]!] !== scores[order[k]!] ? 1 : 0;
  return { order, groupEnd, cases: Uint8Array.from({ length: n }, (_, i) => (isCase(labels[i]!) ? 1 : 0)) };
}

/** Mann-Whitney AUC with patient weights (ties count one half); totals are the weights of cases and non-cases. */
function weightedAuc(r: Ranked, w: ArrayLike<number>, caseTotal: number, nonCaseTotal: number): number {
  let below = 0;
  let sum = 0;
  let groupCases = 0;
  let groupNonCases = 0;
  for (let k = 0; k < r.order.length; k++) {
    const i = r.order[k]!;
    if (r.cases[i] === 1) groupCases += w[i]!;
    else groupNonCases += w[i]!;
    if (r.groupEnd[k] === 1) {
      sum += groupCases * (below + groupNonCases / 2);
      below += groupNonCases;
      groupCases = 0;
      groupNonCases = 0;
    }
  }
  return sum / (caseTotal * nonCaseTotal);
}

/** Type-7 (linear interpolation) quantile of sorted values. */
function quantile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Runs `stat` on `resamples` stratified resamples: cases and non-cases are each drawn with
 * replacement to their own count, so every resample has an AUC. Returns the 2.5 % and 97.5 %
 * percentiles.
 */
function stratifiedPercentileInterval(labels: ArrayLike<number>, stat: (w: Float64Array) => number, options: BootstrapOptions): Interval {
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  if (!Number.isInteger(resamples) || resamples < 1) throw new FedlhsError('INVALID_ARGUMENT', `bootstrap resamples must be a positive integer, got ${resamples}`);
  const random = mulberry32(options.seed ?? BOOTSTRAP_SEED);
  const caseIdx: number[] = [];
  const nonCaseIdx: number[] = [];
  for (let i = 0; i < labels.length; i++) (isCase(labels[i]!) ? caseIdx : nonCaseIdx).push(i);
  const w = new Float64Array(labels.length);
  const values = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    w.fill(0);
    for (const idx of [caseIdx, nonCaseIdx]) for (let k = 0; k < idx.length; k++) w[idx[Math.floor(random() * idx.length)]!]! += 1;
    values[b] = stat(w);
  }
  values.sort();
  return { low: quantile(values, 0.025), high: quantile(values, 0.975) };
}

function counts(labels: ArrayLike<number>): { cases: number; nonCases: number } {
  let cases = 0;
  for (let i = 0; i < labels.length; i++) if (isCase(labels[i]!)) cases++;
  return { cases, nonCases: labels.length - cases };
}

const allFinite = (xs: ArrayLike<number>): boolean => {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i]!)) return false;
  return true;
};

/** Whether an AUC on this many cases and non-cases may carry a claim. */
export function isStableAuc(cases: number, nonCases: number): boolean {
  return cases >= MIN_CASES_FOR_AUC && nonCases >= MIN_CASES_FOR_AUC;
}

/**
 * The AUC of `scores` against 0/1 `labels` with a stratified percentile bootstrap 95 % interval
 * (cases and non-cases resampled separately, {@link BOOTSTRAP_RESAMPLES} times, seeded) and the
 * counts it rests on.
 */
export function aucWithInterval(scores: ArrayLike<number>, labels: ArrayLike<number>, options: BootstrapOptions = {}): AucEstimate {
  if (scores.length !== labels.length) throw new FedlhsError('INVALID_ARGUMENT', `scores (${scores.length}) and labels (${labels.length}) differ in length`);
  const { cases, nonCases } = counts(labels);
  const stable = isStableAuc(cases, nonCases);
  if (cases === 0 || nonCases === 0) return { auc: null, ci: null, cases, nonCases, stable };
  const r = rank(scores, labels);
  const auc = weightedAuc(r, new Float64Array(scores.length).fill(1), cases, nonCases);
  const ci = allFinite(scores) ? stratifiedPercentileInterval(labels, (w) => weightedAuc(r, w, cases, nonCases), options) : null;
  return { auc, ci, cases, nonCases, stable };
}

/**
 * AUC(a) − AUC(b) for two models' scores of the same patients, with a paired stratified
 * percentile bootstrap 95 % interval: each resample draws patients once and scores both models
 * on them, so what the patients share cancels out.
 */
export function pairedAucDifference(a: ArrayLike<number>, b: ArrayLike<number>, labels: ArrayLike<number>, options: BootstrapOptions = {}): PairedAucDifference {
  if (a.length !== labels.length || b.length !== labels.length) throw new FedlhsError('INVALID_ARGUMENT', `paired scores (${a.length}, ${b.length}) and labels (${labels.length}) differ in length`);
  const { cases, nonCases } = counts(labels);
  const stable = isStableAuc(cases, nonCases);
  if (cases === 0 || nonCases === 0) return { a: null, b: null, difference: null, ci: null, cases, nonCases, stable };
  const ra = rank(a, labels);
  const rb = rank(b, labels);
  const ones = new Float64Array(labels.length).fill(1);
  const aucA = weightedAuc(ra, ones, cases, nonCases);
  const aucB = weightedAuc(rb, ones, cases, nonCases);
  const ci = allFinite(a) && allFinite(b)
    ? stratifiedPercentileInterval(labels, (w) => weightedAuc(ra, w, cases, nonCases) - weightedAuc(rb, w, cases, nonCases), options)
    : null;
  return { a: aucA, b: aucB, difference: aucA - aucB, ci, cases, nonCases, stable };
}

/** Share of the majority class among 0/1 labels (0 for no labels). */
export function noInformationRate(labels: ArrayLike<number>): number {
  if (labels.length === 0) return 0;
  const { cases, nonCases } = counts(labels);
  return Math.max(cases, nonCases) / labels.length;
}

/**
 * Where a paired difference's interval lies: above 0, below 0, including 0; 'too-few' when the
 * patients hold fewer than {@link MIN_CASES_FOR_AUC} cases or non-cases (none at all included);
 * 'none' without a comparison or an interval.
 */
export function differenceVerdict(d: PairedAucDifference | null | undefined): 'above' | 'below' | 'includes-zero' | 'too-few' | 'none' {
  if (d == null) return 'none';
  if (!d.stable) return 'too-few';
  if (d.difference === null || d.ci === null) return 'none';
  if (d.ci.low > 0) return 'above';
  if (d.ci.high < 0) return 'below';
  return 'includes-zero';
}

/**
 * AUC with its 95 % interval and counts, accuracy at 0.5 beside the no-information rate, Brier
 * score and calibration of probabilities against 0/1 labels.
 */
export function assess(scores: ArrayLike<number>, labels: ArrayLike<number>, options: BootstrapOptions = {}): Assessment {
  const n = scores.length;
  let brier = 0;
  const bins = Array.from({ length: 10 }, () => ({ sumP: 0, sumY: 0, n: 0 }));
  for (let i = 0; i < n; i++) {
    const p = scores[i]!;
    const y = isCase(labels[i]!) ? 1 : 0;
    brier += (p - y) ** 2;
    const b = bins[Math.min(9, Math.max(0, Math.floor(p * 10)))]!;
    b.sumP += p;
    b.sumY += y;
    b.n++;
  }
  const calibration = bins.filter((b) => b.n > 0).map((b) => ({ predicted: b.sumP / b.n, observed: b.sumY / b.n, n: b.n }));
  const ece = n === 0 ? 0 : calibration.reduce((s, b) => s + (b.n / n) * Math.abs(b.predicted - b.observed), 0);
  const auc = aucWithInterval(scores, labels, options);
  return {
    n,
    positives: auc.cases,
    negatives: auc.nonCases,
    auc: auc.auc,
    aucCi: auc.ci,
    aucStable: auc.stable,
    accuracy: binaryAccuracy(scores, labels),
    noInformationRate: noInformationRate(labels),
    brier: n === 0 ? 0 : brier / n,
    ece,
    calibration,
  };
}
