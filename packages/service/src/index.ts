/**
 * @fedlhs/service: process plumbing shared by the coordinator and the node agent — the pino
 * root logger, gRPC channel and TLS options, crash-safe file writes.
 */
export * from './logger.js';
export * from './events.js';
export * from './files.js';
export * from './grpc-options.js';
export * from './config.js';
export * from './streams.js';
export * from './cli.js';
export * from './bearer.js';
export * from './terminal.js';
