import { z } from 'zod';
import { FedlhsError } from './errors.js';
import type { Performance } from './release-format.js';

/**
 * Champion and challenger (issue 13): the paired comparison of two models scored on the same
 * patients at one clinic (DeLong, DeLong and Clarke-Pearson 1988), the pooled difference across
 * clinics, and the promotion decision a series template declares. Pure: no I/O.
 */

/** A clinic's paired comparison: AUC(challenger) − AUC(champion) on the same patients, with its DeLong standard error. */
export interface PairedDifference {
  n: number;
  cases: number;
  /** Undefined when only one class is present. */
  difference?: number | undefined;
  /** Undefined when a class has fewer than 2 patients. */
  standardError?: number | undefined;
}

/** Placement values of one model: per case the share of controls it outranks, per control the share of cases that outrank it (ties ½). */
function placements(scores: ArrayLike<number>, caseIdx: readonly number[], controlIdx: readonly number[]): { v10: number[]; v01: number[] } {
  const controls = controlIdx.map((i) => scores[i]!).sort((a, b) => a - b);
  const cases = caseIdx.map((i) => scores[i]!).sort((a, b) => a - b);
  const below = (sorted: readonly number[], x: number, inclusive: boolean): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < x || (inclusive && sorted[mid]! === x)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const m = cases.length;
  const n = controls.length;
  const v10 = caseIdx.map((i) => {
    const x = scores[i]!;
    const lt = below(controls, x, false);
    return (lt + (below(controls, x, true) - lt) / 2) / n;
  });
  const v01 = controlIdx.map((j) => {
    const y = scores[j]!;
    const atMost = below(cases, y, true);
    return (m - atMost + (atMost - below(cases, y, false)) / 2) / m;
  });
  return { v10, v01 };
}

const mean = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
const covariance = (a: readonly number[], b: readonly number[]): number => {
  const ma = mean(a);
  const mb = mean(b);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - ma) * (b[i]! - mb);
  return s / (a.length - 1);
};

/**
 * The paired DeLong comparison of `challenger` and `champion` scores on the same patients:
 * d = AUC(challenger) − AUC(champion), Var(d) = Var(A) + Var(B) − 2 Cov(A, B) from the placement
 * values over cases (÷ m) and controls (÷ n). O((m + n) log(m + n)).
 */
export function pairedAucDifference(challenger: ArrayLike<number>, champion: ArrayLike<number>, labels: ArrayLike<number>): PairedDifference {
  if (challenger.length !== labels.length || champion.length !== labels.length) {
    throw new FedlhsError('INVALID_ARGUMENT', `a paired comparison needs one score of each model per patient (${challenger.length} and ${champion.length} scores for ${labels.length} patients)`);
  }
  const caseIdx: number[] = [];
  const controlIdx: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const s1 = challenger[i]!;
    const s2 = champion[i]!;
    if (!Number.isFinite(s1) || !Number.isFinite(s2)) throw new FedlhsError('INVALID_ARGUMENT', `score ${i} is not a finite number`);
    (labels[i]! >= 0.5 ? caseIdx : controlIdx).push(i);
  }
  const m = caseIdx.length;
  const n = controlIdx.length;
  if (m === 0 || n === 0) return { n: labels.length, cases: m };
  const a = placements(challenger, caseIdx, controlIdx);
  const b = placements(champion, caseIdx, controlIdx);
  const difference = mean(a.v10) - mean(b.v10);
  if (m < 2 || n < 2) return { n: labels.length, cases: m, difference };
  const variance =
    (covariance(a.v10, a.v10) + covariance(b.v10, b.v10) - 2 * covariance(a.v10, b.v10)) / m +
    (covariance(a.v01, a.v01) + covariance(b.v01, b.v01) - 2 * covariance(a.v01, b.v01)) / n;
  // Rounding can leave a tiny negative variance for identical models.
  return { n: labels.length, cases: m, difference, standardError: Math.sqrt(Math.max(0, variance)) };
}

/**
 * Fixed-effect (inverse-variance) pooling of independent clinics' paired differences: each
 * clinic's patients are its own, so the variances add. Clinics without a standard error (a
 * class with fewer than 2 patients) or with a zero one (identical scores) cannot be weighted and
 * are left out; `excluded` says how many. Undefined when none can be pooled.
 */
export function pooledDifference(sites: readonly PairedDifference[]): { difference: number; standardError: number; interval: [number, number]; sites: number; excluded: number } | undefined {
  let weights = 0;
  let sum = 0;
  let used = 0;
  for (const s of sites) {
    if (s.difference === undefined || s.standardError === undefined || !(s.standardError > 0)) continue;
    const w = 1 / s.standardError ** 2;
    weights += w;
    sum += w * s.difference;
    used++;
  }
  if (used === 0) return undefined;
  const difference = sum / weights;
  const standardError = Math.sqrt(1 / weights);
  const z = 1.959963984540054;
  return { difference, standardError, interval: [difference - z * standardError, difference + z * standardError], sites: used, excluded: sites.length - used };
}

/** The promotion rule of a series template (series.ts `promotion`). */
export type PromotionRule = { rule: 'auto'; minDelta: number; maxSiteLoss: number; minSites: number } | { rule: 'operator' };

/** One clinic's evidence for a promotion decision. */
export interface SiteComparison extends PairedDifference {
  siteName: string;
  /** The challenger's and the champion's AUC on the clinic's test part, when present. */
  challengerAuc?: number | undefined;
  championAuc?: number | undefined;
}

/** What was decided and why, kept with the decision (and shown to operators). */
export interface PromotionDecision {
  promote: boolean;
  /** One line per reason, in words. */
  reasons: string[];
  pooled?: { difference: number; standardError: number; interval: [number, number]; sites: number; excluded: number } | undefined;
  /** Clinics whose counts are too small to judge a loss on (named, never silently dropped). */
  tooSmall: string[];
  /** Clinics worse by more than maxSiteLoss. */
  worse: string[];
}

const fmt = (x: number): string => (x >= 0 ? '+' : '') + x.toFixed(3);
const Z95 = 1.959963984540054;

/**
 * The `auto` rule on the clinics' paired comparisons: promote when the pooled difference is at
 * least `minDelta` with its 95 % interval above 0, at least `minSites` clinics were pooled, and
 * no clinic with at least `minCellCount` cases and non-cases lost more than `maxSiteLoss`
 * with its 95 % interval below 0 (clinics under minCellCount are named in `tooSmall`: their
 * estimate is too noisy to veto on). With `stored` (the round's pooled comparison over every
 * clinic, the withheld small ones included) the pooled difference is that one.
 * Under `operator` it never promotes, but the evidence is the same.
 */
export function decidePromotion(rule: PromotionRule, sites: readonly SiteComparison[], minCellCount: number, stored?: PooledComparison): PromotionDecision {
  // The pooled difference as the round stored it covers the withheld clinics too; without it, the clinics given.
  const pooled = stored === undefined ? pooledDifference(sites) : stored.pooled;
  const tooSmall = sites.filter((s) => s.cases < minCellCount || s.n - s.cases < minCellCount).map((s) => s.siteName).sort();
  const judged = sites.filter((s) => !tooSmall.includes(s.siteName));
  const maxSiteLoss = rule.rule === 'auto' ? rule.maxSiteLoss : 0.05;
  // A clinic vetoes when it lost more than maxSiteLoss and the loss is real (its 95 % interval
  // lies below 0): a point estimate alone would let noise veto a challenger better everywhere
  // (with 20 clinics of 12 cases, 81 % of the time for a true gain of +0.027: review of issue 13).
  const worse = judged
    .filter((s) => s.difference !== undefined && s.difference < -maxSiteLoss && (s.standardError === undefined || s.difference + Z95 * s.standardError < 0))
    .map((s) => s.siteName)
    .sort();
  const reasons: string[] = [];
  let promote = rule.rule === 'auto';
  if (pooled === undefined) {
    promote = false;
    reasons.push(sites.length === 0 ? 'no clinic reported a comparison with the champion' : 'no clinic\'s comparison had a standard error to pool (each needs at least 2 cases and 2 non-cases)');
  } else {
    const [lo, hi] = pooled.interval;
    reasons.push(`pooled AUC difference (challenger − champion) ${fmt(pooled.difference)} [${fmt(lo)}, ${fmt(hi)}] over ${pooled.sites} clinic(s)${pooled.excluded > 0 ? `, ${pooled.excluded} left out without a standard error` : ''}`);
    if (rule.rule === 'auto') {
      if (pooled.difference < rule.minDelta) {
        promote = false;
        reasons.push(`below the required gain of ${fmt(rule.minDelta)}`);
      }
      if (!(lo > 0)) {
        promote = false;
        reasons.push('its 95 % interval does not lie above 0');
      }
      if (pooled.sites < rule.minSites) {
        promote = false;
        reasons.push(`${pooled.sites} clinic(s) compared, fewer than the ${rule.minSites} required`);
      }
    }
  }
  if (worse.length > 0) {
    if (rule.rule === 'auto') promote = false;
    reasons.push(`worse by more than ${maxSiteLoss} (and with a 95 % interval below 0) at ${worse.join(', ')}`);
  }
  if (tooSmall.length > 0) reasons.push(`too few cases or non-cases (under ${minCellCount}) to judge a loss at ${tooSmall.join(', ')}`);
  if (stored !== undefined && stored.withheld > 0) reasons.push(`${stored.withheld} clinic(s) count in the pooled difference only: their own figures are withheld (fewer than ${minCellCount} patients, cases or non-cases, or withheld to protect such a clinic)`);
  if (rule.rule === 'operator') reasons.push('the template leaves promotion to an operator');
  else if (promote) reasons.push('the promotion rule holds');
  return { promote, reasons, pooled, tooSmall, worse };
}

/** The figures a clinic's comparison adds to a round (stored as JSON with its metrics row, phase 'comparison'). */
export const comparisonFiguresSchema = z.strictObject({
  studyName: z.string(),
  version: z.number().int().min(1),
  n: z.number().int().min(0),
  cases: z.number().int().min(0),
  difference: z.number().min(-1).max(1).optional(),
  standardError: z.number().min(0).max(1).optional(),
  /** The champion's figures on the same patients (core Performance). */
  champion: z.record(z.string(), z.unknown()),
});
export type ComparisonFigures = Omit<z.output<typeof comparisonFiguresSchema>, 'champion'> & { champion: Performance };

/**
 * The pooled comparison of a round (stored as JSON on its global 'comparison' metrics row): the
 * inverse-variance pool over every clinic that reported one, the withheld small ones included,
 * and how many reported and how many of those are withheld from the per-site rows.
 */
export const pooledComparisonSchema = z.strictObject({
  studyName: z.string(),
  version: z.number().int().min(1),
  pooled: z
    .strictObject({
      difference: z.number().min(-1).max(1),
      standardError: z.number().min(0),
      interval: z.tuple([z.number(), z.number()]),
      sites: z.number().int().min(0),
      excluded: z.number().int().min(0),
    })
    .optional(),
  reported: z.number().int().min(0),
  withheld: z.number().int().min(0),
  /** Node ids of the sites that evaluated the round's model but sent no comparison. */
  missing: z.array(z.string()).default([]),
});
export type PooledComparison = z.output<typeof pooledComparisonSchema>;

/** The 95 % interval of a clinic's difference (d ± 1.96·se, within [−1, 1]), when it has a standard error. */
export function differenceInterval(d: PairedDifference): [number, number] | undefined {
  if (d.difference === undefined || d.standardError === undefined) return undefined;
  const z = 1.959963984540054;
  return [Math.max(-1, d.difference - z * d.standardError), Math.min(1, d.difference + z * d.standardError)];
}
