import type { ClinicProfile } from './profile.js';

/** Why a patient is not in the headline cohort. */
export type Exclusion = 'no-index-visit' | 'under-18' | 'prior-t2d';

/** The known truth about one synthetic patient (never written into the export directories). */
export interface PatientTruth {
  /** Patient id: the Synthea/FHIR patient id, and person_source_value in the OMOP export. */
  patientId: string;
  /** Adult at index, with an index outpatient visit, without T2D diagnosed before index. */
  eligible: boolean;
  /**
   * Day (since 1970-01-01 UTC) of the index visit: the first outpatient visit (wellness or
   * ambulatory, any reason, including a T2D diagnosis visit) in 2015-01-01..2018-12-31; null if none.
   */
  indexDay: number | null;
  /** True 3-year probability of incident T2D given the latent state (also for ineligible patients). */
  risk: number;
  /** Incident T2D in (index, index + 1095 days]; null when not eligible. */
  label: 0 | 1 | null;
  /** First reason for exclusion, in the order no-index-visit, under-18, prior-t2d (absent when eligible). */
  exclusion?: Exclusion | undefined;
}

/** The known truth about one synthetic clinic, as written to outDir/truth.json. */
export interface ClinicTruth {
  profile: ClinicProfile;
  patients: PatientTruth[];
  /** rocAuc of true risk against the label among eligible patients; undefined if one class only. */
  oracleAuc: number | undefined;
  /** Number of eligible patients. */
  eligible: number;
  /** Fraction of eligible patients with label 1 (0 if none eligible). */
  prevalence: number;
  /** Ineligible patients by reason. */
  exclusions: Record<Exclusion, number>;
}
