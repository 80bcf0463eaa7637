import { FedlhsError } from './errors.js';
import { mulberry32 } from './random.js';

/**
 * Sufficient statistics of one feature at one clinic: enough to combine into exact global
 * means and variances, and (with a fixed-range histogram) approximate quantiles, without any
 * record leaving the clinic. What would disclose a group smaller than the study's minimum
 * cell count is withheld (see computeClinicStats for the exact rule).
 */
export interface FeatureStats {
  name: string;
  /** Non-missing values reported. 0 with `suppressed` when the feature is withheld. */
  count: number;
  sum: number;
  sumOfSquares: number;
  /** Missing values; 0 when withheld (`suppressed` or `missingSuppressed`). */
  missing: number;
  /** True if the feature's statistics were withheld: count, sum, sum of squares, missing and histogram are 0. */
  suppressed: boolean;
  /**
   * True if only the missing count was withheld (it was between 1 and the minimum cell count
   * − 1): count, sum, sum of squares and histogram then cover exactly rows − minCell of the
   * non-missing values (the others dropped pseudorandomly), and missing is 0.
   */
  missingSuppressed: boolean;
  /** Counts per bin over [histogramMin, histogramMax] (clamped at the ends); small cells zeroed. */
  histogram: number[];
  histogramMin: number;
  histogramMax: number;
}

/** A clinic's statistics report: cohort size, label prevalence and per-feature statistics. */
export interface ClinicStats {
  /** Rows in the clinic's training split; 0 with `suppressed` if below the minimum cell count. */
  rows: number;
  /** Positive labels; withheld (0, suppressed) when it or rows − positives is below the minimum. */
  positives: number;
  suppressed: boolean;
  features: FeatureStats[];
}

export interface HistogramRange {
  min: number;
  max: number;
  bins: number;
}

export interface ClinicStatsOptions {
  /**
   * Seeds the pseudorandom choice of the values left out when a small missing count is
   * withheld (mixed with the feature's index). Default 0. The same data and seed always give
   * the same report, so asking again discloses nothing new.
   */
  seed?: number;
}

/**
 * Computes a clinic's statistics over a row-major matrix (NaN = missing), in float64.
 * `ranges[j]`, if given, adds a histogram for feature j. With k = `minCell`, n rows and, per
 * feature, c non-missing and m = n − c missing values:
 * - c < k: the feature is withheld (`suppressed`; every number 0).
 * - 0 < m < k: only the missing count is withheld (`missingSuppressed`, missing 0). So that it
 *   cannot be recovered as rows − count (or from another feature's count), the statistics
 *   cover exactly n − k of the c values: k − m of them, chosen pseudorandomly from `seed` and
 *   the feature index, are left out. If n − k < k, the feature is withheld instead.
 * - A 0/1 feature (sum = sum of squares, an integer) whose reported ones or zeros number
 *   fewer than k is withheld (its sum is that count).
 * - Histogram cells (over the reported values) below k are zeroed; if exactly one was, the
 *   smallest other non-empty cell is zeroed too.
 * - rows is 0 when n < k; positives is withheld (0, `suppressed`) when n, positives or
 *   n − positives is below k.
 */
export function computeClinicStats(
  x: Float32Array,
  y: Float32Array,
  names: readonly string[],
  minCell: number,
  ranges: readonly (HistogramRange | undefined)[] = [],
  options: ClinicStatsOptions = {},
): ClinicStats {
  const d = names.length;
  const n = y.length;
  if (x.length !== n * d) throw new FedlhsError('INVALID_ARGUMENT', `matrix has ${x.length} values, expected ${n} × ${d}`);
  const features: FeatureStats[] = names.map((name, j) => {
    const range = ranges[j];
    const withheld: FeatureStats = {
      name, count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: true, missingSuppressed: false,
      histogram: range === undefined ? [] : new Array<number>(range.bins).fill(0), histogramMin: range?.min ?? 0, histogramMax: range?.max ?? 0,
    };
    const present: number[] = [];
    for (let i = 0; i < n; i++) {
      const v = x[i * d + j]!;
      if (!Number.isNaN(v)) present.push(v);
    }
    const missing = n - present.length;
    if (present.length < minCell) return withheld;
    let values = present;
    let missingSuppressed = false;
    if (missing > 0 && missing < minCell) {
      // A small missing count: report n − k values whatever m is, so count discloses nothing.
      if (n - minCell < minCell) return withheld;
      values = leaveOut(present, minCell - missing, mixSeed(options.seed ?? 0, j));
      missingSuppressed = true;
    }
    const histogram = range === undefined ? [] : new Array<number>(range.bins).fill(0);
    let sum = 0;
    let sumOfSquares = 0;
    for (const v of values) {
      sum += v;
      sumOfSquares += v * v;
      if (range !== undefined) {
        const bin = Math.min(range.bins - 1, Math.max(0, Math.floor(((v - range.min) / (range.max - range.min)) * range.bins)));
        histogram[bin]!++;
      }
    }
    const count = values.length;
    // A 0/1 feature's sum is its number of ones.
    const binary = count > 0 && sumOfSquares === sum && Number.isInteger(sum);
    if (binary && (sum < minCell || count - sum < minCell)) return withheld;
    return {
      name, count, sum, sumOfSquares, missing: missingSuppressed ? 0 : missing, suppressed: false, missingSuppressed,
      histogram: suppressHistogram(histogram, minCell), histogramMin: withheld.histogramMin, histogramMax: withheld.histogramMax,
    };
  });
  let positives = 0;
  for (let i = 0; i < n; i++) if (y[i]! >= 0.5) positives++;
  const suppressed = n < minCell || positives < minCell || n - positives < minCell;
  return { rows: n < minCell ? 0 : n, positives: suppressed ? 0 : positives, suppressed, features };
}

/** A per-feature seed: the study seed mixed with the feature index (golden-ratio hashing). */
function mixSeed(seed: number, feature: number): number {
  return (Math.imul(seed >>> 0, 0x85ebca6b) ^ Math.imul(feature + 1, 0x9e3779b1)) >>> 0;
}

/** `values` without `drop` of them, chosen by a seeded partial Fisher–Yates shuffle; order kept. */
function leaveOut(values: readonly number[], drop: number, seed: number): number[] {
  const random = mulberry32(seed);
  const index = Int32Array.from({ length: values.length }, (_, i) => i);
  const dropped = new Uint8Array(values.length);
  for (let r = 0; r < drop; r++) {
    const pick = r + Math.floor(random() * (values.length - r));
    const chosen = index[pick]!;
    index[pick] = index[r]!;
    index[r] = chosen;
    dropped[chosen] = 1;
  }
  return values.filter((_, i) => dropped[i] === 0);
}

/**
 * Zeroes histogram cells below `minCell`; if exactly one cell was zeroed, also the smallest
 * other non-zero cell, so the hidden count cannot be recovered as total minus the rest.
 */
function suppressHistogram(histogram: number[], minCell: number): number[] {
  const out = histogram.map((c) => (c < minCell ? 0 : c));
  const hidden = histogram.filter((c) => c > 0 && c < minCell).length;
  if (hidden === 1) {
    let smallest = -1;
    out.forEach((c, i) => {
      if (c > 0 && (smallest < 0 || c < out[smallest]!)) smallest = i;
    });
    if (smallest >= 0) out[smallest] = 0;
  }
  return out;
}

/** Global statistics combined from clinics' reports. */
export interface CombinedStats {
  rows: number;
  positives: number;
  /** Reports combined. */
  clinics: number;
  features: (FeatureStats & {
    mean: number;
    std: number;
    /** Clinics whose report withheld this feature's statistics. */
    withheldAt: number;
    /** Clinics whose report withheld only this feature's missing count. */
    missingWithheldAt: number;
  })[];
}

/**
 * Adds up clinics' reports (feature lists must agree) and derives mean and standard deviation.
 * A feature with no reported values (count 0) gets mean 0 and std 0: it cannot be normalised,
 * which normalizationFrom deals with explicitly.
 */
export function combineStats(reports: readonly ClinicStats[]): CombinedStats {
  if (reports.length === 0) throw new FedlhsError('INVALID_ARGUMENT', 'no statistics to combine: the list of reports is empty');
  const first = reports[0]!;
  for (const r of reports) {
    if (r.features.length !== first.features.length || r.features.some((f, j) => f.name !== first.features[j]!.name)) {
      throw new FedlhsError('INVALID_ARGUMENT', 'statistics reports disagree on the feature list');
    }
  }
  const features = first.features.map((f0, j) => {
    const acc: FeatureStats = {
      ...f0, count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: false, missingSuppressed: false, histogram: f0.histogram.map(() => 0),
    };
    let withheldAt = 0;
    let missingWithheldAt = 0;
    for (const r of reports) {
      const f = r.features[j]!;
      if (f.suppressed) withheldAt++;
      if (f.missingSuppressed) missingWithheldAt++;
      acc.count += f.count;
      acc.sum += f.sum;
      acc.sumOfSquares += f.sumOfSquares;
      acc.missing += f.missing;
      f.histogram.forEach((c, b) => {
        if (b < acc.histogram.length) acc.histogram[b]! += c;
      });
    }
    acc.suppressed = acc.count === 0;
    acc.missingSuppressed = missingWithheldAt > 0;
    const mean = acc.count === 0 ? 0 : acc.sum / acc.count;
    const variance = acc.count === 0 ? 0 : Math.max(0, acc.sumOfSquares / acc.count - mean * mean);
    return { ...acc, mean, std: Math.sqrt(variance), withheldAt, missingWithheldAt };
  });
  return {
    rows: reports.reduce((s, r) => s + r.rows, 0),
    positives: reports.reduce((s, r) => s + r.positives, 0),
    clinics: reports.length,
    features,
  };
}

/**
 * How a feature's scaling was obtained: 'federated' from the clinics' statistics;
 * 'fallback-range' from its declared range because its statistics were withheld at every
 * clinic; 'excluded': it enters the model as the constant 0.
 */
export type NormalizationSource = 'federated' | 'fallback-range' | 'excluded';

/** What to do with a feature whose statistics were withheld at every clinic. */
export type NormalizationFallback = 'fail' | 'range' | 'exclude';

/** Per-feature scaling every clinic (and every later use of the model) applies identically. */
export interface Normalization {
  method: 'zscore';
  /**
   * `impute`: the value a missing entry takes before scaling (default: the mean).
   * `excluded`: the feature is the constant 0 for every row, whatever its value (mean and
   * std are then 0 and 1 and not used). `source` and `withheldAt` (clinics whose statistics
   * of the feature were withheld) say how the values were obtained; informative.
   */
  features: { name: string; mean: number; std: number; impute?: number; excluded?: boolean; source?: NormalizationSource; withheldAt?: number }[];
  /** Clinics whose statistics were combined (informative). */
  clinics?: number;
}

/**
 * A feature's declared domain, from the study's cohort definition: values in [min, max]
 * ('latest' features by their range, 'age' by the eligibility ages), 0/1 ('sex', 'condition',
 * 'latest-coded'), or non-negative integers ('count', no upper bound). Flat-table features
 * declare none.
 */
export type FeatureDomain = { kind: 'range'; min: number; max: number } | { kind: 'binary' } | { kind: 'count' };

export interface NormalizationOptions {
  /** For features withheld at every clinic: 'fail' (default) throws, naming them. */
  fallback?: NormalizationFallback;
  /** Declared domains, by feature index, for the 'range' fallback. */
  domains?: readonly (FeatureDomain | undefined)[];
}

/**
 * Normalisation parameters from combined statistics; a constant feature gets std 1. A feature
 * withheld at every clinic (combined count 0) is never scaled silently: with fallback 'fail'
 * (the default) this throws NORMALIZATION_IMPOSSIBLE naming every such feature; with 'range' it
 * takes mean = midpoint and std = (max − min) / 4 of its declared range (0/1 features: 0.5
 * and 0.5), and throws for a feature without one; with 'exclude' it becomes the constant 0.
 * A feature with no values at all (count 0, withheld nowhere: only possible without
 * suppression, e.g. one clinic's own statistics) is excluded: there is nothing to scale.
 */
export function normalizationFrom(stats: CombinedStats, options: NormalizationOptions = {}): Normalization {
  const fallback = options.fallback ?? 'fail';
  const impossible = unnormalisable(stats, options);
  if (impossible.length > 0) {
    const advice = fallback === 'range'
      ? `${impossible.length === 1 ? 'it has' : 'they have'} no declared range for data.normalizationFallback 'range'; use 'exclude' or lower data.minCellCount`
      : 'declare data.normalizationFallback or lower data.minCellCount';
    throw new FedlhsError('NORMALIZATION_IMPOSSIBLE', `federated normalisation impossible: statistics of ${impossible.join(', ')} withheld at every clinic (small cells); ${advice}`, {
      details: { features: impossible },
    });
  }
  const features = stats.features.map((f, j): Normalization['features'][number] => {
    const withheldAt = f.withheldAt;
    if (f.count > 0) return { name: f.name, mean: f.mean, std: f.std > 1e-12 ? f.std : 1, source: 'federated', withheldAt };
    const domain = fallback === 'range' && withheldAt > 0 ? options.domains?.[j] : undefined;
    if (domain?.kind === 'binary') return { name: f.name, mean: 0.5, std: 0.5, source: 'fallback-range', withheldAt };
    if (domain?.kind === 'range') return { name: f.name, mean: (domain.min + domain.max) / 2, std: (domain.max - domain.min) / 4, source: 'fallback-range', withheldAt };
    return { name: f.name, mean: 0, std: 1, excluded: true, source: 'excluded', withheldAt };
  });
  return { method: 'zscore', features, clinics: stats.clinics };
}

/**
 * The features normalizationFrom cannot scale with these options: withheld at every clinic,
 * and neither excluded nor (with 'range') given a declared range by the fallback.
 */
export function unnormalisable(stats: CombinedStats, options: NormalizationOptions = {}): string[] {
  const fallback = options.fallback ?? 'fail';
  return stats.features.flatMap((f, j) => {
    if (f.count > 0 || f.withheldAt === 0 || fallback === 'exclude') return [];
    const kind = options.domains?.[j]?.kind;
    return fallback === 'range' && (kind === 'range' || kind === 'binary') ? [] : [f.name];
  });
}

/**
 * Scales a row-major matrix in place: (x − mean) / std per feature; a missing value (NaN)
 * becomes the imputed value (default the mean, so 0 after scaling); an `excluded` feature
 * becomes 0 whatever its value. Without normalisation, missing values become 0.
 */
export function applyNormalization(x: Float32Array, names: readonly string[], normalization: Normalization | undefined): Float32Array {
  const d = names.length;
  const params = names.map((name, j) => {
    if (normalization === undefined) return { mean: 0, std: 1 };
    const p = normalization.features[j];
    if (p === undefined || p.name !== name) throw new FedlhsError('INVALID_ARGUMENT', `normalisation does not match feature ${j} (${name})`);
    return p;
  });
  for (let i = 0; i < x.length; i++) {
    const p = params[i % d]!;
    if ((p as { excluded?: boolean }).excluded === true) {
      x[i] = 0;
      continue;
    }
    const v = x[i]!;
    const value = Number.isNaN(v) ? ((p as { impute?: number }).impute ?? p.mean) : v;
    x[i] = (value - p.mean) / p.std;
  }
  return x;
}

/** Approximate quantile q (0..1) from a combined fixed-range histogram; undefined if empty. */
export function histogramQuantile(f: Pick<FeatureStats, 'histogram' | 'histogramMin' | 'histogramMax'>, q: number): number | undefined {
  const total = f.histogram.reduce((s, c) => s + c, 0);
  if (total === 0) return undefined;
  const width = (f.histogramMax - f.histogramMin) / f.histogram.length;
  let seen = 0;
  for (let b = 0; b < f.histogram.length; b++) {
    const c = f.histogram[b]!;
    if (seen + c >= q * total) return f.histogramMin + width * (b + (c === 0 ? 0 : (q * total - seen) / c));
    seen += c;
  }
  return f.histogramMax;
}
