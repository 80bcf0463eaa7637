/** Test helpers: managed child processes with awaitable logs, learnable data, throwaway TLS, throwaway PostgreSQL. */
export * from './processes.js';
export * from './data.js';
export * from './tls.js';
export * from './postgres.js';
