/** The fedlhs node agent as a library (what the CLI runs). */
export { Agent, AGENT_VERSION, type AgentLifecycle } from './agent.js';
export { AgentState, type AuditEntry, type ManifestRecord, type NodeCredential } from './agent-state.js';
export { loadAgentConfig, agentConfigSchema, ConfigError, type AgentConfig } from './config.js';
export { createClients, type Clients } from './connection.js';
