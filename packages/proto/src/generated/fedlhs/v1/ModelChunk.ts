// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { TensorBundleHeader as _fedlhs_v1_TensorBundleHeader, TensorBundleHeader__Output as _fedlhs_v1_TensorBundleHeader__Output } from '../../fedlhs/v1/TensorBundleHeader.js';

export interface ModelChunk {
  /**
   * First message only.
   */
  'header'?: (_fedlhs_v1_TensorBundleHeader | null);
  /**
   * Payload bytes, in order, sized as TensorBundleHeader.chunk_size says.
   */
  'data'?: (Buffer | Uint8Array | string);
  'kind'?: "header"|"data";
}

export interface ModelChunk__Output {
  /**
   * First message only.
   */
  'header'?: (_fedlhs_v1_TensorBundleHeader__Output | null);
  /**
   * Payload bytes, in order, sized as TensorBundleHeader.chunk_size says.
   */
  'data'?: (Buffer);
  'kind'?: "header"|"data";
}
