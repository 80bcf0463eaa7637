import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import type { ClinicalEvent } from './events.js';
import { ALL, collect, day, exportDir } from './test-support.js';
import { openOmopCsv } from './omop.js';

const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'omop');

const visit = (patientId: string, iso: string, code: string, encounterClass?: string): ClinicalEvent => ({
  kind: 'encounter',
  patientId,
  day: day(iso),
  system: 'OMOP',
  code,
  encounterClass,
});
const VISITS = [
  visit('1', '2019-03-04', '9202', 'ambulatory'),
  visit('2', '2019-05-10', '9202', 'ambulatory'),
  visit('3', '2020-01-15', '9203', 'emergency'),
  visit('4', '2020-07-01', '9201', 'inpatient'),
  visit('1', '2021-01-01', '581476', 'home'),
];

const condition = (patientId: string, iso: string, system: ClinicalEvent['system'], code: string): ClinicalEvent => ({ kind: 'condition', patientId, day: day(iso), system, code });
const measurement = (patientId: string, iso: string, system: ClinicalEvent['system'], code: string, rest: Partial<ClinicalEvent>): ClinicalEvent => ({
  kind: 'observation',
  patientId,
  day: day(iso),
  system,
  code,
  ...rest,
});

describe('openOmopCsv with source codes (default)', () => {
  it('reads persons with birth from birth_datetime or year/month/day, gender concepts and death.csv', async () => {
    const source = openOmopCsv(fixture);
    expect(source.format).toBe('omop-csv');
    expect(await collect(source.patients())).toEqual([
      { id: '1', birthDay: day('1985-06-15'), sex: 'female', race: 'white', ethnicity: 'nonhispanic' },
      { id: '2', birthDay: day('1950-01-20'), sex: 'male', deathDay: day('2020-11-02'), race: 'black', ethnicity: 'nonhispanic' },
      { id: '3', birthDay: day('2012-09-01'), sex: 'female', race: 'asian', ethnicity: 'hispanic' },
      { id: '4', birthDay: day('1972-03-10'), sex: 'male', race: 'white', ethnicity: 'nonhispanic' },
    ]);
    expect(source.skipped).toEqual({ 'person.csv: missing year_of_birth': 1 });
  });

  it('reads visits, conditions and measurements (tab-separated) with inferred systems', async () => {
    const source = openOmopCsv(fixture, { codes: 'source' });
    expect(await collect(source.events(ALL))).toEqual([
      ...VISITS,
      condition('1', '2019-03-04', 'SNOMED', '444814009'),
      condition('2', '2010-02-11', 'SNOMED', '44054006'),
      condition('4', '2015-08-20', 'OTHER', 'I10'),
      condition('9', '2018-01-01', 'SNOMED', '40055000'),
      measurement('1', '2019-03-04', 'LOINC', '2339-0', { value: 95, unit: 'mg/dL' }),
      measurement('3', '2020-01-15', 'LOINC', '2339-0', { value: 5.4, unit: 'mmol/L' }),
      measurement('2', '2019-05-10', 'LOINC', '8480-6', { value: 128, unit: 'mm[Hg]' }),
      measurement('2', '2019-05-10', 'LOINC', '8462-4', { value: 82, unit: 'mm[Hg]' }),
      measurement('4', '2020-07-01', 'LOINC', '29463-7', { value: 82.1, unit: 'kg' }),
      measurement('2', '2019-05-10', 'OTHER', 'HBA1C', { value: 7.1, unit: '%' }),
      measurement('3', '2020-01-15', 'LOINC', '94531-1', { valueCode: '260385009' }),
      measurement('1', '2019-03-04', 'LOINC', '8310-5', { value: 37.1, unit: 'omop:586323' }),
    ]);
    expect(source.skipped).toEqual({
      'condition_occurrence.csv: missing condition_source_value': 1,
      'condition_occurrence.csv: missing condition_start_date': 1,
      'measurement.csv: missing measurement_date': 1,
      'measurement.csv: non-numeric value_as_number': 1,
      'visit_occurrence.csv: missing visit_start_date': 1,
    });
  });
});

describe('openOmopCsv with concept codes', () => {
  it('uses concept ids under system OMOP and skips unmapped concepts', async () => {
    const source = openOmopCsv(fixture, { codes: 'concept' });
    const events = await collect(source.events(new Set(['condition', 'observation'])));
    expect(events).toEqual([
      condition('1', '2019-03-04', 'OMOP', '40481087'),
      condition('2', '2010-02-11', 'OMOP', '201826'),
      condition('4', '2015-08-20', 'OMOP', '320128'),
      condition('9', '2018-01-01', 'OMOP', '257012'),
      measurement('1', '2019-03-04', 'OMOP', '3000483', { value: 95, unit: 'mg/dL' }),
      measurement('3', '2020-01-15', 'OMOP', '3000483', { value: 5.4, unit: 'mmol/L' }),
      measurement('2', '2019-05-10', 'OMOP', '3004249', { value: 128, unit: 'mm[Hg]' }),
      measurement('2', '2019-05-10', 'OMOP', '3012888', { value: 82, unit: 'mm[Hg]' }),
      measurement('4', '2020-07-01', 'OMOP', '3025315', { value: 82.1, unit: 'kg' }),
      measurement('2', '2019-05-10', 'OMOP', '3004410', { value: 7.1, unit: '%' }),
      measurement('3', '2020-01-15', 'OMOP', '706163', { valueCode: '9189' }),
      measurement('1', '2019-03-04', 'OMOP', '3020891', { value: 37.1, unit: 'omop:586323' }),
    ]);
    expect(source.skipped).toEqual({
      'condition_occurrence.csv: missing condition_start_date': 1,
      'condition_occurrence.csv: unmapped condition_concept_id': 1,
      'measurement.csv: missing measurement_date': 1,
      'measurement.csv: non-numeric value_as_number': 1,
    });
  });
});

describe('openOmopCsv formats and errors', () => {
  it('accepts tab-separated .tsv tables in any case, compact dates and date-times without offset', async () => {
    const dir = exportDir({
      'PERSON.tsv': 'PERSON_ID\tGENDER_CONCEPT_ID\tYEAR_OF_BIRTH\tBIRTH_DATETIME\n7\t8551\t1980\t19800229\n8\t8521\t1990\t\n',
      'Measurement.csv': 'person_id,measurement_date,value_as_number,measurement_source_value,unit_source_value\n7,2021-03-04 23:59:59,"1,5",abc,x\n7,2021-03-04 23:59:59,1.5,2345-7,mg/dL\n',
    });
    const source = openOmopCsv(dir);
    expect(await collect(source.patients())).toEqual([
      { id: '7', birthDay: day('1980-02-29'), sex: 'unknown' },
      { id: '8', birthDay: day('1990-01-01'), sex: 'other' },
    ]);
    expect(await collect(source.events(ALL))).toEqual([measurement('7', '2021-03-04', 'LOINC', '2345-7', { value: 1.5, unit: 'mg/dL' })]);
    expect(source.skipped).toEqual({ 'measurement.csv: non-numeric value_as_number': 1 });
  });

  it('fails naming the table when person is absent and the column when a required one is', async () => {
    const err: unknown = await collect(openOmopCsv(exportDir({ 'measurement.csv': 'person_id\n' })).patients()).catch((e: unknown) => e);
    expect(isFedlhsError(err, 'DATA_INVALID')).toBe(true);
    expect(err).toMatchObject({ details: { file: 'person.csv' } });
    expect((err as Error).message).toMatchInlineSnapshot(`"person.csv: required table not found in the OMOP export"`);
    const noSource = exportDir({ 'person.csv': 'person_id,gender_concept_id,year_of_birth\n', 'condition_occurrence.csv': 'person_id,condition_concept_id,condition_start_date\n1,201826,2020-01-01\n' });
    await expect(collect(openOmopCsv(noSource).events(ALL))).rejects.toThrowErrorMatchingInlineSnapshot(`[FedlhsError: condition_occurrence.csv: missing required column "condition_source_value"]`);
    expect(await collect(openOmopCsv(noSource, { codes: 'concept' }).events(ALL))).toEqual([condition('1', '2020-01-01', 'OMOP', '201826')]);
  });

  it('rejects an unknown codes option immediately', () => {
    expect(() => openOmopCsv(fixture, { codes: 'standard' as 'source' })).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: openOmopCsv: options.codes must be 'source' or 'concept']`);
  });
});
