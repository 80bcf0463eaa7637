/**
 * The OMOP CDM v5.4 export of a small clinic against the Synthea and FHIR exports of the same
 * patients, read back with naive parsers (no field of these files needs CSV quoting).
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMOKING_FINDINGS } from './codes.js';
import { generateClinic } from './generate.js';
import { OMOP_COLUMNS, OMOP_TABLES, type OmopTable } from './omop-writer.js';
import { defaultClinics, type ClinicProfile } from './profile.js';
import type { ClinicTruth } from './truth.js';

// mmol/L, mmol/mol, glucose coded 2345-7: units must come through as the Synthea writer records them.
const profile: ClinicProfile = { ...defaultClinics()[4]!, name: 'omop-under-test', patients: 300, seed: 77 };

type Row = Record<string, string>;
let root: string;
let truth: ClinicTruth;
const omop = {} as Record<OmopTable, Row[]>;
const raw = {} as Record<OmopTable, string[][]>;
let synthea: Record<'patients' | 'encounters' | 'conditions' | 'observations', Row[]>;

async function readCsv(path: string): Promise<{ header: string[]; cells: string[][]; rows: Row[] }> {
  const lines = (await readFile(path, 'utf8')).split('\n');
  expect(lines.pop()).toBe('');
  const header = lines.shift()!.split(',');
  const cells = lines.map((l) => l.split(','));
  return { header, cells, rows: cells.map((c) => Object.fromEntries(header.map((h, i) => [h, c[i] ?? '']))) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'synth-omop-'));
  truth = await generateClinic(profile, root);
  for (const table of OMOP_TABLES) {
    const { header, cells, rows } = await readCsv(join(root, 'omop', `${table}.csv`));
    expect(header, table).toEqual(OMOP_COLUMNS[table]);
    omop[table] = rows;
    raw[table] = cells;
  }
  const s = async (f: string): Promise<Row[]> => (await readCsv(join(root, 'synthea', `${f}.csv`))).rows;
  synthea = { patients: await s('patients'), encounters: await s('encounters'), conditions: await s('conditions'), observations: await s('observations') };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const day = (iso: string): string => iso.slice(0, 10);
const sorted = (keys: string[]): string[] => [...keys].sort();

describe('the OMOP CDM v5.4 export', () => {
  it('writes exactly the tables the generator has data for, every row with the header’s column count', async () => {
    expect(sorted(await readdir(join(root, 'omop')))).toEqual(sorted(OMOP_TABLES.map((t) => `${t}.csv`)));
    // No deaths and no medications are simulated, so no death.csv nor drug_exposure.csv.
    expect(synthea.patients.every((p) => p.DEATHDATE === '')).toBe(true);
    for (const table of OMOP_TABLES) for (const cells of raw[table]) expect(cells.length, table).toBe(OMOP_COLUMNS[table].length);
  });

  it('has one person per patient, numbered 1..N in the order of the other exports', async () => {
    expect(omop.person.map((p) => p.person_id)).toEqual(synthea.patients.map((_, i) => String(i + 1)));
    expect(omop.person.map((p) => p.person_source_value)).toEqual(synthea.patients.map((p) => p.Id));
    expect(omop.person.map((p) => p.person_source_value)).toEqual(truth.patients.map((p) => p.patientId));
    const fhir = (await readFile(join(root, 'fhir', 'Patient.ndjson'), 'utf8')).trimEnd().split('\n');
    expect(fhir.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(synthea.patients.map((p) => p.Id));
    omop.person.forEach((p, i) => {
      const s = synthea.patients[i]!;
      const [y, m, d] = s.BIRTHDATE!.split('-').map(Number);
      expect([Number(p.year_of_birth), Number(p.month_of_birth), Number(p.day_of_birth)]).toEqual([y, m, d]);
      expect(p.birth_datetime).toBe(`${s.BIRTHDATE} 00:00:00`);
      expect(p.gender_source_value).toBe(s.GENDER);
      expect(p.gender_concept_id).toBe(s.GENDER === 'F' ? '8532' : '8507');
      expect(p.race_source_value).toBe(s.RACE);
      expect(p.ethnicity_source_value).toBe(s.ETHNICITY);
      expect(p.race_concept_id).toBe({ white: '8527', black: '8516', asian: '8515' }[s.RACE!] ?? '0');
      expect(p.ethnicity_concept_id).toBe(s.ETHNICITY === 'hispanic' ? '38003563' : '38003564');
    });
  });

  it('has one visit per encounter, with the encounter id as visit_source_value and the class as the visit concept', () => {
    expect(omop.visit_occurrence).toHaveLength(synthea.encounters.length);
    const uuid = new Map(omop.person.map((p) => [p.person_id!, p.person_source_value!]));
    const encounters = new Map(synthea.encounters.map((e) => [e.Id!, e]));
    const ids = new Set<string>();
    const previous = new Map<string, string>();
    for (const v of omop.visit_occurrence) {
      ids.add(v.visit_occurrence_id!);
      const e = encounters.get(v.visit_source_value!)!;
      expect(e, v.visit_source_value).toBeDefined();
      expect(uuid.get(v.person_id!)).toBe(e.PATIENT);
      expect(v.visit_concept_id).toBe({ wellness: '9202', ambulatory: '9202', emergency: '9203' }[e.ENCOUNTERCLASS!]);
      expect(v.visit_start_date).toBe(day(e.START!));
      expect(v.visit_start_datetime).toBe(`${day(e.START!)} ${e.START!.slice(11, 19)}`);
      expect(v.visit_end_datetime).toBe(`${day(e.STOP!)} ${e.STOP!.slice(11, 19)}`);
      expect(v.visit_type_concept_id).toBe('32817');
      expect(v.preceding_visit_occurrence_id).toBe(previous.get(v.person_id!) ?? '');
      previous.set(v.person_id!, v.visit_occurrence_id!);
    }
    expect(ids.size).toBe(omop.visit_occurrence.length);
    expect([...ids].map(Number).sort((a, b) => a - b)).toEqual(omop.visit_occurrence.map((_, i) => i + 1));
  });

  it('links every condition, measurement and observation to a visit of the same person on the same day', () => {
    const visits = new Map(omop.visit_occurrence.map((v) => [v.visit_occurrence_id!, v]));
    const check = (rows: Row[], idColumn: string, dateColumn: string): void => {
      expect(new Set(rows.map((r) => r[idColumn])).size).toBe(rows.length);
      for (const r of rows) {
        const v = visits.get(r.visit_occurrence_id!)!;
        expect(v).toBeDefined();
        expect(v.person_id).toBe(r.person_id);
        expect(r[dateColumn]).toBe(v.visit_start_date);
      }
    };
    check(omop.condition_occurrence, 'condition_occurrence_id', 'condition_start_date');
    check(omop.measurement, 'measurement_id', 'measurement_date');
    check(omop.observation, 'observation_id', 'observation_date');
  });

  it('holds the same conditions as the Synthea export, SNOMED code as condition_source_value', () => {
    const uuid = new Map(omop.person.map((p) => [p.person_id!, p.person_source_value!]));
    const visitSource = new Map(omop.visit_occurrence.map((v) => [v.visit_occurrence_id!, v.visit_source_value!]));
    const omopKeys = omop.condition_occurrence.map(
      (c) => `${uuid.get(c.person_id!)}|${visitSource.get(c.visit_occurrence_id!)}|${c.condition_source_value}|${c.condition_start_date}|${c.condition_end_date}`,
    );
    const csvKeys = synthea.conditions.map((c) => `${c.PATIENT}|${c.ENCOUNTER}|${c.CODE}|${c.START}|${c.STOP}`);
    expect(sorted(omopKeys)).toEqual(sorted(csvKeys));
    for (const c of omop.condition_occurrence) {
      expect(c.condition_type_concept_id).toBe('32817');
      if (c.condition_source_value === '44054006') expect(c.condition_concept_id).toBe('201826');
    }
  });

  it('holds the same numeric measurements (value and unit text as Synthea records them), blood pressure as two rows', () => {
    const uuid = new Map(omop.person.map((p) => [p.person_id!, p.person_source_value!]));
    const omopKeys = omop.measurement.map((m) => `${uuid.get(m.person_id!)}|${m.measurement_source_value}|${m.measurement_datetime}|${m.value_as_number}|${m.unit_source_value}`);
    const numeric = synthea.observations.filter((o) => o.TYPE === 'numeric');
    const csvKeys = numeric.map((o) => `${o.PATIENT}|${o.CODE}|${day(o.DATE!)} ${o.DATE!.slice(11, 19)}|${o.VALUE}|${o.UNITS}`);
    expect(sorted(omopKeys)).toEqual(sorted(csvKeys));
    const units = new Set(omop.measurement.map((m) => `${m.measurement_source_value} ${m.unit_source_value}`));
    expect(units).toContain('2345-7 mmol/L');
    expect(units).toContain('4548-4 mmol/mol');
    expect(units).toContain('8480-6 mm[Hg]');
    expect(units).toContain('8462-4 mm[Hg]');
    // Spot check: the first systolic row has its diastolic twin at the same visit.
    const sbp = omop.measurement.find((m) => m.measurement_source_value === '8480-6')!;
    const dbp = omop.measurement.find((m) => m.measurement_source_value === '8462-4' && m.visit_occurrence_id === sbp.visit_occurrence_id)!;
    expect(Number(dbp.measurement_id)).toBe(Number(sbp.measurement_id) + 1);
    expect(sbp).toMatchObject({ measurement_concept_id: '3004249', unit_concept_id: '8876', measurement_type_concept_id: '32817', value_source_value: sbp.value_as_number });
    expect(dbp).toMatchObject({ measurement_concept_id: '3012888', unit_concept_id: '8876', measurement_type_concept_id: '32817' });
    expect(Number(dbp.value_as_number)).toBeLessThan(Number(sbp.value_as_number));
  });

  it('writes smoking status to observation, with the text Synthea writes and the SNOMED code FHIR writes', async () => {
    const smoking = synthea.observations.filter((o) => o.CODE === '72166-2');
    expect(omop.observation).toHaveLength(smoking.length);
    expect(smoking.length).toBeGreaterThan(100);
    const uuid = new Map(omop.person.map((p) => [p.person_id!, p.person_source_value!]));
    const omopKeys = omop.observation.map((o) => `${uuid.get(o.person_id!)}|${o.observation_datetime}|${o.value_as_string}`);
    const csvKeys = smoking.map((o) => `${o.PATIENT}|${day(o.DATE!)} ${o.DATE!.slice(11, 19)}|${o.VALUE}`);
    expect(sorted(omopKeys)).toEqual(sorted(csvKeys));

    const fhirCode = new Map<string, string>();
    for (const line of (await readFile(join(root, 'fhir', 'Observation.ndjson'), 'utf8')).trimEnd().split('\n')) {
      const r = JSON.parse(line) as { code: { coding: { code: string }[] }; valueCodeableConcept?: { coding: { code: string }[] }; subject: { reference: string }; effectiveDateTime: string };
      if (r.code.coding[0]!.code === '72166-2') fhirCode.set(`${r.subject.reference.slice(8)}|${r.effectiveDateTime}`, r.valueCodeableConcept!.coding[0]!.code);
    }
    const byText = new Map<string, string>(Object.values(SMOKING_FINDINGS).map((f) => [f.display, f.code]));
    for (const o of omop.observation) {
      expect(o).toMatchObject({ observation_source_value: '72166-2', observation_type_concept_id: '32817', observation_concept_id: '0', value_as_concept_id: '0' });
      expect(o.value_source_value).toBe(byText.get(o.value_as_string!));
      const iso = `${o.observation_datetime!.replace(' ', 'T')}Z`;
      expect(fhirCode.get(`${uuid.get(o.person_id!)}|${iso}`)).toBe(o.value_source_value);
    }
  });

  it('gives every person with visits one observation period spanning them', () => {
    const visitsOf = new Map<string, Row[]>();
    for (const v of omop.visit_occurrence) visitsOf.set(v.person_id!, [...(visitsOf.get(v.person_id!) ?? []), v]);
    expect(omop.observation_period).toHaveLength(visitsOf.size);
    for (const op of omop.observation_period) {
      const v = visitsOf.get(op.person_id!)!;
      expect(op.observation_period_start_date).toBe(v.map((x) => x.visit_start_date!).sort()[0]);
      expect(op.observation_period_end_date).toBe(v.map((x) => x.visit_end_date!).sort().at(-1));
      expect(op.period_type_concept_id).toBe('32817');
    }
  });
});
