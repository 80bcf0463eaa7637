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

export type TaskKind__Output = typeof TaskKind[keyof typeof TaskKind]
