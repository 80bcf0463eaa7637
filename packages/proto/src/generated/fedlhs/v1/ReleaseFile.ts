// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

export interface ReleaseFile {
  /**
   * One of the bundle's file names (letters, digits, ".", "-", "_"; at most 64 characters).
   */
  'name'?: (string);
  /**
   * Lower-case hex.
   */
  'sha256'?: (string);
  'size'?: (number | string | Long);
}

export interface ReleaseFile__Output {
  /**
   * One of the bundle's file names (letters, digits, ".", "-", "_"; at most 64 characters).
   */
  'name': (string);
  /**
   * Lower-case hex.
   */
  'sha256': (string);
  'size': (number);
}
