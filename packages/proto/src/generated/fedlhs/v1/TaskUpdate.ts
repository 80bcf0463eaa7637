// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { TaskState as _fedlhs_v1_TaskState, TaskState__Output as _fedlhs_v1_TaskState__Output } from '../../fedlhs/v1/TaskState.js';

export interface TaskUpdate {
  'taskId'?: (string);
  'state'?: (_fedlhs_v1_TaskState);
  'reason'?: (string);
  /**
   * Progress, for operators: phase ("download", "train", "evaluate", "upload"), epoch
   * (1-based) of total epochs during training, and the fraction 0..1 of the phase done.
   */
  'phase'?: (string);
  'epoch'?: (number);
  'epochs'?: (number);
  'fraction'?: (number | string);
}

export interface TaskUpdate__Output {
  'taskId': (string);
  'state': (_fedlhs_v1_TaskState__Output);
  'reason': (string);
  /**
   * Progress, for operators: phase ("download", "train", "evaluate", "upload"), epoch
   * (1-based) of total epochs during training, and the fraction 0..1 of the phase done.
   */
  'phase': (string);
  'epoch': (number);
  'epochs': (number);
  'fraction': (number);
}
