import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClinic } from './generate.js';
import { defaultClinics, type ClinicProfile } from './profile.js';
import { SYNTHEA_HEADERS } from './synthea-writer.js';

const SYNTHEA_FILES = ['conditions.csv', 'encounters.csv', 'observations.csv', 'patients.csv'];
const FHIR_FILES = ['Condition.ndjson', 'Encounter.ndjson', 'Observation.ndjson', 'Patient.ndjson', 'manifest.json'];
const OMOP_FILES = ['condition_occurrence.csv', 'measurement.csv', 'observation.csv', 'observation_period.csv', 'person.csv', 'visit_occurrence.csv'];
const ALL_FILES = [...SYNTHEA_FILES.map((f) => `synthea/${f}`), ...FHIR_FILES.map((f) => `fhir/${f}`), ...OMOP_FILES.map((f) => `omop/${f}`), 'truth.json'];

// A small mg/dL clinic that codes glucose as 2345-7.
const profile: ClinicProfile = { ...defaultClinics()[3]!, name: 'determinism', patients: 300, seed: 1234 };

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'synth-generate-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = (dir: string, file: string): Promise<Buffer> => readFile(join(root, dir, file));

describe('generateClinic', () => {
  it('gives byte-identical files and truth for the same profile and seed', async () => {
    const a = await generateClinic(profile, join(root, 'a'));
    const b = await generateClinic(profile, join(root, 'b'));
    expect(b).toEqual(a);
    for (const file of ALL_FILES) expect((await read('a', file)).equals(await read('b', file)), file).toBe(true);
  });

  it('gives different clinics for different seeds', async () => {
    const a = JSON.parse((await read('a', 'truth.json')).toString('utf8')) as { patients: { patientId: string; risk: number }[] };
    const c = await generateClinic({ ...profile, seed: 1235 }, join(root, 'c'));
    expect(c.patients[0]!.patientId).not.toBe(a.patients[0]!.patientId);
    expect(c.patients.map((p) => p.risk)).not.toEqual(a.patients.map((p) => p.risk));
    expect((await read('a', 'synthea/observations.csv')).equals(await read('c', 'synthea/observations.csv'))).toBe(false);
  });

  it('writes the same bytes for one format alone as for both', async () => {
    await generateClinic(profile, join(root, 'csv-only'), ['synthea-csv']);
    await generateClinic(profile, join(root, 'fhir-only'), ['fhir-ndjson']);
    await generateClinic(profile, join(root, 'omop-only'), ['omop-csv']);
    for (const f of SYNTHEA_FILES) expect((await read('csv-only', `synthea/${f}`)).equals(await read('a', `synthea/${f}`))).toBe(true);
    for (const f of FHIR_FILES) expect((await read('fhir-only', `fhir/${f}`)).equals(await read('a', `fhir/${f}`))).toBe(true);
    for (const f of OMOP_FILES) expect((await read('omop-only', `omop/${f}`)).equals(await read('a', `omop/${f}`))).toBe(true);
    expect(await readdir(join(root, 'csv-only'))).toEqual(['synthea', 'truth.json']);
  });

  it('keeps the truth out of the export directories and writes the bulk manifest', async () => {
    expect((await readdir(join(root, 'a', 'synthea'))).sort()).toEqual(SYNTHEA_FILES);
    expect((await readdir(join(root, 'a', 'fhir'))).sort()).toEqual(FHIR_FILES);
    expect((await readdir(join(root, 'a', 'omop'))).sort()).toEqual(OMOP_FILES);
    expect((await readdir(join(root, 'a'))).sort()).toEqual(['fhir', 'omop', 'synthea', 'truth.json']);
    const manifest: unknown = JSON.parse((await read('a', 'fhir/manifest.json')).toString('utf8'));
    expect(manifest).toEqual({
      transactionTime: '2023-01-01T00:00:00Z',
      request: '$export',
      requiresAccessToken: false,
      output: ['Patient', 'Encounter', 'Condition', 'Observation'].map((type) => ({ type, url: `${type}.ndjson` })),
      error: [],
    });
    const risk = (await read('a', 'truth.json')).toString('utf8').match(/"risk":/g) ?? [];
    expect(risk.length).toBe(profile.patients);
    for (const f of SYNTHEA_FILES) expect((await read('a', `synthea/${f}`)).toString('utf8')).not.toContain('risk');
    for (const f of OMOP_FILES) expect((await read('a', `omop/${f}`)).toString('utf8')).not.toContain('risk');
  });

  it('writes the exact Synthea headers and the profile units and glucose code', async () => {
    const text = (file: string): Promise<string> => read('a', `synthea/${file}`).then((b) => b.toString('utf8'));
    expect((await text('patients.csv')).split('\n', 1)[0]).toBe(SYNTHEA_HEADERS.patients);
    expect((await text('encounters.csv')).split('\n', 1)[0]).toBe(SYNTHEA_HEADERS.encounters);
    expect((await text('conditions.csv')).split('\n', 1)[0]).toBe(SYNTHEA_HEADERS.conditions);
    const rows = (await text('observations.csv')).trimEnd().split('\n').slice(1).map((line) => line.split(','));
    const glucose = rows.filter((r) => r[4] === '2345-7');
    expect(glucose.length).toBeGreaterThan(50);
    expect(rows.some((r) => r[4] === '2339-0')).toBe(false);
    for (const r of glucose) {
      expect(r[7]).toBe('mg/dL');
      expect(Number(r[6])).toBeGreaterThanOrEqual(50);
      expect(Number(r[6])).toBeLessThanOrEqual(400);
    }
    for (const r of rows.filter((row) => row[4] === '4548-4')) expect(r[7]).toBe('%');
    const smoking = rows.filter((r) => r[4] === '72166-2');
    expect(smoking.length).toBeGreaterThan(0);
    for (const r of smoking) expect(['Never smoked tobacco (finding)', 'Ex-smoker (finding)', 'Smokes tobacco daily (finding)']).toContain(r[6]);
  });

  it('rejects an unknown format', async () => {
    await expect(generateClinic(profile, join(root, 'bad-format'), ['omop' as never])).rejects.toThrow("unknown export format 'omop'");
    await expect(generateClinic(profile, join(root, 'bad-format'), ['omop' as never])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'formats' } });
  });

  it('rejects an invalid profile before writing anything', async () => {
    await expect(generateClinic({ ...profile, femaleFraction: 2 }, join(root, 'bad'))).rejects.toThrow('femaleFraction must be in 0..1');
    await expect(readdir(join(root, 'bad'))).rejects.toThrow();
  });
});
