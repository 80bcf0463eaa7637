import { describe, expect, it } from 'vitest';
import { isFedlhsError } from './errors.js';
import { manifestHash } from './manifest.js';
import { SERIES_VARYING, deriveSeriesRun, nextSeriesRunAt, seriesRunChanges, seriesTemplateHash, validateSeriesTemplate } from './series.js';

type Json = Record<string, unknown>;

/** A cohort study template (no name): two features, a 365-day label horizon. */
function study(): Json {
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: 3,
    clients: { min: 2, max: 4, quorum: 2 },
    deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: {
      featureSpec: 'cohort/v1',
      cohort: {
        index: { classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' }, eligibility: { minAge: 18, maxAge: 90 }, lookbackDays: 365,
        features: [{ name: 'age', type: 'age' }, { name: 'female', type: 'sex', value: 'female' }],
        label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 365 },
      },
    },
    aggregation: { strategy: 'fedavg' },
    seed: 7,
  };
}

const template = (over: Json = {}): Json => ({
  apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 't2d-yearly',
  schedule: { type: 'cron', expression: '0 3 1 1 *' }, window: { days: 1461, labelLagDays: 30 }, start: 'champion', study: study(), ...over,
});

const at = (iso: string): number => Date.parse(iso);

describe('study series', () => {
  it('derives each run deterministically: named after the series, its run and template recorded, the window ending a horizon and a lag before the run', () => {
    const t = validateSeriesTemplate(template());
    const run = deriveSeriesRun(t, 2, at('2027-01-01T03:00:00Z'));
    expect(run.name).toBe('t2d-yearly');
    expect(run.series).toEqual({ name: 't2d-yearly', run: 2, templateSha256: seriesTemplateHash(t) });
    // 2027-01-01 − 30 days lag = 2026-12-02, − 365 days horizon = 2025-12-02; a 1461-day window ending there starts 2021-12-03.
    expect(run.data.cohort!.index).toMatchObject({ from: '2021-12-03', to: '2025-12-02' });
    expect(run.seed).toBe(7);
    expect(manifestHash(deriveSeriesRun(t, 2, at('2027-01-01T03:00:00Z')))).toBe(manifestHash(run));
    expect(manifestHash(deriveSeriesRun(t, 3, at('2028-01-01T03:00:00Z')))).not.toBe(manifestHash(run));
  });

  it('lets an approval of the template cover every run that differs only in the varying fields', () => {
    const t = validateSeriesTemplate(template());
    expect(SERIES_VARYING).not.toContain('seed');
    // The clinic checks at its own time, which may be a little later than when the run was due.
    expect(seriesRunChanges(t, deriveSeriesRun(t, 1, at('2026-01-01T03:00:00Z')), at('2026-01-02T00:00:00Z'))).toEqual([]);
    expect(seriesRunChanges(t, deriveSeriesRun(t, 5, at('2030-01-01T03:00:00Z')), at('2030-01-01T04:00:00Z'))).toEqual([]);
    const champion = { version: 3, weightsSha256: 'c'.repeat(64) };
    expect(seriesRunChanges(t, deriveSeriesRun(t, 4, at('2029-01-01T03:00:00Z'), champion), at('2029-01-01T04:00:00Z'))).toEqual([]);
  });

  it('lets the window move only as the window rule says: its length, and outcomes complete by the clinic\'s today', () => {
    const t = validateSeriesTemplate(template());
    const now = at('2027-01-02T00:00:00Z');
    const run = deriveSeriesRun(t, 2, at('2027-01-01T03:00:00Z'));
    const index = run.data.cohort!.index;
    const withIndex = (from: string, to: string) => ({ ...run, data: { ...run.data, cohort: { ...run.data.cohort!, index: { ...index, from, to } } } });
    // A window reaching back decades (a longer span) or into outcomes not yet known is not covered.
    expect(seriesRunChanges(t, withIndex('1900-01-01', index.to), now).map((c) => c.path)).toEqual(['data.cohort.index.from']);
    expect(seriesRunChanges(t, withIndex('2022-12-03', '2026-12-02'), now).map((c) => c.path)).toEqual(['data.cohort.index.to']);
    // A template without a window: the index dates are fixed like any other field.
    const fixed = validateSeriesTemplate(template({ window: undefined }));
    const fixedRun = deriveSeriesRun(fixed, 2, at('2027-01-01T03:00:00Z'));
    const moved = { ...fixedRun, data: { ...fixedRun.data, cohort: { ...fixedRun.data.cohort!, index: { ...fixedRun.data.cohort!.index, from: '2020-01-01', to: '2026-01-01' } } } };
    expect(seriesRunChanges(fixed, moved, now).map((c) => c.path)).toEqual(['data.cohort.index.from', 'data.cohort.index.to']);
  });

  it('lets initial weights be only the named champion\'s (start champion), and none without a champion', () => {
    const t = validateSeriesTemplate(template());
    const now = at('2029-01-01T04:00:00Z');
    const champion = { version: 3, weightsSha256: 'c'.repeat(64) };
    const run = deriveSeriesRun(t, 4, at('2029-01-01T03:00:00Z'), champion);
    const other = { ...run, model: { ...run.model, initialWeights: { release: { studyName: 'another-study', version: 4, weightsSha256: 'd'.repeat(64) } } } };
    expect(seriesRunChanges(t, other, now).map((c) => c.path)).toEqual(['model.initialWeights']);
    const noChampion = deriveSeriesRun(t, 4, at('2029-01-01T03:00:00Z'));
    const sneaked = { ...noChampion, model: { ...noChampion.model, initialWeights: run.model.initialWeights } };
    expect(seriesRunChanges(t, sneaked, now).map((c) => c.path)).toEqual(['model.initialWeights']);
  });

  it('names what a run changes beyond the varying fields, and treats a run of another template as all change', () => {
    const approved = validateSeriesTemplate(template());
    const run = deriveSeriesRun(approved, 2, at('2027-01-01T03:00:00Z'));
    const tampered = { ...run, rounds: 9, data: { ...run.data, holdoutFraction: 0.5 } };
    const now = at('2027-01-01T04:00:00Z');
    expect(seriesRunChanges(approved, tampered, now).map((c) => c.path)).toEqual(['data.holdoutFraction', 'rounds']);
    const other = validateSeriesTemplate(template({ description: 'changed' }));
    expect(seriesRunChanges(approved, deriveSeriesRun(other, 2, at('2027-01-01T03:00:00Z')), now).map((c) => c.path)).toEqual(['series']);
    const single = { ...run, series: undefined };
    expect(seriesRunChanges(approved, single, now).map((c) => c.path)).toEqual(['series']);
  });

  it('schedules by cron in a time zone, from an injected time', () => {
    const t = validateSeriesTemplate(template());
    expect(new Date(nextSeriesRunAt(t, at('2026-06-01T00:00:00Z'))!).toISOString()).toBe('2027-01-01T03:00:00.000Z');
    const oslo = validateSeriesTemplate(template({ schedule: { type: 'cron', expression: '0 3 1 1 *', timezone: 'Europe/Oslo' } }));
    expect(new Date(nextSeriesRunAt(oslo, at('2026-06-01T00:00:00Z'))!).toISOString()).toBe('2027-01-01T02:00:00.000Z');
    const data = validateSeriesTemplate(template({ schedule: { type: 'data', newLabelled: 500 } }));
    expect(nextSeriesRunAt(data, at('2026-06-01T00:00:00Z'))).toBeUndefined();
  });

  it('refuses a bad template with MANIFEST_INVALID naming the field', () => {
    const refusal = (value: Json): string => {
      try {
        validateSeriesTemplate(value);
      } catch (err) {
        if (isFedlhsError(err, 'MANIFEST_INVALID')) return err.message;
        throw err;
      }
      throw new Error('accepted');
    };
    expect(refusal(template({ schedule: { type: 'cron', expression: 'every tuesday' } }))).toMatch(/^invalid study series: schedule\.expression: is not a cron expression/);
    expect(refusal(template({ study: { ...study(), name: 'other' } }))).toContain('study.name: must be left out');
    expect(refusal(template({ study: { ...study(), rounds: 0 } }))).toContain('invalid study manifest');
    const flat = study();
    flat['data'] = { featureSpec: 'flat-table/v1', features: ['a', 'b'], label: 'y' };
    expect(refusal(template({ study: flat }))).toContain('window: is only for cohort/v1 studies');
    expect(() => validateSeriesTemplate(template({ study: flat, window: undefined }))).not.toThrow();
  });
});
