import { describe, expect, it } from 'vitest';
import { dpUtilityMarkdown } from './dp-report.js';
import { summarise, type DpArm, type DpUtilityReport } from './dp-utility.js';
import type { Assessment } from './evaluation.js';

const result = (auc: number, low: number, high: number): Assessment => ({
  n: 500, positives: 60, negatives: 440, auc, aucCi: { low, high }, aucStable: true, accuracy: 0.88, noInformationRate: 0.88, brier: 0.1, ece: 0.02, calibration: [],
});
const arm = (over: Partial<DpArm>): DpArm => ({
  label: 'no DP', targetEpsilon: null, draw: 1, noiseMultiplier: null, effectiveNoiseMultiplier: null, clipNorm: null, plannedEpsilon: null, spentEpsilon: null,
  roundsSpent: null, clippedFraction: null, release: { round: 7, of: 10, rule: 'best-validation-auc' }, result: result(0.8, 0.77, 0.83), lastRound: result(0.79, 0.76, 0.82), vsNoDp: null, seconds: 21.5, ...over,
});

describe('dpUtilityMarkdown', () => {
  it('gives one row per arm with AUC, paired difference, epsilons and a verdict the interval supports', () => {
    const report: DpUtilityReport = {
      kind: 'dp-utility', createdAt: '2026-11-30T00:00:00.000Z',
      settings: { clinics: 5, seed: 1, rounds: 10, scale: 1, repeats: 1, placement: 'local', delta: 1e-6, clip: { norm: 0.57, source: 'median update norm of the run without DP' }, backend: 'cpu', bootstrap: { resamples: 2000, seed: 1 } },
      testPatients: { n: 500, cases: 60 },
      initial: result(0.61, 0.55, 0.66),
      arms: [
        arm({}),
        arm({
          label: 'ε=1', targetEpsilon: 1, noiseMultiplier: 14.3279, effectiveNoiseMultiplier: 14.3279, clipNorm: 0.57, plannedEpsilon: 0.99999, spentEpsilon: 0.99999, roundsSpent: 10, clippedFraction: 0.5,
          result: result(0.52, 0.47, 0.57), vsNoDp: { a: 0.52, b: 0.8, difference: -0.28, ci: { low: -0.33, high: -0.22 }, cases: 60, nonCases: 440, stable: true },
        }),
        arm({
          label: 'ε=8', targetEpsilon: 8, noiseMultiplier: 2.18, clipNorm: 0.57, plannedEpsilon: 7.99, spentEpsilon: Infinity, roundsSpent: 11, clippedFraction: 0,
          result: result(0.79, 0.76, 0.82), vsNoDp: { a: 0.79, b: 0.8, difference: -0.01, ci: { low: -0.03, high: 0.01 }, cases: 60, nonCases: 440, stable: true },
        }),
      ],
      byEpsilon: [],
      seconds: 100,
    };
    report.byEpsilon = summarise(report.arms);
    expect(report.byEpsilon.map((b) => [b.targetEpsilon, b.draws, b.auc!.mean, b.auc!.sd])).toEqual([[1, 1, 0.52, null], [8, 1, 0.79, null]]);
    const md = dpUtilityMarkdown(report);
    const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| arm'));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toBe('| no DP | - | - | 0.800 [0.770, 0.830] | - | - | - | - | 7/10 | 0.790 [0.760, 0.820] | 21.5 |');
    expect(rows[1]).toContain('| ε=1 | 14.33 | 0.57 | 0.520 [0.470, 0.570] | -0.280 [-0.330, -0.220] (worse than without DP) | 1.000 | 1.000 (10 rounds) | 50 % |');
    expect(rows[2]).toContain('-0.010 [-0.030, +0.010] (no difference shown)');
    expect(rows[2]).toContain('| ∞ (11 rounds) |');
    expect(md).toContain('**local** DP-FedAvg, δ = 0.000001');
    expect(md).not.toContain('Over the draws');
    expect(md).toContain('initial model (round 0, untrained, the same in every arm): AUC 0.610 [0.550, 0.660]');
  });
});

describe('summarise', () => {
  it('gives mean, sample sd and range per target over its draws, and the report shows them', () => {
    const d = (difference: number) => ({ a: null, b: null, difference, ci: null, cases: 60, nonCases: 440, stable: true });
    const arms = [
      arm({}),
      arm({ label: 'ε=1 #1', targetEpsilon: 1, result: result(0.5, 0.45, 0.55), vsNoDp: d(-0.3) }),
      arm({ label: 'ε=1 #2', targetEpsilon: 1, draw: 2, result: result(0.7, 0.65, 0.75), vsNoDp: d(-0.1) }),
      arm({ label: 'ε=3 #1', targetEpsilon: 3, result: result(0.6, 0.55, 0.65), vsNoDp: d(-0.2) }),
    ];
    const [one, three] = summarise(arms);
    expect(one!.draws).toBe(2);
    expect(one!.auc!.mean).toBeCloseTo(0.6, 12);
    expect(one!.auc!.sd).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect([one!.auc!.min, one!.auc!.max]).toEqual([0.5, 0.7]);
    expect(one!.difference!.mean).toBeCloseTo(-0.2, 12);
    expect(three!.auc!.sd).toBeNull();
    const md = dpUtilityMarkdown({
      kind: 'dp-utility', createdAt: 'now',
      settings: { clinics: 5, seed: 1, rounds: 10, scale: 1, repeats: 2, placement: 'local', delta: 1e-6, clip: { norm: 0.5, source: '--clip' }, backend: 'cpu', bootstrap: { resamples: 2000, seed: 1 } },
      testPatients: { n: 500, cases: 60 }, initial: null, arms, byEpsilon: summarise(arms), seconds: 1,
    });
    expect(md).toContain('| ε=1 | 2 | 0.600 ± 0.141 (0.500–0.700) | -0.200 ± 0.141 |');
    expect(md).toContain('| ε=3 | 1 | 0.600 (0.600–0.600) | -0.200 |');
    expect(md).toContain('2 studies per ε');
    expect(md).toContain('AUC not available');
  });
});
