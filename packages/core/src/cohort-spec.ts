import { z } from 'zod';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');
const system = z.enum(['LOINC', 'SNOMED', 'RXNORM', 'ICD10CM', 'OMOP', 'OTHER']);
const codes = z.array(z.string().min(1).max(64)).min(1).max(1000);
const codeSet = z.strictObject({ system, codes });
const featureName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a letter then letters, digits or _ (at most 64)');

/**
 * One feature of a cohort, computed per patient from events strictly before the index day
 * (and within the lookback window where it says so). Missing → NaN, imputed after scaling.
 */
export const cohortFeatureSchema = z.discriminatedUnion('type', [
  /** Age in years at the index day. */
  z.strictObject({ name: featureName, type: z.literal('age') }),
  /** 1 if the recorded sex equals `value`, else 0. */
  z.strictObject({ name: featureName, type: z.literal('sex'), value: z.enum(['female', 'male']) }),
  /** Latest numeric value of any of `codes` in the lookback window, converted to `unit`; out of `range` → missing. */
  z.strictObject({
    name: featureName,
    type: z.literal('latest'),
    system,
    codes,
    unit: z.string().min(1).max(32),
    range: z.tuple([z.number(), z.number()]),
  }),
  /** Latest coded value of `codes` in the lookback window: 1 if in `positive`, 0 otherwise, missing if none. */
  z.strictObject({ name: featureName, type: z.literal('latest-coded'), system, codes, positive: codes }),
  /** 1 if a condition with one of `codes` has its onset before the index day, else 0. */
  z.strictObject({ name: featureName, type: z.literal('condition'), system, codes }),
  /** Number of events of `kind` (optionally restricted to codes) in the lookback window. */
  z.strictObject({ name: featureName, type: z.literal('count'), kind: z.enum(['encounter', 'condition', 'observation', 'medication']), system: system.optional(), codes: codes.optional() }),
]);

/**
 * Encounter classes, the same in every export format (readers map their own vocabularies onto
 * them; see the README's index-event table). 'outpatient' is a group: wellness or ambulatory.
 */
export const ENCOUNTER_CLASSES = ['wellness', 'ambulatory', 'outpatient', 'emergency', 'urgentcare', 'inpatient', 'home', 'virtual'] as const;
export type EncounterClass = (typeof ENCOUNTER_CLASSES)[number];

/** Classes an encounter recorded as `recorded` satisfies when a spec asks for `wanted`. */
export function encounterClassMatches(wanted: EncounterClass, recorded: string | undefined): boolean {
  if (recorded === undefined) return false;
  return wanted === recorded || (wanted === 'outpatient' && (recorded === 'wellness' || recorded === 'ambulatory'));
}

const indexSchema = z
  .strictObject({
    /** Shorthand for `classes: [encounterClass]` (manifests written before `classes` existed). */
    encounterClass: z.enum(ENCOUNTER_CLASSES).optional(),
    /** The index encounter has one of these classes... */
    classes: z.array(z.enum(ENCOUNTER_CLASSES)).max(ENCOUNTER_CLASSES.length).optional(),
    /** ...or one of these codes (SNOMED encounter types, FHIR Encounter.type codes, OMOP visit concept ids). */
    codes: z.array(codeSet).max(20).optional(),
    from: isoDate,
    to: isoDate,
  })
  .transform(({ encounterClass, classes, ...rest }, ctx) => {
    const merged = [...new Set([...(classes ?? []), ...(encounterClass === undefined ? [] : [encounterClass])])];
    if (merged.length === 0 && (rest.codes ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['classes'], message: 'declare the index encounter by classes and/or codes' });
      return z.NEVER;
    }
    return { classes: merged, codes: rest.codes ?? [], from: rest.from, to: rest.to };
  });

/** A declarative cohort and feature definition: data, never code. */
export const cohortSpecSchema = z
  .strictObject({
    /**
     * The index event: a patient's first encounter in [from, to] (inclusive) whose class is one
     * of `classes` or whose code is one of `codes`.
     */
    index: indexSchema,
    eligibility: z.strictObject({
      minAge: z.number().min(0).max(130).default(18),
      maxAge: z.number().min(0).max(130).default(130),
      /** Patients with any of these conditions on or before the index day are excluded. */
      excludeConditions: z.array(codeSet).max(100).default([]),
    }),
    /** Days before the index day that features may look back. */
    lookbackDays: z.number().int().min(1).max(36500),
    features: z.array(cohortFeatureSchema).min(1).max(500),
    /** Outcome: first onset of the condition within (index, index + horizonDays]. Earlier onset excludes the patient. */
    label: z.strictObject({ condition: codeSet, horizonDays: z.number().int().min(1).max(36500) }),
  })
  .superRefine((s, ctx) => {
    const names = s.features.map((f) => f.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['features'], message: 'feature names must be unique' });
    if (s.index.from > s.index.to) ctx.addIssue({ code: 'custom', path: ['index', 'from'], message: 'must not be after index.to' });
    if (s.eligibility.minAge > s.eligibility.maxAge) ctx.addIssue({ code: 'custom', path: ['eligibility', 'minAge'], message: 'must be <= maxAge' });
    s.features.forEach((f, i) => {
      if (f.type === 'latest' && !(f.range[0] < f.range[1])) ctx.addIssue({ code: 'custom', path: ['features', i, 'range'], message: 'must be [min, max] with min < max' });
    });
  });

export type CohortSpec = z.output<typeof cohortSpecSchema>;
export type CohortFeature = z.output<typeof cohortFeatureSchema>;

/** How a cohort's index event is declared, in words ("first encounter with class outpatient in 2015-01-01..2018-12-31"). */
export function describeIndex(index: CohortSpec['index']): string {
  const parts = [...(index.classes.length > 0 ? [`class ${index.classes.join(' or ')}`] : []), ...index.codes.map((c) => `${c.system} ${c.codes.join('/')}`)];
  return `first encounter with ${parts.join(', or ')} in ${index.from}..${index.to}`;
}
