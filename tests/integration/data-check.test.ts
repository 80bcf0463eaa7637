// `fedlhs-agent data check` on exports shaped like real ones (written by real-shaped-exports.ts):
// what it prints is what a clinic IT person sees before joining a study.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentMain, t2dManifest } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';
import { fixturePatients, writeFhirNoManifestNoObservations, writeOmopOutpatientOnly, writeSynthea } from './real-shaped-exports.js';

const ws = useWorkspace();

async function dataCheck(format: string, path: string, extra: string[] = []): Promise<string> {
  const manifest = join(ws.dir(), 't2d.json');
  writeFileSync(manifest, JSON.stringify(t2dManifest({ rounds: 1, clinics: 1, quorum: 1, seed: 1 })));
  const r = await runCli(agentMain, ['data', 'check', '--data-format', format, '--data-path', path, '--manifest', manifest, '--state-dir', join(ws.dir(), 'state'), ...extra]);
  expect(r.code, r.stderr).toBe(0);
  if (process.env.FEDLHS_PRINT_DATA_CHECK === '1') process.stdout.write(`\n===== ${format} ${path}\n${r.stdout.replace(/profile:\n[\s\S]*?\n}\n/, 'profile: (omitted)\n')}`);
  return r.stdout;
}

const eligibleOf = (out: string): number => Number(/(\d+) eligible/.exec(out)?.[1] ?? -1);

describe('data check on real-shaped exports', () => {
  it('finds the headline cohort in an OMOP export whose visits are only outpatient and office visits', async () => {
    const dir = join(ws.dir(), 'omop');
    writeOmopOutpatientOnly(dir, fixturePatients(200, 3));
    const out = await dataCheck('omop-csv', dir);
    expect(out).toContain('index event: first encounter with class outpatient in 2015-01-01..2018-12-31');
    expect(eligibleOf(out)).toBe(200);
    expect(out).toMatch(/encounters in the index window, by class:\n {4}ambulatory: \d+\n {4}emergency: \d+/);
    // Smoking status comes from the OBSERVATION table, glucose and BMI from MEASUREMENT.
    expect(out).toMatch(/current_smoker\s+0\.0%/);
    expect(out).toMatch(/glucose\s+0\.0%/);
    // The fixture records no blood pressure, HbA1c or lipids: said in words, not only as 100 % missing.
    expect(out).toContain('WARNING: no eligible patient has a value for systolic_bp, diastolic_bp, hba1c, total_cholesterol, hdl, triglycerides: check the codes and units');
    expect(out).toMatch(/\nREADY: 200 usable records/);
  });

  it('reads a FHIR export without a manifest in numbered files, and says plainly that it has no Observation resources', async () => {
    const dir = join(ws.dir(), 'fhir');
    writeFhirNoManifestNoObservations(dir, fixturePatients(120, 4));
    const out = await dataCheck('fhir-ndjson', dir);
    expect(eligibleOf(out)).toBeGreaterThanOrEqual(100);
    expect(out).toContain('observation  (none: no Observation resources)');
    expect(out).toContain(
      'WARNING: no Observation resources in the export: features bmi, systolic_bp, diastolic_bp, glucose, hba1c, total_cholesterol, hdl, triglycerides, current_smoker will all be missing',
    );
  });

  it('counts Latin-1 bytes in UTF-8 mode without losing a patient, and reads them cleanly with --data-encoding latin1', async () => {
    const dir = join(ws.dir(), 'synthea');
    writeSynthea(dir, fixturePatients(120, 4), { latin1Names: true });
    const utf8 = await dataCheck('synthea-csv', dir);
    expect(utf8).toContain('patients.csv: bytes not valid UTF-8 in a column not read (if the export is Latin-1, set data.encoding to latin1); row kept: 60');
    expect(utf8).toMatch(/120 patients read/);
    const latin1 = await dataCheck('synthea-csv', dir, ['--data-encoding', 'latin1']);
    expect(latin1).toMatch(/records kept with something not read, by reason:\n {4}\(none\)/);
    expect(eligibleOf(latin1)).toBe(eligibleOf(utf8));
  });

  it('says NOT READY for a cohort without cases, with the same verdict the running agent sends', async () => {
    const dir = join(ws.dir(), 'nocases');
    writeSynthea(dir, fixturePatients(120, 0));
    const out = await dataCheck('synthea-csv', dir);
    expect(out).toMatch(/0 with the outcome/);
    expect(out).toContain('NOT READY: no eligible patient has the outcome (no cases): nothing to learn from or evaluate on here');
  });

  it('says NOT READY when the hold-out split has fewer cases than the minimum cell count', async () => {
    const dir = join(ws.dir(), 'fewcases');
    writeSynthea(dir, fixturePatients(120, 30));
    const out = await dataCheck('synthea-csv', dir);
    expect(out).toMatch(/NOT READY: fewer than 10 cases in the (training|hold-out) split \(the study's minimum cell count\)/);
  });
});
