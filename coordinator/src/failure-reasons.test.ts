import { describe, expect, it } from 'vitest';
import { describePhaseFailure, siteList, type PhaseTaskOutcome } from './failure-reasons.js';

const o = (siteName: string, state: PhaseTaskOutcome['state'], detail: string | null = null, online = true): PhaseTaskOutcome => ({ siteName, state, detail, online });
const FIT = 'fit: x has 2410 values, expected 241 rows x 9 features';

describe('describePhaseFailure', () => {
  it('says "n of n clinics failed" when every clinic failed with the same text, and marks it deterministic from two clinics on', () => {
    expect(describePhaseFailure('TRAIN', [o('c', 'FAILED', FIT), o('a', 'FAILED', FIT), o('b', 'FAILED', FIT)], 2, false)).toEqual({
      reason: `3 of 3 clinic(s) (a, b, c) failed training: ${FIT}`,
      sameFailureEverywhere: FIT,
    });
    expect(describePhaseFailure('TRAIN', [o('a', 'FAILED', FIT)], 1, false)).toEqual({ reason: `1 of 1 clinic(s) (a) failed training: ${FIT}`, sameFailureEverywhere: undefined });
    expect(describePhaseFailure('STATISTICS', [o('a', 'FAILED', 'boom'), o('b', 'FAILED', 'boom')], 2, false).reason).toBe('2 of 2 clinic(s) (a, b) failed the statistics phase: boom');
  });

  it('groups identical reasons, each with its count and sites; different texts are not the same failure', () => {
    const r = describePhaseFailure('TRAIN', [
      o('a', 'FAILED', FIT), o('b', 'ACCEPTED'), o('c', 'FAILED', FIT), o('d', 'FAILED', 'out of memory'), o('e', 'DECLINED', 'not approved'),
      o('f', 'REJECTED', 'NORM_BOUND: too far'), o('g', 'ASSIGNED', null, false),
    ], 3, false);
    expect(r).toEqual({
      reason: `quorum 3 not reached: 1 accepted (b); 2 failed training (a, c): ${FIT}; 1 failed training (d): out of memory; 1 rejected (f): NORM_BOUND: too far; 1 declined (e): not approved; 1 offline (g)`,
      sameFailureEverywhere: undefined,
    });
    expect(describePhaseFailure('TRAIN', [o('a', 'FAILED', 'x 1'), o('b', 'FAILED', 'x 2')], 2, false).sameFailureEverywhere).toBeUndefined();
  });

  it('at the deadline, says who did not report', () => {
    expect(describePhaseFailure('TRAIN', [o('a', 'FAILED', FIT), o('b', 'ASSIGNED'), o('c', 'ASSIGNED', null, false)], 2, true).reason).toBe(
      `quorum 2 not reached by the deadline: 1 failed training (a): ${FIT}; 1 offline, did not report (c); 1 did not report (b)`,
    );
    expect(describePhaseFailure('TRAIN', [], 1, true).reason).toBe('quorum 1 not reached by the deadline: no clinic was asked');
  });

  it('caps long agent texts and long site lists', () => {
    const long = `fit: ${'x'.repeat(1000)}`;
    const r = describePhaseFailure('TRAIN', [o('a', 'FAILED', long), o('b', 'FAILED', long)], 2, false);
    expect(r.reason.length).toBeLessThan(300);
    expect(r.reason.endsWith('…')).toBe(true);
    expect(siteList(['g', 'f', 'e', 'd', 'c', 'b', 'a'])).toBe('a, b, c, d, e and 2 more');
    expect(describePhaseFailure('TRAIN', [o('a', 'FAILED', ''), o('b', 'FAILED', null)], 2, false).reason).toBe('2 of 2 clinic(s) (a, b) failed training: (no reason given)');
  });
});
