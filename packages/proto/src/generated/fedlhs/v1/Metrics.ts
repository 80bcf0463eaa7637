// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Metrics computed by an agent on its own data. Only aggregates: no per-record values.
 * Plausible metrics (else INVALID_METRICS): num_examples >= 1 and at most the coordinator's
 * limits.maxExamplesPerUpdate (default 10000000), loss finite, >= 0 and <= 1000000 (a mean
 * loss of the study's loss function is far below it; the bound keeps every example-weighted
 * mean finite), accuracy in [0, 1], auc (when present) in [0, 1].
 */
export interface Metrics {
  /**
   * Number of examples the metrics were computed over.
   */
  'numExamples'?: (number | string | Long);
  /**
   * Mean loss of the study's loss function.
   */
  'loss'?: (number | string);
  /**
   * Fraction of correct predictions (binary: threshold 0.5; multi-class: arg max).
   */
  'accuracy'?: (number | string);
  /**
   * Area under the ROC curve (binary tasks). Absent when the data hold a single class,
   * where AUC is undefined.
   */
  'auc'?: (number | string);
  '_auc'?: "auc";
}

/**
 * Metrics computed by an agent on its own data. Only aggregates: no per-record values.
 * Plausible metrics (else INVALID_METRICS): num_examples >= 1 and at most the coordinator's
 * limits.maxExamplesPerUpdate (default 10000000), loss finite, >= 0 and <= 1000000 (a mean
 * loss of the study's loss function is far below it; the bound keeps every example-weighted
 * mean finite), accuracy in [0, 1], auc (when present) in [0, 1].
 */
export interface Metrics__Output {
  /**
   * Number of examples the metrics were computed over.
   */
  'numExamples': (number);
  /**
   * Mean loss of the study's loss function.
   */
  'loss': (number);
  /**
   * Fraction of correct predictions (binary: threshold 0.5; multi-class: arg max).
   */
  'accuracy': (number);
  /**
   * Area under the ROC curve (binary tasks). Absent when the data hold a single class,
   * where AUC is undefined.
   */
  'auc'?: (number);
  '_auc'?: "auc";
}
