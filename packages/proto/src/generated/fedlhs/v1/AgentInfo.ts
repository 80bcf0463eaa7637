// Original file: /work/main/proto/fedlhs/v1/common.proto


/**
 * What an agent tells the coordinator about itself.
 */
export interface AgentInfo {
  /**
   * Agent software name and version, e.g. "fedlhs-agent/0.1.0" or "my-agent/2.3".
   * Text, at most 128 characters.
   */
  'agentVersion'?: (string);
  /**
   * TensorFlow.js backend (or equivalent) the agent trains with: "tensorflow" (tfjs-node),
   * "wasm", "cpu", or another implementation's own name. Text, at most 128 characters.
   */
  'trainingBackend'?: (string);
  /**
   * Operating system and runtime, free text, e.g. "linux-x64 node-20.20.2". Text, at most 128
   * characters.
   */
  'platform'?: (string);
}

/**
 * What an agent tells the coordinator about itself.
 */
export interface AgentInfo__Output {
  /**
   * Agent software name and version, e.g. "fedlhs-agent/0.1.0" or "my-agent/2.3".
   * Text, at most 128 characters.
   */
  'agentVersion': (string);
  /**
   * TensorFlow.js backend (or equivalent) the agent trains with: "tensorflow" (tfjs-node),
   * "wasm", "cpu", or another implementation's own name. Text, at most 128 characters.
   */
  'trainingBackend': (string);
  /**
   * Operating system and runtime, free text, e.g. "linux-x64 node-20.20.2". Text, at most 128
   * characters.
   */
  'platform': (string);
}
