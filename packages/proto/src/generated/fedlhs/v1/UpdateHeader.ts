// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from '../../fedlhs/v1/Metrics.js';
import type { TensorBundleHeader as _fedlhs_v1_TensorBundleHeader, TensorBundleHeader__Output as _fedlhs_v1_TensorBundleHeader__Output } from '../../fedlhs/v1/TensorBundleHeader.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Its ids, tensor names and counts are checked against their limits (common.proto, "Limits of
 * what a node sends") before anything else: a header that breaks them is INVALID_ARGUMENT
 * (trailer fedlhs-error-code INVALID_ARGUMENT, no rejection reason) and is not recorded.
 */
export interface UpdateHeader {
  /**
   * Id, at most 128 characters.
   */
  'taskId'?: (string);
  /**
   * Must match the task; checked by the coordinator. Id, at most 128 characters.
   */
  'studyId'?: (string);
  'round'?: (number);
  /**
   * The caller's own node id. Id, at most 128 characters.
   */
  'nodeId'?: (string);
  /**
   * SHA-256 of the model this update was trained from (the task's model_sha256). At most 32
   * bytes.
   */
  'baseModelSha256'?: (Buffer | Uint8Array | string);
  /**
   * Number of training examples (records in the training split); the weight of this update in
   * federated averaging. At least 1, at most the coordinator's limits.maxExamplesPerUpdate, and
   * at most the rows this node stated for the study: StatisticsReport.rows when the study had a
   * statistics phase and that report was not suppressed, else the training_rows of its READY
   * StudyReadiness (a node that stated neither is refused); otherwise BAD_EXAMPLE_COUNT.
   */
  'numExamples'?: (number | string | Long);
  /**
   * Metrics of the trained weights on the local training split (informative). Optional; when
   * present they are checked with the header (INVALID_METRICS, see Metrics).
   */
  'trainMetrics'?: (_fedlhs_v1_Metrics | null);
  /**
   * The full trained weights (not a delta), same tensors, order and shapes as the model.
   */
  'weights'?: (_fedlhs_v1_TensorBundleHeader | null);
  /**
   * Adaptive DP clipping only (manifest privacy.dp.clipping.mode "adaptive"): 1 if this
   * clinic's model change had L2 norm at most the round's clip norm (Task.parameters_json
   * dp.clipNorm), else 0, plus the clinic's share of Gaussian noise on that count (local:
   * standard deviation countNoiseMultiplier; distributed: countNoiseMultiplier/sqrt(clients.min);
   * central: none, the coordinator adds it). Absent otherwise; required with adaptive clipping
   * (INVALID_ARGUMENT when missing, not finite, or given without adaptive clipping).
   */
  'dpClipIndicator'?: (number | string);
  '_dpClipIndicator'?: "dpClipIndicator";
}

/**
 * Its ids, tensor names and counts are checked against their limits (common.proto, "Limits of
 * what a node sends") before anything else: a header that breaks them is INVALID_ARGUMENT
 * (trailer fedlhs-error-code INVALID_ARGUMENT, no rejection reason) and is not recorded.
 */
export interface UpdateHeader__Output {
  /**
   * Id, at most 128 characters.
   */
  'taskId': (string);
  /**
   * Must match the task; checked by the coordinator. Id, at most 128 characters.
   */
  'studyId': (string);
  'round': (number);
  /**
   * The caller's own node id. Id, at most 128 characters.
   */
  'nodeId': (string);
  /**
   * SHA-256 of the model this update was trained from (the task's model_sha256). At most 32
   * bytes.
   */
  'baseModelSha256': (Buffer);
  /**
   * Number of training examples (records in the training split); the weight of this update in
   * federated averaging. At least 1, at most the coordinator's limits.maxExamplesPerUpdate, and
   * at most the rows this node stated for the study: StatisticsReport.rows when the study had a
   * statistics phase and that report was not suppressed, else the training_rows of its READY
   * StudyReadiness (a node that stated neither is refused); otherwise BAD_EXAMPLE_COUNT.
   */
  'numExamples': (number);
  /**
   * Metrics of the trained weights on the local training split (informative). Optional; when
   * present they are checked with the header (INVALID_METRICS, see Metrics).
   */
  'trainMetrics': (_fedlhs_v1_Metrics__Output | null);
  /**
   * The full trained weights (not a delta), same tensors, order and shapes as the model.
   */
  'weights': (_fedlhs_v1_TensorBundleHeader__Output | null);
  /**
   * Adaptive DP clipping only (manifest privacy.dp.clipping.mode "adaptive"): 1 if this
   * clinic's model change had L2 norm at most the round's clip norm (Task.parameters_json
   * dp.clipNorm), else 0, plus the clinic's share of Gaussian noise on that count (local:
   * standard deviation countNoiseMultiplier; distributed: countNoiseMultiplier/sqrt(clients.min);
   * central: none, the coordinator adds it). Absent otherwise; required with adaptive clipping
   * (INVALID_ARGUMENT when missing, not finite, or given without adaptive clipping).
   */
  'dpClipIndicator'?: (number);
  '_dpClipIndicator'?: "dpClipIndicator";
}
