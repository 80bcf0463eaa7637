import type { ClinicalEvent, EhrSource, EventKind, PatientRecord, SkipCounts, SourceInventory } from './events.js';
import { EVENT_TYPES, toPatient, type FhirResourceType, type Json } from './fhir-resources.js';

const KNOWN: ReadonlySet<string> = new Set(['Patient', ...EVENT_TYPES.map(([t]) => t)]);

/** Options of `openFhirResources`. */
export interface ResourceSourceOptions {
  /**
   * Resource types the caller looked for, found or not (e.g. a CDS Hooks prefetch that searched
   * for Conditions and got none): each counts as present in the inventory, so an empty search is
   * "no conditions" rather than "no Condition data". Default: the types among the resources.
   */
  present?: readonly FhirResourceType[] | undefined;
  /** Names the source in the inventory ("prefetch"); default "resources". */
  label?: string | undefined;
}

/**
 * An EhrSource over FHIR R4 resources already in memory (a CDS Hooks prefetch, a posted
 * Bundle's entries), mapped by the same converters as the FHIR Bulk Data reader, so a patient
 * reads the same here as in the clinic's export. Resources are mapped once, when opened; a
 * resource that cannot be mapped is skipped and counted by type and reason, and resources of
 * other types are listed in `inventory().unread`.
 */
export function openFhirResources(resources: Iterable<unknown>, options: ResourceSourceOptions = {}): EhrSource {
  const skipped: SkipCounts = {};
  const patientLosses: SkipCounts = {};
  const count = (into: SkipCounts, why: string): void => {
    into[why] = (into[why] ?? 0) + 1;
  };
  const patients: PatientRecord[] = [];
  const events: ClinicalEvent[] = [];
  const seen = new Set<string>();
  const other = new Map<string, number>();
  for (const raw of resources) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      count(skipped, 'not a resource (not a JSON object)');
      continue;
    }
    const r = raw as Json;
    const type = typeof r.resourceType === 'string' ? r.resourceType : undefined;
    if (type === undefined) {
      count(skipped, 'resource without resourceType');
      continue;
    }
    if (!KNOWN.has(type)) {
      other.set(type, (other.get(type) ?? 0) + 1);
      continue;
    }
    seen.add(type);
    const skip = (why: string): undefined => {
      count(skipped, `${type}: ${why}`);
      if (type === 'Patient') count(patientLosses, `${type}: ${why}`);
      return undefined;
    };
    if (type === 'Patient') {
      const p = toPatient(r, skip);
      if (p !== undefined) patients.push(p);
      continue;
    }
    const map = EVENT_TYPES.find(([t]) => t === type)![2];
    const out = map(r, skip);
    if (Array.isArray(out)) events.push(...out);
    else if (out !== undefined) events.push(out);
  }
  const present = new Set<string>(options.present ?? seen);
  const label = options.label ?? 'resources';
  return {
    format: 'fhir-ndjson',
    skipped,
    patientLosses,
    notes: {},
    async *patients() {
      yield* patients;
    },
    async *events(kinds: ReadonlySet<EventKind>) {
      for (const e of events) if (kinds.has(e.kind)) yield e;
    },
    inventory: async (): Promise<SourceInventory> => ({
      files: Object.fromEntries(EVENT_TYPES.map(([type, kind]) => [kind, present.has(type) ? [`${type} ${label}`] : []])) as Record<EventKind, string[]>,
      expected: Object.fromEntries(EVENT_TYPES.map(([type, kind]) => [kind, `${type} ${label}`])) as Record<EventKind, string>,
      unread: [...other].sort(([a], [b]) => (a < b ? -1 : 1)).map(([type, n]) => `${n} ${type} ${n === 1 ? 'resource' : 'resources'}`),
    }),
  };
}
