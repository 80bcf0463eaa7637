import { FedlhsError } from './errors.js';

/**
 * Sufficient statistics of one feature at one clinic: enough to combine into exact global
 * means and variances, and (with a fixed-range histogram) approximate quantiles, without any
 * record leaving the clinic. Cells below the study's minimum count are suppressed.
 */
export interface FeatureStats {
  name: string;
  /** Non-missing values. 0 with `suppressed` when fewer than the minimum cell count. */
  count: number;
  sum: number;
  sumOfSquares: number;
  missing: number;
  /** True if count/sum/sumOfSquares were withheld because count < minimum cell count. */
  suppressed: boolean;
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

/**
 * Computes a clinic's statistics over a row-major matrix (NaN = missing), in float64.
 * `ranges[j]`, if given, adds a histogram for feature j. Every count below `minCell`
 * (and the sums that go with it) is suppressed, so small groups cannot be singled out.
 */
export function computeClinicStats(
  x: Float32Array,
  y: Float32Array,
  names: readonly string[],
  minCell: number,
  ranges: readonly (HistogramRange | undefined)[] = [],
): ClinicStats {
  const d = names.length;
  const n = y.length;
  if (x.length !== n * d) throw new FedlhsError('INVALID_ARGUMENT', `matrix has ${x.length} values, expected ${n} × ${d}`);
  const features: FeatureStats[] = names.map((name, j) => {
    const range = ranges[j];
    const histogram = range === undefined ? [] : new Array<number>(range.bins).fill(0);
    let count = 0;
    let sum = 0;
    let sumOfSquares = 0;
    let missing = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i * d + j]!;
      if (Number.isNaN(v)) {
        missing++;
        continue;
      }
      count++;
      sum += v;
      sumOfSquares += v * v;
      if (range !== undefined) {
        const bin = Math.min(range.bins - 1, Math.max(0, Math.floor(((v - range.min) / (range.max - range.min)) * range.bins)));
        histogram[bin]!++;
      }
    }
    // Everything that could reveal a small group is withheld together: a small count or a
    // small missing count (one follows from the other and the row total), and for a 0/1
    // feature a small number of ones or zeros (its sum is that count).
    const binary = count > 0 && sumOfSquares === sum && Number.isInteger(sum);
    const suppressed =
      count < minCell || (missing > 0 && missing < minCell) || (binary && (sum < minCell || count - sum < minCell));
    return {
      name,
      count: suppressed ? 0 : count,
      sum: suppressed ? 0 : sum,
      sumOfSquares: suppressed ? 0 : sumOfSquares,
      missing: suppressed ? 0 : missing,
      suppressed,
      histogram: suppressed ? histogram.map(() => 0) : suppressHistogram(histogram, minCell),
      histogramMin: range?.min ?? 0,
      histogramMax: range?.max ?? 0,
    };
  });
  let positives = 0;
  for (let i = 0; i < n; i++) if (y[i]! >= 0.5) positives++;
  const suppressed = n < minCell || positives < minCell || n - positives < minCell;
  return { rows: n < minCell ? 0 : n, positives: suppressed ? 0 : positives, suppressed, features };
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
  features: (FeatureStats & { mean: number; std: number })[];
}

/** Adds up clinics' reports (feature lists must agree) and derives mean and standard deviation. */
export function combineStats(reports: readonly ClinicStats[]): CombinedStats {
  if (reports.length === 0) throw new FedlhsError('FAILED_PRECONDITION', 'no statistics to combine');
  const first = reports[0]!;
  for (const r of reports) {
    if (r.features.length !== first.features.length || r.features.some((f, j) => f.name !== first.features[j]!.name)) {
      throw new FedlhsError('INVALID_ARGUMENT', 'statistics reports disagree on the feature list');
    }
  }
  const features = first.features.map((f0, j) => {
    const acc: FeatureStats = { ...f0, count: 0, sum: 0, sumOfSquares: 0, missing: 0, suppressed: false, histogram: f0.histogram.map(() => 0) };
    for (const r of reports) {
      const f = r.features[j]!;
      acc.count += f.count;
      acc.sum += f.sum;
      acc.sumOfSquares += f.sumOfSquares;
      acc.missing += f.missing;
      f.histogram.forEach((c, b) => {
        if (b < acc.histogram.length) acc.histogram[b]! += c;
      });
    }
    acc.suppressed = acc.count === 0;
    const mean = acc.count === 0 ? 0 : acc.sum / acc.count;
    const variance = acc.count === 0 ? 0 : Math.max(0, acc.sumOfSquares / acc.count - mean * mean);
    return { ...acc, mean, std: Math.sqrt(variance) };
  });
  return {
    rows: reports.reduce((s, r) => s + r.rows, 0),
    positives: reports.reduce((s, r) => s + r.positives, 0),
    features,
  };
}

/** Per-feature scaling every clinic (and every later use of the model) applies identically. */
export interface Normalization {
  method: 'zscore';
  /** `impute`: the value a missing entry takes before scaling (default: the mean). */
  features: { name: string; mean: number; std: number; impute?: number }[];
}

/** Normalisation parameters from combined statistics; a constant feature gets std 1. */
export function normalizationFrom(stats: CombinedStats): Normalization {
  return { method: 'zscore', features: stats.features.map((f) => ({ name: f.name, mean: f.mean, std: f.std > 1e-12 ? f.std : 1 })) };
}

/**
 * Scales a row-major matrix in place: (x − mean) / std per feature; a missing value (NaN)
 * becomes 0, the mean (mean imputation). Without normalisation, missing values become 0.
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
