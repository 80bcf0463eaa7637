// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface ListStudiesRequest {
  'includeEnded'?: (boolean);
}

export interface ListStudiesRequest__Output {
  'includeEnded': (boolean);
}
