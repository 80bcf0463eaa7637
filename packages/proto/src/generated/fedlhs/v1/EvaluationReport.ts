// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from '../../fedlhs/v1/Metrics.js';
import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from '../../fedlhs/v1/Performance.js';
import type { ReleaseComparison as _fedlhs_v1_ReleaseComparison, ReleaseComparison__Output as _fedlhs_v1_ReleaseComparison__Output } from '../../fedlhs/v1/ReleaseComparison.js';

export interface EvaluationReport {
  /**
   * Id, at most 128 characters (checked before anything else; INVALID_ARGUMENT, not recorded).
   */
  'taskId'?: (string);
  /**
   * Id, at most 128 characters.
   */
  'studyId'?: (string);
  'round'?: (number);
  /**
   * Metrics of the task's model on the validation part of the agent's hold-out split (see
   * "Validation and test parts"). Required; missing or impossible metrics are INVALID_METRICS.
   * The coordinator chooses a study's released round on these.
   */
  'metrics'?: (_fedlhs_v1_Metrics | null);
  /**
   * The same model on the validation part, with intervals and calibration (optional: an
   * agent that sends none gets a release whose validation figures lack them).
   */
  'validation'?: (_fedlhs_v1_Performance | null);
  /**
   * The same model on the test part. Never used to choose a round: only the figures of the
   * released round are published with it. Optional; a release names the sites that sent none.
   */
  'test'?: (_fedlhs_v1_Performance | null);
  /**
   * Champion and challenger: when the study is a series run whose manifest names a champion
   * (series.champion {version, weightsSha256}, a release of the series' name), the agent also
   * scores that release, with its own normalisation, on exactly the same test-part patients
   * as the task's model, and reports one ReleaseComparison (see "Champion and challenger").
   * Empty otherwise. An agent that cannot obtain or verify the champion sends none and says
   * why in its log; the coordinator names the sites without a comparison in its decision.
   */
  'comparisons'?: (_fedlhs_v1_ReleaseComparison)[];
}

export interface EvaluationReport__Output {
  /**
   * Id, at most 128 characters (checked before anything else; INVALID_ARGUMENT, not recorded).
   */
  'taskId': (string);
  /**
   * Id, at most 128 characters.
   */
  'studyId': (string);
  'round': (number);
  /**
   * Metrics of the task's model on the validation part of the agent's hold-out split (see
   * "Validation and test parts"). Required; missing or impossible metrics are INVALID_METRICS.
   * The coordinator chooses a study's released round on these.
   */
  'metrics': (_fedlhs_v1_Metrics__Output | null);
  /**
   * The same model on the validation part, with intervals and calibration (optional: an
   * agent that sends none gets a release whose validation figures lack them).
   */
  'validation': (_fedlhs_v1_Performance__Output | null);
  /**
   * The same model on the test part. Never used to choose a round: only the figures of the
   * released round are published with it. Optional; a release names the sites that sent none.
   */
  'test': (_fedlhs_v1_Performance__Output | null);
  /**
   * Champion and challenger: when the study is a series run whose manifest names a champion
   * (series.champion {version, weightsSha256}, a release of the series' name), the agent also
   * scores that release, with its own normalisation, on exactly the same test-part patients
   * as the task's model, and reports one ReleaseComparison (see "Champion and challenger").
   * Empty otherwise. An agent that cannot obtain or verify the champion sends none and says
   * why in its log; the coordinator names the sites without a comparison in its decision.
   */
  'comparisons': (_fedlhs_v1_ReleaseComparison__Output)[];
}
