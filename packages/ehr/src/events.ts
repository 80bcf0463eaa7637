/**
 * The one internal event model every EHR reader produces. A reader streams patients and
 * clinical events; cohort and feature extraction (cohort.ts) consumes them. Identifiers here
 * are the source's own patient ids: they never leave the agent and are never logged.
 */

/** Administrative sex as recorded. */
export type Sex = 'female' | 'male' | 'other' | 'unknown';

export interface PatientRecord {
  /** Source patient id (stays inside the agent). */
  id: string;
  /** Birth date as days since 1970-01-01 (UTC). */
  birthDay: number;
  sex: Sex;
  /** Death date in days since epoch, if recorded. */
  deathDay?: number | undefined;
  /** Free-text race and ethnicity as the source records them (for data-quality reports only). */
  race?: string | undefined;
  ethnicity?: string | undefined;
}

/** What an event is; readers emit only these kinds. */
export type EventKind = 'encounter' | 'condition' | 'observation' | 'medication';

/** Code systems, normalised from URIs and vocabulary ids. */
export type CodeSystem = 'LOINC' | 'SNOMED' | 'RXNORM' | 'ICD10CM' | 'OMOP' | 'OTHER';

export interface ClinicalEvent {
  kind: EventKind;
  patientId: string;
  /** Days since 1970-01-01 (UTC) of the event (encounter start, condition onset, observation effective time). */
  day: number;
  system: CodeSystem;
  code: string;
  /** Numeric value (observations). */
  value?: number | undefined;
  /** UCUM unit of `value`, as recorded (e.g. "mg/dL", "mmol/L", "kg/m2"). */
  unit?: string | undefined;
  /** Coded value (e.g. a SNOMED code for smoking status), when the observation is coded. */
  valueCode?: string | undefined;
  /** Encounter class (e.g. "wellness", "ambulatory", "emergency", "inpatient"). */
  encounterClass?: string | undefined;
}

/** Rows or resources a reader skipped, counted by reason ("patients.csv: missing BIRTHDATE"). */
export type SkipCounts = Record<string, number>;

/** Text encodings an export may be written in. */
export type TextEncoding = 'utf-8' | 'latin1';

/** Options every EHR reader takes. */
export interface SourceOptions {
  /**
   * Encoding of the export's text files (default UTF-8). In UTF-8, bytes that are not valid
   * UTF-8 in a column or field the reader uses drop that record, counted by reason; in other
   * columns the record is kept and the fact is counted in `notes`.
   */
  encoding?: TextEncoding | undefined;
}

/** Where each kind of event comes from in an export, and whether it is there. */
export interface SourceInventory {
  /** Per event kind: the files (names only) it is read from; empty when the export has none. */
  files: Record<EventKind, string[]>;
  /** Per event kind: what would hold it, in this format's words ("observations.csv", "Observation resources"). */
  expected: Record<EventKind, string>;
  /** Files in the export that no reader pass uses (other tables or resource types), by name. */
  unread: string[];
}

/**
 * A clinic's EHR export, read in streaming passes: no reader holds a whole file in memory.
 * `events` may be called several times (one pass per kind set); each call re-reads the files.
 */
export interface EhrSource {
  readonly format: 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';
  patients(): AsyncIterable<PatientRecord>;
  events(kinds: ReadonlySet<EventKind>): AsyncIterable<ClinicalEvent>;
  /** Which files hold which kinds of event (lists the export; reads no records except to type unnamed FHIR files). */
  inventory(): Promise<SourceInventory>;
  /** Everything skipped so far, by reason. */
  readonly skipped: SkipCounts;
  /** Of `skipped`, the patient records dropped, by reason (their events then belong to no known patient). */
  readonly patientLosses: SkipCounts;
  /** Records kept with something in them not read (e.g. bytes invalid in the encoding in an unused column), by reason. */
  readonly notes: SkipCounts;
}

const MS_PER_DAY = 86_400_000;

/** Days since 1970-01-01 of an ISO date or date-time ("2019-03-04", "2019-03-04T10:00:00Z"); undefined if invalid. */
export function isoToDay(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / MS_PER_DAY);
}

/** ISO date of a day number. */
export function dayToIso(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}
