import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFhirResources } from '@fedlhs/ehr';
import { initBackend } from '@fedlhs/model';
import { loadDeployedRelease } from '../releases/local-releases.js';
import { startScoringService, type ScoringService } from './cds-hooks.js';
import { createScorer, sourceFeatures } from './pipeline.js';
import { TEST_MODEL, testCohortManifest, testPatientResources, writeTestRelease } from './test-release.js';

let root: string;
let service: ScoringService;
let pinnedPem: string;
const logged: object[] = [];
const log = { info: (o: object) => logged.push(o), warn: (o: object) => logged.push(o), error: (o: object) => logged.push(o) };

const bundle = (resources: Record<string, unknown>[]): Record<string, unknown> => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });
/** A patient-view request with the four prefetch keys from the patient's resources. */
function hookRequest(resources: Record<string, unknown>[], patientId = resources[0]!.id as string): Record<string, unknown> {
  const of = (type: string) => bundle(resources.filter((r) => r.resourceType === type));
  return {
    hook: 'patient-view', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', fhirServer: 'https://ehr.example/fhir',
    context: { userId: 'Practitioner/1', patientId },
    prefetch: { patient: resources.find((r) => r.resourceType === 'Patient'), observations: of('Observation'), conditions: of('Condition'), encounters: of('Encounter') },
  };
}
const post = (path: string, body: unknown): Promise<Response> =>
  fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const older = testPatientResources('p-older', { birthDate: '1950-03-01', gender: 'male', visit: '2020-05-01', glucose: 130 });

beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'fedlhs-cds-'));
  const { privateKey } = generateKeyPairSync('ed25519');
  ({ pinnedPem } = await writeTestRelease(join(root, 'state'), { manifest: testCohortManifest(), ...TEST_MODEL, privateKey }));
  const flat = {
    ...testCohortManifest('flat-study'),
    data: { featureSpec: 'flat-table/v1', features: ['a', 'b', 'c', 'd'], label: 'y', normalization: 'federated-zscore' },
  };
  await writeTestRelease(join(root, 'state'), { manifest: flat, privateKey });
  service = await startScoringService({ listen: '127.0.0.1:0', stateDir: join(root, 'state'), pinnedPem, log });
});
afterAll(async () => {
  await service?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('CDS Hooks scoring service', () => {
  it('discovery: one patient-view service per deployed cohort/v1 release, with the prefetch it needs', async () => {
    const res = await fetch(`${service.url}/cds-services`);
    expect(res.status).toBe(200);
    const { services } = (await res.json()) as { services: Record<string, unknown>[] };
    expect(services).toHaveLength(1);
    expect(services[0]).toMatchObject({
      hook: 'patient-view', id: 'fedlhs-test-t2d',
      prefetch: { patient: 'Patient/{{context.patientId}}', observations: 'Observation?patient={{context.patientId}}', conditions: 'Condition?patient={{context.patientId}}', encounters: 'Encounter?patient={{context.patientId}}' },
    });
    expect(services[0]!.title).toEqual(expect.any(String));
    expect(services[0]!.description).toMatch(/fedlhs test-t2d v1/);
  });

  it('answers a card with the same risk as the pipeline gives for the same patient', async () => {
    const res = await post('/cds-services/fedlhs-test-t2d', hookRequest(older));
    expect(res.status).toBe(200);
    const { cards } = (await res.json()) as { cards: Record<string, unknown>[] };
    expect(cards).toHaveLength(1);
    const release = loadDeployedRelease(join(root, 'state'), 'test-t2d', pinnedPem);
    const scorer = await createScorer(release);
    const [expected] = await scorer.score(await sourceFeatures(release, openFhirResources(older), { kind: 'latest' }));
    scorer.dispose();
    const card = cards[0]!;
    expect(card.summary).toBe(`${(expected!.risk * 100).toFixed(1)} % risk (${expected!.band}): incident type 2 diabetes within 3 years`);
    expect((card.summary as string).length).toBeLessThan(140);
    expect(card.detail).toContain(`(${expected!.risk.toFixed(6)}), band **${expected!.band}**`);
    expect(card.detail).toContain('**Index date:** 2020-05-01');
    expect(card.source).toEqual({ label: 'fedlhs test-t2d v1' });
    expect(card.indicator).toBe({ low: 'info', moderate: 'warning', high: 'critical' }[expected!.band]);
    expect(card.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Same call, same card.
    const again = (await (await post('/cds-services/fedlhs-test-t2d', hookRequest(older))).json()) as { cards: unknown[] };
    expect(again.cards[0]).toEqual(card);
  });

  it('POST /score: features for any release, or a patient Bundle (same risk as the hook)', async () => {
    const hook = (await (await post('/cds-services/fedlhs-test-t2d', hookRequest(older))).json()) as { cards: { detail: string }[] };
    const hookRisk = /\((0\.\d{6})\)/.exec(hook.cards[0]!.detail)![1];
    const byBundle = await post('/score', { study: 'test-t2d', patient: bundle(older) });
    expect(byBundle.status).toBe(200);
    expect(await byBundle.json()).toEqual({ risk: Number(hookRisk), band: expect.any(String), study: 'test-t2d', version: 1, indexDate: '2020-05-01', imputed: [] });
    const byFeatures = await post('/score', { study: 'flat-study', features: { a: 1, b: null, c: 0.5, d: -2 } });
    expect(byFeatures.status).toBe(200);
    expect(await byFeatures.json()).toMatchObject({ study: 'flat-study', version: 1, band: expect.any(String), risk: expect.any(Number) });
  });

  it('refuses bad requests with a clear 4xx and never a guess', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/cds-services/fedlhs-nope', hookRequest(older), 404, /no CDS service "fedlhs-nope" here \(services: fedlhs-flat-study, fedlhs-test-t2d\)/],
      ['/cds-services/fedlhs-flat-study', hookRequest(older), 404, /flat-table release/],
      ['/cds-services/fedlhs-test-t2d', '{not json', 400, /not JSON/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), hook: 'order-select' }, 400, /hook must be "patient-view"/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), hookInstance: undefined }, 400, /hookInstance is missing/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), context: {} }, 400, /context.patientId is missing/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), prefetch: undefined }, 412, /prefetch is missing: this service needs patient, observations, conditions, encounters/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), prefetch: { patient: older[0] } }, 412, /prefetch observations, conditions, encounters missing/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), prefetch: { ...(hookRequest(older).prefetch as object), observations: null } }, 412, /prefetch observations is null .* needs it for feature glucose/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), prefetch: { ...(hookRequest(older).prefetch as object), encounters: { ...bundle([]), link: [{ relation: 'next', url: 'x' }] } } }, 412, /paged search/],
      ['/cds-services/fedlhs-test-t2d', hookRequest(older, 'someone-else'), 400, /not the patient of context.patientId/],
      ['/cds-services/fedlhs-test-t2d', { ...hookRequest(older), prefetch: { ...(hookRequest(older).prefetch as object), conditions: [] } }, 400, /prefetch conditions must be a FHIR Bundle/],
      ['/cds-services/fedlhs-test-t2d', hookRequest(testPatientResources('p-novisit', { birthDate: '1960-01-01', gender: 'female' })), 422, /cannot be scored by fedlhs test-t2d v1: no index encounter/],
      ['/cds-services/fedlhs-test-t2d', hookRequest(testPatientResources('p-case', { birthDate: '1960-01-01', gender: 'female', visit: '2020-01-01', outcome: '2019-01-01' })), 422, /outcome on or before index/],
      ['/cds-services/fedlhs-test-t2d', hookRequest(testPatientResources('p-child', { birthDate: '2015-01-01', gender: 'female', visit: '2020-01-01' })), 422, /age outside eligibility/],
      ['/cds-services/fedlhs-test-t2d', hookRequest(testPatientResources('p-unit', { birthDate: '1960-01-01', gender: 'female', visit: '2020-01-01', glucose: 7, unit: 'mmol/mol' })), 422, /feature glucose has an observation in unit "mmol\/mol", which cannot be converted to mg\/dL/],
      ['/score', { features: { a: 1 } }, 400, /several releases are deployed \(flat-study, test-t2d\); name the study/],
      ['/score', { study: 'nope', features: {} }, 404, /no release of study "nope" is deployed/],
      ['/score', { study: 'flat-study', features: { a: 1, b: 2, c: '3' } }, 400, /missing features d \(send null for a value not known\)/],
      ['/score', { study: 'flat-study', features: { a: 1, b: 2, c: '3', d: 4 } }, 400, /feature c must be a number or null/],
      ['/score', { study: 'test-t2d', patient: bundle([]) }, 400, /exactly one Patient resource, it holds 0/],
      ['/score', { study: 'test-t2d' }, 400, /send either features .* or patient/],
    ];
    for (const [path, body, status, message] of cases) {
      const res = await post(path, body);
      const answer = (await res.json()) as { error: string };
      expect({ path, status: res.status, error: answer.error }).toEqual({ path, status, error: expect.stringMatching(message) });
    }
  });

  it('413 for a body over 1 MiB; 404/405 for other endpoints and methods', async () => {
    const big = await post('/cds-services/fedlhs-test-t2d', JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: string }).error).toBe('request body over 1048576 bytes');
    expect((await fetch(`${service.url}/nothing`)).status).toBe(404);
    expect((await fetch(`${service.url}/cds-services/fedlhs-test-t2d`)).status).toBe(405);
  });

  it('logs each request with its status and duration, and never a patient id', () => {
    const requests = logged.filter((o) => (o as { event?: string }).event === 'scoring.request');
    expect(requests.length).toBeGreaterThan(10);
    expect(requests[0]).toEqual({ event: 'scoring.request', method: 'GET', endpoint: '/cds-services', status: 200, ms: expect.any(Number) });
    expect(JSON.stringify(logged)).not.toMatch(/p-older|p-unit|p-case|someone-else/);
  });
});
