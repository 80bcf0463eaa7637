// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface StageReceipt {
  'taskId'?: (string);
  /**
   * True if an identical answer had already been accepted for this task.
   */
  'duplicate'?: (boolean);
}

export interface StageReceipt__Output {
  'taskId': (string);
  /**
   * True if an identical answer had already been accepted for this task.
   */
  'duplicate': (boolean);
}
