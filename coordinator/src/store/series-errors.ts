import { FedlhsError } from '@fedlhs/core';
import type { WriteOp } from './write-ops.js';

/** The series write ops (write-ops.ts), applied by store/sqlite/series.ts and store/postgres/series.ts. */
export type SeriesOp = Extract<WriteOp, { op: 'series.insert' | 'series.update' | 'series.run' | 'promotion.insert' }>;

/** `series.insert` of a name that is taken. */
export function seriesExists(name: string): FedlhsError {
  return new FedlhsError('SERIES_EXISTS', `series ${name} already exists`);
}

/** `series.update` / `series.run` of a series that does not exist. */
export function seriesNotFound(name: string): FedlhsError {
  return new FedlhsError('NOT_FOUND', `series ${name} does not exist`, { details: { what: 'series', id: name } });
}

/** `series.run` whose run number is taken: two schedulers (or a scheduler and run-now) raced. */
export function seriesRunTaken(name: string, run: number): FedlhsError {
  return new FedlhsError('STALE', `run ${run} of series ${name} already exists (two schedulers raced)`);
}
