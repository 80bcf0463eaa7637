// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { CalibrationBin as _fedlhs_v1_CalibrationBin, CalibrationBin__Output as _fedlhs_v1_CalibrationBin__Output } from '../../fedlhs/v1/CalibrationBin.js';
import type { Long } from '@grpc/proto-loader';

/**
 * How well a binary risk model did on a set of patients: what a release publishes (its
 * validation and test figures) and what an agent reports about a deployed release. Every
 * figure is computed by the agent on its own patients; only these aggregates leave it.
 * The coordinator withholds a site's figures from everything it shows when num_examples,
 * positives or num_examples - positives is below the study's minCellCount (they then count
 * only in pooled figures), and a pooled calibration bin below it.
 */
export interface Performance {
  /**
   * Patients the figures are computed over (at most 10^12).
   */
  'numExamples'?: (number | string | Long);
  /**
   * Of those, patients with the outcome (label 1). At most num_examples.
   */
  'positives'?: (number | string | Long);
  /**
   * Area under the ROC curve (ties count one half). Absent when only one class is present.
   */
  'auc'?: (number | string);
  /**
   * DeLong standard error of auc (absent with auc, or when it cannot be estimated: a class
   * with a single patient). In [0, 0.5].
   */
  'aucStandardError'?: (number | string);
  /**
   * Mean squared difference between predicted risk and outcome, in [0, 1].
   */
  'brier'?: (number | string);
  /**
   * Logistic recalibration of the outcome on logit(predicted risk): slope (1 is ideal) and
   * intercept (0 is ideal). Absent when the fit does not converge or only one class is
   * present. Finite, |value| <= 1000.
   */
  'calibrationSlope'?: (number | string);
  'calibrationIntercept'?: (number | string);
  /**
   * Reliability table: exactly 10 bins of predicted risk [0, 0.1), [0.1, 0.2), ... [0.9, 1.0],
   * in that order, or none. Their counts add up to num_examples and their observed counts to
   * positives.
   */
  'calibration'?: (_fedlhs_v1_CalibrationBin)[];
  '_auc'?: "auc";
  '_aucStandardError'?: "aucStandardError";
  '_calibrationSlope'?: "calibrationSlope";
  '_calibrationIntercept'?: "calibrationIntercept";
}

/**
 * How well a binary risk model did on a set of patients: what a release publishes (its
 * validation and test figures) and what an agent reports about a deployed release. Every
 * figure is computed by the agent on its own patients; only these aggregates leave it.
 * The coordinator withholds a site's figures from everything it shows when num_examples,
 * positives or num_examples - positives is below the study's minCellCount (they then count
 * only in pooled figures), and a pooled calibration bin below it.
 */
export interface Performance__Output {
  /**
   * Patients the figures are computed over (at most 10^12).
   */
  'numExamples': (number);
  /**
   * Of those, patients with the outcome (label 1). At most num_examples.
   */
  'positives': (number);
  /**
   * Area under the ROC curve (ties count one half). Absent when only one class is present.
   */
  'auc'?: (number);
  /**
   * DeLong standard error of auc (absent with auc, or when it cannot be estimated: a class
   * with a single patient). In [0, 0.5].
   */
  'aucStandardError'?: (number);
  /**
   * Mean squared difference between predicted risk and outcome, in [0, 1].
   */
  'brier': (number);
  /**
   * Logistic recalibration of the outcome on logit(predicted risk): slope (1 is ideal) and
   * intercept (0 is ideal). Absent when the fit does not converge or only one class is
   * present. Finite, |value| <= 1000.
   */
  'calibrationSlope'?: (number);
  'calibrationIntercept'?: (number);
  /**
   * Reliability table: exactly 10 bins of predicted risk [0, 0.1), [0.1, 0.2), ... [0.9, 1.0],
   * in that order, or none. Their counts add up to num_examples and their observed counts to
   * positives.
   */
  'calibration': (_fedlhs_v1_CalibrationBin__Output)[];
  '_auc'?: "auc";
  '_aucStandardError'?: "aucStandardError";
  '_calibrationSlope'?: "calibrationSlope";
  '_calibrationIntercept'?: "calibrationIntercept";
}
