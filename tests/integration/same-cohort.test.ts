/**
 * Same patients, same cohort, three formats: one synthetic clinic written as a Synthea CSV
 * export, a FHIR Bulk Data export and an OMOP CDM v5.4 export, each read by its @fedlhs/ehr
 * reader and run through the headline T2D study's cohort definition. The three cohorts must be
 * identical (patients, labels, every feature value, exclusions) and equal to the generator's
 * truth.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cohortSpecSchema, type CohortSpec } from '@fedlhs/core';
import { extractCohort, openFhirBulk, openOmopCsv, openSyntheaCsv, type CohortResult, type EhrSource } from '@fedlhs/ehr';
import { t2dManifest } from '@fedlhs/simulator';
import { defaultClinics, FORMAT_DIRS, generateClinic, type ClinicProfile, type ClinicTruth, type ExportFormat } from '@fedlhs/synth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A small clinic (mg/dL, %, glucose coded 2345-7), big enough to have every exclusion reason
// and some patients whose index is an acute ambulatory visit before their first wellness visit.
const profile: ClinicProfile = { ...defaultClinics()[3]!, name: 'same-cohort', patients: 400, seed: 4242 };
const FORMATS: readonly ExportFormat[] = ['synthea-csv', 'fhir-ndjson', 'omop-csv'];
const OPEN: Record<ExportFormat, (dir: string) => EhrSource> = { 'synthea-csv': openSyntheaCsv, 'fhir-ndjson': openFhirBulk, 'omop-csv': (dir) => openOmopCsv(dir) };

/** A format's cohort keyed by the Synthea/FHIR patient UUID (OMOP person_id mapped through person_source_value). */
interface Cohort {
  result: CohortResult;
  features: readonly string[];
  rows: Map<string, { label: number; x: Float32Array }>;
}

let root: string;
let truth: ClinicTruth;
let spec: CohortSpec;
const cohorts = {} as Record<ExportFormat, Cohort>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fedlhs-same-cohort-'));
  truth = await generateClinic(profile, root, FORMATS);
  const cohort = (t2dManifest({ rounds: 1, clinics: 1, quorum: 1, seed: 1 }).data as { cohort: unknown }).cohort;
  spec = cohortSpecSchema.parse(cohort);

  const personCsv = (await readFile(join(root, FORMAT_DIRS['omop-csv'], 'person.csv'), 'utf8')).trimEnd().split('\n');
  const header = personCsv[0]!.split(',');
  const [idAt, sourceAt] = [header.indexOf('person_id'), header.indexOf('person_source_value')];
  const uuidOfPerson = new Map(personCsv.slice(1).map((line) => [line.split(',')[idAt]!, line.split(',')[sourceAt]!]));

  for (const format of FORMATS) {
    const result = await extractCohort(OPEN[format](join(root, FORMAT_DIRS[format])), spec);
    const { features, x, y, keys } = result.dataset;
    const width = features.length;
    const rows = new Map<string, { label: number; x: Float32Array }>();
    keys.forEach((key, r) => {
      const id = format === 'omop-csv' ? (uuidOfPerson.get(key) ?? `unknown person_id ${key}`) : key;
      rows.set(id, { label: y[r]!, x: x.subarray(r * width, (r + 1) * width) });
    });
    cohorts[format] = { result, features, rows };
  }
}, 120_000);

afterAll(async () => {
  if (process.env.FEDLHS_KEEP_TEST_DIRS !== '1') await rm(root, { recursive: true, force: true });
});

const sorted = (ids: Iterable<string>): string[] => [...ids].sort();
const truthEligible = (): string[] => sorted(truth.patients.filter((p) => p.eligible).map((p) => p.patientId));

/** The first (patient, feature) whose Float32 values differ between two cohorts (NaN equals NaN), described; undefined if none. */
function firstFeatureDifference(a: Cohort, b: Cohort, names: [string, string]): string | undefined {
  for (const id of sorted(a.rows.keys())) {
    const ra = a.rows.get(id)!;
    const rb = b.rows.get(id);
    if (rb === undefined) return `patient ${id} is in ${names[0]} only`;
    for (let j = 0; j < a.features.length; j++) {
      const va = ra.x[j]!;
      const vb = rb.x[j]!;
      if (!Object.is(va, vb) && !(Number.isNaN(va) && Number.isNaN(vb))) {
        return `patient ${id}, feature ${a.features[j]}: ${names[0]} ${va}, ${names[1]} ${vb}`;
      }
    }
  }
  return undefined;
}

describe('one clinic in three formats', () => {
  it('uses the headline study: index = first outpatient (wellness or ambulatory) visit in 2015-2018', () => {
    expect(spec.index).toMatchObject({ classes: ['outpatient'], from: '2015-01-01', to: '2018-12-31' });
    expect(truth.eligible).toBeGreaterThan(300);
  });

  it('reads every format without skipping anything', () => {
    for (const format of FORMATS) {
      const { report } = cohorts[format].result;
      expect(report.patients, format).toBe(profile.patients);
      expect(report.skipped, format).toEqual({});
      expect(report.patientLosses, format).toEqual({});
      expect(report.eventsForUnknownPatients, format).toBe(0);
      expect(report.warnings, format).toEqual([]);
    }
  });

  it('gives the truth’s eligible patients and labels in every format', () => {
    const labels = new Map(truth.patients.map((p) => [p.patientId, p.label]));
    for (const format of FORMATS) {
      const { rows } = cohorts[format];
      expect(sorted(rows.keys()), format).toEqual(truthEligible());
      const wrong = sorted(rows.keys()).filter((id) => rows.get(id)!.label !== labels.get(id));
      expect(wrong.map((id) => `${id}: extracted ${rows.get(id)!.label}, truth ${labels.get(id)}`), format).toEqual([]);
      expect(cohorts[format].result.report.positives, format).toBe(truth.patients.filter((p) => p.label === 1).length);
    }
  });

  it('excludes the same patients for the same reasons as the truth', () => {
    const expected = {
      'no index encounter in window': truth.exclusions['no-index-visit'],
      'age outside eligibility': truth.exclusions['under-18'],
      'excluded condition on or before index': truth.exclusions['prior-t2d'],
    };
    for (const format of FORMATS) {
      const excluded = Object.fromEntries(Object.entries(cohorts[format].result.report.excluded).filter(([, n]) => n > 0));
      expect(excluded, format).toEqual(Object.fromEntries(Object.entries(expected).filter(([, n]) => n > 0)));
    }
  });

  it('gives the same cohort in the three formats: patients, labels, every feature value (Float32), per-feature quality', () => {
    const base = cohorts['synthea-csv'];
    for (const format of ['fhir-ndjson', 'omop-csv'] as const) {
      const other = cohorts[format];
      expect(other.features).toEqual(base.features);
      expect(sorted(other.rows.keys()), format).toEqual(sorted(base.rows.keys()));
      const labelDiff = sorted(base.rows.keys()).find((id) => other.rows.get(id)?.label !== base.rows.get(id)!.label);
      expect(labelDiff, `first patient with another label in ${format}`).toBeUndefined();
      expect(firstFeatureDifference(base, other, ['synthea-csv', format]), `first differing feature value, synthea-csv vs ${format}`).toBeUndefined();
      expect(other.result.report.excluded, format).toEqual(base.result.report.excluded);
      expect(other.result.report.features, format).toEqual(base.result.report.features);
    }
  });

  it('has real values behind the features (not three equally empty cohorts)', () => {
    const { features, rows } = cohorts['synthea-csv'];
    const present = (name: string): number => [...rows.values()].filter((r) => !Number.isNaN(r.x[features.indexOf(name)]!)).length;
    for (const name of ['bmi', 'systolic_bp', 'diastolic_bp', 'glucose', 'hba1c', 'total_cholesterol', 'current_smoker']) {
      expect(present(name), name).toBeGreaterThan(rows.size / 10);
    }
  });
});
