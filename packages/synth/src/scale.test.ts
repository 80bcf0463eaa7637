import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateClinic } from './generate.js';
import { defaultClinics } from './profile.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'synth-scale-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// No timing assertion (CI machines vary); it takes about 6 s on a 2-core machine. What matters
// is that 20 000 patients stream through without building giant strings.
it('generates a 20 000-patient clinic in all three formats', async () => {
  const profile = { ...defaultClinics()[0]!, name: 'clinic-huge', patients: 20_000, seed: 99 };
  const truth = await generateClinic(profile, root);
  expect(truth.patients).toHaveLength(20_000);
  expect(truth.eligible).toBeGreaterThan(15_000);
  expect((await stat(join(root, 'synthea', 'observations.csv'))).size).toBeGreaterThan(50_000_000);
  expect((await stat(join(root, 'fhir', 'Observation.ndjson'))).size).toBeGreaterThan(200_000_000);
  expect((await stat(join(root, 'omop', 'measurement.csv'))).size).toBeGreaterThan(50_000_000);
});
