// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface CommittedModelRef {
  'studyId'?: (string);
  /**
   * Committed round; 0 is the initial model.
   */
  'round'?: (number);
}

export interface CommittedModelRef__Output {
  'studyId': (string);
  /**
   * Committed round; 0 is the initial model.
   */
  'round': (number);
}
