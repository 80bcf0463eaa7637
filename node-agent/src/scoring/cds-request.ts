/**
 * Reading a CDS Hooks 2.0 request (and the plain JSON one) into what the pipeline takes, and
 * a score into a card. Every refusal is an HttpError whose message names what was wrong and
 * never carries patient data.
 */
import { createHash } from 'node:crypto';
import { dayToIso, type EhrSource, type EventKind, type FhirResourceType } from '@fedlhs/ehr';
import { releaseName } from './outputs.js';
import { riskText, sourceFeatures, type DeployedRelease, type ReleaseFeatures, type Score, type Scorer } from './pipeline.js';

export type Json = Record<string, unknown>;

/** An answer other than 200, with the message the client gets. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The prefetch templates every fedlhs patient-view service declares. */
export const PREFETCH: Readonly<Record<string, string>> = {
  patient: 'Patient/{{context.patientId}}',
  observations: 'Observation?patient={{context.patientId}}',
  conditions: 'Condition?patient={{context.patientId}}',
  encounters: 'Encounter?patient={{context.patientId}}',
};
/** Declared only by a release that reads medication events (so others do not ask the EHR for them). */
export const MEDICATION_PREFETCH = { medications: 'MedicationRequest?patient={{context.patientId}}' } as const;
const SEARCH_TYPES: ReadonlyArray<[string, FhirResourceType, EventKind]> = [
  ['observations', 'Observation', 'observation'], ['conditions', 'Condition', 'condition'], ['encounters', 'Encounter', 'encounter'], ['medications', 'MedicationRequest', 'medication'],
];

/** The prefetch a release's service declares and needs: PREFETCH, plus medications when `needs` (neededKinds) has medication. */
export function prefetchFor(needs: ReadonlyMap<EventKind, readonly string[]>): Record<string, string> {
  return needs.has('medication') ? { ...PREFETCH, ...MEDICATION_PREFETCH } : { ...PREFETCH };
}

const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** The resources of a search-result Bundle; 400 if it is not one, 412 if it is only a first page. */
function bundleResources(value: unknown, what: string): Json[] {
  const bundle = obj(value);
  if (bundle?.resourceType !== 'Bundle') throw new HttpError(400, `${what} must be a FHIR Bundle (or null), not ${bundle === undefined ? typeof value : `a ${String(bundle.resourceType)}`}`);
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw new HttpError(400, `${what}: Bundle.entry must be a list`);
  const links = Array.isArray(bundle.link) ? bundle.link.map(obj) : [];
  if (links.some((l) => l?.relation === 'next')) throw new HttpError(412, `${what} is one page of a paged search (it has a "next" link): send every result in the prefetch`);
  const out: Json[] = [];
  for (const entry of (bundle.entry as unknown[] | undefined) ?? []) {
    const resource = obj(obj(entry)?.resource);
    // OperationOutcome entries (search mode "outcome") carry warnings, not data.
    if (resource !== undefined && resource.resourceType !== 'OperationOutcome') out.push(resource);
  }
  return out;
}

/**
 * A patient-view request's patient id and prefetched resources, checked as CDS Hooks 2.0 says:
 * 400 for a request that is not one (hook, hookInstance, context.patientId) or a prefetched
 * Patient that is not context.patientId; 412 for prefetch this service needs and did not get
 * (absent, or null for a kind of data the model needs: `needs`, from neededKinds).
 */
export function prefetchResources(request: Json, needs: ReadonlyMap<EventKind, readonly string[]>): { patientId: string; resources: Json[]; present: FhirResourceType[] } {
  if (request.hook !== 'patient-view') throw new HttpError(400, `hook must be "patient-view"${request.hook === undefined ? ' (missing)' : `, not ${JSON.stringify(request.hook).slice(0, 60)}`}`);
  if (!nonEmpty(request.hookInstance)) throw new HttpError(400, 'hookInstance is missing (a UUID for this hook call)');
  const context = obj(request.context);
  if (context === undefined || !nonEmpty(context.patientId)) throw new HttpError(400, 'context.patientId is missing');
  const patientId = context.patientId;
  const prefetch = obj(request.prefetch);
  const templates = prefetchFor(needs);
  const needed = Object.keys(templates);
  if (prefetch === undefined) {
    throw new HttpError(412, `prefetch is missing: this service needs ${needed.join(', ')} prefetched (${Object.values(templates).join(', ')}); it does not query the FHIR server`);
  }
  const absent = needed.filter((k) => !Object.hasOwn(prefetch, k));
  if (absent.length > 0) throw new HttpError(412, `prefetch ${absent.join(', ')} missing: this service needs ${absent.map((k) => templates[k]).join(', ')} and does not query the FHIR server`);
  const patient = prefetch.patient;
  if (patient === null) throw new HttpError(412, 'prefetch patient is null: the client could not read Patient/{{context.patientId}}, and nothing can be scored without it');
  const p = obj(patient);
  if (p?.resourceType !== 'Patient') throw new HttpError(400, 'prefetch patient must be a FHIR Patient resource');
  if (p.id !== patientId) throw new HttpError(400, 'prefetch patient is not the patient of context.patientId (their ids differ)');
  const resources: Json[] = [p];
  const present: FhirResourceType[] = ['Patient'];
  for (const [key, type, kind] of SEARCH_TYPES) {
    // A key this release did not ask for (e.g. medications for a model that reads none) is not read.
    if (!(key in templates)) continue;
    if (prefetch[key] === null) {
      const uses = needs.get(kind);
      if (uses !== undefined) throw new HttpError(412, `prefetch ${key} is null (the client could not fetch ${templates[key]}), but the model needs it for ${uses.join(', ')}`);
      continue;
    }
    present.push(type);
    // Only the searched type counts: a Patient or other resource included in a search result is not read.
    resources.push(...bundleResources(prefetch[key], `prefetch ${key}`).filter((r) => r.resourceType === type));
  }
  return { patientId, resources, present };
}

/** The resources of a posted patient Bundle (POST /score): exactly one Patient; 400 otherwise. */
export function patientResources(value: unknown): Json[] {
  const bundle = obj(value);
  if (bundle?.resourceType !== 'Bundle' || (bundle.entry !== undefined && !Array.isArray(bundle.entry))) throw new HttpError(400, 'patient must be a FHIR Bundle whose entry[].resource hold the patient\'s Patient, Encounter, Condition and Observation resources');
  const resources = ((bundle.entry as unknown[] | undefined) ?? []).map((e) => obj(obj(e)?.resource)).filter((r): r is Json => r !== undefined);
  const patients = resources.filter((r) => r.resourceType === 'Patient').length;
  if (patients !== 1) throw new HttpError(400, `the patient Bundle must hold exactly one Patient resource, it holds ${patients}`);
  return resources;
}

/** Raw features of one request, and which of them the model will impute (unknown or out of range). */
export type RequestFeatures = Pick<ReleaseFeatures, 'names' | 'keys' | 'indexDays' | 'x'> & { imputed: string[] };

/**
 * POST /score features: every release feature named, each a number or null (unknown); 400
 * otherwise, 422 for a number a float32 cannot hold (the model would read ±Infinity). A 'latest'
 * feature outside the cohort's declared range is treated as missing, exactly as extraction
 * drops it, and listed in `imputed` with the nulls.
 */
export function featuresFromJson(release: DeployedRelease, value: unknown): RequestFeatures {
  const given = obj(value);
  if (given === undefined) throw new HttpError(400, 'features must be an object {name: number | null}');
  const names = release.descriptor.features.names;
  const missing = names.filter((n) => !(n in given));
  const unknown = Object.keys(given).filter((n) => !names.includes(n));
  if (missing.length > 0 || unknown.length > 0) {
    throw new HttpError(400, [
      missing.length > 0 ? `missing features ${missing.join(', ')} (send null for a value not known)` : '',
      unknown.length > 0 ? `unknown features ${unknown.map((n) => JSON.stringify(n.slice(0, 40))).join(', ')}` : '',
    ].filter((s) => s !== '').join('; ') + `; ${release.studyName} v${release.version} takes ${names.join(', ')}`);
  }
  const ranges = new Map((release.manifest.data.cohort?.features ?? []).flatMap((f) => (f.type === 'latest' ? [[f.name, f.range] as const] : [])));
  const x = new Float32Array(names.length);
  names.forEach((n, j) => {
    const v = given[n];
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) throw new HttpError(400, `feature ${n} must be a number or null`);
    if (v !== null && !Number.isFinite(Math.fround(v))) throw new HttpError(422, `feature ${n}: ${v} is beyond what the model can read (a 32-bit float, at most ±3.4e38)`);
    const range = ranges.get(n);
    x[j] = v === null || (range !== undefined && (v < range[0] || v > range[1])) ? Number.NaN : v;
  });
  return { names, keys: ['request'], indexDays: [undefined], x, imputed: imputedNames(names, x, 0) };
}

/** The features of row `row` of `x` that are missing (NaN), so imputed by the release's normalisation. */
export function imputedNames(names: readonly string[], x: Float32Array, row: number): string[] {
  return names.filter((_, j) => Number.isNaN(x[row * names.length + j]!));
}

/** One patient's score and the features the model had to impute for them. */
export type PatientScore = Score & { imputed: string[] };

/**
 * Scores the one patient of `source` at their latest qualifying encounter, or 422 naming why not:
 * not eligible (the exclusion reason), a record that cannot be read, a kind of data the model
 * needs that the client could not prefetch, or an observation in a unit the model cannot convert.
 */
export async function scorePatient(release: DeployedRelease, scorer: Scorer, source: EhrSource): Promise<PatientScore> {
  // The same rule as `fedlhs-agent score`: the latest qualifying visit up to today.
  const features = await sourceFeatures(release, source, { kind: 'latest', asOf: Math.floor(Date.now() / 86_400_000) });
  const unavailable = features.warnings.filter((w) => w.startsWith('no ') && w.includes(' in the export:'));
  if (features.keys.length === 0) {
    const reasons = Object.keys(features.excluded);
    if (reasons.length === 0) throw new HttpError(422, 'no patient could be read from the request');
    throw new HttpError(422, `the patient cannot be scored by ${releaseName(release)}: ${reasons.join('; ')}${unavailable.length > 0 ? ` (${unavailable.join('; ')})` : ''}`);
  }
  if (unavailable.length > 0) throw new HttpError(422, `the patient cannot be scored by ${releaseName(release)} without guessing: ${unavailable.join('; ').replace(/ in the export/g, '')}`);
  if (features.unitMismatch.length > 0) {
    const units = new Map((release.manifest.data.cohort?.features ?? []).flatMap((f) => (f.type === 'latest' ? [[f.name, f.unit] as const] : [])));
    throw new HttpError(422, `the patient cannot be scored by ${releaseName(release)} without guessing: ${features.unitMismatch.map((u) => `feature ${u.feature} has an observation in unit ${JSON.stringify(u.unit)}, which cannot be converted to ${units.get(u.feature) ?? 'its unit'}`).join('; ')}`);
  }
  const [score] = await scorer.score(features);
  return { ...score!, imputed: imputedNames(features.names, features.x, 0) };
}

/** Card indicator by the band's position: the first band info, the last (of three or more) critical, others warning. */
export function indicatorOf(band: string, bands: readonly { name: string }[]): 'info' | 'warning' | 'critical' {
  const i = bands.findIndex((b) => b.name === band);
  if (i <= 0) return 'info';
  return i === bands.length - 1 && bands.length >= 3 ? 'critical' : 'warning';
}

/** A CDS Hooks card for one score; its uuid is derived from the release, patient and risk (the same call gives the same card). */
export function cdsCard(release: DeployedRelease, score: PatientScore): Json {
  const risk = riskText(score.risk);
  const h = createHash('sha256').update(`${release.studyName}\u0000${release.version}\u0000${score.key}\u0000${risk}`).digest('hex');
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
  const percent = `${(score.risk * 100).toFixed(1)} %`;
  const outcome = release.descriptor.modelCard.outcome;
  const head = `${percent} risk (${score.band})`;
  // CDS Hooks: the summary must be under 140 characters.
  const full = `${head}: ${outcome}`;
  const summary = full.length < 140 ? full : `${full.slice(0, 138)}…`;
  const indexDate = score.indexDay === undefined ? 'none' : dayToIso(score.indexDay);
  const detail = [
    `**Risk:** ${percent} (${risk}), band **${score.band}**`,
    `**Outcome:** ${outcome}`,
    `**Model:** ${release.studyName} version ${release.version} (round ${release.descriptor.round})`,
    `**Index date:** ${indexDate} (the patient's latest qualifying encounter; only data before it is used)`,
    `**Missing (imputed):** ${score.imputed.length === 0 ? 'none' : `${score.imputed.join(', ')} (no usable value before the index date: the model used the release's imputation value)`}`,
    `**Intended use:** ${release.descriptor.modelCard.intendedUse}`,
  ].join('\n\n');
  return { uuid, summary, indicator: indicatorOf(score.band, release.descriptor.riskBands), detail, source: { label: releaseName(release) } };
}
