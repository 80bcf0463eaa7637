import type { ClinicCounters, LoadClinicExtension } from './clinic.js';

/**
 * What a benchmark adds to a load worker (swarm-worker.ts loads it from the module named by
 * FEDLHS_LOAD_EXTENSION, which exports `createWorkerExtension(): WorkerExtension`).
 */
export interface WorkerExtension {
  /** The extension of one clinic of this worker (its counters are the worker's, summed). */
  forClinic(address: string, nodeId: string, credential: string, counters: ClinicCounters): LoadClinicExtension;
  /** Called once when the worker stops, after its clinics have closed and before its final counters go out. */
  finish(): void;
}
