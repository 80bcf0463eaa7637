/**
 * Unit conversion to a feature's canonical UCUM unit. Only conversions that are exact for the
 * analyte are known: molar ↔ mass concentrations need the analyte's molar mass, so they are
 * listed per LOINC code. Anything else is a unit mismatch, reported and treated as missing.
 */

const ALIASES: Record<string, string> = {
  'mg/dl': 'mg/dL',
  'mmol/l': 'mmol/L',
  mmhg: 'mm[Hg]',
  'mm[hg]': 'mm[Hg]',
  'kg/m2': 'kg/m2',
  'kg/m^2': 'kg/m2',
  'kg/(m^2)': 'kg/m2',
  '%': '%',
  'mmol/mol': 'mmol/mol',
  kg: 'kg',
  cm: 'cm',
  a: 'a',
  '{score}': '{score}',
};

/** A unit string as UCUM spells it (case and common spelling variants folded). */
export function canonicalUnit(unit: string | undefined): string {
  if (unit === undefined) return '';
  const u = unit.trim();
  return ALIASES[u.toLowerCase()] ?? u;
}

type Conversion = (v: number) => number;

const GLUCOSE_MG_PER_MMOL = 18.016;
const CHOLESTEROL_MG_PER_MMOL = 38.67;
const TRIGLYCERIDE_MG_PER_MMOL = 88.57;

const glucose = { 'mmol/L->mg/dL': (v: number) => v * GLUCOSE_MG_PER_MMOL, 'mg/dL->mmol/L': (v: number) => v / GLUCOSE_MG_PER_MMOL };
const cholesterol = { 'mmol/L->mg/dL': (v: number) => v * CHOLESTEROL_MG_PER_MMOL, 'mg/dL->mmol/L': (v: number) => v / CHOLESTEROL_MG_PER_MMOL };
const triglycerides = { 'mmol/L->mg/dL': (v: number) => v * TRIGLYCERIDE_MG_PER_MMOL, 'mg/dL->mmol/L': (v: number) => v / TRIGLYCERIDE_MG_PER_MMOL };
// HbA1c: IFCC mmol/mol = (NGSP % − 2.15) × 10.929.
const hba1c = { 'mmol/mol->%': (v: number) => v / 10.929 + 2.15, '%->mmol/mol': (v: number) => (v - 2.15) * 10.929 };

/** Analyte-specific conversions by LOINC code: "from->to" → function. */
const BY_CODE: Record<string, Record<string, Conversion>> = {
  '2339-0': glucose, // Glucose [Mass/volume] in Blood
  '2345-7': glucose, // Glucose [Mass/volume] in Serum or Plasma
  '14749-6': glucose, // Glucose [Moles/volume] in Serum or Plasma
  '15074-8': glucose, // Glucose [Moles/volume] in Blood
  '2093-3': cholesterol, // Cholesterol [Mass/volume] in Serum or Plasma
  '2085-9': cholesterol, // HDL cholesterol
  '18262-6': cholesterol, // LDL cholesterol (direct)
  '13457-7': cholesterol, // LDL cholesterol (calculated)
  '2571-8': triglycerides, // Triglyceride [Mass/volume]
  '4548-4': hba1c, // Hemoglobin A1c/Hemoglobin.total in Blood
  '17856-6': hba1c, // Hemoglobin A1c/Hemoglobin.total in Blood by HPLC
};

/** Converts `value` in `from` to `to` for LOINC `code`; undefined when no exact conversion is known. */
export function convertUnit(code: string, value: number, from: string | undefined, to: string): number | undefined {
  const f = canonicalUnit(from);
  const t = canonicalUnit(to);
  if (f === t) return value;
  const conversion = BY_CODE[code]?.[`${f}->${t}`];
  return conversion === undefined ? undefined : conversion(value);
}
