/** The fedlhs coordinator as a library: what the CLI runs, for embedding and tests. */
export { startCoordinatorApp, resolveAdminToken, type CoordinatorApp, type AppState } from './app.js';
export { loadCoordinatorConfig, coordinatorConfigSchema, ConfigError, type CoordinatorConfig, type LoadConfigOptions } from './config.js';
export { Coordinator, COORDINATOR_VERSION, type CoordinatorOptions } from './coordinator.js';
export { SqliteStore } from './sqlite-store.js';
export type * from './store.js';
export { MovableClock } from './series/clock.js';
export { serverFlowControl, STREAM_WINDOW_BYTES, CONNECTION_WINDOW_BYTES, type FlowControlWindows } from './grpc/flow-control.js';
