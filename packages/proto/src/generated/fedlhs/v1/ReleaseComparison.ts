// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from '../../fedlhs/v1/Performance.js';

/**
 * ## Champion and challenger
 * The task's model (the challenger) and a release (the champion) scored on the same patients
 * give a paired comparison. With m cases and n controls, and DeLong placement values V10/V01 of
 * each model, the difference d = AUC(challenger) - AUC(champion) has variance
 * Var(A) + Var(B) - 2 Cov(A, B), where Var and Cov are the sample (co)variances of the
 * placements over cases divided by m plus those over controls divided by n (DeLong, DeLong and
 * Clarke-Pearson 1988). Only these aggregates leave the clinic, never a score.
 */
export interface ReleaseComparison {
  /**
   * The release scored against the task's model. study_name: a study name; version: from 1.
   */
  'studyName'?: (string);
  'version'?: (number);
  /**
   * The release on the test part (the same patients as EvaluationReport.test).
   */
  'test'?: (_fedlhs_v1_Performance | null);
  /**
   * AUC(task model) - AUC(release) on those patients, in [-1, 1]; absent when only one class
   * is present.
   */
  'aucDifference'?: (number | string);
  /**
   * Its paired DeLong standard error, in [0, 1]; absent when it cannot be estimated (a class
   * with fewer than 2 patients).
   */
  'aucDifferenceStandardError'?: (number | string);
  '_aucDifference'?: "aucDifference";
  '_aucDifferenceStandardError'?: "aucDifferenceStandardError";
}

/**
 * ## Champion and challenger
 * The task's model (the challenger) and a release (the champion) scored on the same patients
 * give a paired comparison. With m cases and n controls, and DeLong placement values V10/V01 of
 * each model, the difference d = AUC(challenger) - AUC(champion) has variance
 * Var(A) + Var(B) - 2 Cov(A, B), where Var and Cov are the sample (co)variances of the
 * placements over cases divided by m plus those over controls divided by n (DeLong, DeLong and
 * Clarke-Pearson 1988). Only these aggregates leave the clinic, never a score.
 */
export interface ReleaseComparison__Output {
  /**
   * The release scored against the task's model. study_name: a study name; version: from 1.
   */
  'studyName': (string);
  'version': (number);
  /**
   * The release on the test part (the same patients as EvaluationReport.test).
   */
  'test': (_fedlhs_v1_Performance__Output | null);
  /**
   * AUC(task model) - AUC(release) on those patients, in [-1, 1]; absent when only one class
   * is present.
   */
  'aucDifference'?: (number);
  /**
   * Its paired DeLong standard error, in [0, 1]; absent when it cannot be estimated (a class
   * with fewer than 2 patients).
   */
  'aucDifferenceStandardError'?: (number);
  '_aucDifference'?: "aucDifference";
  '_aucDifferenceStandardError'?: "aucDifferenceStandardError";
}
