import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@fedlhs/model';
import { loadDeployedRelease } from '../releases/local-releases.js';
import { startScoringService, type ScoringService } from './cds-hooks.js';
import { cdsCard } from './cds-request.js';
import { TEST_MODEL, testCohortManifest, testPatientResources, writeTestRelease } from './test-release.js';

// What the review of the clinic side found (issue 12): prefetch by what a release reads,
// encounters that never took place, /score feature ranges and imputation, 4xx not 500, card summary length.
let root: string;
let service: ScoringService;
let pinnedPem: string;
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

type R = Record<string, unknown>;
const bundle = (resources: R[]): R => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });
const KEYS: Record<string, string> = { Observation: 'observations', Condition: 'conditions', Encounter: 'encounters', MedicationRequest: 'medications' };
/** A patient-view request prefetching `types` (default the four every service declares). */
function hookRequest(resources: R[], types = ['Observation', 'Condition', 'Encounter']): R {
  const prefetch: R = { patient: resources.find((r) => r.resourceType === 'Patient') };
  for (const t of types) prefetch[KEYS[t]!] = bundle(resources.filter((r) => r.resourceType === t));
  return { hook: 'patient-view', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', context: { userId: 'Practitioner/1', patientId: resources[0]!.id }, prefetch };
}
const post = async (path: string, body: unknown): Promise<{ status: number; body: R }> => {
  const res = await fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as R };
};
const riskOf = (answer: { body: R }): string => /\((0\.\d{6})\)/.exec(((answer.body.cards as R[])[0]!.detail as string))![1]!;

/** A study like test-t2d whose fourth feature counts medication requests instead of visits. */
function medManifest(): R {
  const m = testCohortManifest('test-med') as { data: { cohort: { features: R[] } } };
  m.data.cohort.features[3] = { name: 'meds', type: 'count', kind: 'medication' };
  return m as unknown as R;
}
const medication = (id: string, day: string, n: number): R => ({
  resourceType: 'MedicationRequest', id: `${id}-m${n}`, status: 'active', intent: 'order', subject: { reference: `Patient/${id}` }, authoredOn: day,
  medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975' }] },
});
const older = testPatientResources('p-older', { birthDate: '1950-03-01', gender: 'male', visit: '2020-05-01', glucose: 130 });
const visit = (status: string, start: string): R => ({ ...(older[1] as R), id: `p-older-${status}`, status, period: { start } });

beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'fedlhs-cds-review-'));
  const { privateKey } = generateKeyPairSync('ed25519');
  ({ pinnedPem } = await writeTestRelease(join(root, 'state'), { manifest: testCohortManifest(), ...TEST_MODEL, privateKey }));
  await writeTestRelease(join(root, 'state'), { manifest: medManifest(), ...TEST_MODEL, privateKey });
  service = await startScoringService({ listen: '127.0.0.1:0', stateDir: join(root, 'state'), pinnedPem, log });
});
afterAll(async () => {
  await service?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('scoring service after review', () => {
  it('a release that counts medications declares and reads a medications prefetch; others do not ask for it', async () => {
    const { services } = (await (await fetch(`${service.url}/cds-services`)).json()) as { services: R[] };
    const byId = new Map(services.map((s) => [s.id, s.prefetch]));
    const base = { patient: 'Patient/{{context.patientId}}', observations: 'Observation?patient={{context.patientId}}', conditions: 'Condition?patient={{context.patientId}}', encounters: 'Encounter?patient={{context.patientId}}' };
    expect(byId.get('fedlhs-test-t2d')).toEqual(base);
    expect(byId.get('fedlhs-test-med')).toEqual({ ...base, medications: 'MedicationRequest?patient={{context.patientId}}' });

    const absent = await post('/cds-services/fedlhs-test-med', hookRequest(older));
    expect(absent).toEqual({ status: 412, body: { error: expect.stringMatching(/^prefetch medications missing: this service needs MedicationRequest\?patient=/) } });
    const nulled = hookRequest(older, ['Observation', 'Condition', 'Encounter', 'MedicationRequest']);
    (nulled.prefetch as R).medications = null;
    expect(await post('/cds-services/fedlhs-test-med', nulled)).toMatchObject({ status: 412, body: { error: expect.stringMatching(/prefetch medications is null .* feature meds/) } });

    const all = ['Observation', 'Condition', 'Encounter', 'MedicationRequest'];
    const none = await post('/cds-services/fedlhs-test-med', hookRequest(older, all));
    const three = await post('/cds-services/fedlhs-test-med', hookRequest([...older, medication('p-older', '2020-01-01', 1), medication('p-older', '2019-06-01', 2), medication('p-older', '2019-01-01', 3)], all));
    expect([none.status, three.status]).toEqual([200, 200]);
    // The medications are read: three prescriptions in the lookback give another risk than none.
    expect(riskOf(three)).not.toBe(riskOf(none));
    // The same 3 medications through POST /score with a Bundle: the same risk.
    const byBundle = await post('/score', { study: 'test-med', patient: bundle([...older, medication('p-older', '2020-01-01', 1), medication('p-older', '2019-06-01', 2), medication('p-older', '2019-01-01', 3)]) });
    expect(byBundle.body.risk).toBe(Number(riskOf(three)));
  });

  it('planned, cancelled and entered-in-error encounters never become the index visit', async () => {
    const base = await post('/cds-services/fedlhs-test-t2d', hookRequest(older));
    expect(base.status).toBe(200);
    for (const [status, start] of [['planned', '2031-01-01'], ['cancelled', '2024-01-01'], ['entered-in-error', '2025-01-01']] as const) {
      const withVisit = await post('/cds-services/fedlhs-test-t2d', hookRequest([...older, visit(status, start)]));
      expect({ status, code: withVisit.status, risk: riskOf(withVisit) }).toEqual({ status, code: 200, risk: riskOf(base) });
      expect((withVisit.body.cards as R[])[0]!.detail).toContain('**Index date:** 2020-05-01');
    }
  });

  it('POST /score features: out-of-range latest values are imputed as extraction does, and listed; the card lists missing features too', async () => {
    const inRange = await post('/score', { study: 'test-t2d', features: { age: 70, female: 0, glucose: 130, visits: 1 } });
    const unknown = await post('/score', { study: 'test-t2d', features: { age: 70, female: 0, glucose: null, visits: 1 } });
    const absurd = await post('/score', { study: 'test-t2d', features: { age: 70, female: 0, glucose: 5000, visits: 1 } });
    expect(inRange).toMatchObject({ status: 200, body: { imputed: [] } });
    expect(unknown).toMatchObject({ status: 200, body: { imputed: ['glucose'] } });
    expect(absurd).toEqual({ status: 200, body: { ...unknown.body } });
    const byBundle = await post('/score', { study: 'test-t2d', patient: bundle(testPatientResources('p-noglu', { birthDate: '1950-03-01', gender: 'male', visit: '2020-05-01' })) });
    expect(byBundle.body.imputed).toEqual(['glucose']);
    const card = await post('/cds-services/fedlhs-test-t2d', hookRequest(testPatientResources('p-noglu', { birthDate: '1950-03-01', gender: 'male', visit: '2020-05-01' })));
    expect((card.body.cards as R[])[0]!.detail).toMatch(/\*\*Missing \(imputed\):\*\* glucose \(/);
    expect(((await post('/cds-services/fedlhs-test-t2d', hookRequest(older))).body.cards as R[])[0]!.detail).toContain('**Missing (imputed):** none');
  });

  it('answers 4xx, not 500, for a malformed service id and for values a float32 cannot hold', async () => {
    expect(await post('/cds-services/fedlhs-%E0%A4%A', hookRequest(older))).toEqual({ status: 400, body: { error: 'the service id in the path is not valid percent-encoding (UTF-8)' } });
    expect(await post('/score', { study: 'test-t2d', features: { age: 1e39, female: 0, glucose: -1e39, visits: 1 } })).toEqual({
      status: 422, body: { error: 'feature age: 1e+39 is beyond what the model can read (a 32-bit float, at most ±3.4e38)' },
    });
  });

  it('card summary is under 140 characters even when the outcome is long', () => {
    const release = loadDeployedRelease(join(root, 'state'), 'test-t2d', pinnedPem);
    const score = { key: 'p', indexDay: 18_000, risk: 0.1234, band: 'low', imputed: [] };
    const head = '12.3 % risk (low): ';
    for (const length of [139, 140, 141, 300]) {
      const outcome = 'o'.repeat(length - head.length);
      const summary = cdsCard({ ...release, descriptor: { ...release.descriptor, modelCard: { ...release.descriptor.modelCard, outcome } } }, score).summary as string;
      expect({ length, summary: summary.length }).toEqual({ length, summary: Math.min(length, 139) });
      if (length >= 140) expect(summary.endsWith('…')).toBe(true);
    }
  });
});
