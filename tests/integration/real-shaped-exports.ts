// Small exports shaped like real ones that our generator does not write: an OMOP CDM export
// whose visits are only outpatient/office visits, a FHIR bulk export without a manifest in
// numbered files and without Observation resources, a Synthea export with Latin-1 bytes, and
// a cohort without cases. Deterministic: patient i's data follow from i alone.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FixturePatient {
  id: string;
  birth: string;
  female: boolean;
  /** Outpatient visit dates (2015-2018, so each is in the headline study's index window). */
  visits: string[];
  /** An emergency visit in the window, for some. */
  emergency?: string | undefined;
  glucose: number;
  bmi: number;
  smoker: boolean;
  /** Type 2 diabetes onset, for cases (within 3 years after the first visit). */
  t2d?: string | undefined;
}

/** `n` patients; every `caseEvery`-th one develops type 2 diabetes (0: nobody does). */
export function fixturePatients(n: number, caseEvery: number): FixturePatient[] {
  return Array.from({ length: n }, (_, i) => {
    const year = 2015 + (i % 4);
    const month = String(1 + (i % 12)).padStart(2, '0');
    const isCase = caseEvery > 0 && i % caseEvery === 0;
    return {
      id: `p${String(i + 1).padStart(3, '0')}`,
      birth: `${1940 + (i % 45)}-0${1 + (i % 9)}-1${i % 10}`,
      female: i % 2 === 0,
      visits: [`${year}-${month}-05`, ...(i % 3 === 0 ? [`${Math.min(2018, year + 1)}-${month}-20`] : [])],
      emergency: i % 5 === 0 ? `${year}-${month}-01` : undefined,
      glucose: 85 + ((i * 7) % 50) + (isCase ? 25 : 0),
      bmi: 21 + ((i * 3) % 15) + (isCase ? 4 : 0),
      smoker: i % 4 === 1,
      t2d: isCase ? `${year + 1}-${month}-15` : undefined,
    };
  });
}

const write = (dir: string, name: string, lines: string[]): void => writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
const dayBefore = (iso: string): string => new Date(Date.parse(`${iso}T00:00:00Z`) - 30 * 86_400_000).toISOString().slice(0, 10);

/** OMOP CDM 5.4 CSV whose visits are all Outpatient (9202), Office (581477) or ER (9203) visits: no "wellness" anywhere. */
export function writeOmopOutpatientOnly(dir: string, patients: FixturePatient[]): void {
  mkdirSync(dir, { recursive: true });
  write(dir, 'person.csv', [
    'person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,birth_datetime,race_concept_id,ethnicity_concept_id,person_source_value,gender_source_value',
    ...patients.map((p, i) => {
      const [y, m, d] = p.birth.split('-');
      return `${i + 1},${p.female ? 8532 : 8507},${y},${Number(m)},${Number(d)},,8527,38003564,${p.id},${p.female ? 'F' : 'M'}`;
    }),
  ]);
  let visitId = 0;
  write(dir, 'visit_occurrence.csv', [
    'visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date,visit_type_concept_id,visit_source_value',
    ...patients.flatMap((p, i) => [
      ...p.visits.map((v, k) => `${++visitId},${i + 1},${k % 2 === 0 ? 9202 : 581477},${v},${v},32817,enc-${visitId}`),
      ...(p.emergency === undefined ? [] : [`${++visitId},${i + 1},9203,${p.emergency},${p.emergency},32817,enc-${visitId}`]),
    ]),
  ]);
  write(dir, 'condition_occurrence.csv', [
    'condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_type_concept_id,condition_source_value',
    ...patients.flatMap((p, i) => (p.t2d === undefined ? [] : [`${i + 1},${i + 1},201826,${p.t2d},32817,44054006`])),
  ]);
  write(dir, 'measurement.csv', [
    'measurement_id,person_id,measurement_concept_id,measurement_date,measurement_type_concept_id,value_as_number,unit_source_value,measurement_source_value',
    ...patients.flatMap((p, i) => [
      `${2 * i + 1},${i + 1},3004501,${dayBefore(p.visits[0]!)},32817,${p.glucose},mg/dL,2339-0`,
      `${2 * i + 2},${i + 1},3038553,${dayBefore(p.visits[0]!)},32817,${p.bmi},kg/m2,39156-5`,
    ]),
  ]);
  write(dir, 'observation.csv', [
    'observation_id,person_id,observation_concept_id,observation_date,observation_type_concept_id,value_as_string,observation_source_value,value_source_value',
    ...patients.map((p, i) => `${i + 1},${i + 1},4275495,${dayBefore(p.visits[0]!)},32817,${p.smoker ? 'Every day smoker' : 'Never smoked tobacco'},72166-2,${p.smoker ? '449868002' : '266919005'}`),
  ]);
}

/** FHIR bulk ndjson without a manifest: numbered Patient files, a numbered Encounter file, conditions in a file named by no type, no Observation resources. */
export function writeFhirNoManifestNoObservations(dir: string, patients: FixturePatient[]): void {
  mkdirSync(dir, { recursive: true });
  const half = Math.ceil(patients.length / 2);
  const patientLine = (p: FixturePatient): string => JSON.stringify({ resourceType: 'Patient', id: p.id, gender: p.female ? 'female' : 'male', birthDate: p.birth });
  write(dir, 'Patient.000.ndjson', patients.slice(0, half).map(patientLine));
  write(dir, 'Patient.001.ndjson', patients.slice(half).map(patientLine));
  write(dir, '1.Encounter.ndjson', patients.flatMap((p) => p.visits.map((v, k) => JSON.stringify({
    resourceType: 'Encounter', id: `${p.id}-${k}`, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    type: [{ coding: [{ system: 'http://snomed.info/sct', code: '185349003', display: 'Encounter for check up' }] }],
    subject: { reference: `Patient/${p.id}` }, period: { start: `${v}T09:00:00Z` },
  }))));
  write(dir, 'export-2.ndjson', patients.flatMap((p) => (p.t2d === undefined ? [] : [JSON.stringify({
    resourceType: 'Condition', id: `${p.id}-t2d`, subject: { reference: `Patient/${p.id}` }, onsetDateTime: p.t2d,
    code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
  })])));
}

/** A Synthea CSV export; with `latin1Names`, every other patient's FIRST name carries a Latin-1 byte (é). */
export function writeSynthea(dir: string, patients: FixturePatient[], options: { latin1Names?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  const rows = patients.map((p, i) => {
    const first = options.latin1Names === true && i % 2 === 0 ? Buffer.from([0x4a, 0x6f, 0x73, 0xe9]) : Buffer.from('Ann');
    return Buffer.concat([Buffer.from(`${p.id},${p.birth},,${p.female ? 'F' : 'M'},`), first, Buffer.from('\n')]);
  });
  writeFileSync(join(dir, 'patients.csv'), Buffer.concat([Buffer.from('Id,BIRTHDATE,DEATHDATE,GENDER,FIRST\n'), ...rows]));
  write(dir, 'encounters.csv', ['Id,START,PATIENT,ENCOUNTERCLASS,CODE', ...patients.flatMap((p) => p.visits.map((v, k) => `${p.id}-${k},${v}T09:00:00Z,${p.id},wellness,162673000`))]);
  write(dir, 'conditions.csv', ['START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION', ...patients.flatMap((p) => (p.t2d === undefined ? [] : [`${p.t2d},,${p.id},x,44054006,Diabetes`]))]);
  write(dir, 'observations.csv', [
    'DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,VALUE,UNITS,TYPE',
    ...patients.flatMap((p) => [`${dayBefore(p.visits[0]!)},${p.id},x,2339-0,Glucose,${p.glucose},mg/dL,numeric`, `${dayBefore(p.visits[0]!)},${p.id},x,39156-5,BMI,${p.bmi},kg/m2,numeric`]),
  ]);
}
