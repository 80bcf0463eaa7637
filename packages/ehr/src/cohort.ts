import { canonicalUnit, convertUnit, describeIndex, encounterClassMatches, type CohortFeature, type CohortSpec } from '@fedlhs/core';
import { isoToDay, type ClinicalEvent, type EhrSource, type EventKind, type Sex, type SkipCounts, type SourceInventory } from './events.js';
import type { Dataset } from './flat-table.js';

/** Per-feature data quality of an extraction: counts only, nothing about any one patient. */
export interface FeatureQuality {
  name: string;
  /** Eligible patients with no usable value (NaN in the matrix). */
  missing: number;
  /** Values dropped for lying outside the feature's plausible range. */
  outOfRange: number;
  /** Values dropped because their unit could not be converted to the feature's unit. */
  unitMismatch: number;
  /** Values converted from another unit, by "from→to". */
  converted: Record<string, number>;
}

/** What an extraction did: cohort counts, exclusions by reason, per-feature quality. */
export interface CohortReport {
  /** Patient records read (after `patientLosses`). */
  patients: number;
  /** Patient records dropped while reading, by reason (malformed line, invalid birth date, ...). */
  patientLosses: SkipCounts;
  eligible: number;
  excluded: Record<string, number>;
  positives: number;
  features: FeatureQuality[];
  /** Every record or resource skipped, by reason (including `patientLosses` and events of unknown patients). */
  skipped: SkipCounts;
  /** Events whose patient is not among the patients read (a dropped patient's events land here). */
  eventsForUnknownPatients: number;
  /** Records kept with something in them not read, by reason. */
  notes: SkipCounts;
  /** Encounters dated in the index window, by recorded class ("(none)" when unclassified): why an index may match nobody. */
  indexWindowClasses: Record<string, number>;
  /** What will make the model worse here, in words: data the study needs that the export lacks, features with no value at all. */
  warnings: string[];
}

/** The event kinds a cohort definition reads, each with what needs it (in words). */
export function neededKinds(spec: CohortSpec): Map<EventKind, string[]> {
  const needs = new Map<EventKind, string[]>();
  const need = (kind: EventKind, what: string): void => {
    if (!needs.has(kind)) needs.set(kind, []);
    needs.get(kind)!.push(what);
  };
  need('encounter', 'the index encounter');
  need('condition', 'the label');
  if (spec.eligibility.excludeConditions.length > 0) need('condition', 'the excluded conditions');
  for (const f of spec.features) {
    if (f.type === 'latest' || f.type === 'latest-coded') need('observation', `feature ${f.name}`);
    else if (f.type === 'condition') need('condition', `feature ${f.name}`);
    else if (f.type === 'count') need(f.kind, `feature ${f.name}`);
  }
  return needs;
}

/** "no observations.csv in the export: features bmi, glucose will all be missing" — one line per absent kind a spec needs. */
export function missingDataWarnings(spec: CohortSpec, inventory: SourceInventory): string[] {
  const out: string[] = [];
  for (const [kind, uses] of neededKinds(spec)) {
    if (inventory.files[kind].length > 0) continue;
    const features = uses.filter((u) => u.startsWith('feature ')).map((u) => u.slice('feature '.length));
    const consequences: string[] = [];
    if (uses.includes('the index encounter')) consequences.push('no patient can have an index encounter, so the cohort is empty');
    if (uses.includes('the label')) consequences.push('no patient can have the outcome, so the cohort has no cases');
    if (uses.includes('the excluded conditions')) consequences.push('exclusions by condition cannot apply');
    if (features.length > 0) {
      const verb = kind === 'observation' ? 'will all be missing' : kind === 'condition' ? 'will all be 0' : 'will all count 0';
      consequences.push(`${features.length === 1 ? 'feature' : 'features'} ${features.join(', ')} ${verb}`);
    }
    out.push(`no ${inventory.expected[kind]} in the export: ${consequences.join('; ')}`);
  }
  return out;
}

/**
 * Which day is each patient's index day (features use only events strictly before it):
 * - `cohort` (default): the study's rule, the first index encounter in the spec's from/to window;
 * - `date`: the same day for everyone (days since 1970-01-01), e.g. "score as of today";
 * - `latest`: each patient's latest encounter of the spec's index classes or codes, at any date
 *   up to `asOf` (scoring a patient at their most recent qualifying visit; an encounter dated
 *   after `asOf`, e.g. a booking recorded as finished, is not a visit yet). Without `asOf`, any date.
 */
export type IndexRule = { kind: 'cohort' } | { kind: 'date'; day: number } | { kind: 'latest'; asOf?: number | undefined };

/** How `extractCohort` picks index days and whether it computes labels. */
export interface ExtractOptions {
  /** Default `{ kind: 'cohort' }`. */
  index?: IndexRule | undefined;
  /**
   * 'required' (default): each row's label from the outcome within the horizon. 'none' (scoring):
   * no label is computed and `y` is NaN; patients with the outcome on or before the index day
   * are still excluded (the model would say nothing useful about them).
   */
  labels?: 'required' | 'none' | undefined;
}

/** A cohort's design matrix with each row's index day. */
export interface CohortDataset extends Dataset {
  /** Index day (days since 1970-01-01) of each row, in `keys` order. */
  indexDays: number[];
}

/** A unit no observation of a feature could be converted from: why a value was dropped (counts only). */
export interface UnconvertedUnit {
  feature: string;
  /** The unit as recorded ("(none)" when the observation had none). */
  unit: string;
  count: number;
}

export interface CohortResult {
  /** Eligible patients: features (NaN = missing) and labels; keys are source patient ids. */
  dataset: CohortDataset;
  report: CohortReport;
  /** Per feature and recorded unit, the values dropped because the unit cannot be converted (the detail of `unitMismatch`). */
  unconvertedUnits: UnconvertedUnit[];
}

interface PatientState {
  birthDay: number;
  deathDay?: number | undefined;
  sex: Sex;
  index?: number;
  /** Onset days per condition code of interest. */
  conditions: Map<string, number[]>;
  /** Days of events counted by 'count' features, per feature index. */
  counted: Map<number, number[]>;
  /** Latest (day, value) per 'latest'/'latest-coded' feature index. */
  latest: Map<number, { day: number; value: number }>;
}

const key = (system: string, code: string): string => `${system}|${code}`;

/**
 * Turns a clinic's EHR events into the cohort's design matrix in three streaming passes
 * (patients; encounters and conditions; observations and medications), holding only what
 * each patient's features need. Leakage guard: every feature uses only events dated strictly
 * before the patient's index day; events on or after it can only set the label. Every index
 * rule (options.index) runs through this same code: only the choice of index day differs.
 */
export async function extractCohort(source: EhrSource, spec: CohortSpec, options: ExtractOptions = {}): Promise<CohortResult> {
  const rule: IndexRule = options.index ?? { kind: 'cohort' };
  const withLabels = (options.labels ?? 'required') === 'required';
  if (rule.kind === 'date' && !Number.isInteger(rule.day)) throw new TypeError(`extractCohort: index day must be an integer day number, got ${rule.day}`);
  const from = isoToDay(spec.index.from)!;
  const to = isoToDay(spec.index.to)!;
  const noIndex = rule.kind === 'cohort' ? 'no index encounter in window' : 'no index encounter';
  const inventory = await source.inventory();
  const indexCodes = new Set(spec.index.codes.flatMap((c) => c.codes.map((code) => key(c.system, code))));
  const isIndexEncounter = (e: ClinicalEvent): boolean =>
    spec.index.classes.some((c) => encounterClassMatches(c, e.encounterClass)) || indexCodes.has(key(e.system, e.code));
  const windowClasses: Record<string, number> = {};
  const patients = new Map<string, PatientState>();
  for await (const p of source.patients()) {
    patients.set(p.id, {
      birthDay: p.birthDay, sex: p.sex, deathDay: p.deathDay, conditions: new Map(), counted: new Map(), latest: new Map(),
      ...(rule.kind === 'date' ? { index: rule.day } : {}),
    });
  }

  // Condition codes anything needs: exclusions, the label, condition flags.
  const conditionCodes = new Set<string>();
  for (const c of spec.eligibility.excludeConditions) for (const code of c.codes) conditionCodes.add(key(c.system, code));
  for (const code of spec.label.condition.codes) conditionCodes.add(key(spec.label.condition.system, code));
  spec.features.forEach((f) => {
    if (f.type === 'condition') for (const code of f.codes) conditionCodes.add(key(f.system, code));
  });
  const counts = spec.features.map((f, i) => [f, i] as const).filter((e): e is readonly [Extract<CohortFeature, { type: 'count' }>, number] => e[0].type === 'count');
  const matchesCount = (f: Extract<CohortFeature, { type: 'count' }>, e: ClinicalEvent): boolean =>
    f.kind === e.kind && (f.codes === undefined || ((f.system === undefined || f.system === e.system) && f.codes.includes(e.code)));
  const recordCounts = (state: PatientState, e: ClinicalEvent): void => {
    for (const [f, i] of counts) {
      if (!matchesCount(f, e)) continue;
      let days = state.counted.get(i);
      if (days === undefined) state.counted.set(i, (days = []));
      days.push(e.day);
    }
  };

  let unknownPatient = 0;
  for await (const e of source.events(new Set<EventKind>(['encounter', 'condition']))) {
    const state = patients.get(e.patientId);
    if (state === undefined) {
      unknownPatient++;
      continue;
    }
    if (e.kind === 'encounter' && e.day >= from && e.day <= to) {
      const recorded = e.encounterClass ?? '(none)';
      windowClasses[recorded] = (windowClasses[recorded] ?? 0) + 1;
      if (rule.kind === 'cohort' && isIndexEncounter(e) && (state.index === undefined || e.day < state.index)) state.index = e.day;
    }
    if (rule.kind === 'latest' && e.kind === 'encounter' && isIndexEncounter(e) && (rule.asOf === undefined || e.day <= rule.asOf) && (state.index === undefined || e.day > state.index)) state.index = e.day;
    if (e.kind === 'condition' && conditionCodes.has(key(e.system, e.code))) {
      const k = key(e.system, e.code);
      let days = state.conditions.get(k);
      if (days === undefined) state.conditions.set(k, (days = []));
      days.push(e.day);
    }
    recordCounts(state, e);
  }

  const quality: FeatureQuality[] = spec.features.map((f) => ({ name: f.name, missing: 0, outOfRange: 0, unitMismatch: 0, converted: {} }));
  const unconverted = new Map<string, UnconvertedUnit>();
  const latestFeatures = spec.features
    .map((f, i) => [f, i] as const)
    .filter((e): e is readonly [Extract<CohortFeature, { type: 'latest' | 'latest-coded' }>, number] => e[0].type === 'latest' || e[0].type === 'latest-coded');
  const passTwoKinds = new Set<EventKind>(['observation']);
  if (counts.some(([f]) => f.kind === 'medication')) passTwoKinds.add('medication');
  if (latestFeatures.length > 0 || counts.some(([f]) => f.kind === 'observation' || f.kind === 'medication')) {
    for await (const e of source.events(passTwoKinds)) {
      const state = patients.get(e.patientId);
      if (state === undefined) {
        unknownPatient++;
        continue;
      }
      if (state.index === undefined) continue;
      recordCounts(state, e);
      // The leakage guard: nothing on or after the index day, nothing before the lookback.
      if (e.day >= state.index || e.day < state.index - spec.lookbackDays) continue;
      for (const [f, i] of latestFeatures) {
        if (f.system !== e.system || !f.codes.includes(e.code)) continue;
        let value: number | undefined;
        if (f.type === 'latest') {
          if (e.value === undefined) continue;
          value = convertUnit(e.code, e.value, e.unit, f.unit);
          const q = quality[i]!;
          if (value === undefined) {
            q.unitMismatch++;
            const unit = e.unit ?? '(none)';
            const u = unconverted.get(`${f.name}|${unit}`) ?? { feature: f.name, unit, count: 0 };
            u.count++;
            unconverted.set(`${f.name}|${unit}`, u);
            continue;
          }
          if (canonicalUnit(e.unit) !== canonicalUnit(f.unit)) {
            const label = `${canonicalUnit(e.unit)}→${canonicalUnit(f.unit)}`;
            q.converted[label] = (q.converted[label] ?? 0) + 1;
          }
          if (value < f.range[0] || value > f.range[1]) {
            q.outOfRange++;
            continue;
          }
        } else {
          if (e.valueCode === undefined) continue;
          value = f.positive.includes(e.valueCode) ? 1 : 0;
        }
        const previous = state.latest.get(i);
        if (previous === undefined || e.day >= previous.day) state.latest.set(i, { day: e.day, value });
      }
    }
  }

  const excluded: Record<string, number> = {};
  const exclude = (reason: string): void => {
    excluded[reason] = (excluded[reason] ?? 0) + 1;
  };
  const labelCodes = spec.label.condition.codes.map((c) => key(spec.label.condition.system, c));
  const excludeCodes = spec.eligibility.excludeConditions.flatMap((c) => c.codes.map((code) => key(c.system, code)));
  const onsets = (state: PatientState, codes: string[]): number[] => codes.flatMap((k) => state.conditions.get(k) ?? []);
  const rows: number[] = [];
  const labels: number[] = [];
  const keys: string[] = [];
  const indexDays: number[] = [];
  for (const [id, state] of patients) {
    if (state.index === undefined) {
      exclude(noIndex);
      continue;
    }
    const index = state.index;
    // Only a chosen date can fall after a death (an index encounter cannot): nobody to score.
    if (rule.kind === 'date' && state.deathDay !== undefined && state.deathDay < index) {
      exclude('died before index');
      continue;
    }
    const age = (index - state.birthDay) / 365.25;
    if (age < spec.eligibility.minAge || age > spec.eligibility.maxAge) {
      exclude('age outside eligibility');
      continue;
    }
    if (onsets(state, excludeCodes).some((day) => day <= index)) {
      exclude('excluded condition on or before index');
      continue;
    }
    const labelOnsets = onsets(state, labelCodes);
    if (labelOnsets.some((day) => day <= index)) {
      exclude('outcome on or before index');
      continue;
    }
    const label = !withLabels ? Number.NaN : labelOnsets.some((day) => day > index && day <= index + spec.label.horizonDays) ? 1 : 0;
    spec.features.forEach((f, i) => {
      let v: number;
      switch (f.type) {
        case 'age':
          v = age;
          break;
        case 'sex':
          v = state.sex === f.value ? 1 : 0;
          break;
        case 'condition':
          v = onsets(state, f.codes.map((c) => key(f.system, c))).some((day) => day < index) ? 1 : 0;
          break;
        case 'count':
          v = (state.counted.get(i) ?? []).filter((day) => day < index && day >= index - spec.lookbackDays).length;
          break;
        default:
          v = state.latest.get(i)?.value ?? Number.NaN;
      }
      if (Number.isNaN(v)) quality[i]!.missing++;
      rows.push(v);
    });
    labels.push(label);
    keys.push(id);
    indexDays.push(index);
  }
  const skipped: SkipCounts = { ...source.skipped };
  // An event is only known to belong to no patient once the patients were read: count it here.
  if (unknownPatient > 0) skipped['events for an unknown patient'] = unknownPatient;
  const warnings = missingDataWarnings(spec, inventory);
  const eligible = labels.length;
  if (eligible > 0) {
    const empty = quality.filter((q) => q.missing === eligible).map((q) => q.name);
    const missingKinds = new Set(neededKinds(spec).keys());
    const notExplained = empty.filter((name) => {
      const f = spec.features.find((g) => g.name === name)!;
      return !(missingKinds.has('observation') && inventory.files.observation.length === 0 && (f.type === 'latest' || f.type === 'latest-coded'));
    });
    if (notExplained.length > 0) warnings.push(`no eligible patient has a value for ${notExplained.join(', ')}: check the codes and units the study asks for against this export`);
  }
  if (rule.kind !== 'date' && inventory.files.encounter.length > 0 && patients.size > 0 && (excluded[noIndex] ?? 0) === patients.size) {
    const seen = Object.entries(windowClasses).sort(([, a], [, b]) => b - a).map(([c, n]) => `${c} ${n}`);
    warnings.push(
      `no patient has an index encounter (${describeIndex(spec.index)}); encounters in the window by class: ${seen.length === 0 ? 'none' : seen.join(', ')}`,
    );
  }
  const names = spec.features.map((f) => f.name);
  const x = Float32Array.from(rows);
  return {
    dataset: { features: names, x, y: Float32Array.from(labels), keys, rows: eligible, skipped, indexDays },
    unconvertedUnits: [...unconverted.values()].sort((a, b) => (a.feature === b.feature ? (a.unit < b.unit ? -1 : 1) : a.feature < b.feature ? -1 : 1)),
    report: {
      patients: patients.size,
      patientLosses: source.patientLosses,
      eligible,
      excluded,
      positives: labels.filter((l) => l === 1).length,
      features: quality,
      skipped,
      eventsForUnknownPatients: unknownPatient,
      notes: source.notes,
      indexWindowClasses: Object.fromEntries(Object.entries(windowClasses).sort(([a], [b]) => (a < b ? -1 : 1))),
      warnings,
    },
  };
}
