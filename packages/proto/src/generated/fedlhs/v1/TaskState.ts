// Original file: /work/main/proto/fedlhs/v1/federation.proto

export const TaskState = {
  TASK_STATE_UNSPECIFIED: 'TASK_STATE_UNSPECIFIED',
  /**
   * Work is under way; progress fields say how far.
   */
  TASK_STATE_RUNNING: 'TASK_STATE_RUNNING',
  /**
   * The agent will not do this task (reason says why, e.g. not approved, cohort too small).
   */
  TASK_STATE_DECLINED: 'TASK_STATE_DECLINED',
  /**
   * The agent tried and failed (reason says why). The coordinator does not resend it.
   */
  TASK_STATE_FAILED: 'TASK_STATE_FAILED',
} as const;

export type TaskState =
  | 'TASK_STATE_UNSPECIFIED'
  | 0
  /**
   * Work is under way; progress fields say how far.
   */
  | 'TASK_STATE_RUNNING'
  | 1
  /**
   * The agent will not do this task (reason says why, e.g. not approved, cohort too small).
   */
  | 'TASK_STATE_DECLINED'
  | 2
  /**
   * The agent tried and failed (reason says why). The coordinator does not resend it.
   */
  | 'TASK_STATE_FAILED'
  | 3

export type TaskState__Output = typeof TaskState[keyof typeof TaskState]
