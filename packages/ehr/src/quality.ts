import type { CodeSystem, EhrSource, EventKind, Sex, SkipCounts } from './events.js';

/** A code and how many events carry it. */
export interface CodeCount {
  code: string;
  count: number;
}

/** Codes seen in one code system. */
export interface CodeSystemProfile {
  /** Distinct codes. */
  distinct: number;
  /** Events coded in this system. */
  events: number;
  /** Most frequent codes, by count then code. */
  top: CodeCount[];
}

/** Units recorded for one (system, code), so that mixed units are visible. */
export interface UnitProfile {
  system: CodeSystem;
  code: string;
  /** Events by unit; numeric values without a unit are counted under "" . */
  units: Record<string, number>;
  /** More than one unit (counting "no unit") seen for this code. */
  mixed: boolean;
}

/** Numeric values of one observation code. */
export interface ValueProfile {
  system: CodeSystem;
  code: string;
  /** Observation events with this code. */
  events: number;
  /** Of those, events without a numeric value (coded values included). */
  missing: number;
  /** Range of the numeric values; absent when there are none. */
  min?: number | undefined;
  max?: number | undefined;
}

/** Aggregate data-quality summary of a source: counts and ranges only, no ids, no individual records. */
export interface SourceProfile {
  format: EhrSource['format'];
  patients: {
    /** Patient records read. */
    count: number;
    /** Records whose id was already seen (the same patient twice in the export). */
    duplicateIds: number;
    bySex: Record<Sex, number>;
    /** Patients with a death date. */
    deceased: number;
  };
  events: Record<EventKind, number>;
  /** Events whose patient id is not among the source's patients. */
  eventsWithUnknownPatient: number;
  codes: Partial<Record<CodeSystem, CodeSystemProfile>>;
  /** Per (system, code) with at least one numeric value or unit, sorted by system then code. */
  units: UnitProfile[];
  /** Per observation (system, code), sorted by system then code. */
  values: ValueProfile[];
  /** The source's skip counts after the profiling pass. */
  skipped: SkipCounts;
}

export interface ProfileOptions {
  /** Codes listed per system in `codes[system].top` (default 20). */
  topCodes?: number | undefined;
}

const ALL_KINDS: ReadonlySet<EventKind> = new Set(['encounter', 'condition', 'observation', 'medication']);

interface CodeStats {
  system: CodeSystem;
  code: string;
  events: number;
  observations: number;
  numeric: number;
  min: number;
  max: number;
  units: Map<string, number>;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Streams a source once (patients, then all events) and returns aggregate counts. Memory grows
 * with the number of patients (their ids are held in a set to count events of unknown
 * patients; the set is not returned) and of distinct codes, never with the number of events.
 */
export async function profileSource(source: EhrSource, options: ProfileOptions = {}): Promise<SourceProfile> {
  const topCodes = options.topCodes ?? 20;
  const patientIds = new Set<string>();
  const bySex: Record<Sex, number> = { female: 0, male: 0, other: 0, unknown: 0 };
  let deceased = 0;
  let count = 0;
  for await (const patient of source.patients()) {
    count++;
    patientIds.add(patient.id);
    bySex[patient.sex]++;
    if (patient.deathDay !== undefined) deceased++;
  }

  const events: Record<EventKind, number> = { encounter: 0, condition: 0, observation: 0, medication: 0 };
  let eventsWithUnknownPatient = 0;
  const stats = new Map<string, CodeStats>();
  for await (const e of source.events(ALL_KINDS)) {
    events[e.kind]++;
    if (!patientIds.has(e.patientId)) eventsWithUnknownPatient++;
    const key = `${e.system}|${e.code}`;
    let s = stats.get(key);
    if (s === undefined) {
      s = { system: e.system, code: e.code, events: 0, observations: 0, numeric: 0, min: Infinity, max: -Infinity, units: new Map() };
      stats.set(key, s);
    }
    s.events++;
    if (e.kind === 'observation') s.observations++;
    if (e.value !== undefined) {
      s.numeric++;
      s.min = Math.min(s.min, e.value);
      s.max = Math.max(s.max, e.value);
    }
    if (e.value !== undefined || e.unit !== undefined) s.units.set(e.unit ?? '', (s.units.get(e.unit ?? '') ?? 0) + 1);
  }

  const sorted = [...stats.values()].sort((a, b) => byText(a.system, b.system) || byText(a.code, b.code));
  const codes: Partial<Record<CodeSystem, CodeSystemProfile>> = {};
  for (const s of sorted) {
    const profile = (codes[s.system] ??= { distinct: 0, events: 0, top: [] });
    profile.distinct++;
    profile.events += s.events;
    profile.top.push({ code: s.code, count: s.events });
  }
  for (const profile of Object.values(codes)) {
    profile.top = profile.top.sort((a, b) => b.count - a.count || byText(a.code, b.code)).slice(0, topCodes);
  }

  return {
    format: source.format,
    patients: { count, duplicateIds: count - patientIds.size, bySex, deceased },
    events,
    eventsWithUnknownPatient,
    codes,
    units: sorted
      .filter((s) => s.units.size > 0)
      .map((s) => ({
        system: s.system,
        code: s.code,
        units: Object.fromEntries([...s.units].sort(([a], [b]) => byText(a, b))),
        mixed: s.units.size > 1,
      })),
    values: sorted
      .filter((s) => s.observations > 0)
      .map((s) => ({
        system: s.system,
        code: s.code,
        events: s.observations,
        missing: s.observations - s.numeric,
        ...(s.numeric > 0 ? { min: s.min, max: s.max } : {}),
      })),
    skipped: { ...source.skipped },
  };
}
