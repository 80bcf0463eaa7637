// Export shapes real sites produce that our own generator does not: FHIR bulk exports laid out
// as the specification allows, Latin-1 bytes, archives, OMOP observation and drug tables.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFhirBulk } from './fhir.js';
import { openOmopCsv } from './omop.js';
import { openSyntheaCsv } from './synthea.js';
import { ALL, collect, day, exportDir } from './test-support.js';

const patient = (id: string, extra = ''): string => `{"resourceType":"Patient","id":"${id}","gender":"female","birthDate":"1970-01-01"${extra}}`;
const condition = (id: string, patientId: string): string =>
  `{"resourceType":"Condition","id":"${id}","subject":{"reference":"Patient/${patientId}"},"onsetDateTime":"2016-01-01","code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]}}`;
const encounter = (patientId: string): string =>
  `{"resourceType":"Encounter","id":"e-${patientId}","class":{"code":"AMB"},"subject":{"reference":"Patient/${patientId}"},"period":{"start":"2016-01-01"}}`;

describe('FHIR bulk exports as the specification lays them out', () => {
  it('reads several numbered files per type named in the manifest, and lists types it does not read', async () => {
    const dir = exportDir({
      'manifest.json': JSON.stringify({
        transactionTime: '2024-01-01T00:00:00Z',
        output: [
          { type: 'Patient', url: 'https://fhir.example/bulk/abc/1.ndjson' },
          { type: 'Patient', url: 'https://fhir.example/bulk/abc/2.ndjson' },
          { type: 'Condition', url: 'https://fhir.example/bulk/abc/3.ndjson' },
          { type: 'Procedure', url: 'https://fhir.example/bulk/abc/4.ndjson' },
        ],
        error: [],
      }),
      '1.ndjson': `${patient('p1')}\n`,
      '2.ndjson': `${patient('p2')}\n`,
      '3.ndjson': `${condition('c1', 'p2')}\n`,
      '4.ndjson': '{"resourceType":"Procedure","id":"x"}\n',
    });
    const source = openFhirBulk(dir);
    expect((await collect(source.patients())).map((p) => p.id)).toEqual(['p1', 'p2']);
    expect(await collect(source.events(ALL))).toEqual([{ kind: 'condition', patientId: 'p2', day: day('2016-01-01'), system: 'SNOMED', code: '44054006' }]);
    expect(source.skipped).toEqual({});
    const inventory = await source.inventory();
    expect(inventory.files).toEqual({ encounter: [], condition: ['3.ndjson'], observation: [], medication: [] });
    expect(inventory.unread).toEqual(['4.ndjson (Procedure resources)']);
  });

  it('without a manifest, reads numbered files by type name and takes each line’s resourceType in files that name none', async () => {
    const dir = exportDir({
      'Patient.000.ndjson': `${patient('p1')}\n`,
      '1.Patient.ndjson': `${patient('p2')}\n`,
      'export-part-7.ndjson': `${patient('p3')}\n${encounter('p3')}\n${condition('c3', 'p3')}\n{"resourceType":"Procedure","id":"x"}\n{not json\n`,
      'Procedure.ndjson': '{"resourceType":"Procedure","id":"y"}\n',
    });
    const source = openFhirBulk(dir);
    expect((await collect(source.patients())).map((p) => p.id).sort()).toEqual(['p1', 'p2', 'p3']);
    const events = await collect(source.events(ALL));
    expect(events.map((e) => [e.kind, e.patientId])).toEqual([['encounter', 'p3'], ['condition', 'p3']]);
    expect(events[0]!.encounterClass).toBe('ambulatory');
    // The unreadable line may have been a patient: counted once, as a patient loss.
    expect(source.skipped).toEqual({ 'export-part-7.ndjson: malformed JSON line': 1 });
    expect(source.patientLosses).toEqual({ 'export-part-7.ndjson: malformed JSON line': 1 });
    const inventory = await source.inventory();
    expect(inventory.files.encounter).toEqual(['export-part-7.ndjson']);
    expect(inventory.files.observation).toEqual([]);
    expect(inventory.expected.observation).toBe('Observation resources');
    expect(inventory.unread).toEqual(['Procedure.ndjson (Procedure resources)', 'Procedure resources in export-part-7.ndjson']);
  });

  it('drops a resource with invalid UTF-8 in a field it reads, keeps one with it elsewhere, and reads Latin-1 when told', async () => {
    const dir = exportDir({});
    const bad = Buffer.from([0xe9]);
    writeFileSync(
      join(dir, 'Patient.ndjson'),
      Buffer.concat([
        Buffer.from('{"resourceType":"Patient","id":"p'), bad, Buffer.from('","gender":"male","birthDate":"1970-01-01"}\n'),
        Buffer.from('{"resourceType":"Patient","id":"p2","name":[{"family":"Jos'), bad, Buffer.from('"}],"gender":"male","birthDate":"1970-01-01"}\n'),
      ]),
    );
    const utf8 = openFhirBulk(dir);
    expect((await collect(utf8.patients())).map((p) => p.id)).toEqual(['p2']);
    expect(utf8.patientLosses).toEqual({ 'Patient: bytes not valid UTF-8 in a field read (if the export is Latin-1, set data.encoding to latin1)': 1 });
    expect(utf8.notes).toEqual({ 'Patient: bytes not valid UTF-8 in a field not read (if the export is Latin-1, set data.encoding to latin1); resource kept': 1 });
    const latin1 = openFhirBulk(dir, { encoding: 'latin1' });
    expect((await collect(latin1.patients())).map((p) => p.id)).toEqual(['pé', 'p2']);
    expect(latin1.skipped).toEqual({});
  });
});

describe('export paths that are not an export directory', () => {
  it('says a zip archive must be unpacked first, and that a plain file is not a directory', async () => {
    const dir = exportDir({});
    const zip = join(dir, 'export.zip');
    writeFileSync(zip, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(20)]));
    for (const open of [openSyntheaCsv, openFhirBulk, openOmopCsv]) {
      await expect(collect(open(zip).patients())).rejects.toThrowError('"export.zip" is a zip archive: unpack it first and set data.path to the unpacked export directory');
    }
    const file = join(dir, 'patients.csv');
    writeFileSync(file, 'Id\n');
    await expect(collect(openSyntheaCsv(file).patients())).rejects.toThrowError(/"patients.csv" is a file, not an export directory/);
    await expect(collect(openSyntheaCsv(join(dir, 'nope')).patients())).rejects.toThrowError(/export directory "nope" does not exist/);
    const zipped = exportDir({});
    writeFileSync(join(zipped, 'synthea_sample_data_csv_latest.zip'), 'PK');
    await expect(collect(openSyntheaCsv(zipped).patients())).rejects.toThrowError(
      'patients.csv: required file not found in the Synthea export (the directory holds "synthea_sample_data_csv_latest.zip": unpack it first)',
    );
  });
});

describe('Synthea CSV encodings', () => {
  it('keeps a patient whose unused name column has a Latin-1 byte, drops and counts one whose id has it, and reads Latin-1 when told', async () => {
    const dir = exportDir({});
    writeFileSync(
      join(dir, 'patients.csv'),
      Buffer.concat([
        Buffer.from('Id,BIRTHDATE,GENDER,FIRST\np1,1970-01-01,F,Jos'), Buffer.from([0xe9]),
        Buffer.from('\np'), Buffer.from([0xe9]), Buffer.from(',1970-01-01,M,Ann\np3,1970-13-01,M,Bo\n'),
      ]),
    );
    const utf8 = openSyntheaCsv(dir);
    expect((await collect(utf8.patients())).map((p) => p.id)).toEqual(['p1']);
    expect(utf8.patientLosses).toEqual({
      'patients.csv: bytes not valid UTF-8 in column Id (if the export is Latin-1, set data.encoding to latin1)': 1,
      'patients.csv: invalid BIRTHDATE (expected YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time)': 1,
    });
    expect(utf8.notes).toEqual({ 'patients.csv: bytes not valid UTF-8 in a column not read (if the export is Latin-1, set data.encoding to latin1); row kept': 1 });
    const latin1 = openSyntheaCsv(dir, { encoding: 'latin1' });
    expect((await collect(latin1.patients())).map((p) => p.id)).toEqual(['p1', 'pé']);
    expect(latin1.notes).toEqual({});
  });
});

describe('OMOP observation and drug_exposure', () => {
  it('reads smoking status from OBSERVATION (SNOMED source value, or spelled out), and medications from DRUG_EXPOSURE', async () => {
    const dir = exportDir({
      'person.csv': 'person_id,gender_concept_id,year_of_birth\n1,8532,1970\n2,8507,1960\n',
      'observation.csv':
        'observation_id,person_id,observation_concept_id,observation_date,value_as_number,value_as_string,value_as_concept_id,observation_source_value,value_source_value,unit_source_value\n' +
        '1,1,4275495,2016-01-01,,,0,72166-2,449868002,\n' +
        '2,2,4275495,2016-02-01,,Never smoked tobacco,0,72166-2,,\n' +
        '3,2,0,2016-02-01,27.5,,0,39156-5,,kg/m2\n' +
        '4,2,0,2016-02-01,,free text,0,ZZZ,,\n',
      'drug_exposure.csv': 'drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_source_value\n1,1,1503297,2017-01-01,860975\n2,2,0,,860975\n',
      'procedure_occurrence.csv': 'procedure_occurrence_id,person_id\n',
    });
    const source = openOmopCsv(dir);
    expect(await collect(source.events(new Set(['observation', 'medication'])))).toEqual([
      { kind: 'observation', patientId: '1', day: day('2016-01-01'), system: 'LOINC', code: '72166-2', valueCode: '449868002' },
      { kind: 'observation', patientId: '2', day: day('2016-02-01'), system: 'LOINC', code: '72166-2', valueCode: '266919005' },
      { kind: 'observation', patientId: '2', day: day('2016-02-01'), system: 'LOINC', code: '39156-5', value: 27.5, unit: 'kg/m2' },
      { kind: 'medication', patientId: '1', day: day('2017-01-01'), system: 'RXNORM', code: '860975' },
    ]);
    expect(source.skipped).toEqual({ 'observation.csv: uncoded value': 1, 'drug_exposure.csv: missing drug_exposure_start_date': 1 });
    const inventory = await source.inventory();
    expect(inventory.files).toEqual({ encounter: [], condition: [], observation: ['observation.csv'], medication: ['drug_exposure.csv'] });
    expect(inventory.expected.observation).toBe('measurement.csv or observation.csv');
    expect(inventory.unread).toEqual(['procedure_occurrence.csv']);
  });
});
