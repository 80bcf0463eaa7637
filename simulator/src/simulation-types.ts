import type { CohortReport } from '@fedlhs/ehr';
import type { Assessment, PairedAucDifference } from './evaluation.js';

/** The simulation's options and report: data shared by the run (simulate.ts) and its rendering (simulation-report.ts). */

export interface SimulationOptions {
  clinics: number;
  seed: number;
  rounds: number;
  out: string;
  /** Multiplies every clinic's patient count (e.g. 0.2 for a quick run). */
  scale: number;
  log: (line: string) => void;
}

export type Method = 'federated' | 'pooled' | 'local' | 'oracle';

export interface ClinicResult {
  name: string;
  format: 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';
  patients: number;
  eligible: number;
  train: number;
  holdout: number;
  prevalence: number;
  participated: boolean;
  cohort: CohortReport;
  /** Every method on this clinic's hold-out patients; each AUC with its 95 % interval and case counts. */
  results: Partial<Record<Method, Assessment>>;
  /** Federated AUC minus local AUC on this clinic's hold-out (the point estimate of `gainPaired`). */
  gain: number | null;
  /** Federated − local AUC on this clinic's hold-out, paired bootstrap 95 % interval (same patients). */
  gainPaired: PairedAucDifference | null;
  /** This clinic's local-only model scored on every clinic's hold-out patients: what it could offer alone. */
  localOnAll: Assessment | null;
  /** Federated − this clinic's local model, both scored on every clinic's hold-out patients (paired). */
  gainOnAll: PairedAucDifference | null;
}

export interface SimulationReport {
  kind: 'simulation';
  createdAt: string;
  settings: {
    clinics: number; seed: number; rounds: number; scale: number; backend: string;
    /** Every interval: stratified percentile bootstrap, 95 %, this many resamples, seeded with the simulation seed; AUCs on fewer cases or non-cases are flagged. */
    bootstrap: { resamples: number; seed: number; minCases: number };
  };
  study: { id: string; state: string; manifestSha256: string; roundsCommitted: number };
  /**
   * The coordinator's release of the study: the round its selection rule chose on the clinics'
   * validation figures. Every "federated" figure here is that released model, scored on the
   * clinics' test patients (the part of each hold-out split that chose nothing).
   */
  release: { studyName: string; version: number; round: number; rule: string; testFraction: number };
  /**
   * Every committed round: loss, accuracy and AUC as the clinics reported them (example-weighted
   * mean over the clinics that evaluated; null when no global metric was stored), and `holdout`:
   * the round's committed model scored here on every clinic's test patients, with its AUC interval.
   */
  rounds: { round: number; loss: number | null; accuracy: number | null; auc: number | null; holdout: Assessment | null }[];
  clinics: ClinicResult[];
  /** Every method on all hold-out patients ('local': each clinic's own model on its own hold-out). */
  overall: Partial<Record<Method, Assessment>>;
  /** Federated − pooled AUC on all hold-out patients, paired. */
  federatedVsPooled: PairedAucDifference | null;
  /** One or two sentences that claim only what the intervals support (simulationHeadline in simulation-report.ts). */
  headline: string;
  /** Largest |coordinator − recomputed from the clinics' reports| difference of normalisation parameters. */
  normalizationMaxAbsDiff: number;
  /** Largest difference between the federated and the (unsuppressed) pooled normalisation: the cost of small-cell suppression. */
  suppressionEffect: number;
  timings: Record<string, number>;
}
