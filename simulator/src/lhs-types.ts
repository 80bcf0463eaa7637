import type { DriftOptions } from '@fedlhs/synth';
import type { Assessment, PairedAucDifference } from './evaluation.js';

/** The multi-year simulation's options and report (lhs.ts runs it, lhs-report.ts renders it). */

export interface LhsOptions {
  /** Simulated years, 1..20 (the scenario's changes happen in years 2 and 3). */
  years: number;
  /** Multiplies every clinic's patient count (0.15 for the test suite). */
  scale: number;
  seed: number;
  /** Federated rounds per run. */
  rounds: number;
  out: string;
  /** Founding clinics, 2..4 (default 4); the joining clinic comes on top. */
  founders?: number | undefined;
  drift?: DriftOptions | undefined;
  log: (line: string) => void;
}

/** What happened in one year's run of the series. */
export interface LhsRun {
  year: number;
  run: number;
  studyId: string;
  state: string;
  manifestSha256: string;
  /** Who started the run: `schedule` (the cron schedule on the simulated clock) or `operator:<name>`. */
  trigger: string;
  /** The scheduled time (simulated) the run was derived at. */
  scheduledAt: string;
  /** The index window the run was derived with. */
  window: { from: string; to: string };
  /** Clinics whose agent ran that year (every clinic that has joined). */
  clinics: string[];
  /** Clinics that trained in at least one round. */
  trained: string[];
  /** The champion the run started from and was compared with (null: none yet, trained from scratch). */
  championBefore: number | null;
  /** Whether the coordinator's round 0 was the champion's weights (its round-0 reason says "warm start"). */
  warmStart: boolean;
  /** The run's release (the challenger); null when the study did not complete. */
  release: { version: number; round: number; rule: string } | null;
  /** The coordinator's promotion decision on the release, with its evidence (pooled challenger − champion over the clinics). */
  decision: {
    promote: boolean;
    reasons: string[];
    pooled: { difference: number; standardError: number; interval: [number, number]; sites: number; excluded: number } | null;
    tooSmall: string[];
    worse: string[];
  } | null;
  /** What the agents told the coordinator about their data for this run: `clinic: warning` (their data.warning / non-READY readiness lines). */
  agentWarnings: string[];
  /** Agents whose training rows differ from this year's export (they read an older one); empty when every agent read this year's. */
  staleExports: string[];
  /** The champion after the decision. */
  championAfter: number | null;
}

/** One clinic in one year, on that year's test patients. */
export interface LhsClinicYear {
  clinic: string;
  year: number;
  format: 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';
  /** The clinic's first year in the network. */
  joined: boolean;
  eligible: number;
  prevalence: number;
  /** Test patients (the test part of the hold-out split of that year's cohort) and their cases. */
  test: { n: number; cases: number };
  /** Share of eligible patients without a glucose value (the unit/code switch shows here). */
  glucoseMissing: number;
  /** Share of eligible patients without a fasting insulin value (the new assay shows here). */
  insulinMissing: number;
  /** The cohort extractor's warnings for this export (e.g. a feature no patient has). */
  warnings: string[];
  /** What this clinic's agent reported for the year's run (data.warning, or why it was not READY). */
  agentWarnings: string[];
  /** The release after year 1, never updated. */
  frozen: Assessment | null;
  /** The champion after this year's run: continuous learning. */
  continuous: Assessment | null;
  /** The champion in use during the year (after the previous year's run); null in year 1. */
  inUse: Assessment | null;
  /** This year's release (the challenger), promoted or not: what retraining learned, whether or not it became champion. */
  challenger: Assessment | null;
  /** A model trained on this clinic's own training patients of the year alone; null when it has too few or one class. */
  local: Assessment | null;
  continuousVsFrozen: PairedAucDifference | null;
  continuousVsLocal: PairedAucDifference | null;
  challengerVsFrozen: PairedAucDifference | null;
}

/** What the clinic that joins late gets on its first day: the champion of the time, before it trained anything. */
export interface LhsFirstDay {
  clinic: string;
  year: number;
  championVersion: number | null;
  /** The champion on all of the clinic's labelled patients (none of them was ever trained on). */
  championOnAll: Assessment | null;
  /** The champion and the clinic's own local-only model on its test patients, and their paired difference. */
  championOnTest: Assessment | null;
  localOnTest: Assessment | null;
  championVsLocal: PairedAucDifference | null;
}

export interface LhsReport {
  kind: 'lhs';
  createdAt: string;
  settings: {
    years: number; scale: number; seed: number; rounds: number; founders: number; backend: string;
    drift: DriftOptions;
    /** The simulated calendar: year 1 ends on 31 December of firstCalendarYear; each run starts on the next 1 January (series clock). */
    firstCalendarYear: number;
    bootstrap: { resamples: number; seed: number; minCases: number };
  };
  series: { name: string; templateSha256: string };
  runs: LhsRun[];
  clinicYears: LhsClinicYear[];
  firstDay: LhsFirstDay | null;
  /** Plain sentences: what the figures show, each resting on named clinic-years. */
  verdicts: string[];
  /** Where the equity hypothesis does not hold, or is not shown: one line per clinic-year (or first day). */
  notHolding: string[];
  /** What the scenario's changes did to the data (the unit switch, the new assay). */
  findings: string[];
  timings: Record<string, number>;
}
