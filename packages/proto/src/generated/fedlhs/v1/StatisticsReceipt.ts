// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface StatisticsReceipt {
  'taskId'?: (string);
  'duplicate'?: (boolean);
}

export interface StatisticsReceipt__Output {
  'taskId': (string);
  'duplicate': (boolean);
}
