// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface EvaluationReceipt {
  'taskId'?: (string);
  /**
   * True if an identical report had already been accepted for this task (not counted again).
   */
  'duplicate'?: (boolean);
}

export interface EvaluationReceipt__Output {
  'taskId': (string);
  /**
   * True if an identical report had already been accepted for this task (not counted again).
   */
  'duplicate': (boolean);
}
