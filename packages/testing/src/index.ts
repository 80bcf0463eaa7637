/** Test helpers: managed child processes with awaitable logs, learnable data, throwaway TLS. */
export * from './processes.js';
export * from './data.js';
export * from './tls.js';
