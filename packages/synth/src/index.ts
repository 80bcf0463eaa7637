/**
 * @fedlhs/synth: seeded synthetic clinics whose truth is known. Each clinic is written as a
 * Synthea-style CSV export, a FHIR R4 Bulk Data export and an OMOP CDM v5.4 CSV export of the
 * same patients, plus a truth.json (true risks and labels) that only the simulator and reports
 * may read. The headline task: incident type 2 diabetes within 3 years of an index outpatient
 * visit (the first wellness or ambulatory visit in 2015-2018). See README.md for the disease model.
 */

// Relevant to end users: profiles, generation, truth.
export { defaultClinics, validateProfile, DEFAULT_RACE_MIX } from './profile.js';
export type { ClinicProfile, ClinicUnits, ClinicCoding } from './profile.js';
export { generateClinic, summarise, ALL_FORMATS, FORMAT_DIRS } from './generate.js';
export type { ExportFormat, GenerateOptions } from './generate.js';
export { DEFAULT_DRIFT, JOINING_CLINIC, LHS_FIRST_YEAR, clinicInYear, driftingNetwork, joinYear, yearCalendar, yearRunAt } from './drift.js';
export type { DriftOptions, DriftingClinic } from './drift.js';
export type { PatientTruth, ClinicTruth, Exclusion } from './truth.js';

// Relevant to other fedlhs libraries and tests: the model, the codes and the timeline constants.
export { RISK_COEFFICIENTS, PREVALENT_T2D_OFFSET, sampleState, riskLogit, logistic } from './physiology.js';
export type { Demographics, PhysiologicalState, SmokingStatus } from './physiology.js';
export {
  LOINC,
  CONDITIONS,
  SMOKING_FINDINGS,
  ENCOUNTER_TYPES,
  GLUCOSE_MG_PER_MMOL,
  CHOLESTEROL_MG_PER_MMOL,
  TRIGLYCERIDES_MG_PER_MMOL,
  hba1cPercentToMmolMol,
} from './codes.js';
export {
  HISTORY_START_DAY,
  HISTORY_END_DAY,
  INDEX_WINDOW_START_DAY,
  INDEX_WINDOW_END_DAY,
  HORIZON_DAYS,
  MINOR_FRACTION,
} from './patient.js';
export { SYNTHEA_HEADERS } from './synthea-writer.js';
export { FHIR_RESOURCE_TYPES, TRANSACTION_TIME } from './fhir-writer.js';
export { OMOP_COLUMNS, OMOP_TABLES, VISIT_CONCEPTS, EHR_TYPE_CONCEPT } from './omop-writer.js';
export type { OmopTable } from './omop-writer.js';
