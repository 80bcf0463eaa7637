// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface ListReleasesRequest {
  /**
   * Identifier (the manifest's name), or empty for every study this node took part in.
   */
  'studyName'?: (string);
}

export interface ListReleasesRequest__Output {
  /**
   * Identifier (the manifest's name), or empty for every study this node took part in.
   */
  'studyName': (string);
}
