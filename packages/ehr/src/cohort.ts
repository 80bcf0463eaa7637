import { canonicalUnit, convertUnit, type CohortFeature, type CohortSpec } from '@fedlhs/core';
import { isoToDay, type ClinicalEvent, type EhrSource, type EventKind, type Sex, type SkipCounts } from './events.js';
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
  patients: number;
  eligible: number;
  excluded: Record<string, number>;
  positives: number;
  features: FeatureQuality[];
  skipped: SkipCounts;
}

export interface CohortResult {
  /** Eligible patients: features (NaN = missing) and labels; keys are source patient ids. */
  dataset: Dataset;
  report: CohortReport;
}

interface PatientState {
  birthDay: number;
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
 * before the patient's index day; events on or after it can only set the label.
 */
export async function extractCohort(source: EhrSource, spec: CohortSpec): Promise<CohortResult> {
  const from = isoToDay(spec.index.from)!;
  const to = isoToDay(spec.index.to)!;
  const patients = new Map<string, PatientState>();
  for await (const p of source.patients()) {
    patients.set(p.id, { birthDay: p.birthDay, sex: p.sex, conditions: new Map(), counted: new Map(), latest: new Map() });
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
    if (e.kind === 'encounter' && e.encounterClass === spec.index.encounterClass && e.day >= from && e.day <= to) {
      if (state.index === undefined || e.day < state.index) state.index = e.day;
    }
    if (e.kind === 'condition' && conditionCodes.has(key(e.system, e.code))) {
      const k = key(e.system, e.code);
      let days = state.conditions.get(k);
      if (days === undefined) state.conditions.set(k, (days = []));
      days.push(e.day);
    }
    recordCounts(state, e);
  }

  const quality: FeatureQuality[] = spec.features.map((f) => ({ name: f.name, missing: 0, outOfRange: 0, unitMismatch: 0, converted: {} }));
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
  for (const [id, state] of patients) {
    if (state.index === undefined) {
      exclude('no index encounter in window');
      continue;
    }
    const index = state.index;
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
    const label = labelOnsets.some((day) => day > index && day <= index + spec.label.horizonDays) ? 1 : 0;
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
  }
  if (unknownPatient > 0) source.skipped['events for an unknown patient'] = (source.skipped['events for an unknown patient'] ?? 0) + unknownPatient;
  const names = spec.features.map((f) => f.name);
  const x = Float32Array.from(rows);
  return {
    dataset: { features: names, x, y: Float32Array.from(labels), keys, rows: labels.length, skipped: { ...source.skipped } },
    report: {
      patients: patients.size,
      eligible: labels.length,
      excluded,
      positives: labels.filter((l) => l === 1).length,
      features: quality,
      skipped: { ...source.skipped },
    },
  };
}
