// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { UpdateHeader as _fedlhs_v1_UpdateHeader, UpdateHeader__Output as _fedlhs_v1_UpdateHeader__Output } from '../../fedlhs/v1/UpdateHeader.js';

export interface UpdateChunk {
  /**
   * First message only.
   */
  'header'?: (_fedlhs_v1_UpdateHeader | null);
  /**
   * Payload bytes, in order.
   */
  'data'?: (Buffer | Uint8Array | string);
  'kind'?: "header"|"data";
}

export interface UpdateChunk__Output {
  /**
   * First message only.
   */
  'header'?: (_fedlhs_v1_UpdateHeader__Output | null);
  /**
   * Payload bytes, in order.
   */
  'data'?: (Buffer);
  'kind'?: "header"|"data";
}
