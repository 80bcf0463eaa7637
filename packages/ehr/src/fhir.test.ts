import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import type { ClinicalEvent } from './events.js';
import { ALL, collect, day, exportDir } from './test-support.js';
import { openFhirBulk, resourceTypeOfFile } from './fhir.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'fhir');

const lines = (...resources: object[]): string => resources.map((r) => JSON.stringify(r)).join('\n') + '\n';

const EXPECTED_EVENTS: ClinicalEvent[] = [
  { kind: 'encounter', patientId: 'pt1', day: day('2019-03-04'), system: 'SNOMED', code: '162673000', encounterClass: 'wellness' },
  { kind: 'encounter', patientId: 'pt2', day: day('2019-05-10'), system: 'SNOMED', code: '185345009', encounterClass: 'ambulatory' },
  { kind: 'encounter', patientId: 'pt3', day: day('2020-01-15'), system: 'SNOMED', code: '50849002', encounterClass: 'emergency' },
  { kind: 'encounter', patientId: 'pt4', day: day('2020-07-01'), system: 'SNOMED', code: '32485007', encounterClass: 'inpatient' },
  { kind: 'encounter', patientId: 'pt1', day: day('2021-03-05'), system: 'OTHER', code: 'AMB', encounterClass: 'wellness' },
  { kind: 'encounter', patientId: 'pt2', day: day('2020-06-01'), system: 'OTHER', code: 'HH', encounterClass: 'home' },
  { kind: 'condition', patientId: 'pt1', day: day('2019-03-04'), system: 'SNOMED', code: '444814009' },
  { kind: 'condition', patientId: 'pt2', day: day('2010-02-11'), system: 'SNOMED', code: '44054006' },
  { kind: 'condition', patientId: 'pt4', day: day('2015-08-20'), system: 'ICD10CM', code: 'I10' },
  { kind: 'condition', patientId: 'pt9', day: day('2018-01-01'), system: 'SNOMED', code: '40055000' },
  { kind: 'observation', patientId: 'pt2', day: day('2019-05-10'), system: 'LOINC', code: '8480-6', value: 128, unit: 'mm[Hg]' },
  { kind: 'observation', patientId: 'pt2', day: day('2019-05-10'), system: 'LOINC', code: '8462-4', value: 82, unit: 'mm[Hg]' },
  { kind: 'observation', patientId: 'pt1', day: day('2019-03-04'), system: 'LOINC', code: '2339-0', value: 95, unit: 'mg/dL' },
  { kind: 'observation', patientId: 'pt3', day: day('2020-01-15'), system: 'LOINC', code: '2339-0', value: 5.4, unit: 'mmol/L' },
  { kind: 'observation', patientId: 'pt2', day: day('2019-05-10'), system: 'LOINC', code: '72166-2', valueCode: '8517006' },
  { kind: 'observation', patientId: 'pt4', day: day('2020-07-01'), system: 'LOINC', code: '39156-5', value: 27.3, unit: 'kg/m2' },
  { kind: 'observation', patientId: 'pt9', day: day('2018-01-01'), system: 'LOINC', code: '29463-7', value: 70.5, unit: 'kg' },
  { kind: 'medication', patientId: 'pt2', day: day('2010-02-11'), system: 'RXNORM', code: '860975' },
  { kind: 'medication', patientId: 'pt4', day: day('2015-08-20'), system: 'RXNORM', code: '314076' },
];

const EXPECTED_EVENT_SKIPS = {
  'Condition: entered-in-error': 1,
  'Encounter: missing period.start': 1,
  'MedicationRequest: medicationReference not supported': 1,
  'Observation: entered-in-error': 1,
  'Observation: malformed JSON line': 1,
  'Observation: missing subject': 1,
  'Observation: uncoded valueString': 1,
};

describe('openFhirBulk on a bulk export with a manifest', () => {
  it('reads patients from every Patient file listed in the manifest', async () => {
    const source = openFhirBulk(fixture);
    expect(source.format).toBe('fhir-ndjson');
    expect(await collect(source.patients())).toEqual([
      { id: 'pt1', birthDay: day('1985-06-15'), sex: 'female', race: 'White', ethnicity: 'Not Hispanic or Latino' },
      { id: 'pt2', birthDay: day('1950-01-20'), sex: 'male', deathDay: day('2020-11-02') },
      { id: 'pt3', birthDay: day('2012-09-01'), sex: 'female' },
      { id: 'pt4', birthDay: day('1972-03-10'), sex: 'male' },
    ]);
    expect(source.skipped).toEqual({ 'Patient: missing birthDate': 1 });
  });

  it('reads every kind of event and counts skipped resources by type and reason', async () => {
    const source = openFhirBulk(fixture);
    expect(await collect(source.events(ALL))).toEqual(EXPECTED_EVENTS);
    expect(source.skipped).toEqual(EXPECTED_EVENT_SKIPS);
  });

  it('turns a blood-pressure panel into exactly its systolic and diastolic components', async () => {
    const events = await collect(openFhirBulk(fixture).events(new Set(['observation'])));
    const bp = events.filter((e) => e.patientId === 'pt2' && e.valueCode === undefined);
    expect(bp).toEqual([
      { kind: 'observation', patientId: 'pt2', day: day('2019-05-10'), system: 'LOINC', code: '8480-6', value: 128, unit: 'mm[Hg]' },
      { kind: 'observation', patientId: 'pt2', day: day('2019-05-10'), system: 'LOINC', code: '8462-4', value: 82, unit: 'mm[Hg]' },
    ]);
    expect(events.some((e) => e.code === '85354-9')).toBe(false);
  });

  it('keeps both glucose units, preferring the UCUM code to the unit text', async () => {
    const events = await collect(openFhirBulk(fixture).events(new Set(['observation'])));
    expect(events.filter((e) => e.code === '2339-0').map((e) => [e.value, e.unit])).toEqual([
      [95, 'mg/dL'],
      [5.4, 'mmol/L'],
    ]);
  });

  it('does not double-count skips when events are read again', async () => {
    const source = openFhirBulk(fixture);
    await collect(source.events(new Set(['observation'])));
    await collect(source.events(ALL));
    await collect(source.events(new Set(['observation', 'condition'])));
    expect(source.skipped).toEqual(EXPECTED_EVENT_SKIPS);
  });
});

describe('openFhirBulk file discovery', () => {
  it('finds files by name when there is no manifest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-fhir-'));
    for (const name of readdirSync(fixture).filter((n) => n.endsWith('.ndjson'))) copyFileSync(join(fixture, name), join(dir, name));
    const source = openFhirBulk(dir);
    expect((await collect(source.patients())).map((p) => p.id)).toEqual(['pt1', 'pt2', 'pt3', 'pt4']);
    expect(await collect(source.events(ALL))).toEqual(EXPECTED_EVENTS);
  });

  it('names resource types from common bulk file names', () => {
    expect(resourceTypeOfFile('Patient.ndjson')).toBe('Patient');
    expect(resourceTypeOfFile('Patient.000.ndjson')).toBe('Patient');
    expect(resourceTypeOfFile('1.Observation.ndjson')).toBe('Observation');
    expect(resourceTypeOfFile('medicationrequest-2.ndjson')).toBe('MedicationRequest');
    expect(resourceTypeOfFile('Medication.ndjson')).toBeUndefined();
    expect(resourceTypeOfFile('Patient.json')).toBeUndefined();
  });

  it('follows a manifest with output names that are not resource-type names, and skips undatable deaths', async () => {
    const dir = exportDir({
      'export.json': JSON.stringify({ output: [{ type: 'Patient', url: 'https://x.example/out/a%201.ndjson' }] }),
      'a 1.ndjson': lines(
        { resourceType: 'Patient', id: 'x', birthDate: '1990', gender: 'other' },
        { resourceType: 'Patient', id: 'y', birthDate: '1990-05-05', deceasedBoolean: true },
        { resourceType: 'Patient', id: 'z', birthDate: '1990-05-05', deceasedDateTime: 'yesterday' },
      ),
      'Patient.ndjson': lines({ resourceType: 'Patient', id: 'not-listed', birthDate: '1990-01-01' }),
    });
    const source = openFhirBulk(dir);
    expect(await collect(source.patients())).toEqual([{ id: 'x', birthDay: day('1990-01-01'), sex: 'other' }]);
    expect(source.skipped).toEqual({ 'Patient: deceasedBoolean without date': 1, 'Patient: invalid deceasedDateTime (expected YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time)': 1 });
  });

  it('fails naming the file when the manifest lists a missing file or there is no Patient file', async () => {
    const listed = exportDir({ 'manifest.json': JSON.stringify({ output: [{ type: 'Patient', url: 'https://x.example/Patient.000.ndjson' }] }) });
    const err: unknown = await collect(openFhirBulk(listed).patients()).catch((e: unknown) => e);
    expect(isFedlhsError(err, 'DATA_INVALID')).toBe(true);
    expect(err).toMatchObject({ details: { file: 'manifest.json' } });
    expect((err as Error).message).toMatchInlineSnapshot(`"manifest.json: listed output file "Patient.000.ndjson" (Patient) not found"`);
    const none = exportDir({ 'Observation.ndjson': '' });
    await expect(collect(openFhirBulk(none).patients())).rejects.toThrowErrorMatchingInlineSnapshot(`[FedlhsError: no Patient file in the FHIR bulk export]`);
    const broken = exportDir({ 'manifest.json': '{"output": [' });
    await expect(collect(openFhirBulk(broken).events(ALL))).rejects.toThrowErrorMatchingInlineSnapshot(`[FedlhsError: manifest.json: not valid JSON]`);
  });
});

describe('openFhirBulk resource mapping', () => {
  it('skips planned, cancelled and entered-in-error encounters, counted by reason: they never take place, so never index a patient', async () => {
    const visit = (id: string, status: string, start: string): object => ({
      resourceType: 'Encounter', id, status, class: { code: 'AMB' }, type: [{ coding: [{ system: 'http://snomed.info/sct', code: '162673000' }] }],
      subject: { reference: 'Patient/p' }, period: { start },
    });
    const dir = exportDir({
      'Patient.ndjson': lines({ resourceType: 'Patient', id: 'p', birthDate: '1960-01-01', gender: 'female' }),
      'Encounter.ndjson': lines(
        visit('done', 'finished', '2020-01-01'), visit('now', 'in-progress', '2020-02-01'), visit('future', 'planned', '2031-01-01'),
        visit('off', 'cancelled', '2024-01-01'), visit('wrong', 'entered-in-error', '2025-01-01'), visit('arrived', 'arrived', '2020-03-01'),
      ),
    });
    const source = openFhirBulk(dir);
    const events = await collect(source.events(new Set(['encounter'])));
    expect(events.map((e) => e.day)).toEqual([day('2020-01-01'), day('2020-02-01'), day('2020-03-01')]);
    expect(source.skipped).toEqual({
      'Encounter: entered-in-error': 1, 'Encounter: status cancelled (not a visit that took place)': 1, 'Encounter: status planned (not a visit that took place)': 1,
    });
  });

  it('classifies wellness encounters by type code or text and maps class codes', async () => {
    const encounter = (id: string, klass: unknown, type?: unknown): object => ({
      resourceType: 'Encounter',
      id,
      class: klass,
      ...(type === undefined ? {} : { type }),
      subject: { reference: 'Patient/p' },
      period: { start: '2020-02-02' },
    });
    const sct = (code: string): object => [{ coding: [{ system: 'http://snomed.info/sct', code }] }];
    const dir = exportDir({
      'Patient.ndjson': '',
      'Encounter.ndjson': lines(
        encounter('a', { code: 'AMB' }, sct('410620009')),
        encounter('b', { code: 'AMB' }, sct('185349003')),
        encounter('c', { code: 'AMB' }, [{ text: 'Check up' }]),
        encounter('d', { code: 'EMER' }, sct('50849002')),
        encounter('e', [{ coding: [{ code: 'IMP' }] }], sct('32485007')),
        encounter('f', { code: 'VR' }, [{ coding: [{ system: 'urn:local', code: 'tele' }] }]),
        encounter('g', undefined),
      ),
    });
    const source = openFhirBulk(dir);
    const events = await collect(source.events(new Set(['encounter'])));
    expect(events.map((e) => [e.encounterClass, e.system, e.code])).toEqual([
      ['wellness', 'SNOMED', '410620009'],
      ['wellness', 'SNOMED', '185349003'],
      ['wellness', 'OTHER', 'AMB'],
      ['emergency', 'SNOMED', '50849002'],
      ['inpatient', 'SNOMED', '32485007'],
      ['virtual', 'OTHER', 'tele'],
    ]);
    expect(source.skipped).toEqual({ 'Encounter: missing type and class': 1 });
  });

  it('reads observation values of every supported shape and skips the rest by reason', async () => {
    const observation = (extra: object, code = '1234-5'): object => ({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code }] },
      subject: { reference: 'https://fhir.example.org/fhir/Patient/p/_history/3' },
      effectiveInstant: '2020-02-02T23:30:00-02:00',
      ...extra,
    });
    const dir = exportDir({
      'Patient.ndjson': '',
      'Observation.ndjson':
        lines(
          observation({ valueInteger: 3 }),
          observation({ valueString: 'Never smoked tobacco (finding)' }, '72166-2'),
          observation({ valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: 'LA1-1' }] } }),
          observation({ valueQuantity: { value: '7', unit: 'mmol/L' } }),
          observation({ valueBoolean: true }),
          observation({ dataAbsentReason: { text: 'asked, declined' } }),
          observation({ component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] } }] }),
          observation({ subject: { reference: 'Group/g1' }, valueInteger: 1 }),
          observation({ effectiveDateTime: '2020-13-01', valueInteger: 1 }),
          { resourceType: 'Patient', id: 'p' },
        ) + '[1, 2]\n\n',
    });
    const source = openFhirBulk(dir);
    const events = await collect(source.events(new Set(['observation'])));
    expect(events).toEqual([
      { kind: 'observation', patientId: 'p', day: day('2020-02-03'), system: 'LOINC', code: '1234-5', value: 3 },
      { kind: 'observation', patientId: 'p', day: day('2020-02-03'), system: 'LOINC', code: '72166-2', valueCode: '266919005' },
    ]);
    expect(source.skipped).toEqual({
      'Observation: component: missing value': 1,
      'Observation: invalid effectiveDateTime (expected YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time)': 1,
      'Observation: malformed JSON line': 1,
      'Observation: missing value': 1,
      'Observation: non-numeric valueQuantity': 1,
      'Observation: unexpected resourceType': 1,
      'Observation: unsupported subject reference': 1,
      'Observation: unsupported value[x]': 1,
      'Observation: valueCodeableConcept without SNOMED coding': 1,
    });
  });
});
