/** The load harness: protocol-level clinics in forked workers against one coordinator (design §7). */
export { runLoad, type LoadOptions, type LoadResult, type CommittedRound } from './orchestrator.js';
export { LoadClinic, enrolClinic, type ClinicCounters } from './clinic.js';
export { expectedMean, expectedGlobalMetrics, loadManifest, loadModelParameters, clinicUpdate, clinicMetrics, trainExamplesOf, evalExamplesOf } from './model.js';
export { TABLE_HEADER, tableRow, summary, medianRoundSeconds, dropCount } from './report.js';
export type { LoadFaults, WorkerStats } from './ipc.js';
