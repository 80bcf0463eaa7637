// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from '../../fedlhs/v1/Metrics.js';
import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from '../../fedlhs/v1/Performance.js';

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
}
