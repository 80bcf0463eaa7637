// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { TaskState as _fedlhs_v1_TaskState, TaskState__Output as _fedlhs_v1_TaskState__Output } from '../../fedlhs/v1/TaskState.js';

export interface TaskUpdate {
  /**
   * Id, at most 128 characters. Progress is kept only for the node's own open tasks.
   */
  'taskId'?: (string);
  /**
   * One of the values of TaskState; an unknown value is INVALID_ARGUMENT.
   */
  'state'?: (_fedlhs_v1_TaskState);
  /**
   * Text, at most 1000 characters (the coordinator keeps the first 500 with the task).
   */
  'reason'?: (string);
  /**
   * Progress, for operators: phase ("download", "train", "evaluate", "upload"), epoch
   * (1-based) of total epochs during training, and the fraction 0..1 of the phase done.
   * phase: text, at most 32 characters; epoch and epochs: at most 1000000; fraction: a finite
   * number in [0, 1]. An agent sends at most about one RUNNING update per second per task.
   */
  'phase'?: (string);
  'epoch'?: (number);
  'epochs'?: (number);
  'fraction'?: (number | string);
}

export interface TaskUpdate__Output {
  /**
   * Id, at most 128 characters. Progress is kept only for the node's own open tasks.
   */
  'taskId': (string);
  /**
   * One of the values of TaskState; an unknown value is INVALID_ARGUMENT.
   */
  'state': (_fedlhs_v1_TaskState__Output);
  /**
   * Text, at most 1000 characters (the coordinator keeps the first 500 with the task).
   */
  'reason': (string);
  /**
   * Progress, for operators: phase ("download", "train", "evaluate", "upload"), epoch
   * (1-based) of total epochs during training, and the fraction 0..1 of the phase done.
   * phase: text, at most 32 characters; epoch and epochs: at most 1000000; fraction: a finite
   * number in [0, 1]. An agent sends at most about one RUNNING update per second per task.
   */
  'phase': (string);
  'epoch': (number);
  'epochs': (number);
  'fraction': (number);
}
