// Original file: /work/main/proto/fedlhs/v1/federation.proto

export const TaskKind = {
  TASK_KIND_UNSPECIFIED: 'TASK_KIND_UNSPECIFIED',
  /**
   * Train from the task's model on the local training split and UploadUpdate.
   */
  TASK_KIND_TRAIN: 'TASK_KIND_TRAIN',
  /**
   * Evaluate the task's model on the local hold-out split and ReportEvaluation.
   */
  TASK_KIND_EVALUATE: 'TASK_KIND_EVALUATE',
  /**
   * Compute sufficient statistics of the study's features on the local training split and
   * ReportStatistics. No model is involved (model_sha256 is empty).
   */
  TASK_KIND_STATISTICS: 'TASK_KIND_STATISTICS',
  /**
   * Secure aggregation stages (see "Secure aggregation"): the task's payload is the stage's
   * request, the answer goes to ReportStage. Used instead of TRAIN when the manifest has
   * privacy.secureAggregation.
   */
  TASK_KIND_SECAGG_KEYS: 'TASK_KIND_SECAGG_KEYS',
  TASK_KIND_SECAGG_SHARES: 'TASK_KIND_SECAGG_SHARES',
  /**
   * Downloads the task's model (model_sha256, DownloadModel), trains as for TRAIN, and reports
   * the masked update.
   */
  TASK_KIND_SECAGG_MASKED_INPUT: 'TASK_KIND_SECAGG_MASKED_INPUT',
  TASK_KIND_SECAGG_UNMASK: 'TASK_KIND_SECAGG_UNMASK',
  /**
   * Between MASKED_INPUT and UNMASK: the clinic signs the round's survivor set (see "Secure
   * aggregation", consistency check).
   */
  TASK_KIND_SECAGG_CONSISTENCY: 'TASK_KIND_SECAGG_CONSISTENCY',
} as const;

export type TaskKind =
  | 'TASK_KIND_UNSPECIFIED'
  | 0
  /**
   * Train from the task's model on the local training split and UploadUpdate.
   */
  | 'TASK_KIND_TRAIN'
  | 1
  /**
   * Evaluate the task's model on the local hold-out split and ReportEvaluation.
   */
  | 'TASK_KIND_EVALUATE'
  | 2
  /**
   * Compute sufficient statistics of the study's features on the local training split and
   * ReportStatistics. No model is involved (model_sha256 is empty).
   */
  | 'TASK_KIND_STATISTICS'
  | 3
  /**
   * Secure aggregation stages (see "Secure aggregation"): the task's payload is the stage's
   * request, the answer goes to ReportStage. Used instead of TRAIN when the manifest has
   * privacy.secureAggregation.
   */
  | 'TASK_KIND_SECAGG_KEYS'
  | 4
  | 'TASK_KIND_SECAGG_SHARES'
  | 5
  /**
   * Downloads the task's model (model_sha256, DownloadModel), trains as for TRAIN, and reports
   * the masked update.
   */
  | 'TASK_KIND_SECAGG_MASKED_INPUT'
  | 6
  | 'TASK_KIND_SECAGG_UNMASK'
  | 7
  /**
   * Between MASKED_INPUT and UNMASK: the clinic signs the round's survivor set (see "Secure
   * aggregation", consistency check).
   */
  | 'TASK_KIND_SECAGG_CONSISTENCY'
  | 8

export type TaskKind__Output = typeof TaskKind[keyof typeof TaskKind]
