// Original file: /work/main/proto/fedlhs/v1/enrolment.proto


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
}
