// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface StageReport {
  /**
   * Id, at most 128 characters.
   */
  'taskId'?: (string);
  'studyId'?: (string);
  'round'?: (number);
  /**
   * UTF-8 JSON of the stage's answer (see "Secure aggregation").
   */
  'body'?: (Buffer | Uint8Array | string);
}

export interface StageReport__Output {
  /**
   * Id, at most 128 characters.
   */
  'taskId': (string);
  'studyId': (string);
  'round': (number);
  /**
   * UTF-8 JSON of the stage's answer (see "Secure aggregation").
   */
  'body': (Buffer);
}
