import { describe, expect, it } from 'vitest';
import { cohortSpecSchema, type CohortSpec } from '@fedlhs/core';
import { extractCohort } from './cohort.js';
import { isoToDay, type ClinicalEvent, type EhrSource, type EventKind, type PatientRecord } from './events.js';

function source(patients: PatientRecord[], events: ClinicalEvent[]): EhrSource {
  return {
    format: 'synthea-csv',
    skipped: {},
    async *patients() {
      yield* patients;
    },
    async *events(kinds: ReadonlySet<EventKind>) {
      for (const e of events) if (kinds.has(e.kind)) yield e;
    },
  };
}

const day = (iso: string): number => isoToDay(iso)!;
const spec: CohortSpec = cohortSpecSchema.parse({
  index: { encounterClass: 'wellness', from: '2015-01-01', to: '2018-12-31' },
  eligibility: { minAge: 18, excludeConditions: [{ system: 'SNOMED', codes: ['46635009'] }] },
  lookbackDays: 1095,
  features: [
    { name: 'age', type: 'age' },
    { name: 'female', type: 'sex', value: 'female' },
    { name: 'glucose', type: 'latest', system: 'LOINC', codes: ['2339-0', '2345-7'], unit: 'mg/dL', range: [20, 600] },
    { name: 'smoker', type: 'latest-coded', system: 'LOINC', codes: ['72166-2'], positive: ['449868002'] },
    { name: 'prediabetes', type: 'condition', system: 'SNOMED', codes: ['15777000'] },
    { name: 'visits', type: 'count', kind: 'encounter' },
  ],
  label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 1095 },
});

const enc = (patientId: string, iso: string, encounterClass = 'wellness'): ClinicalEvent => ({ kind: 'encounter', patientId, day: day(iso), system: 'SNOMED', code: '162673000', encounterClass });
const cond = (patientId: string, iso: string, code: string): ClinicalEvent => ({ kind: 'condition', patientId, day: day(iso), system: 'SNOMED', code });
const glu = (patientId: string, iso: string, value: number, unit: string, code = '2339-0'): ClinicalEvent => ({ kind: 'observation', patientId, day: day(iso), system: 'LOINC', code, value, unit });

const patients: PatientRecord[] = [
  { id: 'a', birthDay: day('1960-06-01'), sex: 'female' },
  { id: 'b', birthDay: day('1970-01-01'), sex: 'male' },
  { id: 'child', birthDay: day('2010-01-01'), sex: 'male' },
  { id: 'prior', birthDay: day('1950-01-01'), sex: 'male' },
  { id: 'excluded', birthDay: day('1950-01-01'), sex: 'female' },
  { id: 'none', birthDay: day('1950-01-01'), sex: 'female' },
];
const base: ClinicalEvent[] = [
  enc('a', '2014-05-01'), enc('a', '2016-03-01'), enc('a', '2017-03-01'),
  glu('a', '2014-05-01', 5.5, 'mmol/L'), glu('a', '2015-10-01', 110, 'mg/dL', '2345-7'),
  { kind: 'observation', patientId: 'a', day: day('2015-10-01'), system: 'LOINC', code: '72166-2', valueCode: '449868002' },
  cond('a', '2015-01-01', '15777000'), cond('a', '2018-01-01', '44054006'),
  enc('b', '2016-01-01'), glu('b', '2015-12-01', 9999, 'mg/dL'), glu('b', '2015-11-01', 7, 'g/L'),
  enc('child', '2016-01-01'),
  enc('prior', '2016-01-01'), cond('prior', '2014-01-01', '44054006'),
  enc('excluded', '2016-01-01'), cond('excluded', '2016-01-01', '46635009'),
  enc('none', '2019-06-01'),
];

describe('extractCohort', () => {
  it('computes features from events before index only, the label within the horizon, and exclusions by reason', async () => {
    const { dataset, report } = await extractCohort(source(patients, base), spec);
    expect(dataset.keys).toEqual(['a', 'b']);
    expect(Array.from(dataset.y)).toEqual([1, 0]);
    const row = (i: number) => Array.from(dataset.x.subarray(i * 6, i * 6 + 6));
    const [ageA, femaleA, glucoseA, smokerA, preA, visitsA] = row(0);
    expect(ageA).toBeCloseTo((day('2016-03-01') - day('1960-06-01')) / 365.25, 4);
    expect([femaleA, glucoseA, smokerA, preA, visitsA]).toEqual([1, 110, 1, 1, 1]);
    // b: glucose out of range and an unconvertible unit → missing; no smoking record → missing.
    const rb = row(1);
    expect(rb.slice(1)).toEqual([0, NaN, NaN, 0, 0]);
    expect(report).toMatchObject({
      patients: 6, eligible: 2, positives: 1,
      excluded: { 'age outside eligibility': 1, 'outcome on or before index': 1, 'excluded condition on or before index': 1, 'no index encounter in window': 1 },
    });
    expect(report.features.find((f) => f.name === 'glucose')).toEqual({ name: 'glucose', missing: 1, outOfRange: 1, unitMismatch: 1, converted: { 'mmol/L→mg/dL': 1 } });
  });

  it('converts units to the feature unit', async () => {
    const events = [enc('b', '2016-01-01'), glu('b', '2015-12-01', 6, 'mmol/L')];
    const { dataset, report } = await extractCohort(source([patients[1]!], events), spec);
    expect(dataset.x[2]).toBeCloseTo(6 * 18.016, 3);
    expect(report.features[2]!.converted).toEqual({ 'mmol/L→mg/dL': 1 });
  });

  it('leakage guard: values dated on or after the index day cannot change any feature', async () => {
    const clean = await extractCohort(source(patients, base), spec);
    const leaky = [
      ...base,
      glu('a', '2016-03-01', 300, 'mg/dL'), // on the index day
      glu('a', '2017-01-01', 400, 'mg/dL'), // after it
      { kind: 'observation' as const, patientId: 'a', day: day('2016-03-01'), system: 'LOINC' as const, code: '72166-2', valueCode: '266919005' },
      cond('a', '2016-03-01', '15777000'),
      cond('b', '2016-06-01', '15777000'),
      enc('b', '2016-02-01', 'ambulatory'),
    ];
    const withPostIndex = await extractCohort(source(patients, leaky), spec);
    expect(Array.from(withPostIndex.dataset.x)).toEqual(Array.from(clean.dataset.x));
    expect(Array.from(withPostIndex.dataset.y)).toEqual(Array.from(clean.dataset.y));
  });
});
