// Original file: /work/main/proto/fedlhs/v1/federation.proto


export interface Welcome {
  /**
   * The authenticated node's id and site, so the agent can check it is who it thinks.
   */
  'nodeId'?: (string);
  'siteName'?: (string);
  /**
   * Both ends send Heartbeat at this interval (milliseconds).
   */
  'heartbeatIntervalMs'?: (number);
  /**
   * Coordinator software version, e.g. "fedlhs-coordinator/0.1.0".
   */
  'coordinatorVersion'?: (string);
}

export interface Welcome__Output {
  /**
   * The authenticated node's id and site, so the agent can check it is who it thinks.
   */
  'nodeId': (string);
  'siteName': (string);
  /**
   * Both ends send Heartbeat at this interval (milliseconds).
   */
  'heartbeatIntervalMs': (number);
  /**
   * Coordinator software version, e.g. "fedlhs-coordinator/0.1.0".
   */
  'coordinatorVersion': (string);
}
