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
  /**
   * MASKED_INPUT only: the masked input, packed words (see "Secure aggregation"); empty for
   * every other stage. INVALID_ARGUMENT when its length is not the round's, a word is out of
   * the field, or it is sent with another stage.
   */
  'vector'?: (Buffer | Uint8Array | string);
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
  /**
   * MASKED_INPUT only: the masked input, packed words (see "Secure aggregation"); empty for
   * every other stage. INVALID_ARGUMENT when its length is not the round's, a word is out of
   * the field, or it is sent with another stage.
   */
  'vector': (Buffer);
}
