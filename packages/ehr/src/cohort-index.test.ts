import { describe, expect, it } from 'vitest';
import { cohortSpecSchema, type CohortSpec } from '@fedlhs/core';
import { extractCohort } from './cohort.js';
import { isoToDay, type ClinicalEvent, type EhrSource, type EventKind, type PatientRecord } from './events.js';

// Index rules (issue 12): the study's rule, one date for everyone, each patient's latest visit.
function source(patients: PatientRecord[], events: ClinicalEvent[]): EhrSource {
  const kinds: EventKind[] = ['encounter', 'condition', 'observation', 'medication'];
  return {
    format: 'synthea-csv',
    skipped: {},
    patientLosses: {},
    notes: {},
    async *patients() {
      yield* patients;
    },
    async *events(wanted: ReadonlySet<EventKind>) {
      for (const e of events) if (wanted.has(e.kind)) yield e;
    },
    inventory: async () => ({
      files: Object.fromEntries(kinds.map((k) => [k, [`${k}s.csv`]])) as Record<EventKind, string[]>,
      expected: Object.fromEntries(kinds.map((k) => [k, `${k}s.csv`])) as Record<EventKind, string>,
      unread: [],
    }),
  };
}

const day = (iso: string): number => isoToDay(iso)!;
const spec: CohortSpec = cohortSpecSchema.parse({
  index: { encounterClass: 'wellness', from: '2015-01-01', to: '2016-12-31' },
  eligibility: { minAge: 18 },
  lookbackDays: 1095,
  features: [
    { name: 'age', type: 'age' },
    { name: 'glucose', type: 'latest', system: 'LOINC', codes: ['2345-7'], unit: 'mg/dL', range: [20, 600] },
    { name: 'visits', type: 'count', kind: 'encounter' },
  ],
  label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 1095 },
});
const enc = (patientId: string, iso: string, encounterClass = 'wellness'): ClinicalEvent => ({ kind: 'encounter', patientId, day: day(iso), system: 'SNOMED', code: '162673000', encounterClass });
const cond = (patientId: string, iso: string, code = '44054006'): ClinicalEvent => ({ kind: 'condition', patientId, day: day(iso), system: 'SNOMED', code });
const glu = (patientId: string, iso: string, value: number, unit = 'mg/dL'): ClinicalEvent => ({ kind: 'observation', patientId, day: day(iso), system: 'LOINC', code: '2345-7', value, unit });

const people: PatientRecord[] = [
  { id: 'a', birthDay: day('1960-01-01'), sex: 'female' },
  { id: 'b', birthDay: day('1970-01-01'), sex: 'male' },
  { id: 'dead', birthDay: day('1950-01-01'), sex: 'male', deathDay: day('2019-01-01') },
];
const events: ClinicalEvent[] = [
  enc('a', '2015-06-01'), glu('a', '2015-01-01', 100), enc('a', '2019-01-01', 'ambulatory'), enc('a', '2020-02-01'), glu('a', '2020-01-01', 140), enc('a', '2021-01-01', 'emergency'),
  cond('a', '2017-01-01', '15777000'),
  enc('b', '2019-05-01'), glu('b', '2019-04-01', 90), cond('b', '2020-06-01'),
  enc('dead', '2016-01-01'),
];
const col = (r: { dataset: { x: Float32Array; features: readonly string[] } }, name: string): number[] => {
  const j = r.dataset.features.indexOf(name);
  return Array.from(r.dataset.x).filter((_, i) => i % r.dataset.features.length === j);
};

describe('extractCohort index rules', () => {
  it('cohort (default): the first index encounter in the window, labels from the horizon; index days kept per row', async () => {
    const r = await extractCohort(source(people, events), spec);
    expect(r.dataset.keys).toEqual(['a', 'dead']);
    expect(r.dataset.indexDays).toEqual([day('2015-06-01'), day('2016-01-01')]);
    expect(Array.from(r.dataset.y)).toEqual([0, 0]);
    expect(r.report.excluded).toEqual({ 'no index encounter in window': 1 });
    expect(col(r, 'glucose')[0]).toBe(100);
  });

  it('latest: each patient\'s latest qualifying encounter at any date, through the same feature code', async () => {
    const r = await extractCohort(source(people, events), spec, { index: { kind: 'latest' }, labels: 'none' });
    expect(r.dataset.keys).toEqual(['a', 'b', 'dead']);
    // a's emergency visit is not an index encounter; its wellness visit of 2020 is.
    expect(r.dataset.indexDays).toEqual([day('2020-02-01'), day('2019-05-01'), day('2016-01-01')]);
    expect(col(r, 'glucose')).toEqual([140, 90, NaN]);
    expect(col(r, 'visits')).toEqual([1, 0, 0]);
    expect(Array.from(r.dataset.y).every(Number.isNaN)).toBe(true);
    expect(r.report.positives).toBe(0);
  });

  it('latest with asOf: a qualifying encounter dated after asOf is not a visit yet', async () => {
    const r = await extractCohort(source(people, events), spec, { index: { kind: 'latest', asOf: day('2019-12-31') }, labels: 'none' });
    // a's 2020 wellness visit is after asOf: its earlier one is the index; b and dead are unchanged.
    expect(r.dataset.keys).toEqual(['a', 'b', 'dead']);
    expect(r.dataset.indexDays[0]).toBeLessThan(day('2020-02-01'));
    expect(r.dataset.indexDays.slice(1)).toEqual([day('2019-05-01'), day('2016-01-01')]);
    const early = await extractCohort(source(people, events), spec, { index: { kind: 'latest', asOf: day('2010-01-01') }, labels: 'none' });
    expect(early.dataset.keys).toEqual([]);
  });

  it('latest: a patient with the outcome on or before the index day is still excluded with that reason; no encounter is named', async () => {
    const r = await extractCohort(source(people, [...events, cond('b', '2019-05-01')]), spec, { index: { kind: 'latest' }, labels: 'none' });
    expect(r.dataset.keys).toEqual(['a', 'dead']);
    expect(r.report.excluded).toEqual({ 'outcome on or before index': 1 });
    const none = await extractCohort(source([people[0]!], [enc('a', '2019-01-01', 'emergency')]), spec, { index: { kind: 'latest' } });
    expect(none.report.excluded).toEqual({ 'no index encounter': 1 });
  });

  it('date: one index day for everyone; nobody scored after their death; labels still computable', async () => {
    const r = await extractCohort(source(people, events), spec, { index: { kind: 'date', day: day('2020-03-01') } });
    expect(r.dataset.keys).toEqual(['a', 'b']);
    expect(r.report.excluded).toEqual({ 'died before index': 1 });
    expect(r.dataset.indexDays).toEqual([day('2020-03-01'), day('2020-03-01')]);
    expect(col(r, 'glucose')).toEqual([140, 90]);
    expect(col(r, 'visits')).toEqual([2, 1]);
    const early = await extractCohort(source(people, events), spec, { index: { kind: 'date', day: day('2018-01-01') } });
    expect(early.dataset.keys).toEqual(['a', 'b', 'dead']);
    expect(Array.from(early.dataset.y)).toEqual([0, 1, 0]);
  });

  it('names the units it could not convert, per feature, beside the unitMismatch count', async () => {
    const r = await extractCohort(source(people, [...events, glu('b', '2019-04-02', 5, 'mmol/mol'), glu('b', '2019-04-03', 6, 'mmol/mol')]), spec, { index: { kind: 'latest' }, labels: 'none' });
    expect(r.report.features.find((f) => f.name === 'glucose')!.unitMismatch).toBe(2);
    expect(r.unconvertedUnits).toEqual([{ feature: 'glucose', unit: 'mmol/mol', count: 2 }]);
  });
});
