/** Multi-process harness shared by the integration tests, the demo and the benchmarks. */
export * from './harness.js';
