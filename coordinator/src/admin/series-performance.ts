import { aucInterval, comparisonFiguresSchema, differenceInterval, publishPerformance, type Performance } from '@fedlhs/core';
import { withheldByCounts, withheldFigures } from '../disclosure.js';
import type { CoordinatorStore, MetricRecord, ReleaseRecord, SeriesRunRecord, StudyRecord } from '../store.js';

/**
 * Per-site performance over a series' runs (issue 13, Flow 7): for each run's released round,
 * each clinic's test AUC with its interval and its paired difference from the champion the run
 * was compared with (core differenceInterval). Small cells are withheld as everywhere else
 * (disclosure.ts): a clinic whose test figures or comparison counts fall under the study's
 * minCellCount, and the next smallest with it, shows no figure of its own.
 */

/** One clinic's figures in one run (nulls: not measured, or withheld). */
export interface SeriesSitePoint {
  site: string;
  /** Test-part patients. */
  numExamples: number;
  auc: number | null;
  aucInterval: [number, number] | null;
  /** AUC(this run's release) − AUC(champion) on the same patients, with its 95 % interval. */
  difference: number | null;
  differenceInterval: [number, number] | null;
  championAuc: number | null;
}

/** One run's released round, by clinic. */
export interface SeriesRunPerformance {
  run: number;
  studyId: string;
  version: number;
  round: number;
  championVersion: number | null;
  minCellCount: number | null;
  /** The pooled test AUC of the round (null when withheld or not reported). */
  pooled: { numExamples: number; auc: number | null; aucInterval: [number, number] | null } | null;
  sites: SeriesSitePoint[];
  /** Clinics that reported test figures or a comparison but are withheld (small cells), counted only. */
  withheldSites: number;
  /** Why the run's figures cannot be shown (an unreadable manifest or metrics row). */
  error: string | null;
}

type Row = MetricRecord & { round: number };

/** The minCellCount of a study's manifest, or a thrown message naming what is wrong. */
function minCellCountOf(study: StudyRecord): number {
  let manifest: unknown;
  try {
    manifest = JSON.parse(study.manifestJson);
  } catch {
    throw new Error(`the manifest of study ${study.id} is not JSON`);
  }
  const k = (manifest as { data?: { minCellCount?: unknown } } | null)?.data?.minCellCount;
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw new Error(`the manifest of study ${study.id} has no data.minCellCount`);
  return k;
}

function parseJson(json: string, what: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw new Error(`the stored ${what} is not JSON`);
  }
}

/**
 * The per-site figures of one released round. Withheld: every site complementary suppression
 * withholds over its test figures (patients, cases, non-cases; and again over those with an
 * AUC) or over its comparison counts (n, cases, non-cases); and a comparison whose site has no
 * shown test row (its test figures were withheld when stored: the comparison's champion AUC
 * plus the difference would give its AUC away).
 */
export function roundSitePoints(rows: readonly Row[], roundId: number, k: number, siteName: (nodeId: string) => string): Pick<SeriesRunPerformance, 'pooled' | 'sites' | 'withheldSites'> {
  const ofRound = rows.filter((r) => r.roundId === roundId);
  const test = new Map<string, Performance>();
  const comparisons = new Map<string, ReturnType<typeof comparisonFiguresSchema.parse>>();
  for (const r of ofRound) {
    if (r.nodeId === null || r.performance == null) continue;
    if (r.phase === 'test') test.set(r.nodeId, parseJson(r.performance, `test figures of ${siteName(r.nodeId)}`) as Performance);
    if (r.phase === 'comparison') {
      const parsed = comparisonFiguresSchema.safeParse(parseJson(r.performance, `comparison of ${siteName(r.nodeId)}`));
      if (!parsed.success) throw new Error(`the stored comparison of ${siteName(r.nodeId)} is malformed: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
      comparisons.set(r.nodeId, parsed.data);
    }
  }
  const hidden = withheldFigures(test, k);
  for (const id of withheldByCounts([...comparisons].map(([nodeId, c]) => ({ nodeId, counts: [c.n, c.cases, c.n - c.cases] })), k)) hidden.add(id);
  const sites: SeriesSitePoint[] = [];
  for (const [nodeId, p] of test) {
    if (hidden.has(nodeId)) continue;
    const published = publishPerformance(p, k);
    const c = comparisons.get(nodeId);
    const d = c === undefined ? undefined : differenceInterval(c);
    sites.push({
      site: siteName(nodeId), numExamples: p.numExamples, auc: published.auc, aucInterval: published.aucInterval,
      difference: c?.difference ?? null, differenceInterval: d ?? null,
      championAuc: typeof c?.champion['auc'] === 'number' ? c.champion['auc'] : null,
    });
  }
  sites.sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
  const global = ofRound.find((r) => r.nodeId === null && r.phase === 'test');
  let pooled: SeriesRunPerformance['pooled'] = null;
  if (global !== undefined) {
    // The stored pooled figures already passed the small-cell rules (evaluation phase); a row
    // without them still carries its example-weighted AUC.
    const p = global.performance == null ? undefined : (parseJson(global.performance, 'pooled test figures') as Performance);
    pooled = p === undefined
      ? { numExamples: global.numExamples, auc: global.auc ?? null, aucInterval: null }
      : { numExamples: p.numExamples, auc: p.auc ?? null, aucInterval: p.auc !== undefined && p.aucStandardError !== undefined ? aucInterval(p.auc, p.aucStandardError) : null };
  }
  const reporting = new Set([...test.keys(), ...comparisons.keys()]);
  return { pooled, sites, withheldSites: reporting.size - sites.length };
}

/**
 * The released round of every run that made a release, oldest run first. A run whose figures
 * cannot be read is listed with `error`, never left out.
 */
export async function seriesPerformance(store: CoordinatorStore, runs: readonly SeriesRunRecord[], releaseOf: (run: SeriesRunRecord) => ReleaseRecord | undefined, siteName: (nodeId: string) => string): Promise<SeriesRunPerformance[]> {
  const out: SeriesRunPerformance[] = [];
  for (const run of runs) {
    const release = releaseOf(run);
    if (release === undefined) continue;
    const base = { run: run.run, studyId: run.studyId, version: release.version, round: release.round, championVersion: run.championVersion };
    try {
      const study = await store.getStudy(run.studyId);
      if (study === undefined) throw new Error(`study ${run.studyId} is not in the store`);
      const k = minCellCountOf(study);
      const [rows, committed] = await Promise.all([store.listMetrics(run.studyId), store.getCommittedRound(run.studyId, release.round)]);
      if (committed === undefined) throw new Error(`round ${release.round} of study ${run.studyId} is not committed`);
      out.push({ ...base, minCellCount: k, ...roundSitePoints(rows, committed.id, k, siteName), error: null });
    } catch (err) {
      out.push({ ...base, minCellCount: null, pooled: null, sites: [], withheldSites: 0, error: `figures cannot be shown: ${(err as Error).message}` });
    }
  }
  return out;
}
