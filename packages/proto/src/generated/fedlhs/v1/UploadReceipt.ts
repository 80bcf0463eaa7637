// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

export interface UploadReceipt {
  'taskId'?: (string);
  /**
   * SHA-256 of the payload as received and stored.
   */
  'sha256'?: (Buffer | Uint8Array | string);
  /**
   * True if this exact update (same SHA-256) had already been accepted; it was not counted
   * again. A different update for an accepted task is ALREADY_EXISTS [DUPLICATE_CONFLICT].
   */
  'duplicate'?: (boolean);
  'receivedBytes'?: (number | string | Long);
}

export interface UploadReceipt__Output {
  'taskId': (string);
  /**
   * SHA-256 of the payload as received and stored.
   */
  'sha256': (Buffer);
  /**
   * True if this exact update (same SHA-256) had already been accepted; it was not counted
   * again. A different update for an accepted task is ALREADY_EXISTS [DUPLICATE_CONFLICT].
   */
  'duplicate': (boolean);
  'receivedBytes': (number);
}
