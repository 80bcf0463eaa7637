// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface CancelTask {
  'taskId'?: (string);
  'reason'?: (string);
}

export interface CancelTask__Output {
  'taskId': (string);
  'reason': (string);
}
