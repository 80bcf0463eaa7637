import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { validateManifest, type StudyManifest } from './manifest.js';
import { mulberry32 } from './random.js';
import { applyNormalization, combineStats, computeClinicStats, normalizationFrom, type ClinicStats, type FeatureStats } from './statistics.js';
import { featureDomains, histogramRanges, statisticsExpectations, studyNormalizationOptions, validateClinicStats } from './study-statistics.js';

/** A cohort study: age, bmi (latest, [10, 80]), female (0/1), visits (count); k = 10. */
function cohortManifest(data: Record<string, unknown> = {}): StudyManifest {
  return validateManifest({
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: 'checks',
    model: {
      format: 'tfjs-layers',
      topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 4] } }] } },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 1,
    clients: { min: 1, max: 3, quorum: 1 },
    deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: {
      featureSpec: 'cohort/v1',
      cohort: {
        index: { encounterClass: 'wellness', from: '2015-01-01', to: '2018-12-31' },
        eligibility: { minAge: 18, maxAge: 90 },
        lookbackDays: 365,
        features: [
          { name: 'age', type: 'age' },
          { name: 'bmi', type: 'latest', system: 'LOINC', codes: ['39156-5'], unit: 'kg/m2', range: [10, 80] },
          { name: 'female', type: 'sex', value: 'female' },
          { name: 'visits', type: 'count', kind: 'encounter' },
        ],
        label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 365 },
      },
      normalization: 'federated-zscore',
      ...data,
    },
    aggregation: { strategy: 'fedavg' },
  });
}

const manifest = cohortManifest();
const expected = statisticsExpectations(manifest);
const names = ['age', 'bmi', 'female', 'visits'];

/** An honest clinic: 400 rows, ages 20-80, bmi with `bmiMissing` missing values. */
function honest(seed: number, rows = 400, bmiMissing = 3, ageShift = 0): ClinicStats {
  const r = mulberry32(seed);
  const x = new Float32Array(rows * 4);
  for (let i = 0; i < rows; i++) {
    x.set([20 + ageShift + 60 * r(), i < bmiMissing ? NaN : 18 + 20 * r(), r() < 0.5 ? 1 : 0, Math.floor(6 * r())], i * 4);
  }
  const y = Float32Array.from({ length: rows }, () => (r() < 0.3 ? 1 : 0));
  return computeClinicStats(x, y, names, manifest.data.minCellCount, histogramRanges(manifest), { seed });
}

function rejection(stats: ClinicStats): FedlhsError {
  try {
    validateClinicStats(stats, expected);
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected the report to be rejected');
}

const withFeature = (s: ClinicStats, name: string, change: Partial<FeatureStats>): ClinicStats => ({
  ...s,
  features: s.features.map((f) => (f.name === name ? { ...f, ...change } : f)),
});

describe('what a study declares', () => {
  it('gives each feature its domain and histogram range', () => {
    expect(featureDomains(manifest)).toEqual([{ kind: 'range', min: 18, max: 90 }, { kind: 'range', min: 10, max: 80 }, { kind: 'binary' }, { kind: 'count' }]);
    expect(histogramRanges(manifest)).toEqual([{ min: 0, max: 100, bins: 20 }, { min: 10, max: 80, bins: 20 }, { min: 0, max: 1, bins: 2 }, undefined]);
    expect(studyNormalizationOptions(manifest).fallback).toBe('fail');
    expect(studyNormalizationOptions(cohortManifest({ normalizationFallback: 'range' })).fallback).toBe('range');
  });
});

describe('validateClinicStats', () => {
  const good = honest(1);

  it('accepts honest reports, with small cells withheld as the agent does', () => {
    expect(good.features[1]).toMatchObject({ missingSuppressed: true, count: 390 });
    expect(() => validateClinicStats(good, expected)).not.toThrow();
    for (const seed of [2, 3, 4]) expect(() => validateClinicStats(honest(seed, 150 + seed * 50, seed * 4), expected)).not.toThrow();
    // A clinic so small that everything is withheld is consistent too.
    expect(() => validateClinicStats(honest(5, 8), expected)).not.toThrow();
    expect(honest(5, 8)).toMatchObject({ rows: 0, suppressed: true });
    // Flat-table features: internal consistency only.
    const flat = { minCellCount: 10, features: [{ name: 'x1', domain: undefined, histogram: undefined }] };
    const x = Float32Array.from({ length: 50 }, (_, i) => 1e6 * Math.sin(i));
    expect(() => validateClinicStats(computeClinicStats(x, Float32Array.from({ length: 50 }, (_, i) => i % 2), ['x1'], 10), flat)).not.toThrow();
  });

  it('rejects with INCONSISTENT_STATISTICS (closing the task), naming the check', () => {
    const err = rejection({ ...good, positives: good.rows + 1 });
    expect([err.code, err.status, err.isRejection, err.closesTask]).toEqual(['INCONSISTENT_STATISTICS', 'INVALID_ARGUMENT', true, true]);
    expect(err.message).toMatchInlineSnapshot(`"inconsistent statistics: positives 401 exceed rows 400"`);
  });

  const bmi = good.features[1]!;
  const age = good.features[0]!;
  const visits = good.features[3]!;
  const cases: [string, ClinicStats, RegExp][] = [
    ['feature list', { ...good, features: [good.features[1]!, good.features[0]!, ...good.features.slice(2)] }, /features must be the study's, in order: age, bmi, female, visits/],
    ['rows not an integer', { ...good, rows: 400.5 }, /rows 400\.5 is not a non-negative integer/],
    ['rows below k', { ...good, rows: 7, positives: 0, suppressed: true }, /rows 7 is below minCellCount 10/],
    ['rows 0 not suppressed', { ...honest(5, 8), suppressed: false }, /rows 0 must be marked suppressed/],
    ['positives above rows', { ...good, positives: 900 }, /positives 900 exceed rows 400/],
    ['small positives not suppressed', { ...good, positives: 4 }, /positives 4 of 400 rows leaves a group below minCellCount 10 but is not suppressed/],
    ['suppressed positives not 0', { ...good, suppressed: true }, /positives \d+ must be 0 when suppressed/],
    ['count not an integer', withFeature(good, 'age', { count: -1 }), /feature age: count -1 is not a non-negative integer/],
    ['non-finite', withFeature(good, 'age', { sum: Number.NaN }), /feature age: has a non-finite value/],
    ['small count not suppressed', withFeature(good, 'bmi', { count: 6, missing: 394, missingSuppressed: false }), /feature bmi: count 6 is below minCellCount 10 but not marked suppressed/],
    ['suppressed with values', withFeature(good, 'bmi', { suppressed: true }), /feature bmi: is marked suppressed but carries non-zero values/],
    ['count + missing ≠ rows', withFeature(good, 'age', { count: 390 }), /feature age: count 390 \+ missing 0 does not equal rows 400/],
    ['small missing not marked', withFeature(good, 'bmi', { count: 397, missing: 3, missingSuppressed: false }), /feature bmi: missing 3 is below minCellCount 10 but not marked missing_suppressed/],
    ['missing_suppressed count', withFeature(good, 'bmi', { count: 397 }), /feature bmi: count 397 must be rows − minCellCount \(390\) when missing_suppressed/],
    ['missing_suppressed missing', withFeature(good, 'bmi', { missing: 10 }), /feature bmi: missing 10 must be 0 when missing_suppressed/],
    ['sums beyond float32 (1e300)', withFeature(good, 'age', { sum: 1e300, sumOfSquares: 1e300 }), /feature age: sum 1e\+300 or sum of squares 1e\+300 is beyond what 400 float32 values can produce/],
    ['negative variance', withFeature(good, 'age', { sumOfSquares: age.sum ** 2 / age.count - 1000 }), /feature age: sum of squares .* is below sum²\/count .* \(negative variance\)/],
    ['0/1 with few ones', withFeature(good, 'visits', { sum: 3, sumOfSquares: 3 }), /feature visits: 0\/1 values with 3 ones and 397 zeros leave a group below minCellCount 10/],
    ['mean outside the range', withFeature(good, 'bmi', { sum: 85 * bmi.count, sumOfSquares: 85 * 85 * bmi.count + bmi.count }), /feature bmi: mean 85 is outside the declared range \[10, 80\]/],
    ['mean square beyond the range', withFeature(good, 'bmi', { sum: 79 * bmi.count, sumOfSquares: 6500 * bmi.count }), /feature bmi: mean square 6500 exceeds 6400.* the largest square in the declared range \[10, 80\]/],
    ['variance beyond the range', withFeature(good, 'bmi', { sum: 45 * bmi.count, sumOfSquares: (45 * 45 + 1300) * bmi.count }), /feature bmi: variance 1300.* exceeds \(max − min\)²\/4 = 1225/],
    ['0/1 not binary', withFeature(good, 'female', { sum: 200.5 }), /feature female: a 0\/1 feature needs sum = sum of squares, an integer from 0 to count/],
    ['count not integer', withFeature(good, 'visits', { sum: visits.sum + 0.5 }), /feature visits: a count feature needs integer sum ≥ 0 and integer sum of squares ≥ sum/],
    ['count sum of squares below sum', withFeature(good, 'visits', { sum: 100, sumOfSquares: 50 }), /feature visits: a count feature needs integer sum ≥ 0 and integer sum of squares ≥ sum; got sum 100, sum of squares 50/],
    ['histogram shape', withFeature(good, 'age', { histogram: age.histogram.slice(1) }), /feature age: histogram has 19 bins over \[0, 100\], the study implies 20 over \[0, 100\]/],
    ['histogram where none is declared', withFeature(good, 'visits', { histogram: [400], histogramMax: 10 }), /feature visits: histogram has 1 bins over \[0, 10\], the study implies 0 over \[0, 0\]/],
    ['small histogram cell', withFeature(good, 'age', { histogram: age.histogram.map((c, b) => (b === 3 ? 4 : c)) }), /feature age: histogram cell 3 holds 4, below minCellCount 10/],
    ['histogram above count', withFeature(good, 'age', { histogram: age.histogram.map((c, b) => (b === 5 ? c + 300 : c)) }), /feature age: histogram cells add up to \d+, more than count 400/],
    ['histogram disagrees with the sum', withFeature(good, 'age', { histogram: age.histogram.map((_, b) => (b === 4 ? 400 : 0)), sum: 60 * 400, sumOfSquares: 3700 * 400 }), /feature age: mean 60 is outside the span of the non-empty histogram bins \[20, 25\]/],
  ];

  it.each(cases)('rejects %s', (_label, stats, message) => {
    const err = rejection(stats);
    expect(err.code).toBe('INCONSISTENT_STATISTICS');
    expect(err.message).toMatch(message);
  });

  it('rejects the report that set age to mean 75 / SD 1 (and multiplied the first loss by 13)', () => {
    const clinics = [honest(11), honest(12), honest(13)];
    // The rogue reports as many rows as an honest clinic, with sums chosen so that the
    // combined age has mean 75 and SD 1.
    const n = clinics.reduce((s, c) => s + c.features[0]!.count, 0) + 400;
    const sum = clinics.reduce((s, c) => s + c.features[0]!.sum, 0);
    const sq = clinics.reduce((s, c) => s + c.features[0]!.sumOfSquares, 0);
    const rogue = withFeature(honest(14), 'age', { sum: 75 * n - sum, sumOfSquares: (75 * 75 + 1) * n - sq });
    const attacked = combineStats([...clinics, rogue]).features[0]!;
    expect(attacked.mean).toBeCloseTo(75, 6);
    expect(attacked.std).toBeCloseTo(1, 4);
    const err = rejection(rogue);
    expect(err.message).toMatch(/^inconsistent statistics: feature age: sum of squares .* \(negative variance\)$/);
    expect(() => clinics.forEach((c) => validateClinicStats(c, expected))).not.toThrow();
  });

  it('rejects sum = sum of squares = 1e300, which turned every honest clinic to NaN', () => {
    const clinics = [honest(21), honest(22)];
    const rogue = withFeature(honest(23), 'bmi', { sum: 1e300, sumOfSquares: 1e300 });
    const broken = normalizationFrom(combineStats([...clinics, rogue]));
    const scaled = applyNormalization(Float32Array.from([50, 25, 1, 2]), names, broken);
    expect(Number.isFinite(scaled[1]!)).toBe(false);
    expect(rejection(rogue).message).toMatch(/feature bmi: sum 1e\+300 or sum of squares 1e\+300 is beyond what 390 float32 values can produce/);
  });
});
