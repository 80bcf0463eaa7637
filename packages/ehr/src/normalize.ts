import { isoToDay, type CodeSystem, type Sex } from './events.js';

/** LOINC code of tobacco smoking status. */
export const SMOKING_STATUS_LOINC = '72166-2';

const SYSTEMS: ReadonlyMap<string, CodeSystem> = new Map([
  ['http://snomed.info/sct', 'SNOMED'],
  ['snomed', 'SNOMED'],
  ['snomed-ct', 'SNOMED'],
  ['snomedct', 'SNOMED'],
  ['snomed ct', 'SNOMED'],
  ['sct', 'SNOMED'],
  ['http://loinc.org', 'LOINC'],
  ['loinc', 'LOINC'],
  ['http://www.nlm.nih.gov/research/umls/rxnorm', 'RXNORM'],
  ['rxnorm', 'RXNORM'],
  ['http://hl7.org/fhir/sid/icd-10-cm', 'ICD10CM'],
  ['icd-10-cm', 'ICD10CM'],
  ['icd10cm', 'ICD10CM'],
  ['icd-10 cm', 'ICD10CM'],
]);

/**
 * Normalises a code-system URI or vocabulary name ("http://snomed.info/sct", "SNOMED-CT",
 * "ICD-10-CM") case-insensitively; undefined if not one we know. Plain "ICD-10" is not mapped:
 * WHO ICD-10 and ICD-10-CM codes differ.
 */
export function normalizeCodeSystem(raw: string | undefined): CodeSystem | undefined {
  if (raw === undefined) return undefined;
  return SYSTEMS.get(raw.trim().toLowerCase().replace(/\/+$/, ''));
}

/** True for a string shaped like a SNOMED CT identifier (6 to 18 digits, no leading zero). */
export function isSnomedLike(text: string): boolean {
  return /^[1-9]\d{5,17}$/.test(text);
}

/**
 * SNOMED CT code of a smoking-status text as Synthea writes it, matched case-insensitively:
 *
 * | text contains              | SNOMED CT        | concept                              |
 * |----------------------------|------------------|--------------------------------------|
 * | "never"                    | 266919005        | Never smoked tobacco                 |
 * | "former" or "ex-"          | 8517006          | Ex-smoker                            |
 * | "every day" or "daily"     | 449868002        | Smokes tobacco daily (every day)     |
 * | "some day" or "occasional" | 428041000124106  | Occasional tobacco smoker (some day) |
 *
 * "daily" and "occasional" are the current SNOMED names of the last two concepts. Checked in
 * table order, so "Never smoked tobacco" is never read as a current smoker.
 */
export function smokingStatusCode(text: string): string | undefined {
  const t = text.toLowerCase();
  if (t.includes('never')) return '266919005';
  if (t.includes('former') || t.includes('ex-')) return '8517006';
  if (t.includes('every day') || t.includes('daily')) return '449868002';
  if (t.includes('some day') || t.includes('occasional')) return '428041000124106';
  return undefined;
}

/**
 * Days since epoch of a date as exports write it: "YYYY-MM-DD", "YYYYMMDD", FHIR partial dates
 * ("YYYY", "YYYY-MM": first day), and ISO date-times. A date-time without offset (common in
 * OMOP "YYYY-MM-DD HH:MM:SS") is read as UTC so the day never depends on the agent's time
 * zone; one with an offset goes through `isoToDay`. Impossible dates ("2019-02-30") are
 * undefined rather than rolled over.
 */
export function parseDay(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const s = text.trim();
  const m = /^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?([ T].*)?$/.exec(s);
  if (m === null) return undefined;
  const [, y, mo, d, time] = m;
  if (d === undefined && (time !== undefined || (mo !== undefined && s.length !== 7))) return undefined;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const ms = Date.UTC(year, month - 1, day);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return undefined;
  if (time === undefined) return Math.floor(ms / 86_400_000);
  const clock = time.slice(1);
  if (!/^\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$/.test(clock)) return undefined;
  const hasZone = /(?:Z|[+-]\d{2}:?\d{2})$/.test(clock);
  return isoToDay(`${y}-${mo}-${d}T${clock}${hasZone ? '' : 'Z'}`);
}

/** A decimal number ("95", "-1.5", "6.1e3"); undefined for anything else ("abc", "", "0x10", "Infinity"). */
export function parseNumber(text: string | undefined): number | undefined {
  if (text === undefined || !/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text.trim())) return undefined;
  return Number(text);
}

/** Sex from the spellings exports use (M/F, male/female, other, unknown); unknown if unrecognised. */
export function parseSex(text: string | undefined): Sex {
  switch (text?.trim().toLowerCase()) {
    case 'm':
    case 'male':
      return 'male';
    case 'f':
    case 'female':
      return 'female';
    case 'o':
    case 'other':
      return 'other';
    default:
      return 'unknown';
  }
}

/** The date forms `parseDay` reads, as named in messages about a date that does not parse. */
export const DATE_FORMATS = 'YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY or an ISO 8601 date-time';

/**
 * The day of a required date field, or undefined after counting "missing <field>" or
 * "invalid <field> (expected ...)", naming the forms that would have been read.
 */
export function dayOrSkip(text: string | undefined, field: string, skip: (why: string) => undefined): number | undefined {
  if (text === undefined || text.trim() === '') return skip(`missing ${field}`);
  return parseDay(text) ?? skip(`invalid ${field} (expected ${DATE_FORMATS})`);
}
