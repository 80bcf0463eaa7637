/**
 * Codes, displays, units and conversions the exports use. One table so both formats write
 * exactly the same codes.
 */
import type { ClinicProfile } from './profile.js';

/** Coding system URIs. */
export const SYSTEMS = {
  loinc: 'http://loinc.org',
  snomed: 'http://snomed.info/sct',
  ucum: 'http://unitsofmeasure.org',
  actCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
  conditionClinical: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
  conditionVerification: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
  conditionCategory: 'http://terminology.hl7.org/CodeSystem/condition-category',
} as const;

/** A code with its display text. */
export interface Coded {
  code: string;
  display: string;
}

/** SNOMED conditions the generator writes. */
export const CONDITIONS = {
  t2d: { code: '44054006', display: 'Diabetes mellitus type 2 (disorder)' },
  prediabetes: { code: '15777000', display: 'Prediabetes (finding)' },
  hypertension: { code: '59621000', display: 'Essential hypertension (disorder)' },
  hyperlipidemia: { code: '55822004', display: 'Hyperlipidemia (disorder)' },
  bronchitis: { code: '10509002', display: 'Acute bronchitis (disorder)' },
  sinusitis: { code: '444814009', display: 'Viral sinusitis (disorder)' },
  pharyngitis: { code: '195662009', display: 'Acute viral pharyngitis (disorder)' },
  ankleSprain: { code: '44465007', display: 'Sprain of ankle (disorder)' },
  laceration: { code: '284551006', display: 'Laceration of foot (disorder)' },
  chestPain: { code: '29857009', display: 'Chest pain (finding)' },
} as const satisfies Record<string, Coded>;

/** Self-limited reasons for ambulatory visits (written as conditions with a STOP date). */
export const AMBULATORY_REASONS: readonly Coded[] = [CONDITIONS.bronchitis, CONDITIONS.sinusitis, CONDITIONS.pharyngitis, CONDITIONS.ankleSprain];
/** Reasons for emergency visits. */
export const EMERGENCY_REASONS: readonly Coded[] = [CONDITIONS.laceration, CONDITIONS.chestPain, CONDITIONS.ankleSprain];

/** Encounter types, by Synthea ENCOUNTERCLASS. */
export const ENCOUNTER_TYPES = {
  wellness: { code: '162673000', display: 'General examination of patient (procedure)' },
  ambulatory: { code: '185347001', display: 'Encounter for problem (procedure)' },
  emergency: { code: '50849002', display: 'Emergency room admission (procedure)' },
} as const satisfies Record<string, Coded>;

/** Observation categories (same code in both formats). */
export type ObservationCategory = 'vital-signs' | 'laboratory' | 'social-history';

/** LOINC codes of the measured quantities. */
export const LOINC = {
  bmi: { code: '39156-5', display: 'Body mass index (BMI) [Ratio]' },
  sbp: { code: '8480-6', display: 'Systolic blood pressure' },
  dbp: { code: '8462-4', display: 'Diastolic blood pressure' },
  bpPanel: { code: '85354-9', display: 'Blood pressure panel with all children optional' },
  glucoseBlood: { code: '2339-0', display: 'Glucose [Mass/volume] in Blood' },
  glucoseSerum: { code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma' },
  /** The molar glucose code a clinic may switch to (profile coding.glucoseCode '14749-6', always mmol/L). */
  glucoseSerumMolar: { code: '14749-6', display: 'Glucose [Moles/volume] in Serum or Plasma' },
  /** Fasting insulin: the newer assay a clinic may start reporting (profile insulinAssay). */
  insulin: { code: '20448-7', display: 'Insulin [Units/volume] in Serum or Plasma' },
  hba1c: { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' },
  cholesterol: { code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma' },
  hdl: { code: '2085-9', display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma' },
  triglycerides: { code: '2571-8', display: 'Triglycerides [Mass/volume] in Serum or Plasma' },
  smoking: { code: '72166-2', display: 'Tobacco smoking status' },
} as const satisfies Record<string, Coded>;

/** Smoking status findings (SNOMED) and their text. */
export const SMOKING_FINDINGS = {
  never: { code: '266919005', display: 'Never smoked tobacco (finding)' },
  former: { code: '8517006', display: 'Ex-smoker (finding)' },
  current: { code: '449868002', display: 'Smokes tobacco daily (finding)' },
} as const satisfies Record<string, Coded>;

/** mg/dL per mmol/L of glucose. */
export const GLUCOSE_MG_PER_MMOL = 18.016;
/** mg/dL per mmol/L of total and HDL cholesterol. */
export const CHOLESTEROL_MG_PER_MMOL = 38.67;
/** mg/dL per mmol/L of triglycerides. */
export const TRIGLYCERIDES_MG_PER_MMOL = 88.57;
/** HbA1c NGSP % to IFCC mmol/mol. */
export const hba1cPercentToMmolMol = (percent: number): number => (percent - 2.15) * 10.929;

/** Rounds to `decimals` places; n / 10^d prints as the short decimal in both CSV and JSON. */
export const roundTo = (x: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
};

/** A numeric lab as the clinic records it. */
export interface RecordedQuantity {
  loinc: Coded;
  category: ObservationCategory;
  value: number;
  /** UCUM unit, written as both unit and code. */
  unit: string;
}

/** Which measured analyte, in canonical units (mg/dL, %, kg/m2; insulin µIU/mL). */
export type Analyte = 'bmi' | 'glucose' | 'hba1c' | 'cholesterol' | 'hdl' | 'triglycerides' | 'insulin';

/** Converts a canonical-unit value to the clinic's unit and code, rounded as a lab would report it. */
export function recordQuantity(analyte: Analyte, canonical: number, profile: ClinicProfile): RecordedQuantity {
  const { units } = profile;
  switch (analyte) {
    case 'bmi':
      return { loinc: LOINC.bmi, category: 'vital-signs', value: roundTo(canonical, 1), unit: 'kg/m2' };
    case 'glucose': {
      if (profile.coding.glucoseCode === '14749-6') return { loinc: LOINC.glucoseSerumMolar, category: 'laboratory', value: roundTo(canonical / GLUCOSE_MG_PER_MMOL, 1), unit: 'mmol/L' };
      const loinc = profile.coding.glucoseCode === '2339-0' ? LOINC.glucoseBlood : LOINC.glucoseSerum;
      return units.glucose === 'mg/dL'
        ? { loinc, category: 'laboratory', value: roundTo(canonical, 0), unit: 'mg/dL' }
        : { loinc, category: 'laboratory', value: roundTo(canonical / GLUCOSE_MG_PER_MMOL, 1), unit: 'mmol/L' };
    }
    case 'hba1c':
      return units.hba1c === '%'
        ? { loinc: LOINC.hba1c, category: 'laboratory', value: roundTo(canonical, 1), unit: '%' }
        : { loinc: LOINC.hba1c, category: 'laboratory', value: roundTo(hba1cPercentToMmolMol(canonical), 0), unit: 'mmol/mol' };
    case 'cholesterol':
    case 'hdl': {
      const loinc = analyte === 'hdl' ? LOINC.hdl : LOINC.cholesterol;
      return units.cholesterol === 'mg/dL'
        ? { loinc, category: 'laboratory', value: roundTo(canonical, 0), unit: 'mg/dL' }
        : { loinc, category: 'laboratory', value: roundTo(canonical / CHOLESTEROL_MG_PER_MMOL, 2), unit: 'mmol/L' };
    }
    case 'insulin':
      return { loinc: LOINC.insulin, category: 'laboratory', value: roundTo(canonical, 1), unit: 'u[IU]/mL' };
    case 'triglycerides':
      return units.cholesterol === 'mg/dL'
        ? { loinc: LOINC.triglycerides, category: 'laboratory', value: roundTo(canonical, 0), unit: 'mg/dL' }
        : { loinc: LOINC.triglycerides, category: 'laboratory', value: roundTo(canonical / TRIGLYCERIDES_MG_PER_MMOL, 2), unit: 'mmol/L' };
  }
}
