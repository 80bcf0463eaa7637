import type { ClinicCounters } from './clinic.js';

/**
 * Faults a worker injects once its clinics have trained, so that a run has drops on purpose (to
 * check that the harness and a test see them): `cancel` clinics cancel their session as a broken
 * connection would (a clinic-side drop), `silence` clinics stop heartbeating until the
 * coordinator drops them (a coordinator-side drop). Both reconnect.
 */
export interface LoadFaults {
  cancel: number;
  silence: number;
}

/** A worker's counters, summed over its clinics, plus its own event-loop delay. */
export interface WorkerStats extends ClinicCounters {
  clinics: number;
  /** Clinics with a welcomed session right now. */
  welcomed: number;
  /** Largest event-loop delay of the worker since it started (ms). */
  loopMaxMs: number;
  /** Largest per-second p99 event-loop delay of the worker (ms). */
  loopP99Ms: number;
  /** Largest event-loop delay of the worker in the last reporting interval (about 1 s), ms. */
  loopRecentMaxMs: number;
  /** Largest coordinator heartbeat delay seen by the clinics since the worker started (ms). */
  heartbeatLagMaxMs: number;
}

/** Orchestrator → worker. */
export type ParentMessage =
  | {
    type: 'start'; address: string; tokens: { token: string; site: string }[]; enrolConcurrency: number;
    /** Faults to inject once training is under way (checking the drop checks). */
    faults: LoadFaults;
  }
  | { type: 'stop' };

/** Worker → orchestrator. */
export type WorkerMessage =
  | { type: 'enrolled'; nodeIds: string[] }
  | { type: 'connected' }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'final'; stats: WorkerStats }
  | { type: 'failed'; message: string };
