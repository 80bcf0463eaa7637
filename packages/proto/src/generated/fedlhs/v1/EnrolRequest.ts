// Original file: /work/main/proto/fedlhs/v1/enrolment.proto

import type { AgentInfo as _fedlhs_v1_AgentInfo, AgentInfo__Output as _fedlhs_v1_AgentInfo__Output } from '../../fedlhs/v1/AgentInfo.js';

export interface EnrolRequest {
  /**
   * The join token exactly as the operator issued it (starts with "fjt_"). Token, at most 256
   * characters (see common.proto, "Limits of what a node sends"); the format is checked after.
   */
  'joinToken'?: (string);
  /**
   * The site this agent runs for. Must equal the site the token was issued for. Token, at most
   * 64 characters (site names are [A-Za-z0-9][A-Za-z0-9._-]{0,63}).
   */
  'siteName'?: (string);
  'agent'?: (_fedlhs_v1_AgentInfo | null);
  /**
   * Optional: a PKCS#10 certificate signing request (PEM, "CERTIFICATE REQUEST", at most 4096
   * characters) for an ECDSA P-256 key, signed with ecdsa-with-SHA256 by that key (see "Node
   * certificates"). Required by a coordinator that issues certificates (INVALID_ARGUMENT, field
   * certificate_signing_request, when missing or invalid: checked before the join token is spent).
   */
  'certificateSigningRequest'?: (string);
}

export interface EnrolRequest__Output {
  /**
   * The join token exactly as the operator issued it (starts with "fjt_"). Token, at most 256
   * characters (see common.proto, "Limits of what a node sends"); the format is checked after.
   */
  'joinToken': (string);
  /**
   * The site this agent runs for. Must equal the site the token was issued for. Token, at most
   * 64 characters (site names are [A-Za-z0-9][A-Za-z0-9._-]{0,63}).
   */
  'siteName': (string);
  'agent': (_fedlhs_v1_AgentInfo__Output | null);
  /**
   * Optional: a PKCS#10 certificate signing request (PEM, "CERTIFICATE REQUEST", at most 4096
   * characters) for an ECDSA P-256 key, signed with ecdsa-with-SHA256 by that key (see "Node
   * certificates"). Required by a coordinator that issues certificates (INVALID_ARGUMENT, field
   * certificate_signing_request, when missing or invalid: checked before the join token is spent).
   */
  'certificateSigningRequest': (string);
}
