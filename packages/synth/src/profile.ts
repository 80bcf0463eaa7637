import { FedlhsError } from '@fedlhs/core';
import { createRng, mixSeed } from './rng.js';

/** Units a clinic records a lab in. */
export interface ClinicUnits {
  /** Glucose: mg/dL or mmol/L (1 mmol/L = 18.016 mg/dL). */
  glucose: 'mg/dL' | 'mmol/L';
  /** Total cholesterol, HDL and triglycerides: mg/dL or mmol/L. */
  cholesterol: 'mg/dL' | 'mmol/L';
  /** HbA1c: NGSP % or IFCC mmol/mol. */
  hba1c: '%' | 'mmol/mol';
}

/** A clinic's coding habits. */
export interface ClinicCoding {
  /**
   * Which glucose LOINC the clinic uses: 2339-0 (in blood) or 2345-7 (in serum or plasma), mass
   * codes written in units.glucose; or 14749-6 (moles in serum or plasma), always in mmol/L.
   */
  glucoseCode: '2339-0' | '2345-7' | '14749-6';
}

/** Everything that makes one synthetic clinic differ from another. */
export interface ClinicProfile {
  /** Clinic name, e.g. 'clinic-large-1'. */
  name: string;
  /** Number of patients, 50 to 20 000 (adults and minors, with or without an index visit). */
  patients: number;
  /** Seed of the clinic's PRNG: same profile and seed, same files. */
  seed: number;
  /** Mean of the adult age distribution at index, in years. */
  ageMean: number;
  /** Standard deviation of the adult age distribution (ages are clamped to 18..90). */
  ageSd: number;
  /** Fraction of female patients, 0..1. */
  femaleFraction: number;
  /** Ethnicity weights, e.g. { hispanic: 0.2, nonhispanic: 0.8 } (normalised; keys are written as is). */
  ethnicityMix: Record<string, number>;
  /** Race weights (normalised; keys white/black/asian/other have physiological effects). Default {@link DEFAULT_RACE_MIX}. */
  raceMix?: Record<string, number> | undefined;
  /** Additive shift on the log-odds of incident T2D (and of T2D before index): clinic-level prevalence. */
  prevalenceShift: number;
  /** Probability that each lab is ordered at a wellness visit (missingness), 0..1. Vitals use max(rate, 0.9). */
  labOrderRate: number;
  /** Units the clinic records labs in. */
  units: ClinicUnits;
  /** Coding habits. */
  coding: ClinicCoding;
  /**
   * Whether the clinic reports fasting insulin (LOINC 20448-7, µIU/mL) with its glucose: a newer
   * assay (drift.ts). Its values come from a separate PRNG stream, so switching it on adds
   * observations without changing any other value. Default false.
   */
  insulinAssay?: boolean | undefined;
}

/** Race mix used when a profile gives none. */
export const DEFAULT_RACE_MIX: Readonly<Record<string, number>> = { white: 0.68, black: 0.14, asian: 0.08, other: 0.1 };

/** CONFIG_INVALID for an invalid {@link ClinicProfile} or network size (was InvalidProfileError). */
const invalidProfile = (message: string): FedlhsError<'CONFIG_INVALID'> => new FedlhsError('CONFIG_INVALID', message);

const GLUCOSE_UNITS = new Set(['mg/dL', 'mmol/L']);
const HBA1C_UNITS = new Set(['%', 'mmol/mol']);
const GLUCOSE_CODES = new Set(['2339-0', '2345-7', '14749-6']);

function checkMix(name: string, mix: Record<string, number> | undefined, fail: (msg: string) => never): void {
  if (mix === undefined) return;
  const values = Object.values(mix);
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v < 0) || values.every((v) => v === 0)) {
    fail(`${name} must have non-negative weights, at least one positive`);
  }
}

/** Throws CONFIG_INVALID with an exact message if `profile` cannot be generated. */
export function validateProfile(profile: ClinicProfile): void {
  const fail = (msg: string): never => {
    throw invalidProfile(`clinic profile '${profile.name}': ${msg}`);
  };
  if (!/^[A-Za-z0-9._-]+$/.test(profile.name)) fail('name must match [A-Za-z0-9._-]+');
  if (!Number.isInteger(profile.patients) || profile.patients < 50 || profile.patients > 20_000) fail('patients must be an integer in 50..20000');
  if (!Number.isInteger(profile.seed)) fail('seed must be an integer');
  if (!Number.isFinite(profile.ageMean) || profile.ageMean < 18 || profile.ageMean > 90) fail('ageMean must be in 18..90');
  if (!Number.isFinite(profile.ageSd) || profile.ageSd <= 0 || profile.ageSd > 40) fail('ageSd must be in (0, 40]');
  if (!(profile.femaleFraction >= 0 && profile.femaleFraction <= 1)) fail('femaleFraction must be in 0..1');
  if (!(profile.labOrderRate >= 0 && profile.labOrderRate <= 1)) fail('labOrderRate must be in 0..1');
  if (!Number.isFinite(profile.prevalenceShift) || Math.abs(profile.prevalenceShift) > 5) fail('prevalenceShift must be in -5..5');
  checkMix('ethnicityMix', profile.ethnicityMix, fail);
  checkMix('raceMix', profile.raceMix, fail);
  if (!GLUCOSE_UNITS.has(profile.units.glucose)) fail("units.glucose must be 'mg/dL' or 'mmol/L'");
  if (!GLUCOSE_UNITS.has(profile.units.cholesterol)) fail("units.cholesterol must be 'mg/dL' or 'mmol/L'");
  if (!HBA1C_UNITS.has(profile.units.hba1c)) fail("units.hba1c must be '%' or 'mmol/mol'");
  if (!GLUCOSE_CODES.has(profile.coding.glucoseCode)) fail("coding.glucoseCode must be '2339-0', '2345-7' or '14749-6'");
  if (profile.coding.glucoseCode === '14749-6' && profile.units.glucose !== 'mmol/L') fail("coding.glucoseCode '14749-6' (moles/volume) needs units.glucose 'mmol/L'");
  if (profile.insulinAssay !== undefined && typeof profile.insulinAssay !== 'boolean') fail('insulinAssay must be true or false');
}

type Template = Omit<ClinicProfile, 'name' | 'patients' | 'seed'> & { kind: 'large' | 'medium' | 'small'; sizes: [number, number] };

// Five clinics that differ in everything a federated model has to cope with: size, age mix,
// prevalence, missingness, units and coding.
const TEMPLATES: readonly Template[] = [
  {
    kind: 'large', sizes: [4000, 6000], ageMean: 46, ageSd: 16, femaleFraction: 0.55,
    ethnicityMix: { hispanic: 0.3, nonhispanic: 0.7 }, raceMix: { white: 0.55, black: 0.2, asian: 0.1, other: 0.15 },
    prevalenceShift: 0.15, labOrderRate: 0.75,
    units: { glucose: 'mg/dL', cholesterol: 'mg/dL', hba1c: '%' }, coding: { glucoseCode: '2345-7' },
  },
  {
    kind: 'large', sizes: [4000, 6000], ageMean: 53, ageSd: 15, femaleFraction: 0.52,
    ethnicityMix: { hispanic: 0.06, nonhispanic: 0.94 }, raceMix: { white: 0.82, black: 0.06, asian: 0.07, other: 0.05 },
    prevalenceShift: -0.25, labOrderRate: 0.65,
    units: { glucose: 'mmol/L', cholesterol: 'mmol/L', hba1c: 'mmol/mol' }, coding: { glucoseCode: '2339-0' },
  },
  {
    kind: 'medium', sizes: [900, 1100], ageMean: 58, ageSd: 14, femaleFraction: 0.5,
    ethnicityMix: { hispanic: 0.12, nonhispanic: 0.88 }, raceMix: { white: 0.6, black: 0.3, asian: 0.03, other: 0.07 },
    prevalenceShift: 0.35, labOrderRate: 0.5,
    units: { glucose: 'mg/dL', cholesterol: 'mmol/L', hba1c: '%' }, coding: { glucoseCode: '2339-0' },
  },
  {
    kind: 'small', sizes: [180, 300], ageMean: 55, ageSd: 17, femaleFraction: 0.48,
    ethnicityMix: { hispanic: 0.04, nonhispanic: 0.96 }, raceMix: { white: 0.9, black: 0.04, asian: 0.01, other: 0.05 },
    prevalenceShift: 0.25, labOrderRate: 0.35,
    units: { glucose: 'mg/dL', cholesterol: 'mg/dL', hba1c: '%' }, coding: { glucoseCode: '2345-7' },
  },
  {
    kind: 'small', sizes: [120, 220], ageMean: 38, ageSd: 12, femaleFraction: 0.6,
    ethnicityMix: { hispanic: 0.45, nonhispanic: 0.55 }, raceMix: { white: 0.45, black: 0.15, asian: 0.25, other: 0.15 },
    prevalenceShift: -0.4, labOrderRate: 0.55,
    units: { glucose: 'mmol/L', cholesterol: 'mmol/L', hba1c: 'mmol/mol' }, coding: { glucoseCode: '2345-7' },
  },
];

/**
 * A network of `count` (default 5) clinic profiles: two large (4000-6000 patients), one medium
 * (≈1000) and two small (120-300), differing in age mix, prevalence, missingness, units and
 * coding. Beyond five the templates repeat with new sizes and seeds. Sizes and per-clinic seeds
 * are drawn from `seed` (default 1), so the same arguments give the same network.
 */
export function defaultClinics(count = 5, seed = 1): ClinicProfile[] {
  if (!Number.isInteger(count) || count < 1 || count > 100) throw invalidProfile('defaultClinics: count must be an integer in 1..100');
  const rng = createRng(mixSeed(seed, 0xc11c));
  const seen = new Map<string, number>();
  const profiles: ClinicProfile[] = [];
  for (let i = 0; i < count; i++) {
    const { kind, sizes, ...rest } = TEMPLATES[i % TEMPLATES.length]!;
    const n = (seen.get(kind) ?? 0) + 1;
    seen.set(kind, n);
    const name = kind === 'medium' && count <= TEMPLATES.length ? 'clinic-medium' : `clinic-${kind}-${n}`;
    profiles.push({
      name,
      patients: rng.int(sizes[0], sizes[1]),
      seed: mixSeed(seed, i + 1),
      ...rest,
      ethnicityMix: { ...rest.ethnicityMix },
      raceMix: rest.raceMix === undefined ? undefined : { ...rest.raceMix },
      units: { ...rest.units },
      coding: { ...rest.coding },
    });
  }
  return profiles;
}
