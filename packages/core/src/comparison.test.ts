import { describe, expect, it } from 'vitest';
import { decidePromotion, differenceInterval, pairedAucDifference, pooledDifference, type SiteComparison } from './comparison.js';
import { delongStandardError } from './performance.js';

/** Brute-force paired DeLong: O(m·n) placements straight from the definition. */
function bruteForce(a: number[], b: number[], y: number[]): { d: number; se: number } {
  const psi = (x: number, z: number): number => (x > z ? 1 : x === z ? 0.5 : 0);
  const cases = y.flatMap((v, i) => (v === 1 ? [i] : []));
  const controls = y.flatMap((v, i) => (v === 0 ? [i] : []));
  const place = (s: number[]): { v10: number[]; v01: number[]; auc: number } => {
    const v10 = cases.map((i) => controls.reduce((t, j) => t + psi(s[i]!, s[j]!), 0) / controls.length);
    const v01 = controls.map((j) => cases.reduce((t, i) => t + psi(s[i]!, s[j]!), 0) / cases.length);
    return { v10, v01, auc: v10.reduce((t, v) => t + v, 0) / cases.length };
  };
  const pa = place(a);
  const pb = place(b);
  const cov = (u: number[], w: number[], mu: number, mw: number): number => u.reduce((t, _, k) => t + (u[k]! - mu) * (w[k]! - mw), 0) / (u.length - 1);
  const s10 = cov(pa.v10, pa.v10, pa.auc, pa.auc) + cov(pb.v10, pb.v10, pb.auc, pb.auc) - 2 * cov(pa.v10, pb.v10, pa.auc, pb.auc);
  const s01 = cov(pa.v01, pa.v01, pa.auc, pa.auc) + cov(pb.v01, pb.v01, pb.auc, pb.auc) - 2 * cov(pa.v01, pb.v01, pa.auc, pb.auc);
  return { d: pa.auc - pb.auc, se: Math.sqrt(s10 / cases.length + s01 / controls.length) };
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('pairedAucDifference', () => {
  it('matches the brute-force definition on random data with ties', () => {
    const r = rng(7);
    for (let trial = 0; trial < 30; trial++) {
      const n = 20 + Math.floor(r() * 60);
      const y = Array.from({ length: n }, (_, i) => (i < 3 ? 1 : i < 6 ? 0 : r() < 0.3 ? 1 : 0));
      // Rounded scores give ties within and across classes.
      const a = y.map((v) => Math.round((r() + v * 0.5) * 10) / 10);
      const b = y.map((v, i) => Math.round((a[i]! * 0.6 + r() * 0.4 + v * 0.2) * 10) / 10);
      const got = pairedAucDifference(a, b, y);
      const want = bruteForce(a, b, y);
      expect(got.difference).toBeCloseTo(want.d, 12);
      expect(got.standardError).toBeCloseTo(want.se, 12);
      expect(got.cases).toBe(y.filter((v) => v === 1).length);
    }
  });

  it('is 0 with standard error 0 for the same model, and against a constant model its SE is that model\'s own', () => {
    const y = [1, 1, 1, 0, 0, 0, 0];
    const s = [0.9, 0.7, 0.4, 0.5, 0.3, 0.2, 0.1];
    expect(pairedAucDifference(s, s, y)).toMatchObject({ difference: 0, standardError: 0 });
    // A constant model has AUC ½ and zero placement variance: Var(d) = Var(A).
    const flat = pairedAucDifference(s, s.map(() => 0.5), y);
    expect(flat.standardError).toBeCloseTo(delongStandardError(s, y)!, 12);
  });

  it('has no difference with one class and no standard error with one case', () => {
    expect(pairedAucDifference([0.1, 0.2], [0.3, 0.4], [0, 0])).toEqual({ n: 2, cases: 0 });
    const one = pairedAucDifference([0.9, 0.2, 0.1], [0.1, 0.2, 0.3], [1, 0, 0]);
    expect(one.difference).toBe(1);
    expect(one.standardError).toBeUndefined();
  });

  it('refuses mismatched lengths and non-finite scores', () => {
    expect(() => pairedAucDifference([0.1], [0.1, 0.2], [0, 1])).toThrow(/one score of each model per patient/);
    expect(() => pairedAucDifference([Number.NaN, 0.2], [0.1, 0.2], [0, 1])).toThrow(/score 0 is not a finite number/);
  });
});

describe('pooledDifference', () => {
  it('weights clinics by inverse variance and leaves out those without a standard error', () => {
    const p = pooledDifference([
      { n: 100, cases: 20, difference: 0.1, standardError: 0.1 },
      { n: 400, cases: 80, difference: 0.02, standardError: 0.05 },
      { n: 10, cases: 1, difference: -0.5 },
    ])!;
    // Weights 100 and 400: (10 + 8) / 500.
    expect(p.difference).toBeCloseTo(0.036, 12);
    expect(p.standardError).toBeCloseTo(Math.sqrt(1 / 500), 12);
    expect(p).toMatchObject({ sites: 2, excluded: 1 });
    expect(pooledDifference([{ n: 3, cases: 1 }])).toBeUndefined();
  });
});

describe('decidePromotion', () => {
  const site = (siteName: string, difference: number, standardError: number, n = 500, cases = 60): SiteComparison => ({ siteName, n, cases, difference, standardError });
  const auto = { rule: 'auto' as const, minDelta: 0, maxSiteLoss: 0.05, minSites: 1 };

  it('promotes a challenger that is better with an interval above 0', () => {
    const d = decidePromotion(auto, [site('a', 0.05, 0.01), site('b', 0.04, 0.02)], 10);
    expect(d.promote).toBe(true);
    expect(d.reasons.join('\n')).toMatch(/pooled AUC difference .*\+0\.04\d.*the promotion rule holds/s);
  });

  it('keeps the champion when the interval reaches 0, the gain is under minDelta, or a clinic loses too much', () => {
    expect(decidePromotion(auto, [site('a', 0.01, 0.02)], 10)).toMatchObject({ promote: false });
    expect(decidePromotion({ ...auto, minDelta: 0.1 }, [site('a', 0.05, 0.01)], 10).reasons.join(' ')).toMatch(/below the required gain of \+0\.100/);
    const worse = decidePromotion(auto, [site('a', 0.08, 0.01), site('b', -0.06, 0.02)], 10);
    expect(worse).toMatchObject({ promote: false, worse: ['b'] });
    expect(decidePromotion({ ...auto, minSites: 3 }, [site('a', 0.08, 0.01)], 10).reasons.join(' ')).toMatch(/fewer than the 3 required/);
  });

  it('lets a clinic veto only a real loss: beyond maxSiteLoss with its interval below 0', () => {
    const noisy = decidePromotion(auto, [site('a', 0.06, 0.01), site('b', -0.08, 0.06)], 10);
    expect(noisy).toMatchObject({ promote: true, worse: [] });
    const real = decidePromotion(auto, [site('a', 0.06, 0.01), site('b', -0.08, 0.02)], 10);
    expect(real).toMatchObject({ promote: false, worse: ['b'] });
  });

  it('uses the stored pooled difference, which counts the withheld small clinics, and says so', () => {
    const stored = { studyName: 's', version: 2, pooled: { difference: 0.05, standardError: 0.01, interval: [0.03, 0.07] as [number, number], sites: 3, excluded: 0 }, reported: 3, withheld: 2, missing: [] };
    // Only one clinic is shown (under minSites 2 on its own), but three were pooled.
    const d = decidePromotion({ ...auto, minSites: 2 }, [site('a', 0.06, 0.02)], 10, stored);
    expect(d).toMatchObject({ promote: true, pooled: stored.pooled });
    expect(d.reasons.join(" ")).toMatch(/2 clinic\(s\) count in the pooled difference only: their own figures are withheld \(fewer than 10 patients/);
  });

  it('names a clinic too small to judge instead of letting its noise veto, and never promotes on nothing', () => {
    const d = decidePromotion(auto, [site('big', 0.06, 0.01), site('tiny', -0.4, 0.3, 30, 3)], 10);
    expect(d).toMatchObject({ promote: true, tooSmall: ['tiny'], worse: [] });
    expect(d.reasons.join(' ')).toMatch(/too few cases or non-cases \(under 10\) to judge a loss at tiny/);
    expect(decidePromotion(auto, [], 10)).toMatchObject({ promote: false, reasons: ['no clinic reported a comparison with the champion'] });
  });

  it('leaves the decision to an operator under the operator rule, with the same evidence', () => {
    const d = decidePromotion({ rule: 'operator' }, [site('a', 0.05, 0.01)], 10);
    expect(d.promote).toBe(false);
    expect(d.pooled?.difference).toBeCloseTo(0.05, 12);
    expect(d.reasons.at(-1)).toBe('the template leaves promotion to an operator');
  });

  it('gives a clinic\'s interval as d ± 1.96 se within [−1, 1]', () => {
    expect(differenceInterval({ n: 1, cases: 1, difference: 0.1, standardError: 0.05 })![0]).toBeCloseTo(0.1 - 1.959963984540054 * 0.05, 12);
    expect(differenceInterval({ n: 1, cases: 1, difference: 0.99, standardError: 0.5 })![1]).toBe(1);
    expect(differenceInterval({ n: 1, cases: 1 })).toBeUndefined();
  });
});
