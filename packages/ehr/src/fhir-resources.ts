import type { ClinicalEvent, CodeSystem, EventKind, PatientRecord } from './events.js';
import { DATE_FORMATS, dayOrSkip, isSnomedLike, normalizeCodeSystem, parseDay, parseSex, smokingStatusCode, SMOKING_STATUS_LOINC } from './normalize.js';

/** FHIR R4 resource types the bulk reader turns into patients and events. */
export type FhirResourceType = 'Patient' | 'Condition' | 'Observation' | 'Encounter' | 'MedicationRequest';

export type Json = Record<string, unknown>;
type Skip = (why: string) => undefined;

const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);
const objects = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj).filter((o) => o !== undefined) : []);

interface Code {
  system: CodeSystem;
  code: string;
}

function codings(concept: unknown): Array<{ system: CodeSystem | undefined; code: string | undefined; display: string | undefined }> {
  return objects(obj(concept)?.coding).map((c) => ({ system: normalizeCodeSystem(str(c.system)), code: str(c.code), display: str(c.display) }));
}

/** The first coding of `concept` in the most preferred of `systems`. */
function pickCode(concept: unknown, systems: readonly CodeSystem[]): Code | undefined {
  const all = codings(concept);
  for (const system of systems) {
    const hit = all.find((c) => c.system === system && c.code !== undefined);
    if (hit?.code !== undefined) return { system, code: hit.code };
  }
  return undefined;
}

/** Patient id of a "Patient/<id>" (relative, absolute or versioned) or "urn:uuid:<id>" reference. */
function subjectId(resource: Json, skip: Skip): string | undefined {
  const ref = str(obj(resource.subject)?.reference);
  if (ref === undefined) return skip('missing subject');
  const m = /^urn:uuid:(.+)$/.exec(ref) ?? /(?:^|\/)Patient\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(ref);
  return m?.[1] ?? skip('unsupported subject reference');
}

function enteredInError(resource: Json): boolean {
  return resource.status === 'entered-in-error' || codings(resource.verificationStatus).some((c) => c.code === 'entered-in-error');
}

/** us-core race/ethnicity extension as text ("text" sub-extension, else the first OMB category). */
function usCoreText(resource: Json, name: 'race' | 'ethnicity'): string | undefined {
  const ext = objects(resource.extension).find((e) => str(e.url)?.endsWith(`/us-core-${name}`) === true);
  if (ext === undefined) return undefined;
  const parts = objects(ext.extension);
  const text = str(parts.find((p) => p.url === 'text')?.valueString);
  return text ?? str(obj(parts.find((p) => p.url === 'ombCategory')?.valueCoding)?.display);
}

/**
 * Patient → PatientRecord. A dead patient read as alive would bias outcomes, so a patient whose
 * death cannot be dated (unreadable deceasedDateTime, or deceasedBoolean true alone) is skipped.
 */
export function toPatient(r: Json, skip: Skip): PatientRecord | undefined {
  const id = str(r.id);
  if (id === undefined) return skip('missing id');
  const birthDay = dayOrSkip(str(r.birthDate), 'birthDate', skip);
  if (birthDay === undefined) return undefined;
  const deceased = str(r.deceasedDateTime);
  const deathDay = parseDay(deceased);
  if (deceased !== undefined && deathDay === undefined) return skip(`invalid deceasedDateTime (expected ${DATE_FORMATS})`);
  if (deceased === undefined && r.deceasedBoolean === true) return skip('deceasedBoolean without date');
  return { id, birthDay, sex: parseSex(str(r.gender)), deathDay, race: usCoreText(r, 'race'), ethnicity: usCoreText(r, 'ethnicity') };
}

/** The day of the first present field of `fields` (dotted paths), or a counted skip. */
function dayOf(r: Json, fields: readonly string[], skip: Skip): number | undefined {
  for (const field of fields) {
    const [head, tail] = field.split('.') as [string, string | undefined];
    const text = tail === undefined ? str(r[head]) : str(obj(r[head])?.[tail]);
    if (text !== undefined) return dayOrSkip(text, field, skip);
  }
  return skip(`missing ${fields.join(' and ')}`);
}

/** Condition → event dated by onset (else recordedDate), coded SNOMED first, else ICD-10-CM. */
export function toCondition(r: Json, skip: Skip): ClinicalEvent | undefined {
  if (enteredInError(r)) return skip('entered-in-error');
  const patientId = subjectId(r, skip);
  if (patientId === undefined) return undefined;
  const day = dayOf(r, ['onsetDateTime', 'onsetPeriod.start', 'recordedDate'], skip);
  if (day === undefined) return undefined;
  const code = pickCode(r.code, ['SNOMED', 'ICD10CM']);
  if (code === undefined) return skip('no SNOMED or ICD-10-CM coding');
  return { kind: 'condition', patientId, day, ...code };
}

/** MedicationRequest → event dated by authoredOn, coded by RxNorm in medicationCodeableConcept. */
export function toMedicationRequest(r: Json, skip: Skip): ClinicalEvent | undefined {
  if (enteredInError(r)) return skip('entered-in-error');
  const patientId = subjectId(r, skip);
  if (patientId === undefined) return undefined;
  const day = dayOf(r, ['authoredOn'], skip);
  if (day === undefined) return undefined;
  const code = pickCode(r.medicationCodeableConcept, ['RXNORM']);
  if (code === undefined) return skip(r.medicationReference !== undefined ? 'medicationReference not supported' : 'no RxNorm coding');
  return { kind: 'medication', patientId, day, ...code };
}

const WELLNESS_SNOMED = new Set(['162673000', '410620009', '185349003']);
const WELLNESS_TEXT = /wellness|check ?up|general exam/i;
/**
 * HL7 v3 ActCode encounter classes (Encounter.class) → the study vocabulary's encounter classes.
 * Codes not listed are kept lower-cased (they match no class, but codes can still match).
 */
const CLASS_NAMES: Readonly<Record<string, string>> = {
  AMB: 'ambulatory',
  SS: 'ambulatory',
  IMP: 'inpatient',
  ACUTE: 'inpatient',
  NONAC: 'inpatient',
  EMER: 'emergency',
  HH: 'home',
  VR: 'virtual',
};

/**
 * Encounters with status planned, cancelled or entered-in-error are skipped (counted by reason).
 * Synthea's FHIR puts wellness visits in class AMB; they are told apart by a wellness type
 * (SNOMED 162673000, 410620009, 185349003, or a type text/display matching wellness, check up,
 * general exam). The event code is the encounter type (SNOMED preferred); an encounter without
 * a typed code keeps its class code under system OTHER, so visits without a type still count.
 */
export function toEncounter(r: Json, skip: Skip): ClinicalEvent | undefined {
  if (enteredInError(r)) return skip('entered-in-error');
  // A planned or cancelled visit did not happen: as an event it could become a patient's index
  // day (a future one, even), moving age, lookback and the score to a visit nobody attended.
  if (r.status === 'planned' || r.status === 'cancelled') return skip(`status ${r.status} (not a visit that took place)`);
  const patientId = subjectId(r, skip);
  if (patientId === undefined) return undefined;
  const day = dayOf(r, ['period.start'], skip);
  if (day === undefined) return undefined;
  // R4 `class` is a Coding; R5 made it a list of CodeableConcepts.
  const klass = Array.isArray(r.class) ? codings(r.class[0])[0]?.code : (str(obj(r.class)?.code) ?? codings(r.class)[0]?.code);
  const types = objects(r.type);
  const typeCodings = types.flatMap((t) => codings(t));
  const wellness =
    typeCodings.some((c) => c.system === 'SNOMED' && c.code !== undefined && WELLNESS_SNOMED.has(c.code)) ||
    types.some((t) => WELLNESS_TEXT.test(str(t.text) ?? '')) ||
    typeCodings.some((c) => WELLNESS_TEXT.test(c.display ?? ''));
  const encounterClass = wellness ? 'wellness' : klass === undefined ? undefined : (CLASS_NAMES[klass.toUpperCase()] ?? klass.toLowerCase());
  const typed = typeCodings.find((c) => c.system === 'SNOMED' && c.code !== undefined) ?? typeCodings.find((c) => c.code !== undefined);
  const code: Code | undefined =
    typed?.code !== undefined ? { system: typed.system ?? 'OTHER', code: typed.code } : klass !== undefined ? { system: 'OTHER', code: klass } : undefined;
  if (code === undefined) return skip('missing type and class');
  return { kind: 'encounter', patientId, day, ...code, encounterClass };
}

type Value = { value: number; unit: string | undefined } | { valueCode: string } | { problem: string };

/** The value[x] of an Observation or component; undefined when it has none. */
function readValue(holder: Json, code: string): Value | undefined {
  const quantity = obj(holder.valueQuantity);
  if (quantity !== undefined) {
    if (typeof quantity.value !== 'number' || !Number.isFinite(quantity.value)) return { problem: 'non-numeric valueQuantity' };
    // The UCUM code is comparable across sites; the unit text is free text.
    return { value: quantity.value, unit: str(quantity.code) ?? str(quantity.unit) };
  }
  if (typeof holder.valueInteger === 'number') return { value: holder.valueInteger, unit: undefined };
  if (holder.valueCodeableConcept !== undefined) {
    const coded = pickCode(holder.valueCodeableConcept, ['SNOMED']);
    return coded === undefined ? { problem: 'valueCodeableConcept without SNOMED coding' } : { valueCode: coded.code };
  }
  const text = str(holder.valueString);
  if (text !== undefined) {
    const valueCode = isSnomedLike(text) ? text : code === SMOKING_STATUS_LOINC ? smokingStatusCode(text) : undefined;
    return valueCode === undefined ? { problem: 'uncoded valueString' } : { valueCode };
  }
  return Object.keys(holder).some((k) => k.startsWith('value')) ? { problem: 'unsupported value[x]' } : undefined;
}

/**
 * One event per value: the Observation's own value[x], if any, and one per `component` — so a
 * blood-pressure panel (85354-9 or 55284-4) without a value of its own yields its systolic
 * (8480-6) and diastolic (8462-4) components and not the panel.
 */
export function toObservations(r: Json, skip: Skip): ClinicalEvent[] {
  if (enteredInError(r)) return skip('entered-in-error') ?? [];
  const patientId = subjectId(r, skip);
  if (patientId === undefined) return [];
  const day = dayOf(r, ['effectiveDateTime', 'effectivePeriod.start', 'effectiveInstant'], skip);
  if (day === undefined) return [];
  const events: ClinicalEvent[] = [];
  const emit = (holder: Json, what: string): void => {
    const code = pickCode(holder.code, ['LOINC', 'SNOMED']);
    if (code === undefined) return void skip(`${what}no LOINC or SNOMED coding`);
    const value = readValue(holder, code.code);
    if (value === undefined) return void skip(`${what}missing value`);
    if ('problem' in value) return void skip(`${what}${value.problem}`);
    events.push({ kind: 'observation', patientId, day, ...code, ...value });
  };
  const components = objects(r.component);
  if (components.length === 0 || readValue(r, '') !== undefined) emit(r, '');
  for (const component of components) emit(component, 'component: ');
  return events;
}

/** Event resource types in the order readers read them, with the kind each yields and its converter (bulk exports and CDS Hooks prefetch alike). */
export const EVENT_TYPES: ReadonlyArray<[FhirResourceType, EventKind, (r: Json, skip: Skip) => ClinicalEvent | ClinicalEvent[] | undefined]> = [
  ['Encounter', 'encounter', toEncounter],
  ['Condition', 'condition', toCondition],
  ['Observation', 'observation', toObservations],
  ['MedicationRequest', 'medication', toMedicationRequest],
];
