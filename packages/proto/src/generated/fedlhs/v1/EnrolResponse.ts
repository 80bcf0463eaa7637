// Original file: /work/main/proto/fedlhs/v1/enrolment.proto

import type { Long } from '@grpc/proto-loader';

export interface EnrolResponse {
  /**
   * The coordinator's identifier for this node. Stable for the node's lifetime.
   */
  'nodeId'?: (string);
  /**
   * Secret bearer credential ("fnc_<node_id>.<secret>", see "Formats"). Shown once: the coordinator stores
   * only a hash of it. Sent as "authorization: Bearer <node_credential>" metadata on every
   * later call. An operator can revoke it; after that every call fails UNAUTHENTICATED.
   */
  'nodeCredential'?: (string);
  /**
   * The site name the node is registered under.
   */
  'siteName'?: (string);
  /**
   * The coordinator's release signing key (Ed25519, SubjectPublicKeyInfo in PEM): model releases
   * are DSSE envelopes signed with it. The agent pins it at enrolment and verifies every release
   * against it, never against a key sent later.
   */
  'releasePublicKey'?: (string);
  /**
   * SHA-256 of that key's SubjectPublicKeyInfo (DER), 64 lowercase hex digits: the DSSE key id.
   * The agent checks it against release_public_key and prints it, for the clinic to compare out
   * of band with the fingerprint the coordinator's operator reads from its log (coordinator.ready).
   */
  'releaseKeyFingerprint'?: (string);
  /**
   * The node's TLS client certificate (PEM), issued for certificate_signing_request; empty when
   * the coordinator does not issue certificates. The agent presents it on every later call.
   */
  'clientCertificate'?: (string);
  /**
   * The coordinator's node CA certificate (PEM) that issued client_certificate; empty with it. The
   * agent pins it: a renewed certificate must come from the same CA.
   */
  'clientCaCertificate'?: (string);
  /**
   * client_certificate's notAfter, Unix milliseconds (0 with no certificate).
   */
  'clientCertificateNotAfterUnixMs'?: (number | string | Long);
}

export interface EnrolResponse__Output {
  /**
   * The coordinator's identifier for this node. Stable for the node's lifetime.
   */
  'nodeId': (string);
  /**
   * Secret bearer credential ("fnc_<node_id>.<secret>", see "Formats"). Shown once: the coordinator stores
   * only a hash of it. Sent as "authorization: Bearer <node_credential>" metadata on every
   * later call. An operator can revoke it; after that every call fails UNAUTHENTICATED.
   */
  'nodeCredential': (string);
  /**
   * The site name the node is registered under.
   */
  'siteName': (string);
  /**
   * The coordinator's release signing key (Ed25519, SubjectPublicKeyInfo in PEM): model releases
   * are DSSE envelopes signed with it. The agent pins it at enrolment and verifies every release
   * against it, never against a key sent later.
   */
  'releasePublicKey': (string);
  /**
   * SHA-256 of that key's SubjectPublicKeyInfo (DER), 64 lowercase hex digits: the DSSE key id.
   * The agent checks it against release_public_key and prints it, for the clinic to compare out
   * of band with the fingerprint the coordinator's operator reads from its log (coordinator.ready).
   */
  'releaseKeyFingerprint': (string);
  /**
   * The node's TLS client certificate (PEM), issued for certificate_signing_request; empty when
   * the coordinator does not issue certificates. The agent presents it on every later call.
   */
  'clientCertificate': (string);
  /**
   * The coordinator's node CA certificate (PEM) that issued client_certificate; empty with it. The
   * agent pins it: a renewed certificate must come from the same CA.
   */
  'clientCaCertificate': (string);
  /**
   * client_certificate's notAfter, Unix milliseconds (0 with no certificate).
   */
  'clientCertificateNotAfterUnixMs': (number);
}
