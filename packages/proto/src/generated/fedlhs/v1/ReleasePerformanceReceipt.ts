// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface ReleasePerformanceReceipt {
  'duplicate'?: (boolean);
}

export interface ReleasePerformanceReceipt__Output {
  'duplicate': (boolean);
}
