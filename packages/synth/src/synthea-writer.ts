/** Writes patients as a Synthea-style CSV export (patients, encounters, conditions, observations). */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENCOUNTER_TYPES, LOINC, SMOKING_FINDINGS, type Coded } from './codes.js';
import { LineSink } from './line-sink.js';
import type { SimPatient } from './patient.js';
import { isoDate } from './time.js';
import type { ExportWriter } from './writer.js';

/** Header rows, exactly as Synthea writes them. */
export const SYNTHEA_HEADERS = {
  patients:
    'Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,RACE,ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON,HEALTHCARE_EXPENSES,HEALTHCARE_COVERAGE',
  encounters:
    'Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,BASE_ENCOUNTER_COST,TOTAL_CLAIM_COST,PAYER_COVERAGE,REASONCODE,REASONDESCRIPTION',
  conditions: 'START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION',
  observations: 'DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE',
} as const;

/** Quotes a CSV field when it needs it (RFC 4180). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

const describe = (c: Coded): string => `${c.code},${csvField(c.display)}`;

/** Creates the Synthea CSV writer for `dir` (created if missing). */
export async function createSyntheaWriter(dir: string, clinic: { organization: string; provider: string; payer: string; city: string }): Promise<ExportWriter> {
  await mkdir(dir, { recursive: true });
  const patients = new LineSink(join(dir, 'patients.csv'));
  const encounters = new LineSink(join(dir, 'encounters.csv'));
  const conditions = new LineSink(join(dir, 'conditions.csv'));
  const observations = new LineSink(join(dir, 'observations.csv'));
  const sinks = [patients, encounters, conditions, observations];
  patients.push(SYNTHEA_HEADERS.patients);
  encounters.push(SYNTHEA_HEADERS.encounters);
  conditions.push(SYNTHEA_HEADERS.conditions);
  observations.push(SYNTHEA_HEADERS.observations);
  const city = csvField(clinic.city);

  return {
    write(p: SimPatient): void {
      patients.push(
        [
          p.id, isoDate(p.birthDay), '', p.ssn, p.drivers, p.passport, p.female ? 'Mrs.' : 'Mr.', p.first, p.last, '', '',
          p.married ? 'M' : 'S', csvField(p.race), csvField(p.ethnicity), p.female ? 'F' : 'M', `${city}  Massachusetts  US`,
          p.address, city, 'Massachusetts', 'Middlesex County', p.zip, '', '', p.expenses.toFixed(2), p.coverage.toFixed(2),
        ].join(','),
      );
      for (const e of p.encounters) {
        const type = ENCOUNTER_TYPES[e.cls];
        const cost = e.cls === 'emergency' ? '146.18' : e.cls === 'wellness' ? '136.80' : '85.55';
        const reason = e.reason === undefined ? ',' : describe(e.reason);
        encounters.push(
          `${e.id},${e.start},${e.stop},${p.id},${clinic.organization},${clinic.provider},${clinic.payer},${e.cls},${describe(type)},${cost},${cost},0.00,${reason}`,
        );
      }
      for (const c of p.conditions) {
        conditions.push(`${isoDate(c.day)},${c.stopDay === undefined ? '' : isoDate(c.stopDay)},${p.id},${c.encounter.id},${describe(c.coded)}`);
      }
      for (const o of p.observations) {
        const head = `${o.encounter.start},${p.id},${o.encounter.id}`;
        if (o.kind === 'quantity') {
          const q = o.quantity;
          observations.push(`${head},${q.category},${describe(q.loinc)},${q.value},${q.unit},numeric`);
        } else if (o.kind === 'bp') {
          observations.push(`${head},vital-signs,${describe(LOINC.sbp)},${o.sbp},mm[Hg],numeric`);
          observations.push(`${head},vital-signs,${describe(LOINC.dbp)},${o.dbp},mm[Hg],numeric`);
        } else {
          observations.push(`${head},social-history,${describe(LOINC.smoking)},${csvField(SMOKING_FINDINGS[o.status].display)},,text`);
        }
      }
    },
    async maybeFlush(): Promise<void> {
      for (const s of sinks) await s.maybeFlush();
    },
    async close(): Promise<void> {
      for (const s of sinks) await s.close();
    },
    async abort(): Promise<void> {
      await Promise.all(sinks.map((s) => s.abort()));
    },
  };
}
