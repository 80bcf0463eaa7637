import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FedlhsError, rocAuc } from '@fedlhs/core';
import { createFhirWriter } from './fhir-writer.js';
import { createOmopWriter } from './omop-writer.js';
import { simulatePatient, type SimPatient } from './patient.js';
import { validateProfile, type ClinicProfile } from './profile.js';
import { createIdFactory, createRng, mixSeed } from './rng.js';
import { MS_PER_DAY, isoDateTime } from './time.js';
import { createSyntheaWriter } from './synthea-writer.js';
import type { ClinicTruth, Exclusion, PatientTruth } from './truth.js';
import type { ExportWriter } from './writer.js';

/** Export formats generateClinic can write (the names the ehr readers and the node agent use). */
export type ExportFormat = 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';

/** All three formats, the default. */
export const ALL_FORMATS: readonly ExportFormat[] = ['synthea-csv', 'fhir-ndjson', 'omop-csv'];

/** The directory under a clinic's output directory that holds each format. */
export const FORMAT_DIRS: Readonly<Record<ExportFormat, string>> = { 'synthea-csv': 'synthea', 'fhir-ndjson': 'fhir', 'omop-csv': 'omop' };

/** How generateClinic writes a clinic beyond its profile. */
export interface GenerateOptions {
  /**
   * Whole days added to every date (births, encounters, conditions, the truth's index day): the
   * same patients on a moved calendar. The multi-year simulation (drift.ts) aligns each year's
   * export with the index window its run derives. Default 0.
   */
  dayOffset?: number | undefined;
}

/** Moves every date of a patient by `days` (in place). Encounters are shared by their conditions and observations, so each moves once. */
function shiftPatient(p: SimPatient, days: number): void {
  p.birthDay += days;
  for (const e of p.encounters) {
    e.day += days;
    e.startMs += days * MS_PER_DAY;
    e.stopMs += days * MS_PER_DAY;
    e.start = isoDateTime(e.startMs);
    e.stop = isoDateTime(e.stopMs);
  }
  for (const c of p.conditions) {
    c.day += days;
    if (c.stopDay !== undefined) c.stopDay += days;
  }
  if (p.truth.indexDay !== null) p.truth.indexDay += days;
}

const CITIES = ['Springfield', 'Riverton', 'Lakeside', 'Fairview', 'Milton', 'Greenville', 'Oakdale', 'Ashford'];

/**
 * Generates one synthetic clinic into `outDir`: any of `synthea/*.csv`, `fhir/*.ndjson` (+
 * `manifest.json`) and `omop/*.csv` (OMOP CDM v5.4) hold the same patients and events;
 * `truth.json` (outside the export directories, which agents read) holds the returned truth.
 * Deterministic: the same profile (and options) gives byte-identical files whatever `formats`
 * is. Throws CONFIG_INVALID on a bad profile, INVALID_ARGUMENT on an unknown format or offset.
 */
export async function generateClinic(profile: ClinicProfile, outDir: string, formats: readonly ExportFormat[] = ALL_FORMATS, options: GenerateOptions = {}): Promise<ClinicTruth> {
  validateProfile(profile);
  const dayOffset = options.dayOffset ?? 0;
  if (!Number.isInteger(dayOffset) || Math.abs(dayOffset) > 36_500) throw new FedlhsError('INVALID_ARGUMENT', `dayOffset must be a whole number of days within ±36500, got ${dayOffset}`, { details: { field: 'dayOffset' } });
  for (const f of formats) if (!ALL_FORMATS.includes(f)) throw new FedlhsError('INVALID_ARGUMENT', `unknown export format '${String(f)}'`, { details: { field: 'formats' } });
  await mkdir(outDir, { recursive: true });

  const rng = createRng(profile.seed);
  const newId = createIdFactory(rng, profile.seed);
  const clinic = { organization: newId(), provider: newId(), payer: newId(), city: rng.choice(CITIES) };
  // Only a clinic with an optional assay draws from this stream (see PatientContext.assay).
  const assaySeed = mixSeed(profile.seed, 0xa55a);
  const assayRng = createRng(assaySeed);
  const assay = profile.insulinAssay === true ? { rng: assayRng, newId: createIdFactory(assayRng, assaySeed) } : undefined;
  const writers: ExportWriter[] = [];
  try {
    if (formats.includes('synthea-csv')) writers.push(await createSyntheaWriter(join(outDir, FORMAT_DIRS['synthea-csv']), clinic));
    if (formats.includes('fhir-ndjson')) writers.push(await createFhirWriter(join(outDir, FORMAT_DIRS['fhir-ndjson'])));
    if (formats.includes('omop-csv')) writers.push(await createOmopWriter(join(outDir, FORMAT_DIRS['omop-csv'])));

    const patients: PatientTruth[] = [];
    for (let i = 0; i < profile.patients; i++) {
      const patient = simulatePatient({ rng, newId, profile, assay });
      if (dayOffset !== 0) shiftPatient(patient, dayOffset);
      patients.push(patient.truth);
      for (const w of writers) w.write(patient);
      for (const w of writers) await w.maybeFlush();
    }
    for (const w of writers) await w.close();

    const truth = summarise(profile, patients);
    await writeFile(join(outDir, 'truth.json'), `${JSON.stringify(truth)}\n`);
    return truth;
  } catch (err) {
    await Promise.all(writers.map((w) => w.abort()));
    throw err;
  }
}

/** The clinic-level truth of a list of patient truths. */
export function summarise(profile: ClinicProfile, patients: PatientTruth[]): ClinicTruth {
  const risks: number[] = [];
  const labels: number[] = [];
  const exclusions: Record<Exclusion, number> = { 'no-index-visit': 0, 'under-18': 0, 'prior-t2d': 0 };
  for (const p of patients) {
    if (p.exclusion !== undefined) exclusions[p.exclusion]++;
    if (p.eligible && p.label !== null) {
      risks.push(p.risk);
      labels.push(p.label);
    }
  }
  const positives = labels.reduce((s, y) => s + y, 0);
  return {
    profile,
    patients,
    oracleAuc: rocAuc(risks, labels),
    eligible: labels.length,
    prevalence: labels.length === 0 ? 0 : positives / labels.length,
    exclusions,
  };
}
