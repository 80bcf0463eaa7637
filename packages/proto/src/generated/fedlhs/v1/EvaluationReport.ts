// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from '../../fedlhs/v1/Metrics.js';

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
   * Metrics of the task's model on the agent's hold-out split. Required; missing or
   * impossible metrics are INVALID_METRICS.
   */
  'metrics'?: (_fedlhs_v1_Metrics | null);
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
   * Metrics of the task's model on the agent's hold-out split. Required; missing or
   * impossible metrics are INVALID_METRICS.
   */
  'metrics': (_fedlhs_v1_Metrics__Output | null);
}
