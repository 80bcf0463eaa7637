import type { ClinicCounters } from './clinic.js';

/** A worker's counters, summed over its clinics, plus its own event-loop delay. */
export interface WorkerStats extends ClinicCounters {
  clinics: number;
  /** Clinics with a welcomed session right now. */
  welcomed: number;
  /** Largest event-loop delay of the worker since it started (ms). */
  loopMaxMs: number;
  /** Largest per-second p99 event-loop delay of the worker (ms). */
  loopP99Ms: number;
}

/** Orchestrator → worker. */
export type ParentMessage =
  | { type: 'start'; address: string; tokens: { token: string; site: string }[]; enrolConcurrency: number }
  | { type: 'stop' };

/** Worker → orchestrator. */
export type WorkerMessage =
  | { type: 'enrolled'; nodeIds: string[] }
  | { type: 'connected' }
  | { type: 'stats'; stats: WorkerStats }
  | { type: 'final'; stats: WorkerStats }
  | { type: 'failed'; message: string };
