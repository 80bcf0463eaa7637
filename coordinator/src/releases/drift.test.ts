import type { Performance, PublishedPerformance } from '@fedlhs/core';
import { describe, expect, it } from 'vitest';
import { judge, latestPerSite, releaseDrift, siteTestFigures, type LiveReport } from './drift.js';

/** A Performance with a reliability table whose mean prediction and observed rate are given. */
function perf(o: { n: number; pos: number; auc?: number; se?: number; slope?: number; meanPredicted?: number }): Performance {
  const meanPredicted = o.meanPredicted ?? o.pos / o.n;
  // Everything in one bin is enough for calibration-in-the-large.
  const calibration = Array.from({ length: 10 }, (_, b) => (b === 0 ? { count: o.n, predictedSum: meanPredicted * o.n, observed: o.pos } : { count: 0, predictedSum: 0, observed: 0 }));
  return {
    numExamples: o.n, positives: o.pos, brier: 0.1, calibration,
    ...(o.auc === undefined ? {} : { auc: o.auc }), ...(o.se === undefined ? {} : { aucStandardError: o.se }),
    ...(o.slope === undefined ? {} : { calibrationSlope: o.slope, calibrationIntercept: 0 }),
  };
}

const report = (nodeId: string, p: Performance, measuredAt = 1000, receivedAt = measuredAt): LiveReport => ({ nodeId, exportFingerprint: `fp-${nodeId}-${measuredAt}`, measuredAt, receivedAt, performance: p });

/** The release's pooled test figures: AUC 0.80 [0.76, 0.84]. */
const test: PublishedPerformance = {
  numExamples: 1000, positives: 150, auc: 0.8, aucInterval: [0.76, 0.84], brier: 0.1, calibrationSlope: 1, calibrationIntercept: 0, calibration: [],
};
const K = 10;

describe('judge (one set of live figures)', () => {
  it('is ok when the live AUC interval reaches the test interval and calibration holds', () => {
    const v = judge(perf({ n: 400, pos: 60, auc: 0.74, se: 0.02, slope: 0.9 }), [0.76, 0.84], K, true);
    // upper bound 0.74 + 1.96 × 0.02 = 0.7792 ≥ 0.76
    expect(v.status).toBe('ok');
    expect(v.reason).toBe("live AUC 0.740 [0.701, 0.779] is consistent with the release's test AUC interval [0.760, 0.840]; calibration slope 0.900 within [0.8, 1.25]; mean predicted risk 15.0 % vs observed rate 15.0 %");
    expect(v.live).toMatchObject({ numExamples: 400, positives: 60, auc: 0.74, calibrationSlope: 0.9, meanPredicted: 0.15, observedRate: 0.15 });
    expect(v.live.aucInterval![1]).toBeCloseTo(0.7792, 10);
  });

  it('flags drift when the live AUC upper bound is below the test interval', () => {
    const v = judge(perf({ n: 400, pos: 60, auc: 0.7, se: 0.02, slope: 1 }), [0.76, 0.84], K, true);
    // 0.70 + 0.0392 = 0.7392 < 0.76
    expect(v.status).toBe('drift');
    expect(v.reason).toMatch(/^drift: live AUC 0\.700 \[0\.661, 0\.739\] is below the release's test AUC interval \[0\.760, 0\.840\]$/);
  });

  it('uses the point estimate when no standard error came with the AUC', () => {
    expect(judge(perf({ n: 400, pos: 60, auc: 0.75 }), [0.76, 0.84], K, true).reason).toContain('live AUC 0.750 (no standard error) is below');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.77 }), [0.76, 0.84], K, true).status).toBe('ok');
  });

  it('flags a calibration slope outside [0.8, 1.25], and accepts its bounds', () => {
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, slope: 0.79 }), [0.76, 0.84], K, true).reason).toContain('calibration slope 0.790 is outside [0.8, 1.25]');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, slope: 1.3 }), [0.76, 0.84], K, true).status).toBe('drift');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, slope: 0.8 }), [0.76, 0.84], K, true).status).toBe('ok');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, slope: 1.25 }), [0.76, 0.84], K, true).status).toBe('ok');
  });

  it('flags calibration-in-the-large beyond 5 points either way', () => {
    const high = judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, meanPredicted: 0.21 }), [0.76, 0.84], K, true);
    expect(high.reason).toBe('drift: mean predicted risk 21.0 % vs observed rate 15.0 % differ by more than 5 points');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, meanPredicted: 0.09 }), [0.76, 0.84], K, true).status).toBe('drift');
    expect(judge(perf({ n: 400, pos: 60, auc: 0.8, se: 0.02, meanPredicted: 0.19 }), [0.76, 0.84], K, true).status).toBe('ok');
  });

  it('names every rule that fired', () => {
    const v = judge(perf({ n: 400, pos: 60, auc: 0.6, se: 0.02, slope: 0.5, meanPredicted: 0.3 }), [0.76, 0.84], K, true);
    expect(v.reason.split('; ')).toHaveLength(3);
  });

  it('is insufficient under minCellCount patients, cases or non-cases, and shows no figure but a large enough count', () => {
    for (const p of [perf({ n: 9, pos: 3, auc: 0.2, se: 0.1 }), perf({ n: 400, pos: 9, auc: 0.2, se: 0.1 }), perf({ n: 400, pos: 391, auc: 0.2, se: 0.1 })]) {
      const v = judge(p, [0.76, 0.84], K, true);
      expect(v.status).toBe('insufficient');
      expect(v.reason).toBe('too few patients to judge: fewer than 10 (minCellCount) patients, cases or non-cases');
      expect(v.live.positives).toBeNull();
      expect(v.live.auc).toBeNull();
      expect(v.live.numExamples).toBe(p.numExamples >= K ? p.numExamples : null);
    }
  });

  it('without a published test interval compares calibration only', () => {
    const v = judge(perf({ n: 400, pos: 60, auc: 0.5, se: 0.02, slope: 1 }), null, K, true);
    expect(v.status).toBe('ok');
    expect(v.reason).toContain('the release published no test AUC interval to compare with');
  });

  it('keeps figures out of a withheld verdict, its reason included', () => {
    const v = judge(perf({ n: 400, pos: 60, auc: 0.7, se: 0.02, slope: 1 }), [0.76, 0.84], K, false);
    expect(v).toMatchObject({ status: 'drift', withheld: true, live: { numExamples: null, auc: null } });
    expect(v.reason).not.toMatch(/0\.700|0\.661|400|\b60\b|1\.000/);
  });
});

describe('releaseDrift (per site and pooled)', () => {
  it('uses the latest report of each site', () => {
    const old = report('a', perf({ n: 400, pos: 60, auc: 0.5, se: 0.02 }), 1000);
    const fresh = report('a', perf({ n: 400, pos: 60, auc: 0.8, se: 0.02 }), 2000);
    const tie = report('b', perf({ n: 400, pos: 60, auc: 0.6, se: 0.02 }), 2000, 2001);
    const tieEarlier = report('b', perf({ n: 400, pos: 60, auc: 0.9, se: 0.02 }), 2000, 2000);
    expect(latestPerSite([fresh, old, tieEarlier, tie])).toEqual([fresh, tie]);
    const d = releaseDrift([old, fresh], test, K);
    expect(d.sites).toHaveLength(1);
    expect(d.sites[0]).toMatchObject({ nodeId: 'a', status: 'ok', measuredAt: 2000 });
  });

  it('pools the sites (example-weighted AUC, SE of the weighted mean) and judges the pool', () => {
    const d = releaseDrift([report('a', perf({ n: 300, pos: 45, auc: 0.7, se: 0.03 })), report('b', perf({ n: 100, pos: 15, auc: 0.9, se: 0.04 }))], test, K);
    expect(d.reference).toEqual({ testAuc: 0.8, testAucInterval: [0.76, 0.84] });
    expect(d.pooled!.sites).toBe(2);
    expect(d.pooled!.live.numExamples).toBe(400);
    expect(d.pooled!.live.auc).toBeCloseTo(0.75, 10);
    // SE √(0.75² × 0.03² + 0.25² × 0.04²) = 0.02462; upper 0.75 + 0.04826 = 0.798 ≥ 0.76
    expect(d.pooled!.live.aucInterval![1]).toBeCloseTo(0.75 + 1.96 * Math.sqrt(0.75 ** 2 * 0.03 ** 2 + 0.25 ** 2 * 0.04 ** 2), 10);
    expect(d.pooled!.status).toBe('ok');
    expect(d.sites.map((s) => [s.nodeId, s.status])).toEqual([['a', 'drift'], ['b', 'ok']]);
  });

  it('withholds the next smallest site when a small one could be derived from the pooled value', () => {
    const d = releaseDrift([
      report('small', perf({ n: 50, pos: 4, auc: 0.6, se: 0.1 })),
      report('mid', perf({ n: 200, pos: 30, auc: 0.7, se: 0.03 })),
      report('big', perf({ n: 900, pos: 130, auc: 0.8, se: 0.02 })),
    ], test, K);
    const by = Object.fromEntries(d.sites.map((s) => [s.nodeId, s]));
    expect(by.small).toMatchObject({ status: 'insufficient', live: { positives: null, auc: null } });
    // 4 cases withheld are fewer than 10: mid is withheld too, but still judged.
    expect(by.mid).toMatchObject({ status: 'drift', withheld: true, live: { auc: null, numExamples: null } });
    expect(by.big).toMatchObject({ status: 'ok', withheld: false, live: { numExamples: 900, positives: 130 } });
    expect(d.pooled!.live.numExamples).toBe(1150);
  });

  it('has no pooled verdict without reports and says so for a release without a test interval', () => {
    expect(releaseDrift([], test, K)).toEqual({ reference: { testAuc: 0.8, testAucInterval: [0.76, 0.84] }, pooled: null, sites: [] });
    expect(releaseDrift([], null, K).reference).toEqual({ testAuc: null, testAucInterval: null });
  });

  it("compares a site with its own published test figures, else the pooled ones and says so (review hospital MEDIUM 4)", () => {
    // The rural site's own test AUC is 0.760 [0.720, 0.800]; its live AUC 0.784 is better, not drift.
    const part = { pooled: test, sites: [{ site: 'rural', performance: { ...test, numExamples: 300, positives: 40, auc: 0.76, aucInterval: [0.72, 0.8] as [number, number] } }], withheldSites: 0, sitesWithoutFigures: [] };
    const names: Record<string, string> = { n1: 'rural', n2: 'city' };
    const d = releaseDrift(
      [report('n1', perf({ n: 400, pos: 60, auc: 0.784, se: 0.01 })), report('n2', perf({ n: 400, pos: 60, auc: 0.7, se: 0.02 }))],
      test, K, siteTestFigures(part, (id) => names[id]),
    );
    const [rural, city] = d.sites;
    expect(rural).toMatchObject({ nodeId: 'n1', status: 'ok', comparedWith: 'site' });
    expect(rural!.reason).toContain("live AUC 0.784 [0.764, 0.804] is consistent with the site's own test AUC interval [0.720, 0.800]");
    expect(city).toMatchObject({ nodeId: 'n2', status: 'drift', comparedWith: 'pooled' });
    expect(city!.reason).toBe("drift: live AUC 0.700 [0.661, 0.739] is below the release's pooled test AUC interval [0.760, 0.840] (the site's own is not published)");
  });

  it('a single small site leaves the pool insufficient too', () => {
    const d = releaseDrift([report('a', perf({ n: 40, pos: 5, auc: 0.3, se: 0.1 }))], test, K);
    expect(d.sites[0]!.status).toBe('insufficient');
    expect(d.pooled).toMatchObject({ status: 'insufficient', live: { positives: null, auc: null } });
  });
});
