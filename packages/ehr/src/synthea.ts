import type { ClinicalEvent, EhrSource, EventKind, PatientRecord, SourceInventory, SourceOptions } from './events.js';
import { DATE_FORMATS, dayOrSkip, isSnomedLike, normalizeCodeSystem, parseDay, parseNumber, parseSex, smokingStatusCode, SMOKING_STATUS_LOINC } from './normalize.js';
import { archiveHint, dataError, findFile, listExport, mapCsvFile, type ColumnAliases, type RowMapper } from './read-csv.js';
import { SkipLedger, type FileRole } from './skip-ledger.js';

/** The file each event kind is read from. */
const EVENT_FILES: Readonly<Record<EventKind, string>> = {
  encounter: 'encounters.csv',
  condition: 'conditions.csv',
  observation: 'observations.csv',
  medication: 'medications.csv',
};

/**
 * Synthea's ENCOUNTERCLASS values → the study vocabulary's encounter classes (core
 * ENCOUNTER_CLASSES). Synthea's own 'outpatient' class is an ambulatory visit; hospice and
 * skilled nursing stays are inpatient; anything else is kept lower-cased (matches no class).
 */
const SYNTHEA_CLASSES: Readonly<Record<string, string>> = {
  wellness: 'wellness',
  ambulatory: 'ambulatory',
  outpatient: 'ambulatory',
  emergency: 'emergency',
  urgentcare: 'urgentcare',
  inpatient: 'inpatient',
  hospice: 'inpatient',
  snf: 'inpatient',
  home: 'home',
  virtual: 'virtual',
};

// Columns by role. Header names are matched ignoring case; where Synthea renamed a column
// across versions, every spelling is listed (encounters: START, older DATE).
const PATIENTS = { id: ['Id'], birth: ['BIRTHDATE'], death: ['DEATHDATE'], gender: ['GENDER'], race: ['RACE'], ethnicity: ['ETHNICITY'] } as const;
const ENCOUNTERS = { start: ['START', 'DATE'], patient: ['PATIENT'], class: ['ENCOUNTERCLASS'], code: ['CODE'] } as const;
const CONDITIONS = { start: ['START'], patient: ['PATIENT'], system: ['SYSTEM'], code: ['CODE'] } as const;
const OBSERVATIONS = { date: ['DATE'], patient: ['PATIENT'], code: ['CODE'], value: ['VALUE'], units: ['UNITS'], type: ['TYPE'] } as const;
const MEDICATIONS = { start: ['START'], patient: ['PATIENT'], code: ['CODE'] } as const;

type Roles<C> = C extends ColumnAliases<infer K> ? K : never;

/**
 * Opens a Synthea CSV export directory. patients.csv is required; encounters.csv,
 * conditions.csv, observations.csv and medications.csv are optional (an absent file yields no
 * events of its kind). Columns are found by header name, so Synthea versions with other column
 * orders, lowercase headers, DATE instead of START (encounters) or without SYSTEM (conditions,
 * then SNOMED) and TYPE (observations, then a value is numeric if it parses) all read alike.
 *
 * Events are not joined with patients: an event whose PATIENT is not in patients.csv is kept,
 * and cohort extraction decides what to do with it.
 */
export function openSyntheaCsv(dir: string, options: SourceOptions = {}): EhrSource {
  const ledger = new SkipLedger();

  async function* table<C extends ColumnAliases<string>, T>(
    file: string,
    columns: C,
    required: readonly Roles<C>[],
    map: RowMapper<Roles<C>, T>,
    role: FileRole = 'events',
  ): AsyncGenerator<T> {
    const path = await findFile(dir, [file]);
    if (path === undefined) {
      if (role === 'patients') throw dataError(`${file}: required file not found in the Synthea export${await archiveHint(dir)}`, undefined, { file });
      return;
    }
    yield* mapCsvFile(path, file, columns as ColumnAliases<Roles<C>>, required, ledger, map, { role, encoding: options.encoding });
  }

  return {
    format: 'synthea-csv',
    get skipped() {
      return ledger.totals();
    },
    get patientLosses() {
      return ledger.totals('patients');
    },
    get notes() {
      return ledger.notes();
    },
    patients: () => table('patients.csv', PATIENTS, ['id', 'birth', 'gender'], toPatient, 'patients'),
    async *events(kinds: ReadonlySet<EventKind>) {
      if (kinds.has('encounter')) yield* table(EVENT_FILES.encounter, ENCOUNTERS, ['start', 'patient', 'code'], toEncounter);
      if (kinds.has('condition')) yield* table(EVENT_FILES.condition, CONDITIONS, ['start', 'patient', 'code'], toCondition);
      if (kinds.has('observation')) yield* table(EVENT_FILES.observation, OBSERVATIONS, ['date', 'patient', 'code', 'value'], toObservation);
      if (kinds.has('medication')) yield* table(EVENT_FILES.medication, MEDICATIONS, ['start', 'patient', 'code'], toMedication);
    },
    inventory: async (): Promise<SourceInventory> => {
      const entries = await listExport(dir);
      const present = (file: string): string[] => entries.filter((e) => e.toLowerCase() === file);
      const kinds = Object.keys(EVENT_FILES) as EventKind[];
      const used = new Set(['patients.csv', ...Object.values(EVENT_FILES)]);
      return {
        files: Object.fromEntries(kinds.map((k) => [k, present(EVENT_FILES[k])])) as Record<EventKind, string[]>,
        expected: { ...EVENT_FILES },
        unread: entries.filter((e) => !used.has(e.toLowerCase())).sort(),
      };
    },
  };
}

const toPatient: RowMapper<Roles<typeof PATIENTS>, PatientRecord> = (row, skip) => {
  if (row.id === undefined) return skip('missing Id');
  const birthDay = dayOrSkip(row.birth, 'BIRTHDATE', skip);
  if (birthDay === undefined) return undefined;
  const deathDay = parseDay(row.death);
  // A dead patient read as alive would bias outcomes, so an unreadable death date drops the row.
  if (row.death !== undefined && deathDay === undefined) return skip(`invalid DEATHDATE (expected ${DATE_FORMATS})`);
  return { id: row.id, birthDay, sex: parseSex(row.gender), deathDay, race: row.race, ethnicity: row.ethnicity };
};

const toEncounter: RowMapper<Roles<typeof ENCOUNTERS>, ClinicalEvent> = (row, skip) => {
  if (row.patient === undefined) return skip('missing PATIENT');
  if (row.code === undefined) return skip('missing CODE');
  const day = dayOrSkip(row.start, 'START', skip);
  if (day === undefined) return undefined;
  const recorded = row.class?.toLowerCase();
  return { kind: 'encounter', patientId: row.patient, day, system: 'SNOMED', code: row.code, encounterClass: recorded === undefined ? undefined : (SYNTHEA_CLASSES[recorded] ?? recorded) };
};

const toCondition: RowMapper<Roles<typeof CONDITIONS>, ClinicalEvent> = (row, skip) => {
  if (row.patient === undefined) return skip('missing PATIENT');
  if (row.code === undefined) return skip('missing CODE');
  const day = dayOrSkip(row.start, 'START', skip);
  if (day === undefined) return undefined;
  // No SYSTEM column (or cell) means SNOMED, as in every Synthea version before it was added.
  const system = row.system === undefined ? 'SNOMED' : (normalizeCodeSystem(row.system) ?? 'OTHER');
  return { kind: 'condition', patientId: row.patient, day, system, code: row.code };
};

const toMedication: RowMapper<Roles<typeof MEDICATIONS>, ClinicalEvent> = (row, skip) => {
  if (row.patient === undefined) return skip('missing PATIENT');
  if (row.code === undefined) return skip('missing CODE');
  const day = dayOrSkip(row.start, 'START', skip);
  if (day === undefined) return undefined;
  return { kind: 'medication', patientId: row.patient, day, system: 'RXNORM', code: row.code };
};

/**
 * TYPE 'numeric' → `value` + `unit`. TYPE 'text' → `valueCode` when the text is a SNOMED-like
 * code or a smoking status Synthea spells out (see `smokingStatusCode`); other text is skipped.
 * Without a TYPE column (older versions) a value that parses as a number is numeric, else text.
 */
const toObservation: RowMapper<Roles<typeof OBSERVATIONS>, ClinicalEvent> = (row, skip) => {
  if (row.patient === undefined) return skip('missing PATIENT');
  if (row.code === undefined) return skip('missing CODE');
  const day = dayOrSkip(row.date, 'DATE', skip);
  if (day === undefined) return undefined;
  if (row.value === undefined) return skip('missing VALUE');
  const base = { kind: 'observation', patientId: row.patient, day, system: 'LOINC', code: row.code } as const;
  const type = row.type?.toLowerCase();
  if (type === undefined || type === 'numeric') {
    const value = parseNumber(row.value);
    if (value !== undefined) return { ...base, value, unit: row.units };
    if (type === 'numeric') return skip('non-numeric VALUE');
  } else if (type !== 'text') {
    return skip('unsupported TYPE');
  }
  const smoking = row.code === SMOKING_STATUS_LOINC;
  const valueCode = isSnomedLike(row.value) ? row.value : smoking ? smokingStatusCode(row.value) : undefined;
  if (valueCode === undefined) return skip(smoking ? 'unmapped smoking status VALUE' : 'uncoded text VALUE');
  return { ...base, valueCode };
};
