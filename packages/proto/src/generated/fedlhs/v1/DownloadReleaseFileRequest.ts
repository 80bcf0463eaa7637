// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface DownloadReleaseFileRequest {
  'studyName'?: (string);
  'version'?: (number);
  'fileName'?: (string);
}

export interface DownloadReleaseFileRequest__Output {
  'studyName': (string);
  'version': (number);
  'fileName': (string);
}
