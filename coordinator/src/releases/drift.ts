import { aucInterval, pooledPerformance, type Performance, type PublishedPerformance, type ReleaseDescriptor } from '@fedlhs/core';
import { performanceCounts, withheldByCounts } from '../disclosure.js';

/**
 * Is a release still working where it is deployed? (issue 12, design releases.md flow 5.)
 * Pure: compares the live performance reports of a release (the latest per site) with the test
 * figures the release published, per site and pooled, and says in words why it flags drift.
 * Everything it returns is disclosable: figures of a site with fewer than minCellCount
 * patients, cases or non-cases are null, and so are those of the next smallest sites when
 * the pooled value would otherwise give them away (as disclosure.ts does for round metrics).
 */

/** The drift rules' thresholds. */
const DRIFT_RULES = {
  /** z of the 95 % intervals (auc ± z·se). */
  z: 1.96,
  /** A calibration slope outside this range is drift. */
  slope: [0.8, 1.25] as const,
  /** |mean predicted risk − observed rate| above this is drift (calibration-in-the-large). */
  calibrationInTheLarge: 0.05,
} as const;

/** ok: consistent with the release's test figures; drift: a rule fired; insufficient: too few patients, cases or non-cases to judge. */
export type DriftStatus = 'ok' | 'drift' | 'insufficient';

/** A site's live report, as stored (ReleasePerformanceRecord with its Performance parsed). */
export interface LiveReport {
  nodeId: string;
  exportFingerprint: string;
  measuredAt: number;
  receivedAt: number;
  performance: Performance;
}

/** Live figures as shown; null: withheld (small cells) or not measured. */
export interface LiveFigures {
  numExamples: number | null;
  positives: number | null;
  auc: number | null;
  /** 95 % interval auc ± 1.96 se, clipped to [0, 1]. */
  aucInterval: [number, number] | null;
  brier: number | null;
  calibrationSlope: number | null;
  calibrationIntercept: number | null;
  /** Mean predicted risk and observed outcome rate (from the reliability table). */
  meanPredicted: number | null;
  observedRate: number | null;
}

/** The verdict on one site's (or the pooled) live figures. */
export interface DriftVerdict {
  status: DriftStatus;
  /** Why, in words; without figures when they are withheld. */
  reason: string;
  /** True when the figures are withheld although the site had enough patients (they would give a small site's away). */
  withheld: boolean;
  live: LiveFigures;
}

export interface SiteDrift extends DriftVerdict {
  nodeId: string;
  /** What the live AUC was compared with: the site's own published test figures, else the pooled ones. */
  comparedWith: 'site' | 'pooled';
  exportFingerprint: string;
  measuredAt: number;
}

export interface ReleaseDrift {
  /** The release's pooled test AUC and interval the live AUC is compared with (null: not published). */
  reference: { testAuc: number | null; testAucInterval: [number, number] | null };
  /** Over the latest report of every site (null without reports). */
  pooled: (DriftVerdict & { sites: number }) | null;
  /** One per site that reported, by node id. */
  sites: SiteDrift[];
}

const NO_FIGURES: LiveFigures = {
  numExamples: null, positives: null, auc: null, aucInterval: null, brier: null, calibrationSlope: null, calibrationIntercept: null, meanPredicted: null, observedRate: null,
};

/** The latest report of each site (by measuredAt, then receivedAt), in node id order. */
export function latestPerSite(reports: readonly LiveReport[]): LiveReport[] {
  const latest = new Map<string, LiveReport>();
  for (const r of reports) {
    const seen = latest.get(r.nodeId);
    if (seen === undefined || r.measuredAt > seen.measuredAt || (r.measuredAt === seen.measuredAt && r.receivedAt > seen.receivedAt)) latest.set(r.nodeId, r);
  }
  return [...latest.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

const tooSmall = (p: Performance, k: number): boolean => performanceCounts(p).some((c) => c < k);

/** Mean predicted risk and observed rate from a reliability table (null without one). */
function calibrationInTheLarge(p: Performance): { meanPredicted: number; observedRate: number } | null {
  const count = p.calibration.reduce((s, b) => s + b.count, 0);
  if (p.calibration.length === 0 || count === 0) return null;
  return { meanPredicted: p.calibration.reduce((s, b) => s + b.predictedSum, 0) / count, observedRate: p.calibration.reduce((s, b) => s + b.observed, 0) / count };
}

const f3 = (x: number): string => x.toFixed(3);
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const range = (i: readonly [number, number]): string => `[${f3(i[0])}, ${f3(i[1])}]`;

/**
 * The verdict on one set of live figures against a test AUC interval of the release.
 * `show`: whether the figures may appear (in `live` and in the reason); `referenceName` and
 * `referenceNote` say in the reason which interval it is (the site's own or the pooled one).
 */
export function judge(p: Performance, reference: [number, number] | null, minCellCount: number, show: boolean, referenceName = "the release's test AUC interval", referenceNote = ''): DriftVerdict {
  const k = minCellCount;
  if (tooSmall(p, k)) {
    return {
      status: 'insufficient', withheld: false, live: { ...NO_FIGURES, numExamples: p.numExamples >= k ? p.numExamples : null },
      reason: `too few patients to judge: fewer than ${k} (minCellCount) patients, cases or non-cases`,
    };
  }
  const interval = p.auc !== undefined && p.aucStandardError !== undefined ? aucInterval(p.auc, p.aucStandardError) : null;
  const citl = calibrationInTheLarge(p);
  const drift: string[] = [];
  const fine: string[] = [];
  if (p.auc === undefined) fine.push('no live AUC');
  else if (reference === null) fine.push(show ? `live AUC ${f3(p.auc)} (the release published no test AUC interval to compare with)` : 'no test AUC interval to compare with');
  else {
    // Without a standard error the point estimate stands in for the upper bound (stricter).
    const upper = p.aucStandardError === undefined ? p.auc : p.auc + DRIFT_RULES.z * p.aucStandardError;
    const live = show ? `live AUC ${f3(p.auc)}${interval === null ? ' (no standard error)' : ` ${range(interval)}`}` : 'live AUC';
    if (upper < reference[0]) drift.push(`${live} is below ${referenceName} ${range(reference)}${referenceNote}`);
    else fine.push(`${live} is consistent with ${referenceName} ${range(reference)}${referenceNote}`);
  }
  const slope = p.calibrationSlope;
  if (slope !== undefined) {
    const [lo, hi] = DRIFT_RULES.slope;
    const text = show ? `calibration slope ${f3(slope)}` : 'calibration slope';
    if (slope < lo || slope > hi) drift.push(`${text} is outside [${lo}, ${hi}]`);
    else fine.push(`${text} within [${lo}, ${hi}]`);
  }
  if (citl !== null) {
    const gap = citl.meanPredicted - citl.observedRate;
    const text = show ? `mean predicted risk ${pct(citl.meanPredicted)} vs observed rate ${pct(citl.observedRate)}` : 'mean predicted risk vs observed rate';
    if (Math.abs(gap) > DRIFT_RULES.calibrationInTheLarge) drift.push(`${text} differ by more than ${DRIFT_RULES.calibrationInTheLarge * 100} points`);
    else fine.push(text);
  }
  const live: LiveFigures = show
    ? {
        numExamples: p.numExamples, positives: p.positives, auc: p.auc ?? null, aucInterval: interval, brier: p.brier,
        calibrationSlope: slope ?? null, calibrationIntercept: p.calibrationIntercept ?? null,
        meanPredicted: citl?.meanPredicted ?? null, observedRate: citl?.observedRate ?? null,
      }
    : NO_FIGURES;
  const withheld = show ? '' : ' (figures withheld: they would reveal a smaller site\'s)';
  return drift.length > 0
    ? { status: 'drift', withheld: !show, live, reason: `drift: ${drift.join('; ')}${withheld}` }
    : { status: 'ok', withheld: !show, live, reason: `${fine.length === 0 ? 'nothing to compare' : fine.join('; ')}${withheld}` };
}

/**
 * The sites whose figures are withheld: every site too small to judge, then, while those hold
 * together fewer than `k` patients, cases or non-cases, the next smallest sites (pooled × total
 * − Σ shown would give the small ones away): disclosure.ts complementary suppression.
 */
function withheldSites(reports: readonly LiveReport[], k: number): Set<string> {
  return withheldByCounts(reports.map((r) => ({ nodeId: r.nodeId, counts: performanceCounts(r.performance) })), k);
}

/**
 * A site's own published test figures by node id, from release.json `metrics.test` (sites are
 * published by site name): the `ownTest` argument of releaseDrift.
 */
export function siteTestFigures(test: ReleaseDescriptor['metrics']['test'], siteName: (nodeId: string) => string | undefined): (nodeId: string) => PublishedPerformance | undefined {
  const bySite = new Map(test.sites.map((s) => [s.site, s.performance]));
  return (nodeId) => {
    const name = siteName(nodeId);
    return name === undefined ? undefined : bySite.get(name);
  };
}

/**
 * Drift of a release: each site's latest live report against that site's own published test
 * figures (`ownTest`, when the release published them with an AUC interval: a site whose model
 * was always weaker is not drifting), else against the pooled test figures (`test`, as
 * release.json publishes them), the reason saying which; the pooled live figures against the
 * pooled test figures.
 */
export function releaseDrift(
  reports: readonly LiveReport[], test: PublishedPerformance | null, minCellCount: number,
  ownTest: (nodeId: string) => PublishedPerformance | undefined = () => undefined,
): ReleaseDrift {
  const reference = test?.aucInterval ?? null;
  const latest = latestPerSite(reports);
  const withheld = withheldSites(latest, minCellCount);
  const sites = latest.map((r) => {
    const own = ownTest(r.nodeId)?.aucInterval ?? null;
    const verdict = own !== null
      ? judge(r.performance, own, minCellCount, !withheld.has(r.nodeId), "the site's own test AUC interval")
      : judge(r.performance, reference, minCellCount, !withheld.has(r.nodeId), "the release's pooled test AUC interval", " (the site's own is not published)");
    return { nodeId: r.nodeId, comparedWith: own !== null ? ('site' as const) : ('pooled' as const), exportFingerprint: r.exportFingerprint, measuredAt: r.measuredAt, ...verdict };
  });
  const pooled = pooledPerformance(latest.map((r) => r.performance));
  return {
    reference: { testAuc: test?.auc ?? null, testAucInterval: reference },
    pooled: pooled === undefined ? null : { ...judge(pooled, reference, minCellCount, true), sites: latest.length },
    sites,
  };
}
