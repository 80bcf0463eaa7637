import { FedlhsError } from './errors.js';
import { rocAuc } from './metrics.js';
import { CALIBRATION_BINS, MAX_CALIBRATION_COEFFICIENT } from './performance-check.js';
import type { Performance, PublishedPerformance } from './release-format.js';

export * from './performance-check.js';

/**
 * A risk model's figures on a set of patients (proto common.proto `Performance`): AUC with its
 * DeLong standard error, Brier score, logistic calibration slope and intercept, and a
 * 10-bin reliability table; their pooling over sites, and their published form with small
 * cells withheld. Checks of a Performance received from outside are in performance-check.ts.
 */

/** Predicted risks are clipped to [ε, 1 − ε] before the logit, so a risk of 0 or 1 stays finite. */
const LOGIT_EPSILON = 1e-6;
const NEWTON_MAX_ITERATIONS = 100;
const NEWTON_TOLERANCE = 1e-9;

/** The bin of a predicted risk: [0, 0.1) → 0, …, [0.9, 1] → 9 (a risk of 1.0 is in the last bin). */
export function calibrationBin(risk: number): number {
  return Math.min(CALIBRATION_BINS - 1, Math.floor(risk * CALIBRATION_BINS));
}

/**
 * The figures of predicted risks `scores` (each in [0, 1]) against outcomes `labels` (each 0 or
 * 1). Throws INVALID_ARGUMENT on no data, different lengths, a risk that is not a finite number
 * in [0, 1] or a label that is not 0 or 1: an impossible input is never summarised.
 */
export function computePerformance(scores: ArrayLike<number>, labels: ArrayLike<number>): Performance {
  const n = scores.length;
  if (labels.length !== n) throw new FedlhsError('INVALID_ARGUMENT', `scores (${n}) and labels (${labels.length}) differ in length`, { details: { field: 'labels' } });
  if (n === 0) throw new FedlhsError('INVALID_ARGUMENT', 'no patients to compute performance on', { details: { field: 'scores' } });
  const calibration = Array.from({ length: CALIBRATION_BINS }, () => ({ count: 0, predictedSum: 0, observed: 0 }));
  let positives = 0;
  let squaredError = 0;
  for (let i = 0; i < n; i++) {
    const p = scores[i]!;
    const y = labels[i]!;
    if (!(p >= 0 && p <= 1)) throw new FedlhsError('INVALID_ARGUMENT', `predicted risk ${i} is not a number in [0, 1] (${p})`, { details: { field: 'scores' } });
    if (y !== 0 && y !== 1) throw new FedlhsError('INVALID_ARGUMENT', `label ${i} is not 0 or 1 (${y})`, { details: { field: 'labels' } });
    positives += y;
    squaredError += (p - y) ** 2;
    const bin = calibration[calibrationBin(p)]!;
    bin.count++;
    bin.predictedSum += p;
    bin.observed += y;
  }
  const auc = rocAuc(scores, labels);
  const se = auc === undefined ? undefined : delongStandardError(scores, labels);
  const fit = positives === 0 || positives === n ? undefined : calibrationFit(scores, labels);
  return {
    numExamples: n,
    positives,
    auc,
    ...(se === undefined ? {} : { aucStandardError: se }),
    brier: squaredError / n,
    ...(fit === undefined ? {} : { calibrationSlope: fit.slope, calibrationIntercept: fit.intercept }),
    calibration,
  };
}

/** Number of values in sorted `a` below x (strict) or at most x. */
function countBelow(a: readonly number[], x: number, inclusive: boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x || (inclusive && a[mid]! === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * DeLong et al. (1988) standard error of the AUC, exact two-sample placement form: with m cases
 * X and n controls Y and ψ(x, y) = 1 if x > y, ½ if equal, 0 otherwise, the placements
 * V10(Xᵢ) = mean_j ψ(Xᵢ, Yⱼ) and V01(Yⱼ) = mean_i ψ(Xᵢ, Yⱼ) have sample variances S10 and S01,
 * and Var(AUC) = S10/m + S01/n. Undefined when a class has fewer than 2 patients (no variance).
 * O((m + n) log(m + n)).
 */
export function delongStandardError(scores: ArrayLike<number>, labels: ArrayLike<number>): number | undefined {
  const cases: number[] = [];
  const controls: number[] = [];
  for (let i = 0; i < scores.length; i++) (labels[i]! >= 0.5 ? cases : controls).push(scores[i]!);
  const m = cases.length;
  const n = controls.length;
  if (m < 2 || n < 2) return undefined;
  cases.sort((a, b) => a - b);
  controls.sort((a, b) => a - b);
  // Each placement: controls below x plus half the controls tied with x (and mirrored).
  const v10 = cases.map((x) => {
    const below = countBelow(controls, x, false);
    return (below + (countBelow(controls, x, true) - below) / 2) / n;
  });
  const v01 = controls.map((y) => {
    const atMost = countBelow(cases, y, true);
    return (m - atMost + (atMost - countBelow(cases, y, false)) / 2) / m;
  });
  const auc = v10.reduce((s, v) => s + v, 0) / m;
  const s10 = v10.reduce((s, v) => s + (v - auc) ** 2, 0) / (m - 1);
  const s01 = v01.reduce((s, v) => s + (v - auc) ** 2, 0) / (n - 1);
  return Math.sqrt(s10 / m + s01 / n);
}

const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/**
 * Logistic recalibration (Cox 1958): fits logit P(y = 1) = a + b·logit(p) by Newton-Raphson
 * from the ideal (a, b) = (0, 1), halving a step that lowers the log-likelihood. Undefined when
 * it does not converge within 100 steps (e.g. the classes are separated by the risk, where the
 * maximum-likelihood slope is infinite), when all logits are equal, or when |a| or |b| exceeds
 * MAX_CALIBRATION_COEFFICIENT: such a fit is not a measurement.
 */
export function calibrationFit(scores: ArrayLike<number>, labels: ArrayLike<number>): { slope: number; intercept: number } | undefined {
  const n = scores.length;
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = Math.min(1 - LOGIT_EPSILON, Math.max(LOGIT_EPSILON, scores[i]!));
    z[i] = Math.log(p / (1 - p));
  }
  const logLikelihood = (a: number, b: number): number => {
    let ll = 0;
    for (let i = 0; i < n; i++) {
      const eta = a + b * z[i]!;
      ll += labels[i]! * eta - softplus(eta);
    }
    return ll;
  };
  let a = 0;
  let b = 1;
  let ll = logLikelihood(a, b);
  for (let iteration = 0; iteration < NEWTON_MAX_ITERATIONS; iteration++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < n; i++) {
      const zi = z[i]!;
      const mu = 1 / (1 + Math.exp(-(a + b * zi)));
      const r = labels[i]! - mu;
      const w = mu * (1 - mu);
      ga += r;
      gb += r * zi;
      haa += w;
      hab += w * zi;
      hbb += w * zi * zi;
    }
    const det = haa * hbb - hab * hab;
    if (!(det > 1e-12 * Math.max(1, haa * hbb))) return undefined;
    let da = (hbb * ga - hab * gb) / det;
    let db = (haa * gb - hab * ga) / det;
    let next = logLikelihood(a + da, b + db);
    for (let halvings = 0; !(next >= ll) && halvings < 30; halvings++) {
      da /= 2;
      db /= 2;
      next = logLikelihood(a + da, b + db);
    }
    if (!(next >= ll - 1e-12 * Math.abs(ll))) return undefined;
    a += da;
    b += db;
    ll = next;
    if (!Number.isFinite(a) || !Number.isFinite(b) || Math.abs(a) > MAX_CALIBRATION_COEFFICIENT || Math.abs(b) > MAX_CALIBRATION_COEFFICIENT) return undefined;
    if (Math.abs(da) <= NEWTON_TOLERANCE * (1 + Math.abs(a)) && Math.abs(db) <= NEWTON_TOLERANCE * (1 + Math.abs(b))) return { slope: b, intercept: a };
  }
  return undefined;
}

/**
 * Pooled figures of several sites (none: undefined). AUC: the example-weighted mean over the
 * sites with one (weights wᵢ = nᵢ / Σn over those sites, as `weightedMetrics`), with standard
 * error √(Σ wᵢ² seᵢ²) for independent sites, only if every one of them has an SE. Brier:
 * example-weighted over all sites. Calibration slope and intercept: example-weighted over the
 * sites that have them. Reliability tables: summed bin by bin over the sites that have one
 * (none if any site has none, so the bins still add up to the pooled counts).
 */
export function pooledPerformance(sites: readonly Performance[]): Performance | undefined {
  const total = sites.reduce((s, p) => s + p.numExamples, 0);
  if (sites.length === 0 || total === 0) return undefined;
  const withAuc = sites.filter((p) => p.auc !== undefined);
  const aucWeight = withAuc.reduce((s, p) => s + p.numExamples, 0);
  let auc: number | undefined;
  let aucStandardError: number | undefined;
  if (aucWeight > 0) {
    auc = withAuc.reduce((s, p) => s + p.auc! * (p.numExamples / aucWeight), 0);
    if (withAuc.every((p) => p.aucStandardError !== undefined)) {
      aucStandardError = Math.sqrt(withAuc.reduce((s, p) => s + (p.numExamples / aucWeight) ** 2 * p.aucStandardError! ** 2, 0));
    }
  }
  const fitted = sites.filter((p) => p.calibrationSlope !== undefined && p.calibrationIntercept !== undefined);
  const fitWeight = fitted.reduce((s, p) => s + p.numExamples, 0);
  const fitMean = (pick: (p: Performance) => number): number => fitted.reduce((s, p) => s + pick(p) * (p.numExamples / fitWeight), 0);
  const binned = sites.every((p) => p.calibration.length === CALIBRATION_BINS);
  return {
    numExamples: total,
    positives: sites.reduce((s, p) => s + p.positives, 0),
    auc,
    ...(aucStandardError === undefined ? {} : { aucStandardError }),
    brier: sites.reduce((s, p) => s + p.brier * (p.numExamples / total), 0),
    ...(fitWeight === 0 ? {} : { calibrationSlope: fitMean((p) => p.calibrationSlope!), calibrationIntercept: fitMean((p) => p.calibrationIntercept!) }),
    calibration: binned
      ? Array.from({ length: CALIBRATION_BINS }, (_, b) => ({
          count: sites.reduce((s, p) => s + p.calibration[b]!.count, 0),
          predictedSum: sites.reduce((s, p) => s + p.calibration[b]!.predictedSum, 0),
          observed: sites.reduce((s, p) => s + p.calibration[b]!.observed, 0),
        }))
      : [],
  };
}

/** The 95 % interval auc ± 1.96·se, clipped to [0, 1]. */
export function aucInterval(auc: number, se: number): [number, number] {
  return [Math.max(0, auc - 1.96 * se), Math.min(1, auc + 1.96 * se)];
}

/**
 * The published form of a Performance (release.json), small cells withheld as null. The
 * interval needs an SE.
 *
 * - `positives`: withheld when there are fewer than `minCellCount` (k) cases or non-cases.
 * - Reliability bins, by complementary suppression, since numExamples and positives are
 *   published and the shown bins could be subtracted from them: a bin is withheld when it holds
 *   fewer than k patients, cases or non-cases; then, if the withheld bins hold anyone, the
 *   smallest other bins (by patients; ties: the lower bin) are withheld too until the withheld
 *   bins together hold at least k patients, k cases and k non-cases, or every bin is withheld.
 *   Withheld bins that hold no one reveal no one, so they alone need no partner.
 * - When positives is withheld, every bin is: the shown bins' cases would otherwise add up to
 *   it (or bound it).
 */
export function publishPerformance(p: Performance, minCellCount: number): PublishedPerformance {
  const k = minCellCount;
  const smallClass = p.positives < k || p.numExamples - p.positives < k;
  const withheld = smallClass ? new Set(p.calibration.keys()) : withheldBins(p.calibration, k);
  return {
    numExamples: p.numExamples,
    positives: smallClass ? null : p.positives,
    auc: p.auc ?? null,
    aucInterval: p.auc !== undefined && p.aucStandardError !== undefined ? aucInterval(p.auc, p.aucStandardError) : null,
    brier: p.brier,
    calibrationSlope: p.calibrationSlope ?? null,
    calibrationIntercept: p.calibrationIntercept ?? null,
    calibration: p.calibration.map((bin, b) =>
      withheld.has(b) || bin.count === 0
        ? null
        : { lower: b / CALIBRATION_BINS, upper: (b + 1) / CALIBRATION_BINS, count: bin.count, meanPredicted: bin.predictedSum / bin.count, observedRate: bin.observed / bin.count },
    ),
  };
}

/** The indices of the bins `publishPerformance` withholds: small bins, then their complement (see there). */
function withheldBins(bins: Performance['calibration'], k: number): Set<number> {
  const small = (count: number, cases: number): boolean => count < k || cases < k || count - cases < k;
  const withheld = new Set<number>();
  let count = 0;
  let cases = 0;
  const withhold = (b: number): void => {
    withheld.add(b);
    count += bins[b]!.count;
    cases += bins[b]!.observed;
  };
  bins.forEach((bin, b) => {
    if (small(bin.count, bin.observed)) withhold(b);
  });
  const rest = [...bins.keys()].filter((b) => !withheld.has(b)).sort((a, b) => bins[a]!.count - bins[b]!.count || a - b);
  for (const b of rest) {
    if (count === 0 || !small(count, cases)) break;
    withhold(b);
  }
  return withheld;
}
