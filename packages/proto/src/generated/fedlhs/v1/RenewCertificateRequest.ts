// Original file: /work/main/proto/fedlhs/v1/federation.proto


/**
 * A new PKCS#10 certificate signing request (PEM, "CERTIFICATE REQUEST", at most 4096
 * characters) for an ECDSA P-256 key, signed with ecdsa-with-SHA256 by that key. Agents make a new
 * key for each renewal.
 */
export interface RenewCertificateRequest {
  'certificateSigningRequest'?: (string);
}

/**
 * A new PKCS#10 certificate signing request (PEM, "CERTIFICATE REQUEST", at most 4096
 * characters) for an ECDSA P-256 key, signed with ecdsa-with-SHA256 by that key. Agents make a new
 * key for each renewal.
 */
export interface RenewCertificateRequest__Output {
  'certificateSigningRequest': (string);
}
