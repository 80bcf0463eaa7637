import { describe, expect, it } from 'vitest';
import { NO_BUDGET } from './privacy-budget.js';
import { roundCount, roundPerformance } from './privacy-counts.js';
import { describePrivacy } from './privacy-review.js';
import { dpManifest } from './privacy-test-support.js';
import { formatManifest } from './review.js';

const dp = (placement: string) => ({ dp: { placement, noiseMultiplier: 2, clipping: { mode: 'fixed', norm: 0.5 } } });

describe('describePrivacy (review)', () => {
  it('says what the mechanism means for this clinic: noise, effective multiplier, epsilon per round and how many rounds its limit covers', () => {
    const lines = describePrivacy(dpManifest(dp('local')), { ...NO_BUDGET, maxEpsilonPerStudy: 6 });
    expect(lines[0]).toBe('DP-FedAvg, local noise, noise multiplier z=2, updates clipped to L2 norm 0.5');
    expect(lines[1]).toMatch(/adds Gaussian noise σ=1\.000 \(z·C\)/);
    expect(lines[2]).toMatch(/^effective noise multiplier for this clinic 2\.000; ε per round \d+\.\d{3}, over 4 round\(s\) \d+\.\d{3} at δ=0\.000001 .*; this clinic's limit ε=6 covers \d of the 4 round\(s\)/);
  });

  it('counts untrusted central noise as no protection, and distributed noise at z/√clients.min', () => {
    expect(describePrivacy(dpManifest(dp('central')), NO_BUDGET)[2]).toMatch(/^effective noise multiplier for this clinic 0 \(no protection\); ε per round ∞/);
    expect(describePrivacy(dpManifest(dp('distributed')), NO_BUDGET)[2]).toMatch(/^effective noise multiplier for this clinic 1\.000;/);
  });

  it('appears in the manifest review, and a clinic with a budget is told it declines a study without DP', () => {
    expect(formatManifest(dpManifest(dp('local')), 'h', 's', NO_BUDGET)).toContain('  privacy          DP-FedAvg, local noise');
    expect(formatManifest(dpManifest(undefined), 'h', 's', { ...NO_BUDGET, maxEpsilonLifetime: 3 })).toContain('  privacy          no differential privacy: this clinic holds a budget, so it declines this study');
    expect(formatManifest(dpManifest(undefined), 'h', 's', NO_BUDGET)).not.toContain('privacy ');
  });
});

describe('rounded counts', () => {
  const rounded = dpManifest({ counts: { disclosure: 'rounded', roundTo: 10 } });
  it('rounds to the nearest multiple, never a positive count to 0, and leaves exact studies alone', () => {
    expect([0, 3, 14, 15, 86].map((n) => roundCount(rounded, n))).toEqual([0, 10, 10, 20, 90]);
    expect(roundCount(dpManifest(undefined), 86)).toBe(86);
  });

  it('rounds figures so the coordinator checks still hold (positives ≤ examples, no calibration bins), or withholds them', () => {
    const p = { numExamples: 86, positives: 23, auc: 0.7, calibration: [{ count: 86, predictedSum: 20, observed: 23 }] };
    expect(roundPerformance(rounded, p)).toEqual({ numExamples: 90, positives: 20, auc: 0.7, calibration: [] });
    expect(roundPerformance(rounded, { ...p, positives: 85 })).toMatch(/cases would equal its records/);
    expect(roundPerformance(dpManifest(undefined), p)).toBe(p);
  });
});
