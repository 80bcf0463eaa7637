// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The new certificate and the CA that issued it (both PEM), and when the certificate expires.
 */
export interface RenewCertificateResponse {
  'clientCertificate'?: (string);
  'clientCaCertificate'?: (string);
  /**
   * The certificate's notAfter, Unix milliseconds.
   */
  'notAfterUnixMs'?: (number | string | Long);
}

/**
 * The new certificate and the CA that issued it (both PEM), and when the certificate expires.
 */
export interface RenewCertificateResponse__Output {
  'clientCertificate': (string);
  'clientCaCertificate': (string);
  /**
   * The certificate's notAfter, Unix milliseconds.
   */
  'notAfterUnixMs': (number);
}
