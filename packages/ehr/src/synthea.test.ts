import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import type { ClinicalEvent } from './events.js';
import { ALL, collect, day, exportDir } from './test-support.js';
import { openSyntheaCsv } from './synthea.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

const PATIENTS_CSV = 'Id,BIRTHDATE,GENDER\np1,1980-01-01,F\n';

const obs = (patientId: string, iso: string, code: string, rest: Partial<ClinicalEvent>): ClinicalEvent => ({
  kind: 'observation',
  patientId,
  day: day(iso),
  system: 'LOINC',
  code,
  ...rest,
});

const EXPECTED_EVENTS: ClinicalEvent[] = [
  { kind: 'encounter', patientId: 'p1', day: day('2019-03-04'), system: 'SNOMED', code: '162673000', encounterClass: 'wellness' },
  { kind: 'encounter', patientId: 'p2', day: day('2019-05-10'), system: 'SNOMED', code: '185345009', encounterClass: 'ambulatory' },
  { kind: 'encounter', patientId: 'p3', day: day('2020-01-15'), system: 'SNOMED', code: '50849002', encounterClass: 'emergency' },
  { kind: 'encounter', patientId: 'p4', day: day('2020-07-01'), system: 'SNOMED', code: '32485007', encounterClass: 'inpatient' },
  { kind: 'condition', patientId: 'p1', day: day('2019-03-04'), system: 'SNOMED', code: '444814009' },
  { kind: 'condition', patientId: 'p2', day: day('2010-02-11'), system: 'SNOMED', code: '44054006' },
  { kind: 'condition', patientId: 'p4', day: day('2015-08-20'), system: 'SNOMED', code: '59621000' },
  { kind: 'condition', patientId: 'p9', day: day('2018-01-01'), system: 'SNOMED', code: '40055000' },
  obs('p1', '2019-03-04', '8302-2', { value: 165.2, unit: 'cm' }),
  obs('p1', '2019-03-04', '2339-0', { value: 95, unit: 'mg/dL' }),
  obs('p1', '2019-03-04', '72166-2', { valueCode: '266919005' }),
  obs('p2', '2019-05-10', '72166-2', { valueCode: '8517006' }),
  obs('p2', '2019-05-10', '8480-6', { value: 128, unit: 'mm[Hg]' }),
  obs('p2', '2019-05-10', '4548-4', { value: 7.1, unit: '%' }),
  obs('p3', '2020-01-15', '2339-0', { value: 5.4, unit: 'mmol/L' }),
  obs('p3', '2020-01-15', '94531-1', { valueCode: '260385009' }),
  obs('p4', '2020-07-01', '72166-2', { valueCode: '449868002' }),
  obs('p9', '2018-01-01', '29463-7', { value: 70.5, unit: 'kg' }),
  { kind: 'medication', patientId: 'p2', day: day('2010-02-11'), system: 'RXNORM', code: '860975' },
  { kind: 'medication', patientId: 'p4', day: day('2015-08-20'), system: 'RXNORM', code: '314076' },
];

const EXPECTED_SKIPPED = {
  'conditions.csv: invalid START (expected YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time)': 1,
  'encounters.csv: missing START': 1,
  'medications.csv: missing CODE': 1,
  'observations.csv: missing DATE': 1,
  'observations.csv: non-numeric VALUE': 1,
  'observations.csv: uncoded text VALUE': 1,
  'patients.csv: missing BIRTHDATE': 1,
};

describe('openSyntheaCsv on the current column layout (synthea-v2)', () => {
  it('reads patients with dates, sex, death and race/ethnicity', async () => {
    const source = openSyntheaCsv(join(fixtures, 'synthea-v2'));
    expect(source.format).toBe('synthea-csv');
    expect(await collect(source.patients())).toEqual([
      { id: 'p1', birthDay: day('1985-06-15'), sex: 'female', race: 'white', ethnicity: 'nonhispanic' },
      { id: 'p2', birthDay: day('1950-01-20'), sex: 'male', deathDay: day('2020-11-02'), race: 'black', ethnicity: 'nonhispanic' },
      { id: 'p3', birthDay: day('2012-09-01'), sex: 'female', race: 'asian', ethnicity: 'hispanic' },
      { id: 'p4', birthDay: day('1972-03-10'), sex: 'male', race: 'white', ethnicity: 'nonhispanic' },
    ]);
    expect(source.skipped).toEqual({ 'patients.csv: missing BIRTHDATE': 1 });
  });

  it('reads every kind of event, keeping events of unknown patients, and counts skipped rows by reason', async () => {
    const source = openSyntheaCsv(join(fixtures, 'synthea-v2'));
    expect(await collect(source.events(ALL))).toEqual(EXPECTED_EVENTS);
    await collect(source.patients());
    expect(source.skipped).toEqual(EXPECTED_SKIPPED);
  });

  it('reads only the files of the requested kinds and does not double-count a re-read', async () => {
    const source = openSyntheaCsv(join(fixtures, 'synthea-v2'));
    const observations = await collect(source.events(new Set(['observation'])));
    expect(observations).toEqual(EXPECTED_EVENTS.filter((e) => e.kind === 'observation'));
    expect(Object.keys(source.skipped).every((k) => k.startsWith('observations.csv'))).toBe(true);
    await collect(source.events(new Set(['observation'])));
    await collect(source.events(new Set(['observation', 'medication'])));
    expect(source.skipped).toEqual({
      'medications.csv: missing CODE': 1,
      'observations.csv: missing DATE': 1,
      'observations.csv: non-numeric VALUE': 1,
      'observations.csv: uncoded text VALUE': 1,
    });
  });
});

describe('openSyntheaCsv on an older layout (synthea-v1)', () => {
  it('produces the same patients, events and skips as the current layout', async () => {
    const v1 = openSyntheaCsv(join(fixtures, 'synthea-v1'));
    const v2 = openSyntheaCsv(join(fixtures, 'synthea-v2'));
    expect(await collect(v1.patients())).toEqual(await collect(v2.patients()));
    expect(await collect(v1.events(ALL))).toEqual(EXPECTED_EVENTS);
    expect(v1.skipped).toEqual(EXPECTED_SKIPPED);
  });
});

describe('openSyntheaCsv value and code handling', () => {
  it('honours a SYSTEM column per row and defaults to SNOMED without one', async () => {
    const dir = exportDir({
      'patients.csv': PATIENTS_CSV,
      'conditions.csv':
        'START,STOP,PATIENT,ENCOUNTER,SYSTEM,CODE,DESCRIPTION\n' +
        '2020-01-01,,p1,e1,http://hl7.org/fhir/sid/icd-10-cm,E11.9,x\n' +
        '2020-01-02,,p1,e1,SNOMED-CT,44054006,x\n' +
        '2020-01-03,,p1,e1,,44054006,x\n' +
        '2020-01-04,,p1,e1,urn:local:codes,X1,x\n',
    });
    const events = await collect(openSyntheaCsv(dir).events(new Set(['condition'])));
    expect(events.map((e) => [e.system, e.code])).toEqual([
      ['ICD10CM', 'E11.9'],
      ['SNOMED', '44054006'],
      ['SNOMED', '44054006'],
      ['OTHER', 'X1'],
    ]);
  });

  it('maps smoking-status texts to SNOMED and infers numeric values when there is no TYPE column', async () => {
    const dir = exportDir({
      'patients.csv': PATIENTS_CSV,
      'observations.csv':
        'date,patient,code,value,units\n' +
        '2020-01-01T23:59:59Z,p1,72166-2,Never smoker,\n' +
        '2020-01-01,p1,72166-2,Former smoker,\n' +
        '2020-01-01,p1,72166-2,Current some day smoker,\n' +
        '2020-01-01,p1,72166-2,SMOKES TOBACCO DAILY (finding),\n' +
        '2020-01-01,p1,72166-2,Tobacco smoking consumption unknown (finding),\n' +
        '2020-01-01,p1,2339-0,6.1e1,mg/dL\n' +
        '2020-01-01,p1,2339-0,,mg/dL\n' +
        '2020-01-01,p1,2339-0,0x10,mg/dL\n',
    });
    const source = openSyntheaCsv(dir);
    const events = await collect(source.events(ALL));
    expect(events.map((e) => [e.day, e.code, e.valueCode ?? e.value, e.unit])).toEqual([
      [day('2020-01-01'), '72166-2', '266919005', undefined],
      [day('2020-01-01'), '72166-2', '8517006', undefined],
      [day('2020-01-01'), '72166-2', '428041000124106', undefined],
      [day('2020-01-01'), '72166-2', '449868002', undefined],
      [day('2020-01-01'), '2339-0', 61, 'mg/dL'],
    ]);
    expect(source.skipped).toEqual({
      'observations.csv: missing VALUE': 1,
      'observations.csv: uncoded text VALUE': 1,
      'observations.csv: unmapped smoking status VALUE': 1,
    });
  });

  it('skips a patient whose death date cannot be read rather than reading them as alive', async () => {
    const dir = exportDir({ 'patients.csv': 'Id,BIRTHDATE,DEATHDATE,GENDER\np1,1980-01-01,not-a-date,M\np2,1980-01-01,,X\n' });
    const source = openSyntheaCsv(dir);
    expect(await collect(source.patients())).toEqual([{ id: 'p2', birthDay: day('1980-01-01'), sex: 'unknown' }]);
    expect(source.skipped).toEqual({ 'patients.csv: invalid DEATHDATE (expected YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time)': 1 });
  });

  it('trims cells, keeps rows with stray quotes, and reports an unclosed quote that ends the readable file', async () => {
    const dir = exportDir({
      'patients.csv': 'Id,BIRTHDATE,GENDER\np1,1980-01-01,F\n"p2"x,1980-01-01,M\n p3 , 1980-01-02 ,M\np4,1980-01-01\n"p5,1980-01-01,F\np6,1980-01-01,F\n',
    });
    const source = openSyntheaCsv(dir);
    const patients = await collect(source.patients());
    expect(patients.map((p) => [p.id, p.birthDay, p.sex])).toEqual([
      ['p1', day('1980-01-01'), 'female'],
      ['"p2"x', day('1980-01-01'), 'male'],
      ['p3', day('1980-01-02'), 'male'],
      ['p4', day('1980-01-01'), 'unknown'],
    ]);
    expect(source.skipped).toEqual({ 'patients.csv: unclosed quote, rest of file unreadable': 1 });
  });

  it('yields no events and counts nothing for absent optional files', async () => {
    const source = openSyntheaCsv(exportDir({ 'patients.csv': PATIENTS_CSV }));
    expect(await collect(source.events(ALL))).toEqual([]);
    expect(source.skipped).toEqual({});
  });
});

describe('openSyntheaCsv errors', () => {
  it('fails with DATA_INVALID naming patients.csv when it is absent', async () => {
    const source = openSyntheaCsv(exportDir({ 'observations.csv': 'DATE,PATIENT,CODE,VALUE\n' }));
    const err: unknown = await collect(source.patients()).catch((e: unknown) => e);
    expect(isFedlhsError(err, 'DATA_INVALID')).toBe(true);
    expect(err).toMatchObject({ details: { file: 'patients.csv' } });
    expect((err as Error).message).toMatchInlineSnapshot(`"patients.csv: required file not found in the Synthea export"`);
  });

  it('fails naming the file and column when a required column is missing', async () => {
    const dir = exportDir({ 'patients.csv': PATIENTS_CSV, 'encounters.csv': 'Id,PATIENT,CODE\ne1,p1,123\n' });
    const err: unknown = await collect(openSyntheaCsv(dir).events(new Set(['encounter']))).catch((e: unknown) => e);
    expect(isFedlhsError(err, 'DATA_INVALID')).toBe(true);
    expect((err as Error).message).toMatchInlineSnapshot(`"encounters.csv: missing required column "START" or "DATE""`);
    const noBirth = openSyntheaCsv(exportDir({ 'patients.csv': 'Id,GENDER\np1,F\n' }));
    await expect(collect(noBirth.patients())).rejects.toThrowErrorMatchingInlineSnapshot(`[FedlhsError: patients.csv: missing required column "BIRTHDATE"]`);
  });

  it('never puts record contents in skip reasons', async () => {
    const source = openSyntheaCsv(join(fixtures, 'synthea-v2'));
    await collect(source.patients());
    await collect(source.events(ALL));
    const reasons = Object.keys(source.skipped).join('\n');
    for (const content of ['p4', 'p5', 'abc', 'Yellow', '39156-5', '2019-02-30']) expect(reasons).not.toContain(content);
  });
});
