import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { assertTransition, canTransition, decideClose, isFinalRoundState, type CloseDecision, type RoundState, type TaskTally } from './round-state.js';

const STATES: RoundState[] = ['WAITING_FOR_NODES', 'STATISTICS', 'TRAINING', 'AGGREGATING', 'EVALUATING', 'COMMITTED', 'FAILED'];

/** The edges of the round state machine, written out by hand. */
const ALLOWED = new Set([
  'WAITING_FOR_NODES→TRAINING',
  'WAITING_FOR_NODES→FAILED',
  'WAITING_FOR_NODES→STATISTICS',
  'STATISTICS→TRAINING',
  'STATISTICS→FAILED',
  'TRAINING→AGGREGATING',
  'TRAINING→FAILED',
  'AGGREGATING→EVALUATING',
  'AGGREGATING→FAILED',
  'EVALUATING→COMMITTED',
  'EVALUATING→FAILED',
]);

const pairs = STATES.flatMap((from) => STATES.map((to) => [from, to] as [RoundState, RoundState]));

describe('round state transitions', () => {
  it.each(pairs.filter(([f, t]) => ALLOWED.has(`${f}→${t}`)))('allows %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
    expect(() => assertTransition(from, to)).not.toThrow();
  });

  it.each(pairs.filter(([f, t]) => !ALLOWED.has(`${f}→${t}`)))('forbids %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
    let thrown: unknown;
    try {
      assertTransition(from, to);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(FedlhsError);
    expect((thrown as FedlhsError).code).toBe('INVALID_TRANSITION');
    expect((thrown as FedlhsError).message).toBe(`round cannot go from ${from} to ${to}`);
  });

  it('has exactly 11 allowed edges of 49 pairs', () => {
    expect(pairs.filter(([f, t]) => canTransition(f, t))).toHaveLength(11);
  });

  it('names both states in the INVALID_TRANSITION message', () => {
    expect(() => assertTransition('COMMITTED', 'TRAINING')).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: round cannot go from COMMITTED to TRAINING]`);
    expect(() => assertTransition('TRAINING', 'COMMITTED')).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: round cannot go from TRAINING to COMMITTED]`);
    expect(() => assertTransition('WAITING_FOR_NODES', 'AGGREGATING')).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: round cannot go from WAITING_FOR_NODES to AGGREGATING]`);
  });

  it('treats exactly COMMITTED and FAILED as final', () => {
    expect(STATES.filter(isFinalRoundState)).toEqual(['COMMITTED', 'FAILED']);
  });
});

const tally = (accepted: number, outstanding: number, disconnected: number, ended = 0): TaskTally => ({ accepted, outstanding, disconnected, ended });

describe('decideClose', () => {
  it.each<[string, TaskTally, number, boolean, CloseDecision]>([
    ['closes early when the quorum is met and nobody is outstanding', tally(2, 0, 0, 1), 2, false, { action: 'close' }],
    ['closes early above quorum with only disconnected nodes left', tally(3, 0, 2), 2, false, { action: 'close' }],
    ['waits while tasks are outstanding, even with the quorum met', tally(2, 1, 0), 2, false, { action: 'wait' }],
    ['waits below quorum while outstanding tasks could still reach it', tally(1, 1, 0), 2, false, { action: 'wait' }],
    ['waits for disconnected nodes that could still reach the quorum', tally(1, 0, 1, 1), 2, false, { action: 'wait' }],
    ['retries at the deadline without quorum', tally(1, 1, 0), 2, true, { action: 'retry', reason: 'deadline passed with 1 accepted update(s), quorum is 2' }],
    ['retries at the deadline with nothing accepted', tally(0, 0, 0, 3), 1, true, { action: 'retry', reason: 'deadline passed with 0 accepted update(s), quorum is 1' }],
    ['closes at the deadline with quorum even if tasks are outstanding', tally(2, 3, 1), 2, true, { action: 'close' }],
    ['retries early when accepted + outstanding + disconnected < quorum', tally(1, 1, 0, 2), 3, false, { action: 'retry', reason: 'only 2 clinic(s) can still report, quorum is 3' }],
    ['retries early when every task has ended without enough accepted', tally(1, 0, 0, 2), 2, false, { action: 'retry', reason: 'only 1 clinic(s) can still report, quorum is 2' }],
    ['waits when accepted + outstanding + disconnected equals the quorum', tally(1, 1, 1, 5), 3, false, { action: 'wait' }],
    ['quorum 0: closes at once when nobody is outstanding', tally(0, 0, 0), 0, false, { action: 'close' }],
    ['quorum 0: waits for outstanding tasks before the deadline', tally(0, 2, 0), 0, false, { action: 'wait' }],
    ['quorum 0: closes at the deadline with nothing accepted', tally(0, 2, 1), 0, true, { action: 'close' }],
  ])('%s', (_label, t, quorum, deadlinePassed, expected) => {
    expect(decideClose(t, quorum, deadlinePassed)).toEqual(expected);
  });
});
