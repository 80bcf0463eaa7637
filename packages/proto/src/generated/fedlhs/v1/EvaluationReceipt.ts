// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface EvaluationReceipt {
  'taskId'?: (string);
  'duplicate'?: (boolean);
}

export interface EvaluationReceipt__Output {
  'taskId': (string);
  'duplicate': (boolean);
}
