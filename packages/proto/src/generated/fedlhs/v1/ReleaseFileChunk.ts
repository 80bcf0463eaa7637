// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface ReleaseFileChunk {
  'data'?: (Buffer | Uint8Array | string);
}

export interface ReleaseFileChunk__Output {
  'data': (Buffer);
}
