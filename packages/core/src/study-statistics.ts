import { FedlhsError } from './errors.js';
import type { StudyManifest } from './manifest.js';
import { studyFeatureNames } from './manifest.js';
import type { ClinicStats, FeatureDomain, FeatureStats, HistogramRange, NormalizationOptions } from './statistics.js';

/**
 * Federated statistics as a study declares them: each feature's domain and histogram range,
 * the checks every clinic's report must pass, and the manifest's normalisation fallback.
 * The coordinator validates with these; the agent computes its histograms with the same ranges.
 */

/** Bins of the histogram of a feature with a declared continuous range (and of age). */
export const HISTOGRAM_BINS = 20;

/** Histogram ranges of a study's features: declared 'latest' ranges, age over [0, 100], 0/1 features over [0, 1]; none for counts and flat tables. */
export function histogramRanges(manifest: Pick<StudyManifest, 'data'>): (HistogramRange | undefined)[] {
  const cohort = manifest.data.cohort;
  if (cohort === undefined) return [];
  return cohort.features.map((f) => {
    switch (f.type) {
      case 'latest':
        return { min: f.range[0], max: f.range[1], bins: HISTOGRAM_BINS };
      case 'age':
        return { min: 0, max: 100, bins: HISTOGRAM_BINS };
      case 'count':
        return undefined;
      default:
        return { min: 0, max: 1, bins: 2 };
    }
  });
}

/** Each feature's declared domain (see FeatureDomain); undefined for flat-table features. */
export function featureDomains(manifest: Pick<StudyManifest, 'data'>): (FeatureDomain | undefined)[] {
  const cohort = manifest.data.cohort;
  if (cohort === undefined) return studyFeatureNames(manifest).map(() => undefined);
  return cohort.features.map((f): FeatureDomain => {
    switch (f.type) {
      case 'latest':
        return { kind: 'range', min: f.range[0], max: f.range[1] };
      case 'age':
        return { kind: 'range', min: cohort.eligibility.minAge, max: cohort.eligibility.maxAge };
      case 'count':
        return { kind: 'count' };
      default:
        return { kind: 'binary' };
    }
  });
}

/** normalizationFrom options for a study: its declared fallback (default 'fail') and feature domains. */
export function studyNormalizationOptions(manifest: Pick<StudyManifest, 'data'>): NormalizationOptions {
  return { fallback: manifest.data.normalizationFallback ?? 'fail', domains: featureDomains(manifest) };
}

/** What a study expects of every statistics report. */
export interface StatisticsExpectations {
  minCellCount: number;
  features: { name: string; domain: FeatureDomain | undefined; histogram: HistogramRange | undefined }[];
}

export function statisticsExpectations(manifest: StudyManifest): StatisticsExpectations {
  const domains = featureDomains(manifest);
  const ranges = histogramRanges(manifest);
  return {
    minCellCount: manifest.data.minCellCount,
    features: studyFeatureNames(manifest).map((name, j) => ({ name, domain: domains[j], histogram: ranges[j] })),
  };
}

/** Relative slack for identities between float64 sums of the same values. */
const SUM_SLACK = 1e-9;
/** Relative slack for declared bounds: agents hold values as float32. */
const F32_SLACK = 1e-6;
/** Largest float32: no value an agent holds is larger in magnitude. */
const F32_MAX = 3.4028234663852886e38;

/** A failed check inside checkReport; private, turned into INCONSISTENT_STATISTICS at its one exit. */
class Inconsistent extends Error {}

/**
 * Checks a clinic's statistics report for internal consistency and against the study's
 * declared feature domains; throws INCONSISTENT_STATISTICS (status INVALID_ARGUMENT)
 * naming the feature and the failed check. The rules (k = minCellCount):
 * - features are the study's, in order; counts are non-negative integers, sums finite;
 * - rows is 0 (then `suppressed`) or ≥ k; positives ≤ rows; with `suppressed` positives is 0,
 *   without it positives ≥ k and rows − positives ≥ k;
 * - a withheld feature (`suppressed`) carries only zeros; otherwise count ≥ k, and either
 *   `missing_suppressed` with missing 0 and count = rows − k, or count + missing = rows with
 *   missing 0 or ≥ k;
 * - |sum| ≤ count × float32 max, 0 ≤ sum of squares ≤ count × float32 max², and
 *   sum of squares ≥ sum² / count (variance ≥ 0);
 * - 0/1-looking statistics (sum = sum of squares, an integer) have ≥ k ones and ≥ k zeros;
 * - range [lo, hi]: count·lo ≤ sum ≤ count·hi, sum of squares ≤ count·max(lo², hi²),
 *   variance ≤ (hi − lo)² / 4; 0/1: sum = sum of squares, an integer in [0, count];
 *   counts: sum and sum of squares integers, sum ≥ 0, sum of squares ≥ sum;
 * - histogram length, min and max as the study implies; every cell 0 or ≥ k; cells add up to
 *   at most count, and when they add up to count the sum lies between the sums of the
 *   non-empty bins' lower and upper edges (the end bins open, to the declared range if any).
 */
export function validateClinicStats(stats: ClinicStats, expected: StatisticsExpectations): void {
  try {
    checkReport(stats, expected);
  } catch (err) {
    if (!(err instanceof Inconsistent)) throw err;
    throw new FedlhsError('INCONSISTENT_STATISTICS', `inconsistent statistics: ${err.message}`);
  }
}

function fail(message: string): never {
  throw new Inconsistent(message);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkReport(stats: ClinicStats, expected: StatisticsExpectations): void {
  const k = expected.minCellCount;
  const names = expected.features.map((f) => f.name);
  if (stats.features.length !== names.length || stats.features.some((f, j) => f.name !== names[j])) {
    fail(`features must be the study's, in order: ${names.join(', ')}`);
  }
  if (!isCount(stats.rows)) fail(`rows ${stats.rows} is not a non-negative integer`);
  if (!isCount(stats.positives)) fail(`positives ${stats.positives} is not a non-negative integer`);
  const { rows, positives } = stats;
  if (rows > 0 && rows < k) fail(`rows ${rows} is below minCellCount ${k} (it must be reported as 0)`);
  if (rows === 0 && !stats.suppressed) fail('rows 0 must be marked suppressed');
  if (positives > rows) fail(`positives ${positives} exceed rows ${rows}`);
  if (stats.suppressed) {
    if (positives !== 0) fail(`positives ${positives} must be 0 when suppressed`);
  } else if (positives < k || rows - positives < k) {
    fail(`positives ${positives} of ${rows} rows leaves a group below minCellCount ${k} but is not suppressed`);
  }
  stats.features.forEach((f, j) => {
    const e = expected.features[j]!;
    try {
      checkFeature(f, rows, k, e.domain, e.histogram);
    } catch (err) {
      if (err instanceof Inconsistent) fail(`feature ${f.name}: ${err.message}`);
      throw err;
    }
  });
}

function checkFeature(f: FeatureStats, rows: number, k: number, domain: FeatureDomain | undefined, range: HistogramRange | undefined): void {
  const { count, sum, sumOfSquares: sq, missing } = f;
  if (!isCount(count)) fail(`count ${count} is not a non-negative integer`);
  if (!isCount(missing)) fail(`missing ${missing} is not a non-negative integer`);
  if (![sum, sq, f.histogramMin, f.histogramMax].every(Number.isFinite)) fail('has a non-finite value');
  f.histogram.forEach((c, b) => {
    if (!isCount(c)) fail(`histogram cell ${b} (${c}) is not a non-negative integer`);
  });
  const bins = range?.bins ?? 0;
  if (f.histogram.length !== bins || f.histogramMin !== (range?.min ?? 0) || f.histogramMax !== (range?.max ?? 0)) {
    fail(`histogram has ${f.histogram.length} bins over [${f.histogramMin}, ${f.histogramMax}], the study implies ${bins} over [${range?.min ?? 0}, ${range?.max ?? 0}]`);
  }

  if (f.suppressed) {
    if (count !== 0 || sum !== 0 || sq !== 0 || missing !== 0 || f.missingSuppressed || f.histogram.some((c) => c !== 0)) {
      fail('is marked suppressed but carries non-zero values');
    }
    return;
  }
  if (count < k) fail(`count ${count} is below minCellCount ${k} but not marked suppressed`);
  if (f.missingSuppressed) {
    if (missing !== 0) fail(`missing ${missing} must be 0 when missing_suppressed`);
    if (count !== rows - k) fail(`count ${count} must be rows − minCellCount (${rows - k}) when missing_suppressed`);
  } else {
    if (count + missing !== rows) fail(`count ${count} + missing ${missing} does not equal rows ${rows}`);
    if (missing > 0 && missing < k) fail(`missing ${missing} is below minCellCount ${k} but not marked missing_suppressed`);
  }

  // Sums that no set of `count` float32 values could produce.
  if (Math.abs(sum) > count * F32_MAX || !(sq >= 0) || sq > count * F32_MAX * F32_MAX) {
    fail(`sum ${sum} or sum of squares ${sq} is beyond what ${count} float32 values can produce`);
  }
  const squaredMean = (sum / count) * sum;
  if (!(squaredMean <= sq + SUM_SLACK * Math.max(sq, 1))) fail(`sum of squares ${sq} is below sum²/count ${squaredMean} (negative variance)`);
  const variance = Math.max(0, sq / count - (sum / count) ** 2);

  const binaryLooking = sum === sq && Number.isInteger(sum);
  if (binaryLooking && (sum < k || count - sum < k)) {
    fail(`0/1 values with ${sum} ones and ${count - sum} zeros leave a group below minCellCount ${k} but are not suppressed`);
  }
  if (domain?.kind === 'binary') {
    if (!binaryLooking || sum < 0 || sum > count) fail(`a 0/1 feature needs sum = sum of squares, an integer from 0 to count; got sum ${sum}, sum of squares ${sq}`);
  } else if (domain?.kind === 'count') {
    if (!Number.isInteger(sum) || sum < 0 || !Number.isInteger(sq) || sq < sum) {
      fail(`a count feature needs integer sum ≥ 0 and integer sum of squares ≥ sum; got sum ${sum}, sum of squares ${sq}`);
    }
  } else if (domain?.kind === 'range') {
    const slack = F32_SLACK * Math.max(Math.abs(domain.min), Math.abs(domain.max), 1e-12);
    const lo = domain.min - slack;
    const hi = domain.max + slack;
    if (sum < count * lo || sum > count * hi) fail(`mean ${sum / count} is outside the declared range [${domain.min}, ${domain.max}]`);
    const maxSquare = Math.max(lo * lo, hi * hi);
    if (sq > count * maxSquare) fail(`mean square ${sq / count} exceeds ${maxSquare}, the largest square in the declared range [${domain.min}, ${domain.max}]`);
    if (variance > ((hi - lo) * (hi - lo)) / 4 + 1e-8 * maxSquare) {
      fail(`variance ${variance} exceeds (max − min)²/4 = ${((domain.max - domain.min) ** 2) / 4}, the most values in [${domain.min}, ${domain.max}] allow`);
    }
  }

  if (range === undefined) return;
  let total = 0;
  f.histogram.forEach((c, b) => {
    if (c > 0 && c < k) fail(`histogram cell ${b} holds ${c}, below minCellCount ${k}`);
    total += c;
  });
  if (total > count) fail(`histogram cells add up to ${total}, more than count ${count}`);
  if (total === count && count > 0) {
    // Every value is in a known bin: the sum lies between the bins' edges (end bins open).
    const width = (range.max - range.min) / range.bins;
    const last = range.bins - 1;
    const floor = domain?.kind === 'range' ? Math.min(range.min, domain.min) : domain?.kind === 'binary' ? 0 : domain?.kind === 'count' ? Math.min(range.min, 0) : -Infinity;
    const ceiling = domain?.kind === 'range' ? Math.max(range.max, domain.max) : domain?.kind === 'binary' ? 1 : Infinity;
    let low = 0;
    let high = 0;
    f.histogram.forEach((c, b) => {
      if (c === 0) return;
      low += c * (b === 0 ? floor : range.min + b * width);
      high += c * (b === last ? ceiling : range.min + (b + 1) * width);
    });
    const slack = F32_SLACK * count * Math.max(Math.abs(range.min), Math.abs(range.max), width) + SUM_SLACK * Math.abs(sum);
    if (sum < low - slack || sum > high + slack) {
      fail(`mean ${sum / count} is outside the span of the non-empty histogram bins [${low / count}, ${high / count}]`);
    }
  }
}
