/**
 * @fedlhs/simulator: runs real fedlhs networks on one machine — a coordinator and clinic
 * agents as separate processes over real gRPC — for the demo, simulations on synthetic
 * clinics, real-data benchmarks and the integration tests.
 */
export * from './local-network.js';
export { runSimulation, type SimulationOptions, type SimulationReport, type ClinicResult, type Method } from './simulate.js';
export { simulationHtml } from './simulation-report.js';
export { runHeartBenchmark, prepareHeartData, heartManifest, HEART_FEATURES, FLAMBY_PUBLISHED, HEART_CREDIT, type HeartReport } from './heart.js';
export { heartHtml, heartSummary } from './heart-report.js';
export { t2dManifest } from './t2d-study.js';
export { assess, type Assessment } from './evaluation.js';
export { runLhs, type LhsOptions, type LhsReport } from './lhs.js';
export { lhsMarkdown } from './lhs-report.js';
