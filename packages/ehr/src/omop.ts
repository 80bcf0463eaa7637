import { FedlhsError } from '@fedlhs/core';
import type { ClinicalEvent, CodeSystem, EhrSource, EventKind, PatientRecord, Sex, SourceInventory, SourceOptions } from './events.js';
import { dayOrSkip, isSnomedLike, parseDay, parseNumber, parseSex, smokingStatusCode, SMOKING_STATUS_LOINC } from './normalize.js';
import { archiveHint, dataError, findFile, listExport, mapCsvFile, type ColumnAliases, type RowMapper } from './read-csv.js';
import { SkipLedger, type FileRole } from './skip-ledger.js';

/** Options of `openOmopCsv`. */
export interface OmopCsvOptions extends SourceOptions {
  /**
   * 'source' (default): codes are the `*_source_value`s, with the system inferred (measurement
   * values shaped like LOINC → LOINC, all-digit condition values → SNOMED, else OTHER).
   * 'concept': codes are the standard `*_concept_id`s, system OMOP.
   */
  codes?: 'source' | 'concept' | undefined;
}

const PERSON = {
  id: ['person_id'],
  gender: ['gender_concept_id'],
  year: ['year_of_birth'],
  month: ['month_of_birth'],
  day: ['day_of_birth'],
  birth: ['birth_datetime'],
  genderSource: ['gender_source_value'],
  race: ['race_source_value'],
  ethnicity: ['ethnicity_source_value'],
} as const;
const DEATH = { person: ['person_id'], date: ['death_date', 'death_datetime'] } as const;
const CONDITION = {
  person: ['person_id'],
  concept: ['condition_concept_id'],
  start: ['condition_start_date', 'condition_start_datetime'],
  source: ['condition_source_value'],
} as const;
const MEASUREMENT = {
  person: ['person_id'],
  concept: ['measurement_concept_id'],
  date: ['measurement_date', 'measurement_datetime'],
  value: ['value_as_number'],
  valueConcept: ['value_as_concept_id'],
  valueSource: ['value_source_value'],
  unitSource: ['unit_source_value'],
  unitConcept: ['unit_concept_id'],
  source: ['measurement_source_value'],
} as const;
const VISIT = { person: ['person_id'], concept: ['visit_concept_id'], start: ['visit_start_date', 'visit_start_datetime'] } as const;
const OBSERVATION = {
  person: ['person_id'],
  concept: ['observation_concept_id'],
  date: ['observation_date', 'observation_datetime'],
  value: ['value_as_number'],
  valueString: ['value_as_string'],
  valueConcept: ['value_as_concept_id'],
  valueSource: ['value_source_value'],
  unitSource: ['unit_source_value'],
  unitConcept: ['unit_concept_id'],
  source: ['observation_source_value'],
} as const;
const DRUG = {
  person: ['person_id'],
  concept: ['drug_concept_id'],
  start: ['drug_exposure_start_date', 'drug_exposure_start_datetime'],
  source: ['drug_source_value'],
} as const;

/** The tables each event kind is read from. */
const EVENT_TABLES: Readonly<Record<EventKind, readonly string[]>> = {
  encounter: ['visit_occurrence'],
  condition: ['condition_occurrence'],
  observation: ['measurement', 'observation'],
  medication: ['drug_exposure'],
};

type Roles<C> = C extends ColumnAliases<infer K> ? K : never;

const GENDERS: Readonly<Record<string, Sex>> = { '8507': 'male', '8532': 'female', '8521': 'other', '8551': 'unknown' };

/**
 * Standard visit concepts (Visit domain) → the study vocabulary's encounter classes. OMOP has no
 * wellness visit: a check-up is an Outpatient Visit (9202), which is HL7 AMB, hence 'ambulatory'
 * as in the FHIR reader; a study that must run on OMOP declares its index as 'outpatient'.
 */
const VISIT_CLASSES: Readonly<Record<string, string>> = {
  '9201': 'inpatient', // Inpatient Visit
  '9202': 'ambulatory', // Outpatient Visit
  '9203': 'emergency', // Emergency Room Visit
  '262': 'inpatient', // Emergency Room and Inpatient Visit
  '8717': 'inpatient', // Inpatient Hospital
  '581477': 'ambulatory', // Office Visit
  '38004207': 'ambulatory', // Ambulatory Clinic / Center
  '32036': 'ambulatory', // Laboratory Visit
  '581476': 'home', // Home Visit
  '5083': 'virtual', // Telehealth
  '581458': 'ambulatory', // Pharmacy visit
  '8782': 'urgentcare', // Urgent Care Facility
  '42898160': 'inpatient', // Non-hospital institution Visit
};

/** Common UCUM unit concepts, used when unit_source_value is empty. */
const UNIT_CONCEPTS: Readonly<Record<string, string>> = {
  '8840': 'mg/dL',
  '8753': 'mmol/L',
  '8876': 'mm[Hg]',
  '9529': 'kg',
  '8582': 'cm',
  '8554': '%',
};

const LOINC_SHAPE = /^\d{1,7}-\d$/;

/**
 * Opens OMOP CDM v5.4 tables exported as CSV or TSV (the delimiter is detected from each
 * header line; file names may end in .csv, .tsv or .txt, in any case). person is required;
 * visit_occurrence, condition_occurrence, measurement, observation, drug_exposure and death
 * are optional; observation_period is not read (it is not an event).
 *
 * Birth days come from birth_datetime, else year/month/day_of_birth with a missing month or
 * day taken as 1 (as year-based OHDSI age calculations do). Visits always carry the visit
 * concept as an OMOP code: visit_source_value often holds the source encounter id (as in
 * ETL-Synthea), which must not become a code. A death.csv is held as a map from person to day
 * while persons are read, so memory grows with the number of deceased persons only.
 */
export function openOmopCsv(dir: string, options: OmopCsvOptions = {}): EhrSource {
  const mode = options.codes ?? 'source';
  if (mode !== 'source' && mode !== 'concept') {
    throw new FedlhsError('INVALID_ARGUMENT', `openOmopCsv: options.codes must be 'source' or 'concept'`);
  }
  const ledger = new SkipLedger();

  async function* table<C extends ColumnAliases<string>, T>(
    table: string,
    columns: C,
    required: readonly Roles<C>[],
    map: RowMapper<Roles<C>, T>,
    role: FileRole = 'events',
  ): AsyncGenerator<T> {
    const path = await findFile(dir, tableFileNames(table));
    if (path === undefined) {
      if (role === 'patients') throw dataError(`${table}.csv: required table not found in the OMOP export${await archiveHint(dir)}`, undefined, { file: `${table}.csv` });
      return;
    }
    yield* mapCsvFile(path, `${table}.csv`, columns as ColumnAliases<Roles<C>>, required, ledger, map, { role, encoding: options.encoding });
  }

  async function deaths(): Promise<Map<string, number>> {
    const byPerson = new Map<string, number>();
    const rows = table('death', DEATH, ['person', 'date'], (row, skip) => {
      if (row.person === undefined) return skip('missing person_id');
      const day = dayOrSkip(row.date, 'death_date', skip);
      return day === undefined ? undefined : ([row.person, day] as const);
    });
    for await (const [person, day] of rows) byPerson.set(person, Math.min(day, byPerson.get(person) ?? day));

    return byPerson;
  }

  const toPerson = (died: ReadonlyMap<string, number>): RowMapper<Roles<typeof PERSON>, PatientRecord> => (row, skip) => {
    if (row.id === undefined) return skip('missing person_id');
    const birthDay = parseDay(row.birth) ?? birthFromParts(row.year, row.month, row.day);
    if (birthDay === undefined) return skip(row.year === undefined ? 'missing year_of_birth' : 'invalid year/month/day_of_birth (expected whole numbers, e.g. 1961, 7, 23)');
    const sex = GENDERS[row.gender ?? ''] ?? parseSex(row.genderSource);
    return { id: row.id, birthDay, sex, deathDay: died.get(row.id), race: row.race, ethnicity: row.ethnicity };
  };

  /**
   * A row's code: its standard concept id under system OMOP ('concept' mode), or its source
   * value with the system `infer` gives it ('source' mode); undefined after a counted skip.
   */
  const codeOf = (
    row: { concept?: string | undefined; source?: string | undefined },
    table: string,
    infer: (source: string) => CodeSystem,
    skip: (why: string) => undefined,
  ): { system: CodeSystem; code: string } | undefined => {
    if (mode === 'concept') {
      const concept = nonZero(row.concept);
      return concept === undefined ? skip(`unmapped ${table}_concept_id`) : { system: 'OMOP', code: concept };
    }
    return row.source === undefined ? skip(`missing ${table}_source_value`) : { system: infer(row.source), code: row.source };
  };

  /** person_id and the day of `dateColumn`, or undefined after a counted skip. */
  const personDay = (person: string | undefined, date: string | undefined, dateColumn: string, skip: (why: string) => undefined): { patientId: string; day: number } | undefined => {
    if (person === undefined) return skip('missing person_id');
    const day = dayOrSkip(date, dateColumn, skip);
    return day === undefined ? undefined : { patientId: person, day };
  };

  const toCondition: RowMapper<Roles<typeof CONDITION>, ClinicalEvent> = (row, skip) => {
    const at = personDay(row.person, row.start, 'condition_start_date', skip);
    const code = at && codeOf(row, 'condition', (src) => (/^\d+$/.test(src) ? 'SNOMED' : 'OTHER'), skip);
    return at && code && { kind: 'condition', ...at, ...code };
  };

  const toMeasurement: RowMapper<Roles<typeof MEASUREMENT>, ClinicalEvent> = (row, skip) => {
    const at = personDay(row.person, row.date, 'measurement_date', skip);
    const code = at && codeOf(row, 'measurement', (src) => (LOINC_SHAPE.test(src) ? 'LOINC' : 'OTHER'), skip);
    if (at === undefined || code === undefined) return undefined;
    const base = { kind: 'observation', ...at, ...code } as const;
    if (row.value !== undefined) {
      const value = parseNumber(row.value);
      if (value === undefined) return skip('non-numeric value_as_number');
      return { ...base, value, unit: unitOf(row.unitSource, row.unitConcept) };
    }
    // A coded result (e.g. "negative") has no number; keep it as a coded value where one is usable.
    const valueCode = mode === 'concept' ? nonZero(row.valueConcept) : row.valueSource !== undefined && isSnomedLike(row.valueSource) ? row.valueSource : undefined;
    return valueCode === undefined ? skip('missing value_as_number') : { ...base, valueCode };
  };

  const toVisit: RowMapper<Roles<typeof VISIT>, ClinicalEvent> = (row, skip) => {
    if (row.person === undefined) return skip('missing person_id');
    if (row.concept === undefined) return skip('missing visit_concept_id');
    const day = dayOrSkip(row.start, 'visit_start_date', skip);
    if (day === undefined) return undefined;
    return { kind: 'encounter', patientId: row.person, day, system: 'OMOP', code: row.concept, encounterClass: VISIT_CLASSES[row.concept] };
  };

  /**
   * An OBSERVATION row (smoking status lives here in real conversions): coded like a
   * measurement. Its value is value_as_number, else a coded value — value_as_concept_id in
   * concept mode; in source mode value_source_value when SNOMED-shaped, else a smoking status
   * spelled out in value_as_string or value_source_value (see `smokingStatusCode`).
   */
  const toObservation: RowMapper<Roles<typeof OBSERVATION>, ClinicalEvent> = (row, skip) => {
    const at = personDay(row.person, row.date, 'observation_date', skip);
    const code = at && codeOf(row, 'observation', (src) => (LOINC_SHAPE.test(src) ? 'LOINC' : isSnomedLike(src) ? 'SNOMED' : 'OTHER'), skip);
    if (at === undefined || code === undefined) return undefined;
    const base = { kind: 'observation', ...at, ...code } as const;
    if (row.value !== undefined) {
      const value = parseNumber(row.value);
      if (value === undefined) return skip('non-numeric value_as_number');
      return { ...base, value, unit: unitOf(row.unitSource, row.unitConcept) };
    }
    let valueCode: string | undefined;
    if (mode === 'concept') valueCode = nonZero(row.valueConcept);
    else if (row.valueSource !== undefined && isSnomedLike(row.valueSource)) valueCode = row.valueSource;
    else if (code.code === SMOKING_STATUS_LOINC) valueCode = smokingStatusCode(row.valueString ?? row.valueSource ?? '');
    if (valueCode !== undefined) return { ...base, valueCode };
    return skip(row.valueString === undefined && row.valueSource === undefined && row.valueConcept === undefined ? 'missing value' : 'uncoded value');
  };

  const toDrug: RowMapper<Roles<typeof DRUG>, ClinicalEvent> = (row, skip) => {
    const at = personDay(row.person, row.start, 'drug_exposure_start_date', skip);
    const code = at && codeOf(row, 'drug', (src) => (/^\d+$/.test(src) ? 'RXNORM' : 'OTHER'), skip);
    return at && code && { kind: 'medication', ...at, ...code };
  };

  const sourceOrConcept = <S extends string, C extends string>(source: S, concept: C): S | C => (mode === 'source' ? source : concept);

  return {
    format: 'omop-csv',
    get skipped() {
      return ledger.totals();
    },
    get patientLosses() {
      return ledger.totals('patients');
    },
    get notes() {
      return ledger.notes();
    },
    async *patients() {
      // Check the required table before reading death records for it.
      if ((await findFile(dir, tableFileNames('person'))) === undefined) {
        throw dataError(`person.csv: required table not found in the OMOP export${await archiveHint(dir)}`, undefined, { file: 'person.csv' });
      }
      yield* table('person', PERSON, ['id', 'year', 'gender'], toPerson(await deaths()), 'patients');
    },
    inventory: async (): Promise<SourceInventory> => {
      const entries = await listExport(dir);
      const present = (t: string): string[] => entries.filter((e) => tableFileNames(t).includes(e.toLowerCase()));
      const kinds = Object.keys(EVENT_TABLES) as EventKind[];
      const used = new Set(['person', 'death', ...Object.values(EVENT_TABLES).flat()].flatMap(tableFileNames));
      return {
        files: Object.fromEntries(kinds.map((k) => [k, EVENT_TABLES[k].flatMap(present)])) as Record<EventKind, string[]>,
        expected: Object.fromEntries(kinds.map((k) => [k, EVENT_TABLES[k].map((t) => `${t}.csv`).join(' or ')])) as Record<EventKind, string>,
        unread: entries.filter((e) => !used.has(e.toLowerCase())).sort(),
      };
    },
    async *events(kinds: ReadonlySet<EventKind>) {
      if (kinds.has('encounter')) yield* table('visit_occurrence', VISIT, ['person', 'concept', 'start'], toVisit);
      if (kinds.has('condition')) {
        yield* table('condition_occurrence', CONDITION, ['person', 'start', sourceOrConcept('source', 'concept')], toCondition);
      }
      if (kinds.has('observation')) {
        yield* table('measurement', MEASUREMENT, ['person', 'date', 'value', sourceOrConcept('source', 'concept')], toMeasurement);
        yield* table('observation', OBSERVATION, ['person', 'date', sourceOrConcept('source', 'concept')], toObservation);
      }
      if (kinds.has('medication')) yield* table('drug_exposure', DRUG, ['person', 'start', sourceOrConcept('source', 'concept')], toDrug);
    },
  };
}

/** File names a table may have (matched ignoring case). */
function tableFileNames(table: string): string[] {
  return ['csv', 'tsv', 'txt'].map((ext) => `${table}.${ext}`);
}

/** A concept id, or undefined for none or 0 ("No matching concept"). */
function nonZero(concept: string | undefined): string | undefined {
  return concept === '0' ? undefined : concept;
}

/**
 * unit_source_value as recorded, else the UCUM code of a common unit concept, else "omop:<id>"
 * (never a bare number, which UCUM would read as a dimensionless factor).
 */
function unitOf(source: string | undefined, concept: string | undefined): string | undefined {
  if (source !== undefined) return source;
  const id = nonZero(concept);
  return id === undefined ? undefined : (UNIT_CONCEPTS[id] ?? `omop:${id}`);
}

/** Birth day from year_of_birth with month_of_birth and day_of_birth, each taken as 1 when empty. */
function birthFromParts(year: string | undefined, month = '1', day = '1'): number | undefined {
  const parts = [year, month, day].map(parseNumber);
  if (!parts.every((n) => n !== undefined && Number.isInteger(n) && n >= 0)) return undefined;
  const [y, m, d] = parts.map((n) => String(n));
  return parseDay(`${y!.padStart(4, '0')}-${m!.padStart(2, '0')}-${d!.padStart(2, '0')}`);
}
