// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

export interface Heartbeat {
  /**
   * Sender's clock (informative; no one relies on synchronised clocks).
   */
  'sentUnixMs'?: (number | string | Long);
}

export interface Heartbeat__Output {
  /**
   * Sender's clock (informative; no one relies on synchronised clocks).
   */
  'sentUnixMs': (number);
}
