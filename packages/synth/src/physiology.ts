/**
 * The causal disease model: demographics → latent physiology → 3-year T2D risk. Labs are
 * measurements of this state (see measurement.ts); nothing here looks at a label.
 * packages/synth/README.md documents every equation.
 */
import type { Rng } from './rng.js';

/** Smoking status at index. */
export type SmokingStatus = 'never' | 'former' | 'current';

/** Who the patient is. */
export interface Demographics {
  /** Age at the index (or nominal index) day, in years. */
  ageYears: number;
  female: boolean;
  /** Ethnicity key from the profile mix ('hispanic' has an effect). */
  ethnicity: string;
  /** Race key from the profile mix ('black' and 'asian' have effects). */
  race: string;
}

/** The true (unobserved) physiological state at index. Units: mg/dL, %, mm[Hg], kg/m2. */
export interface PhysiologicalState {
  bmi: number;
  /** Insulin resistance, a latent z-score-like quantity. */
  insulinResistance: number;
  /** Beta-cell secretory deficit, latent, independent of BMI. */
  betaCellDeficit: number;
  /** Glycaemic load: 0.55·IR + 0.6·deficit. Drives glucose, HbA1c and risk. */
  glycemia: number;
  fastingGlucose: number;
  hba1c: number;
  sbp: number;
  dbp: number;
  totalCholesterol: number;
  hdl: number;
  triglycerides: number;
  smoking: SmokingStatus;
}

/** Coefficients of the 3-year incident-T2D log-odds; the README explains each. */
export const RISK_COEFFICIENTS = {
  intercept: -3.45,
  glycemia: 2.0,
  insulinResistance: 0.55,
  agePerYear: 0.012,
  currentSmoker: 0.35,
  logTriglycerides: 0.3,
  sbpPer10: 0.06,
} as const;

/** How much more likely T2D already is before index than within the 3 years after (log-odds offset). */
export const PREVALENT_T2D_OFFSET = -1.2;

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Samples the latent state of one patient. The order of draws is part of the seeded output. */
export function sampleState(rng: Rng, d: Demographics): PhysiologicalState {
  const age = d.ageYears;
  const male = d.female ? 0 : 1;
  const hispanic = d.ethnicity === 'hispanic' ? 1 : 0;
  const black = d.race === 'black' ? 1 : 0;
  const asian = d.race === 'asian' ? 1 : 0;
  const a = age - 45;

  let bmi: number;
  if (age < 18) {
    bmi = clamp(15.5 + 0.45 * Math.max(0, age - 5) + rng.normal(0, 2.2), 12, 40);
  } else {
    const median = 27.6 + 0.07 * a - 0.002 * a * a + 0.4 * (1 - male) + 0.9 * hispanic + 1.6 * black - 3.2 * asian;
    bmi = clamp(median * Math.exp(rng.normal(0, 0.17)), 16, 65);
  }
  const insulinResistance =
    0.09 * (bmi - 28) + 0.012 * (age - 50) + 0.35 * hispanic + 0.3 * black + 0.45 * asian + 0.15 * male + rng.normal(0, 0.7);
  const betaCellDeficit = 0.012 * (age - 50) + rng.normal(0, 0.8);
  const glycemia = 0.55 * insulinResistance + 0.6 * betaCellDeficit;
  const fastingGlucose = clamp(94 + 11 * glycemia + rng.normal(0, 5), 65, 200);
  const hba1c = clamp(5.4 + 0.36 * glycemia + rng.normal(0, 0.16), 4.0, 9.0);
  const sbp = clamp(117 + 0.45 * a + 0.7 * (bmi - 28) + 4 * male + 3 * black + rng.normal(0, 12), 85, 220);
  const dbp = clamp(75 + 0.1 * a + 0.35 * (bmi - 28) + 2 * male + rng.normal(0, 8), 45, sbp - 20);
  const totalCholesterol = clamp(195 + 0.4 * a + 1.2 * (bmi - 28) + rng.normal(0, 35), 100, 400);
  const hdl = clamp(57 - 9 * male - 0.7 * (bmi - 28) - 3 * insulinResistance + rng.normal(0, 12), 20, 110);
  const triglycerides = clamp(
    Math.exp(Math.log(115) + 0.18 * insulinResistance + 0.012 * (bmi - 28) - 0.15 * black + rng.normal(0, 0.38)),
    30,
    1200,
  );
  const u = rng.next();
  const pCurrent = age < 18 ? 0.03 : clamp(0.2 - 0.002 * (age - 30) + 0.04 * male, 0.06, 0.3);
  const pFormer = age < 18 ? 0 : clamp(0.12 + 0.004 * (age - 30) + 0.04 * male, 0.05, 0.4);
  const smoking: SmokingStatus = u < pCurrent ? 'current' : u < pCurrent + pFormer ? 'former' : 'never';
  return { bmi, insulinResistance, betaCellDeficit, glycemia, fastingGlucose, hba1c, sbp, dbp, totalCholesterol, hdl, triglycerides, smoking };
}

/** Log-odds of incident T2D within 3 years, before the clinic's prevalence shift. */
export function riskLogit(s: PhysiologicalState, d: Demographics): number {
  const c = RISK_COEFFICIENTS;
  return (
    c.intercept +
    c.glycemia * s.glycemia +
    c.insulinResistance * s.insulinResistance +
    c.agePerYear * (d.ageYears - 50) +
    (s.smoking === 'current' ? c.currentSmoker : 0) +
    c.logTriglycerides * Math.log(s.triglycerides / 115) +
    c.sbpPer10 * ((s.sbp - 125) / 10)
  );
}

/** The logistic function. */
export function logistic(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
