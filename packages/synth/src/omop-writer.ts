/**
 * Writes patients as an OMOP CDM v5.4 export: one CSV per table (lowercase names, header row,
 * comma-delimited), the standard columns of each table in CDM order, empty where the generator
 * has nothing to say. Same patients, encounters, conditions and observations as the Synthea and
 * FHIR exports, laid out the way ETL-Synthea lays them out.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LOINC, SMOKING_FINDINGS } from './codes.js';
import { LineSink } from './line-sink.js';
import type { EncounterClass, SimEncounter, SimPatient } from './patient.js';
import { csvField } from './synthea-writer.js';
import { isoDate, sqlDateTime } from './time.js';
import type { ExportWriter } from './writer.js';

/** The tables written, by file name (without .csv), with their CDM v5.4 columns in order. */
export const OMOP_COLUMNS = {
  person: [
    'person_id', 'gender_concept_id', 'year_of_birth', 'month_of_birth', 'day_of_birth', 'birth_datetime', 'race_concept_id',
    'ethnicity_concept_id', 'location_id', 'provider_id', 'care_site_id', 'person_source_value', 'gender_source_value',
    'gender_source_concept_id', 'race_source_value', 'race_source_concept_id', 'ethnicity_source_value', 'ethnicity_source_concept_id',
  ],
  observation_period: ['observation_period_id', 'person_id', 'observation_period_start_date', 'observation_period_end_date', 'period_type_concept_id'],
  visit_occurrence: [
    'visit_occurrence_id', 'person_id', 'visit_concept_id', 'visit_start_date', 'visit_start_datetime', 'visit_end_date', 'visit_end_datetime',
    'visit_type_concept_id', 'provider_id', 'care_site_id', 'visit_source_value', 'visit_source_concept_id', 'admitted_from_concept_id',
    'admitted_from_source_value', 'discharged_to_concept_id', 'discharged_to_source_value', 'preceding_visit_occurrence_id',
  ],
  condition_occurrence: [
    'condition_occurrence_id', 'person_id', 'condition_concept_id', 'condition_start_date', 'condition_start_datetime', 'condition_end_date',
    'condition_end_datetime', 'condition_type_concept_id', 'condition_status_concept_id', 'stop_reason', 'provider_id', 'visit_occurrence_id',
    'visit_detail_id', 'condition_source_value', 'condition_source_concept_id', 'condition_status_source_value',
  ],
  measurement: [
    'measurement_id', 'person_id', 'measurement_concept_id', 'measurement_date', 'measurement_datetime', 'measurement_time',
    'measurement_type_concept_id', 'operator_concept_id', 'value_as_number', 'value_as_concept_id', 'unit_concept_id', 'range_low',
    'range_high', 'provider_id', 'visit_occurrence_id', 'visit_detail_id', 'measurement_source_value', 'measurement_source_concept_id',
    'unit_source_value', 'unit_source_concept_id', 'value_source_value', 'measurement_event_id', 'meas_event_field_concept_id',
  ],
  observation: [
    'observation_id', 'person_id', 'observation_concept_id', 'observation_date', 'observation_datetime', 'observation_type_concept_id',
    'value_as_number', 'value_as_string', 'value_as_concept_id', 'qualifier_concept_id', 'unit_concept_id', 'provider_id',
    'visit_occurrence_id', 'visit_detail_id', 'observation_source_value', 'observation_source_concept_id', 'unit_source_value',
    'qualifier_source_value', 'value_source_value', 'observation_event_id', 'obs_event_field_concept_id',
  ],
} as const satisfies Record<string, readonly string[]>;

/** OMOP table names written, in file order. */
export type OmopTable = keyof typeof OMOP_COLUMNS;
/** The tables written. No death or drug_exposure: the generator simulates neither deaths nor medications. */
export const OMOP_TABLES = Object.keys(OMOP_COLUMNS) as OmopTable[];

/** Type concept of every row: 32817 "EHR". */
export const EHR_TYPE_CONCEPT = 32817;

/** Standard visit concepts by encounter class: 9202 Outpatient Visit (wellness and ambulatory alike), 9203 Emergency Room Visit. */
export const VISIT_CONCEPTS: Readonly<Record<EncounterClass, number>> = { wellness: 9202, ambulatory: 9202, emergency: 9203 };
/** Gender concepts: 8507 MALE, 8532 FEMALE. */
const GENDER_CONCEPTS = { male: 8507, female: 8532 } as const;
/** Race concepts for the race keys with physiological effects; anything else is 0 (no matching concept). */
const RACE_CONCEPTS: Readonly<Record<string, number>> = { white: 8527, black: 8516, asian: 8515 };
const ETHNICITY_CONCEPTS: Readonly<Record<string, number>> = { hispanic: 38003563, nonhispanic: 38003564 };

/**
 * Standard concepts of the LOINC codes written (LOINC measurements are standard, so source and
 * standard concept are the same). Codes not listed are written with concept 0.
 */
const MEASUREMENT_CONCEPTS: Readonly<Record<string, number>> = {
  [LOINC.bmi.code]: 3038553,
  [LOINC.sbp.code]: 3004249,
  [LOINC.dbp.code]: 3012888,
  [LOINC.glucoseBlood.code]: 3000483,
  [LOINC.glucoseSerum.code]: 3004501,
  [LOINC.hba1c.code]: 3004410,
  [LOINC.cholesterol.code]: 3027114,
  [LOINC.hdl.code]: 3007070,
  [LOINC.triglycerides.code]: 3022192,
};
/** UCUM unit concepts; mmol/mol is written with 0 (unit_source_value holds the unit either way). */
const UNIT_CONCEPTS: Readonly<Record<string, number>> = { 'mg/dL': 8840, 'mmol/L': 8753, 'mm[Hg]': 8876, '%': 8554, 'kg/m2': 9531 };
/** Standard concepts of the SNOMED conditions where they are certain (type 2 diabetes, essential hypertension); others 0. */
const CONDITION_CONCEPTS: Readonly<Record<string, number>> = { '44054006': 201826, '59621000': 320128 };

/** Creates the OMOP CSV writer for `dir` (created if missing). person_id runs 1..N in generation order. */
export async function createOmopWriter(dir: string): Promise<ExportWriter> {
  await mkdir(dir, { recursive: true });
  const sink = (table: OmopTable): LineSink => {
    const s = new LineSink(join(dir, `${table}.csv`));
    s.push(OMOP_COLUMNS[table].join(','));
    return s;
  };
  const person = sink('person');
  const period = sink('observation_period');
  const visits = sink('visit_occurrence');
  const conditions = sink('condition_occurrence');
  const measurements = sink('measurement');
  const observations = sink('observation');
  const sinks = [person, period, visits, conditions, measurements, observations];
  let personId = 0;
  let visitId = 0;
  let conditionId = 0;
  let measurementId = 0;
  let observationId = 0;

  return {
    write(p: SimPatient): void {
      const pid = ++personId;
      const birth = isoDate(p.birthDay);
      person.push(
        `${pid},${p.female ? GENDER_CONCEPTS.female : GENDER_CONCEPTS.male},${birth.slice(0, 4)},${Number(birth.slice(5, 7))},${Number(birth.slice(8, 10))},` +
          `${birth} 00:00:00,${RACE_CONCEPTS[p.race] ?? 0},${ETHNICITY_CONCEPTS[p.ethnicity] ?? 0},,,,${p.id},${p.female ? 'F' : 'M'},,` +
          `${csvField(p.race)},,${csvField(p.ethnicity)},`,
      );

      // Visits are numbered as the encounters come (sorted by start), so each knows the one before.
      const visitIds = new Map<SimEncounter, number>();
      let previous = '';
      let firstDay = Infinity;
      let lastDay = -Infinity;
      for (const e of p.encounters) {
        const vid = ++visitId;
        visitIds.set(e, vid);
        const endDay = Math.floor(e.stopMs / 86_400_000);
        firstDay = Math.min(firstDay, e.day);
        lastDay = Math.max(lastDay, endDay);
        visits.push(
          `${vid},${pid},${VISIT_CONCEPTS[e.cls]},${isoDate(e.day)},${sqlDateTime(e.startMs)},${isoDate(endDay)},${sqlDateTime(e.stopMs)},` +
            `${EHR_TYPE_CONCEPT},,,${e.id},0,,,,,${previous}`,
        );
        previous = String(vid);
      }
      if (p.encounters.length > 0) period.push(`${pid},${pid},${isoDate(firstDay)},${isoDate(lastDay)},${EHR_TYPE_CONCEPT}`);

      for (const c of p.conditions) {
        const concept = CONDITION_CONCEPTS[c.coded.code] ?? 0;
        const end = c.stopDay === undefined ? '' : isoDate(c.stopDay);
        conditions.push(
          `${++conditionId},${pid},${concept},${isoDate(c.day)},${sqlDateTime(c.encounter.startMs)},${end},,${EHR_TYPE_CONCEPT},,,,` +
            `${visitIds.get(c.encounter)!},,${c.coded.code},${concept},`,
        );
      }

      const measurement = (e: SimEncounter, vid: number, code: string, value: number, unit: string): void => {
        const concept = MEASUREMENT_CONCEPTS[code] ?? 0;
        measurements.push(
          `${++measurementId},${pid},${concept},${isoDate(e.day)},${sqlDateTime(e.startMs)},,${EHR_TYPE_CONCEPT},,${value},,${UNIT_CONCEPTS[unit] ?? 0},,,,` +
            `${vid},,${code},${concept},${unit},,${value},,`,
        );
      };
      for (const o of p.observations) {
        const e = o.encounter;
        const vid = visitIds.get(e)!;
        if (o.kind === 'quantity') measurement(e, vid, o.quantity.loinc.code, o.quantity.value, o.quantity.unit);
        else if (o.kind === 'bp') {
          measurement(e, vid, LOINC.sbp.code, o.sbp, 'mm[Hg]');
          measurement(e, vid, LOINC.dbp.code, o.dbp, 'mm[Hg]');
        } else {
          const finding = SMOKING_FINDINGS[o.status];
          observations.push(
            `${++observationId},${pid},0,${isoDate(e.day)},${sqlDateTime(e.startMs)},${EHR_TYPE_CONCEPT},,${csvField(finding.display)},0,,,,` +
              `${vid},,${LOINC.smoking.code},0,,,${finding.code},,`,
          );
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
