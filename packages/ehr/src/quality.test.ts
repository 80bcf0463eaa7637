import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ClinicalEvent, EhrSource, PatientRecord } from './events.js';
import { openFhirBulk } from './fhir.js';
import { openOmopCsv } from './omop.js';
import { profileSource } from './quality.js';
import { openSyntheaCsv } from './synthea.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

describe('profileSource', () => {
  it('summarises the FHIR fixture with counts only, unit mismatch visible', async () => {
    const profile = await profileSource(openFhirBulk(join(fixtures, 'fhir')));
    expect(profile).toEqual({
      format: 'fhir-ndjson',
      patients: { count: 4, duplicateIds: 0, bySex: { female: 2, male: 2, other: 0, unknown: 0 }, deceased: 1 },
      events: { encounter: 6, condition: 4, observation: 7, medication: 2 },
      eventsWithUnknownPatient: 2,
      codes: {
        ICD10CM: { distinct: 1, events: 1, top: [{ code: 'I10', count: 1 }] },
        LOINC: {
          distinct: 6,
          events: 7,
          top: [
            { code: '2339-0', count: 2 },
            { code: '29463-7', count: 1 },
            { code: '39156-5', count: 1 },
            { code: '72166-2', count: 1 },
            { code: '8462-4', count: 1 },
            { code: '8480-6', count: 1 },
          ],
        },
        OTHER: { distinct: 2, events: 2, top: [{ code: 'AMB', count: 1 }, { code: 'HH', count: 1 }] },
        RXNORM: { distinct: 2, events: 2, top: [{ code: '314076', count: 1 }, { code: '860975', count: 1 }] },
        SNOMED: {
          distinct: 7,
          events: 7,
          top: ['162673000', '185345009', '32485007', '40055000', '44054006', '444814009', '50849002'].map((code) => ({ code, count: 1 })),
        },
      },
      units: [
        { system: 'LOINC', code: '2339-0', units: { 'mg/dL': 1, 'mmol/L': 1 }, mixed: true },
        { system: 'LOINC', code: '29463-7', units: { kg: 1 }, mixed: false },
        { system: 'LOINC', code: '39156-5', units: { 'kg/m2': 1 }, mixed: false },
        { system: 'LOINC', code: '8462-4', units: { 'mm[Hg]': 1 }, mixed: false },
        { system: 'LOINC', code: '8480-6', units: { 'mm[Hg]': 1 }, mixed: false },
      ],
      values: [
        { system: 'LOINC', code: '2339-0', events: 2, missing: 0, min: 5.4, max: 95 },
        { system: 'LOINC', code: '29463-7', events: 1, missing: 0, min: 70.5, max: 70.5 },
        { system: 'LOINC', code: '39156-5', events: 1, missing: 0, min: 27.3, max: 27.3 },
        { system: 'LOINC', code: '72166-2', events: 1, missing: 1 },
        { system: 'LOINC', code: '8462-4', events: 1, missing: 0, min: 82, max: 82 },
        { system: 'LOINC', code: '8480-6', events: 1, missing: 0, min: 128, max: 128 },
      ],
      skipped: {
        'Condition: entered-in-error': 1,
        'Encounter: missing period.start': 1,
        'MedicationRequest: medicationReference not supported': 1,
        'Observation: entered-in-error': 1,
        'Observation: malformed JSON line': 1,
        'Observation: missing subject': 1,
        'Observation: uncoded valueString': 1,
        'Patient: missing birthDate': 1,
      },
    });
    expect(JSON.stringify(profile)).not.toMatch(/pt\d/);
  });

  it('shows the same glucose unit mismatch in Synthea and OMOP exports', async () => {
    for (const source of [openSyntheaCsv(join(fixtures, 'synthea-v2')), openOmopCsv(join(fixtures, 'omop'))]) {
      const profile = await profileSource(source);
      expect(profile.units.find((u) => u.code === '2339-0')).toEqual({ system: 'LOINC', code: '2339-0', units: { 'mg/dL': 1, 'mmol/L': 1 }, mixed: true });
      expect(profile.eventsWithUnknownPatient).toBeGreaterThan(0);
      expect(Object.keys(profile.skipped).length).toBeGreaterThan(0);
    }
  });

  it('limits top codes, counts duplicate patients and values without units', async () => {
    const patient: PatientRecord = { id: 'a', birthDay: 0, sex: 'unknown' };
    const event = (code: string, value?: number, unit?: string): ClinicalEvent => ({ kind: 'observation', patientId: 'a', day: 1, system: 'LOINC', code, value, unit });
    const source: EhrSource = {
      format: 'synthea-csv',
      skipped: {},
      patientLosses: {},
      notes: {},
      inventory: () => Promise.reject(new Error('not used')),
      async *patients() {
        yield patient;
        yield patient;
      },
      async *events() {
        yield* [event('1-1', 2), event('1-1', 3, 'mg'), event('2-2', -1), event('3-3'), event('2-2', 4)];
      },
    };
    const profile = await profileSource(source, { topCodes: 1 });
    expect(profile.patients).toEqual({ count: 2, duplicateIds: 1, bySex: { female: 0, male: 0, other: 0, unknown: 2 }, deceased: 0 });
    expect(profile.codes.LOINC).toEqual({ distinct: 3, events: 5, top: [{ code: '1-1', count: 2 }] });
    expect(profile.units).toEqual([
      { system: 'LOINC', code: '1-1', units: { '': 1, mg: 1 }, mixed: true },
      { system: 'LOINC', code: '2-2', units: { '': 2 }, mixed: false },
    ]);
    expect(profile.values).toEqual([
      { system: 'LOINC', code: '1-1', events: 2, missing: 0, min: 2, max: 3 },
      { system: 'LOINC', code: '2-2', events: 2, missing: 0, min: -1, max: 4 },
      { system: 'LOINC', code: '3-3', events: 1, missing: 1 },
    ]);
  });
});
