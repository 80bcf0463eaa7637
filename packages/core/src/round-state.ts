import { FedlhsError } from './errors.js';

/**
 * States of one attempt at a round.
 * - WAITING_FOR_NODES: fewer READY clinics than the study's minimum are online.
 * - STATISTICS: (first round of a study with federated normalisation only) clinics report
 *   sufficient statistics of their features; the coordinator derives the normalisation.
 * - TRAINING: tasks are out; updates stream in and are checked and stored.
 * - AGGREGATING: the accepted updates are being averaged into a candidate global model.
 * - EVALUATING: clinics evaluate the candidate on their hold-out splits.
 * - COMMITTED: the model is checkpointed and recorded; final.
 * - FAILED: the attempt ended without a model (reason recorded); final.
 */
export type RoundState = 'WAITING_FOR_NODES' | 'STATISTICS' | 'TRAINING' | 'AGGREGATING' | 'EVALUATING' | 'COMMITTED' | 'FAILED';

const TRANSITIONS: Readonly<Record<RoundState, readonly RoundState[]>> = {
  WAITING_FOR_NODES: ['STATISTICS', 'TRAINING', 'FAILED'],
  STATISTICS: ['TRAINING', 'FAILED'],
  TRAINING: ['AGGREGATING', 'FAILED'],
  AGGREGATING: ['EVALUATING', 'FAILED'],
  EVALUATING: ['COMMITTED', 'FAILED'],
  COMMITTED: [],
  FAILED: [],
};

export function canTransition(from: RoundState, to: RoundState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws INVALID_TRANSITION unless `from → to` is an edge of the round state machine. */
export function assertTransition(from: RoundState, to: RoundState): void {
  if (!canTransition(from, to)) {
    throw new FedlhsError('INVALID_TRANSITION', `round cannot go from ${from} to ${to}`);
  }
}

export function isFinalRoundState(state: RoundState): boolean {
  return TRANSITIONS[state].length === 0;
}

/** Where each selected clinic's task stands, as far as closing a round is concerned. */
export interface TaskTally {
  /** Tasks whose update was accepted. */
  accepted: number;
  /** Tasks still expected to report (node online, no result yet). */
  outstanding: number;
  /** Tasks whose node is offline right now; it may come back before the deadline. */
  disconnected: number;
  /** Tasks that ended without an accepted update (rejected, declined, failed). */
  ended: number;
}

export type CloseDecision = { action: 'wait' } | { action: 'close' } | { action: 'retry'; reason: string };

/**
 * Decides whether a phase (training or evaluation) can close. It closes early once nobody
 * online is still working and the quorum is met; at the deadline it closes if the quorum is
 * met and otherwise asks for a retry. When no one is left who could still reach the quorum,
 * it retries at once instead of waiting out the deadline.
 */
export function decideClose(tally: TaskTally, quorum: number, deadlinePassed: boolean): CloseDecision {
  const { accepted, outstanding, disconnected } = tally;
  if (accepted >= quorum && (outstanding === 0 || deadlinePassed)) return { action: 'close' };
  if (deadlinePassed) return { action: 'retry', reason: `deadline passed with ${accepted} accepted update(s), quorum is ${quorum}` };
  if (accepted + outstanding + disconnected < quorum) {
    return { action: 'retry', reason: `only ${accepted + outstanding + disconnected} clinic(s) can still report, quorum is ${quorum}` };
  }
  return { action: 'wait' };
}
