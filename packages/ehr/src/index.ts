/**
 * @fedlhs/ehr: reading a clinic's local data into numeric datasets for a study's feature
 * spec. Runs only inside the node agent; nothing here sends data anywhere.
 */
export * from './flat-table.js';
export * from './events.js';
export * from './cohort.js';
export * from './sources.js';
export { assessReadiness, type ReadinessRules, type ReadinessVerdict } from './readiness.js';
export { openSyntheaCsv } from './synthea.js';
export { openFhirBulk } from './fhir.js';
export { openOmopCsv, type OmopCsvOptions } from './omop.js';
export { profileSource, type SourceProfile, type ProfileOptions, type CodeSystemProfile, type CodeCount, type UnitProfile, type ValueProfile } from './quality.js';
export { openFhirResources, type ResourceSourceOptions } from './resource-source.js';
export type { FhirResourceType } from './fhir-resources.js';
