// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface CommittedModelRef {
  /**
   * Id, at most 128 characters.
   */
  'studyId'?: (string);
  /**
   * Committed round; 0 is the initial model.
   */
  'round'?: (number);
}

export interface CommittedModelRef__Output {
  /**
   * Id, at most 128 characters.
   */
  'studyId': (string);
  /**
   * Committed round; 0 is the initial model.
   */
  'round': (number);
}
