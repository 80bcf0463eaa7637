import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoToDay, openFhirResources } from '@fedlhs/ehr';
import { initBackend } from '@fedlhs/model';
import { loadDeployedRelease, type DeployedRelease } from '../releases/local-releases.js';
import { RISK_ASSESSMENTS_NDJSON, SCORES_CSV, riskAssessment, scoresCsv, writeScoreFiles } from './outputs.js';
import { createScorer, scoreExport, sourceFeatures } from './pipeline.js';
import { TEST_MODEL, testCohortManifest, testPatientResources, writeTestRelease } from './test-release.js';

let root: string;
let release: DeployedRelease;
let exportDir: string;
const resources = [
  ...testPatientResources('p-b', { birthDate: '1950-03-01', gender: 'male', visit: '2020-05-01', glucose: 130 }),
  ...testPatientResources('p-a', { birthDate: '1980-03-01', gender: 'female', visit: '2019-05-01', glucose: 85 }),
  ...testPatientResources('p-c,"q"', { birthDate: '1970-03-01', gender: 'female', visit: '2021-01-10' }),
  ...testPatientResources('p-outcome', { birthDate: '1960-03-01', gender: 'male', visit: '2020-01-01', glucose: 120, outcome: '2019-06-01' }),
  ...testPatientResources('p-novisit', { birthDate: '1960-03-01', gender: 'male' }),
  ...testPatientResources('p-unit', { birthDate: '1960-03-01', gender: 'male', visit: '2020-01-01', glucose: 7, unit: 'mmol/mol' }),
];

beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'fedlhs-scoring-'));
  const { pinnedPem } = await writeTestRelease(join(root, 'state'), { manifest: testCohortManifest(), ...TEST_MODEL });
  release = loadDeployedRelease(join(root, 'state'), undefined, pinnedPem);
  exportDir = join(root, 'export');
  const byType = new Map<string, string[]>();
  for (const r of resources) byType.set(r.resourceType as string, [...(byType.get(r.resourceType as string) ?? []), JSON.stringify(r)]);
  mkdirSync(exportDir);
  for (const [type, lines] of byType) writeFileSync(join(exportDir, `${type}.ndjson`), `${lines.join('\n')}\n`);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('scoring pipeline', () => {
  it('scores an export at each patient\'s latest visit, sorted by key, and says who was not scored and why', async () => {
    const scored = await scoreExport(release, { format: 'fhir-ndjson', path: exportDir }, { kind: 'latest' });
    expect(scored.scores.map((s) => s.key)).toEqual(['p-a', 'p-b', 'p-c,"q"', 'p-unit']);
    expect(scored.scores.map((s) => s.indexDay)).toEqual([isoToDay('2019-05-01'), isoToDay('2020-05-01'), isoToDay('2021-01-10'), isoToDay('2020-01-01')]);
    expect(scored.features.excluded).toEqual({ 'outcome on or before index': 1, 'no index encounter': 1 });
    expect(scored.features.unitMismatch).toEqual([{ feature: 'glucose', unit: 'mmol/mol', count: 1 }]);
    const [a, b] = scored.scores;
    // Older with higher glucose: higher risk; the bands come from the release.
    expect(b!.risk).toBeGreaterThan(a!.risk);
    for (const s of scored.scores) expect(['low', 'moderate', 'high']).toContain(s.band);
  });

  it('gives one patient the same risk from the export and from their resources alone (the service\'s path)', async () => {
    const scored = await scoreExport(release, { format: 'fhir-ndjson', path: exportDir }, { kind: 'latest' });
    const scorer = await createScorer(release);
    try {
      const one = await sourceFeatures(release, openFhirResources(resources.filter((r) => JSON.stringify(r).includes('p-b'))), { kind: 'latest' });
      const [score] = await scorer.score(one);
      expect(score).toEqual(scored.scores[1]);
    } finally {
      scorer.dispose();
    }
  });

  it('refuses a data format that does not match the release\'s feature spec', async () => {
    await expect(scoreExport(release, { format: 'flat-table', path: join(exportDir, 'x.csv') }, { kind: 'latest' })).rejects.toThrow(
      'release test-t2d v1 needs cohort/v1 features, but this agent reads flat-table data (config data.format): it cannot score this export',
    );
  });

  it('writes byte-identical CSV and RiskAssessment ndjson for the same release and export', async () => {
    const write = async (dir: string): Promise<[Buffer, Buffer]> => {
      const scored = await scoreExport(release, { format: 'fhir-ndjson', path: exportDir }, { kind: 'date', day: isoToDay('2022-01-01')! });
      const paths = writeScoreFiles(join(root, dir), release, scored.scores, 'fhir-ndjson');
      return [readFileSync(paths.csv), readFileSync(paths.ndjson)];
    };
    const [csv1, nd1] = await write('out1');
    const [csv2, nd2] = await write('out2');
    expect(csv1.equals(csv2)).toBe(true);
    expect(nd1.equals(nd2)).toBe(true);
    const lines = csv1.toString('utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('key,index_date,risk,band,study,version');
    expect(lines[3]).toMatch(/^"p-c,""q""",2022-01-01,0\.\d{6},(low|moderate|high),test-t2d,1$/);
    const first = JSON.parse(nd1.toString('utf8').split('\n')[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/p-a' }, occurrenceDateTime: '2022-01-01',
      method: { text: expect.stringMatching(/^fedlhs test-t2d v1 /) },
      prediction: [{ outcome: { text: 'incident type 2 diabetes within 3 years' }, probabilityDecimal: Number(lines[1]!.split(',')[2]), qualitativeRisk: { text: lines[1]!.split(',')[3] } }],
    });
    expect(first.id).toMatch(/^fedlhs-[0-9a-f]{32}$/);
    // 'p-c,"q"' is no valid FHIR id: it is written as the export's key, never as a Patient reference.
    const third = JSON.parse(nd1.toString('utf8').split('\n')[2]!) as Record<string, unknown>;
    expect(third.subject).toEqual({ identifier: { system: 'urn:fedlhs:local-key', value: 'p-c,"q"' } });
    expect(SCORES_CSV).toBe('scores.csv');
    expect(RISK_ASSESSMENTS_NDJSON).toBe('risk-assessments.ndjson');
  });

  it('RiskAssessment.subject is Patient/<id> only for a FHIR export and a valid FHIR id; otherwise the local key as an identifier', () => {
    const subject = (format: 'fhir-ndjson' | 'synthea-csv' | 'omop-csv' | 'flat-table', key: string): unknown =>
      riskAssessment(release, { key, indexDay: undefined, risk: 0.5, band: 'low' }, format).subject;
    const local = (value: string): unknown => ({ identifier: { system: 'urn:fedlhs:local-key', value } });
    expect(subject('fhir-ndjson', 'a-1.B')).toEqual({ reference: 'Patient/a-1.B' });
    expect(subject('fhir-ndjson', 'MRN 12/3')).toEqual(local('MRN 12/3'));
    expect(subject('fhir-ndjson', 'x'.repeat(65))).toEqual(local('x'.repeat(65)));
    expect(subject('synthea-csv', 'a-1')).toEqual(local('a-1'));
    expect(subject('omop-csv', '17')).toEqual(local('17'));
    expect(subject('flat-table', '17')).toEqual(local('17'));
  });

  it('flat tables: refuses to score without data.keyColumn, and refuses empty or repeated keys naming how many', async () => {
    const { pinnedPem } = await writeTestRelease(join(root, 'flat-state'), {
      manifest: { ...testCohortManifest('flat-study'), data: { featureSpec: 'flat-table/v1', features: ['a', 'b', 'c', 'd'], label: 'y', normalization: 'federated-zscore' } },
    });
    const flat = loadDeployedRelease(join(root, 'flat-state'), undefined, pinnedPem);
    const table = (rows: string[]): string => {
      const path = join(root, `table-${rows.length}-${rows[0]}.csv`);
      writeFileSync(path, `mrn,a,b,c,d,y\n${rows.map((k, i) => `${k},${i},1,2,3,`).join('\n')}\n`);
      return path;
    };
    const ok = table(['m1', 'm2', 'm3']);
    await expect(scoreExport(flat, { format: 'flat-table', path: ok }, { kind: 'latest' })).rejects.toThrow(/scoring a flat table needs data.keyColumn \(--data-key-column\).*row numbers are not patient keys/);
    await expect(scoreExport(flat, { format: 'flat-table', path: ok, keyColumn: '' }, { kind: 'latest' })).rejects.toThrow(/needs data.keyColumn/);
    const scored = await scoreExport(flat, { format: 'flat-table', path: ok, keyColumn: 'mrn' }, { kind: 'latest' });
    expect(scored.scores.map((s) => s.key)).toEqual(['m1', 'm2', 'm3']);
    const dup = scoreExport(flat, { format: 'flat-table', path: table(['m1', 'm2', 'm1', 'm2', 'm2', 'm3', '']), keyColumn: 'mrn' }, { kind: 'latest' });
    await expect(dup).rejects.toThrow('column mrn: 1 row has an empty mrn; 2 keys appear on more than one row (5 rows in all); each patient needs exactly one row with its own key, or one patient would get two different scores');
  });

  it('CSV: flat-table rows have no index date', () => {
    expect(scoresCsv({ studyName: 's', version: 2 }, [{ key: '7', indexDay: undefined, risk: 0.1234567, band: 'moderate' }])).toBe('key,index_date,risk,band,study,version\n7,,0.123457,moderate,s,2\n');
  });
});
