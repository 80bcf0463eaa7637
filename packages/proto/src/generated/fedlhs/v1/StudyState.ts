// Original file: /work/main/proto/fedlhs/v1/federation.proto

export const StudyState = {
  STUDY_STATE_UNSPECIFIED: 'STUDY_STATE_UNSPECIFIED',
  STUDY_STATE_RUNNING: 'STUDY_STATE_RUNNING',
  STUDY_STATE_COMPLETED: 'STUDY_STATE_COMPLETED',
  STUDY_STATE_STOPPED: 'STUDY_STATE_STOPPED',
  STUDY_STATE_FAILED: 'STUDY_STATE_FAILED',
} as const;

export type StudyState =
  | 'STUDY_STATE_UNSPECIFIED'
  | 0
  | 'STUDY_STATE_RUNNING'
  | 1
  | 'STUDY_STATE_COMPLETED'
  | 2
  | 'STUDY_STATE_STOPPED'
  | 3
  | 'STUDY_STATE_FAILED'
  | 4

export type StudyState__Output = typeof StudyState[keyof typeof StudyState]
