/**
 * `fedlhs-agent score` (the built CLI) on a synthetic clinic's export with a signed release
 * deployed in its state directory, and the CDS Hooks service answering the same risk for the
 * same patient (issue 12). The release is written as the agent keeps one (test-release.ts);
 * fetching and deploying it from a coordinator is covered by the release tests.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyId, validateManifest } from '@fedlhs/core';
import { extractCohort, openFhirBulk } from '@fedlhs/ehr';
import { defaultClinics, FORMAT_DIRS, generateClinic, type ClinicProfile } from '@fedlhs/synth';
import { agentMain, t2dManifest } from '@fedlhs/tests';
import { startScoringService } from '../../node-agent/src/scoring/cds-hooks.js';
import { writeTestRelease } from '../../node-agent/src/scoring/test-release.js';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const profile: ClinicProfile = { ...defaultClinics()[0]!, name: 'scoring', patients: 250, seed: 991 };

/** A clinic export, an enrolled state dir with a pinned key, and a deployed release normalised on the export. */
async function setUp(): Promise<{ state: string; fhir: string; synthea: string; manifest: Record<string, unknown> }> {
  const root = ws.dir();
  await generateClinic(profile, join(root, 'clinic'), ['fhir-ndjson', 'synthea-csv']);
  const fhir = join(root, 'clinic', FORMAT_DIRS['fhir-ndjson']);
  const manifest = t2dManifest({ rounds: 1, clinics: 1, quorum: 1, seed: 5 });
  const spec = validateManifest(manifest).data.cohort!;
  // Normalise with the export's own cohort (means and SDs ignoring missing values), as a study would.
  const { dataset } = await extractCohort(openFhirBulk(fhir), spec);
  const d = dataset.features.length;
  const normalization = dataset.features.map((_, j) => {
    const values = Array.from(dataset.x).filter((v, i) => i % d === j && !Number.isNaN(v));
    const mean = values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
    const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, values.length)) || 1;
    return { mean, std, impute: mean };
  });
  const state = join(root, 'state');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await writeTestRelease(state, { manifest, normalization, privateKey });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(state, 'node-credential.json'), JSON.stringify({
    nodeId: 'node-1', siteName: 'scoring', coordinator: '127.0.0.1:1', credential: 'unused', enrolledAt: '2026-11-30T00:00:00.000Z', releaseKey: { publicPem, fingerprint: keyId(publicKey) },
  }), { mode: 0o600 });
  return { state, fhir, synthea: join(root, 'clinic', FORMAT_DIRS['synthea-csv']), manifest };
}

const score = (state: string, format: string, path: string, extra: string[] = []) =>
  runCli(agentMain, ['score', '--state-dir', state, '--data-format', format, '--data-path', path, '--backend', 'cpu', ...extra]);

describe('fedlhs-agent score', () => {
  it('scores the export, byte-identically twice and across formats, and the CDS Hooks service agrees for a patient', async () => {
    const { state, fhir, synthea } = await setUp();
    const out1 = join(ws.dir(), 'out1');
    const first = await score(state, 'fhir-ndjson', fhir, ['--out', out1]);
    expect(first.code, first.stderr).toBe(0);
    const scored = Number(/scored (\d+) patients with fedlhs t2d-3y v1 \(index: each patient's latest qualifying encounter\)/.exec(first.stdout)?.[1]);
    expect(scored).toBeGreaterThan(100);
    expect(first.stdout).toMatch(/not scored {7}.*excluded condition on or before index: \d+/);
    expect(first.stdout).toMatch(/unit mismatches {2}/);
    expect(first.stdout).toContain('nothing was sent anywhere');
    const csv = readFileSync(join(out1, 'scores.csv'));
    const ndjson = readFileSync(join(out1, 'risk-assessments.ndjson'));
    const rows = csv.toString('utf8').trimEnd().split('\n');
    expect(rows).toHaveLength(scored + 1);
    const keys = rows.slice(1).map((r) => r.split(',')[0]!);
    expect(keys).toEqual([...keys].sort());
    for (const r of rows.slice(1)) expect(r).toMatch(/^[^,]+,\d{4}-\d{2}-\d{2},0\.\d{6},(low|moderate|high),t2d-3y,1$/);
    expect(ndjson.toString('utf8').trimEnd().split('\n')).toHaveLength(scored);

    const out2 = join(ws.dir(), 'out2');
    expect((await score(state, 'fhir-ndjson', fhir, ['--out', out2])).code).toBe(0);
    expect(readFileSync(join(out2, 'scores.csv')).equals(csv)).toBe(true);
    expect(readFileSync(join(out2, 'risk-assessments.ndjson')).equals(ndjson)).toBe(true);
    // The same patients as a Synthea CSV export: the same features, so the same scores.
    const out3 = join(ws.dir(), 'out3');
    expect((await score(state, 'synthea-csv', synthea, ['--out', out3])).code).toBe(0);
    expect(readFileSync(join(out3, 'scores.csv')).equals(csv)).toBe(true);
    // RiskAssessment.subject: a Patient reference for the FHIR export's ids, the local key for the CSV export's (not FHIR ids).
    const firstSubject = (nd: Buffer): unknown => (JSON.parse(nd.toString('utf8').split('\n')[0]!) as { subject: unknown }).subject;
    expect(firstSubject(ndjson)).toEqual({ reference: `Patient/${keys[0]}` });
    expect(firstSubject(readFileSync(join(out3, 'risk-assessments.ndjson')))).toEqual({ identifier: { system: 'urn:fedlhs:local-key', value: keys[0] } });

    // One patient through CDS Hooks, prefetch built from the export's files.
    const [patientId, , risk, band] = rows[1]!.split(',');
    const lines = (type: string): Record<string, unknown>[] => {
      const text = readFileSync(join(fhir, `${type}.ndjson`), 'utf8');
      return text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.id === patientId || JSON.stringify(r.subject ?? {}).includes(`${patientId}"`));
    };
    const bundle = (type: string) => ({ resourceType: 'Bundle', type: 'searchset', entry: lines(type).map((resource) => ({ resource })) });
    const pem = (JSON.parse(readFileSync(join(state, 'node-credential.json'), 'utf8')) as { releaseKey: { publicPem: string } }).releaseKey.publicPem;
    const logs: object[] = [];
    const sink = (o: object): void => void logs.push(o);
    const service = await startScoringService({ listen: '127.0.0.1:0', stateDir: state, pinnedPem: pem, log: { info: sink, warn: sink, error: sink } });
    try {
      const res = await fetch(`${service.url}/cds-services/fedlhs-t2d-3y`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          hook: 'patient-view', hookInstance: '7b1c1b7e-2f5e-4a55-9f3c-8a4a3c1f0b11', context: { userId: 'Practitioner/1', patientId },
          prefetch: { patient: lines('Patient')[0], observations: bundle('Observation'), conditions: bundle('Condition'), encounters: bundle('Encounter') },
        }),
      });
      const body = (await res.json()) as { cards: { detail: string; summary: string }[] };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.cards[0]!.detail).toContain(`(${risk}), band **${band}**`);
      expect(body.cards[0]!.detail).toMatch(/\*\*Missing \(imputed\):\*\* /);
      expect(body.cards[0]!.summary.length).toBeLessThan(140);
    } finally {
      await service.close();
    }
    expect(JSON.stringify(logs)).not.toContain(patientId!);
  });

  it('scores at one --index-date, and refuses a bad date, a mismatched data format and a state dir with nothing deployed', async () => {
    const { state, fhir } = await setUp();
    const out = join(ws.dir(), 'dated');
    const dated = await score(state, 'fhir-ndjson', fhir, ['--index-date', '2019-07-01', '--out', out]);
    expect(dated.code, dated.stderr).toBe(0);
    expect(dated.stdout).toContain('(index: 2019-07-01)');
    expect(readFileSync(join(out, 'scores.csv'), 'utf8').trimEnd().split('\n').slice(1).every((r) => r.split(',')[1] === '2019-07-01')).toBe(true);

    const bad = await score(state, 'fhir-ndjson', fhir, ['--index-date', '2019-02-30']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--index-date: "2019-02-30" is not a date (YYYY-MM-DD)');

    const csv = join(ws.dir(), 'table.csv');
    writeFileSync(csv, 'id,age,y\n1,50,0\n');
    const mismatch = await score(state, 'flat-table', csv);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('release t2d-3y v1 needs cohort/v1 features, but this agent reads flat-table data (config data.format): it cannot score this export');

    writeFileSync(join(state, 'releases', 'deployed.json'), JSON.stringify({ format: 'fedlhs.deployed/v1', current: {}, history: [] }));
    const none = await score(state, 'fhir-ndjson', fhir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no release is deployed at this clinic');
  });
});
