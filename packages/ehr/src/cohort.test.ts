import { describe, expect, it } from 'vitest';
import { cohortSpecSchema, type CohortSpec } from '@fedlhs/core';
import { extractCohort } from './cohort.js';
import { isoToDay, type ClinicalEvent, type EhrSource, type EventKind, type PatientRecord, type SkipCounts } from './events.js';

const EXPECTED = { encounter: 'encounters.csv', condition: 'conditions.csv', observation: 'observations.csv', medication: 'medications.csv' };

/** An in-memory source; `absent` kinds have no file (as an export without, say, observations.csv). */
function source(patients: PatientRecord[], events: ClinicalEvent[], options: { absent?: EventKind[]; patientLosses?: SkipCounts } = {}): EhrSource {
  const absent = new Set(options.absent ?? []);
  const kinds: EventKind[] = ['encounter', 'condition', 'observation', 'medication'];
  return {
    format: 'synthea-csv',
    skipped: { ...options.patientLosses },
    patientLosses: { ...options.patientLosses },
    notes: {},
    async *patients() {
      yield* patients;
    },
    async *events(wanted: ReadonlySet<EventKind>) {
      for (const e of events) if (wanted.has(e.kind) && !absent.has(e.kind)) yield e;
    },
    inventory: async () => ({
      files: Object.fromEntries(kinds.map((k) => [k, absent.has(k) ? [] : [EXPECTED[k]]])) as Record<EventKind, string[]>,
      expected: EXPECTED,
      unread: [],
    }),
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

  it('declares the index across vocabularies: a class group, or codes such as OMOP visit concepts', async () => {
    const omopVisit = (patientId: string, iso: string, concept: string, cls?: string): ClinicalEvent => ({ kind: 'encounter', patientId, day: day(iso), system: 'OMOP', code: concept, encounterClass: cls });
    const people = [patients[0]!, patients[1]!];
    const events = [omopVisit('a', '2016-03-01', '9202', 'ambulatory'), omopVisit('b', '2016-01-01', '9203', 'emergency'), cond('a', '2018-01-01', '44054006')];
    const wellness = await extractCohort(source(people, events), spec);
    expect(wellness.report.eligible).toBe(0);
    expect(wellness.report.indexWindowClasses).toEqual({ ambulatory: 1, emergency: 1 });
    expect(wellness.report.warnings.join('\n')).toMatch(/no patient has an index encounter \(first encounter with class wellness in 2015-01-01..2018-12-31\); encounters in the window by class: ambulatory 1, emergency 1/);
    const outpatient = cohortSpecSchema.parse({ ...spec, index: { classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' } });
    expect((await extractCohort(source(people, events), outpatient)).dataset.keys).toEqual(['a']);
    const byCode = cohortSpecSchema.parse({ ...spec, index: { codes: [{ system: 'OMOP', codes: ['9202', '581477'] }], from: '2015-01-01', to: '2018-12-31' } });
    const coded = await extractCohort(source(people, events), byCode);
    expect(coded.dataset.keys).toEqual(['a']);
    expect(Array.from(coded.dataset.y)).toEqual([1]);
    // 'outpatient' is wellness or ambulatory; neither is emergency.
    const wellnessVisit = await extractCohort(source(people, [enc('b', '2016-01-01')]), outpatient);
    expect(wellnessVisit.dataset.keys).toEqual(['b']);
  });

  it('counts events of unknown patients and reports patients lost while reading', async () => {
    const losses = { 'patients.csv: invalid BIRTHDATE (expected YYYY-MM-DD)': 1 };
    const { report } = await extractCohort(source(patients, [...base, enc('ghost', '2016-01-01'), glu('ghost', '2015-01-01', 100, 'mg/dL')], { patientLosses: losses }), spec);
    expect(report.eventsForUnknownPatients).toBe(2);
    expect(report.skipped['events for an unknown patient']).toBe(2);
    expect(report.patientLosses).toEqual(losses);
  });

  it('says plainly what the export lacks instead of only reporting 100 % missingness', async () => {
    const { report } = await extractCohort(source(patients, base, { absent: ['observation'] }), spec);
    expect(report.features.find((f) => f.name === 'glucose')!.missing).toBe(report.eligible);
    expect(report.warnings).toEqual(['no observations.csv in the export: features glucose, smoker will all be missing']);
    const noConditions = await extractCohort(source(patients, base, { absent: ['condition'] }), spec);
    expect(noConditions.report.warnings[0]).toBe(
      'no conditions.csv in the export: no patient can have the outcome, so the cohort has no cases; exclusions by condition cannot apply; feature prediabetes will all be 0',
    );
  });

  it('warns about a feature no eligible patient has, when the export has its kind of event', async () => {
    const other = cohortSpecSchema.parse({ ...spec, features: [...spec.features, { name: 'hba1c', type: 'latest', system: 'LOINC', codes: ['4548-4'], unit: '%', range: [3, 20] }] });
    const { report } = await extractCohort(source(patients, base), other);
    expect(report.warnings).toEqual(['no eligible patient has a value for hba1c: check the codes and units the study asks for against this export']);
  });
});
