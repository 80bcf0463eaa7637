import { describe, expect, it } from 'vitest';
import type { MetricRecord, RoundRecord } from '../store.js';
import { selectRound, type SelectionInput } from './selection.js';

type Row = MetricRecord & { round: number };
const round = (n: number, id = n + 100, state: RoundRecord['state'] = 'COMMITTED') => ({ id, round: n, state, checkpointPath: `p${n}`, checkpointSha256: 'a'.repeat(64) });
const global = (n: number, auc: number | undefined, loss = 0.5, phase: Row['phase'] = 'evaluation'): Row => ({ roundId: n + 100, round: n, nodeId: null, phase, numExamples: 100, loss, accuracy: 0.7, auc });
const site = (n: number, nodeId: string): Row => ({ roundId: n + 100, round: n, nodeId, phase: 'evaluation', numExamples: 50, loss: 0.5, accuracy: 0.7, auc: 0.6 });
const input = (rule: SelectionInput['rule'], metrics: Row[], rounds = [0, 1, 2, 3].map((n) => round(n))): SelectionInput => ({ rule, rounds, metrics });

describe('selectRound', () => {
  it('best-validation-auc: the highest global validation AUC, ties to the later round', () => {
    const sites = [1, 2, 3].flatMap((n) => [site(n, 'n1'), site(n, 'n2')]);
    const s = selectRound(input('best-validation-auc', [global(1, 0.7), global(2, 0.8), global(3, 0.8), ...sites]));
    expect(s).toMatchObject({ round: 3, roundId: 103, fallback: false, warnings: [] });
    expect(s.reason).toContain('0.8');
    expect(s.candidates.map((c) => c.round)).toEqual([1, 2, 3]);
    expect(s.candidates[1]).toEqual({ round: 2, validationAuc: 0.8, validationLoss: 0.5, evaluatedSites: 2 });
  });

  it('compares only rounds evaluated by as many sites as the most-evaluated ones, naming the others in one warning (review hospital MEDIUM 3)', () => {
    // Round 1 evaluated by both sites (0.797), round 2 only by the small easy site (0.96), round 3 by none.
    const s = selectRound({ ...input('best-validation-auc', [global(1, 0.797), global(2, 0.96)]), evaluatedSites: new Map([[1, 2], [2, 1], [3, 0]]) });
    expect(s).toMatchObject({ round: 1, fallback: false });
    expect(s.reason).toBe('best federated validation AUC 0.797 of 1 round(s) evaluated by 2 site(s) (1 without one) (1 evaluated by fewer sites left out); ties to the later round');
    expect(s.warnings).toEqual(['round(s) 2 (1 site(s)) left out of the selection: evaluated by fewer sites than the 2 of the most-evaluated round(s), so their pooled validation AUC is not comparable']);
    // The most-evaluated round has no figure: the last committed round, loudly.
    const none = selectRound({ ...input('best-validation-loss', [global(1, 0.8, Number.NaN), global(2, 0.9, 0.3)]), evaluatedSites: new Map([[1, 3], [2, 1], [3, 1]]) });
    expect(none).toMatchObject({ round: 3, fallback: true });
    expect(none.warnings).toHaveLength(2);
    expect(none.warnings[1]).toMatch(/no round evaluated by 3 site\(s\) has a federated validation loss: released the last committed round 3/);
  });

  it('never chooses on test rows, even when they would pick another round', () => {
    const s = selectRound(input('best-validation-auc', [global(1, 0.9), global(2, 0.6), global(2, 0.99, 0.1, 'test'), global(3, 0.5, 0.1, 'training')]));
    expect(s.round).toBe(1);
    expect(s.candidates.find((c) => c.round === 3)?.validationAuc).toBeNull();
  });

  it('best-validation-loss: the lowest global validation loss, ties to the later round', () => {
    const s = selectRound(input('best-validation-loss', [global(1, 0.9, 0.3), global(2, 0.6, 0.2), global(3, 0.5, 0.2)]));
    expect(s.round).toBe(3);
    expect(selectRound(input('best-validation-loss', [global(1, 0.9, 0.1), global(2, 0.6, 0.2)])).round).toBe(1);
  });

  it('last-round: the last committed round whatever the figures', () => {
    const s = selectRound(input('last-round', [global(1, 0.99)]));
    expect(s).toMatchObject({ round: 3, fallback: false, warnings: [] });
  });

  it('falls back loudly to the last committed round when no round has the figure', () => {
    const s = selectRound(input('best-validation-auc', [global(1, undefined), site(2, 'n1')]));
    expect(s).toMatchObject({ round: 3, fallback: true });
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/no committed round has a federated validation AUC.*released the last committed round 3/);
  });

  it('ignores rounds that did not commit and metrics of other attempts', () => {
    const rounds = [round(0), round(1), round(2, 201, 'FAILED'), round(2, 202)];
    // The failed attempt's row (roundId 201) does not count for round 2's committed attempt (202).
    const s = selectRound(input('best-validation-auc', [global(1, 0.7), { ...global(2, 0.95), roundId: 201 }], rounds));
    expect(s).toMatchObject({ round: 1, roundId: 101 });
    expect(selectRound(input('last-round', [], rounds))).toMatchObject({ round: 2, roundId: 202 });
  });

  it('never releases round 0 unless it is the only committed round, then with a warning', () => {
    const withZero = [global(0, 0.99), global(1, 0.5)];
    expect(selectRound(input('best-validation-auc', withZero)).round).toBe(1);
    const only = selectRound(input('best-validation-auc', [global(0, 0.6)], [round(0)]));
    expect(only).toMatchObject({ round: 0, fallback: false });
    expect(only.warnings[0]).toMatch(/initial one \(round 0\)/);
  });

  it('throws when nothing was committed', () => {
    expect(() => selectRound(input('last-round', [], [round(1, 101, 'FAILED')]))).toThrow(/no committed round/);
  });
});
