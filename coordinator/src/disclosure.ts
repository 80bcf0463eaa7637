import { weightedMetrics, type EvalMetrics, type Performance } from '@fedlhs/core';

/**
 * Small-cell rules for what the coordinator stores and shows per site: a per-site figure
 * computed on fewer than the study's minCellCount examples is never a figure of its own.
 */

/**
 * The sites (by id) whose figures must be withheld, among those reporting a metric of one
 * round and phase alongside an example-weighted global value. Every site with fewer than
 * `minCell` examples is withheld; and because global × total − Σ shown figures gives away
 * what the withheld sites hold together, the next smallest sites are withheld too until the
 * withheld ones hold at least `minCell` examples (all sites, if that is never reached).
 */
export function withheldSites(sites: readonly { nodeId: string; numExamples: number }[], minCell: number): Set<string> {
  return withheldByCounts(sites.map((s) => ({ nodeId: s.nodeId, counts: [s.numExamples] })), minCell);
}

/**
 * Complementary suppression over several counts per site (e.g. patients, cases, non-cases):
 * the sites (by id) whose figures must be withheld. A site is withheld when any of its counts
 * is below `minCell`; then, because a pooled total minus the shown sites' gives away what the
 * withheld ones hold together, the next smallest sites (by their smallest count, then their
 * first count, then id) are withheld too until the withheld group holds at least `minCell`
 * of every count, or all sites are withheld. Every site must give the same number of counts.
 */
export function withheldByCounts(sites: readonly { nodeId: string; counts: readonly number[] }[], minCell: number): Set<string> {
  const least = (c: readonly number[]): number => Math.min(...c);
  const bySize = [...sites].sort((a, b) => least(a.counts) - least(b.counts) || (a.counts[0] ?? 0) - (b.counts[0] ?? 0) || a.nodeId.localeCompare(b.nodeId));
  const withheld = new Set<string>();
  const held: number[] = [];
  for (const s of bySize) {
    const small = s.counts.some((c) => c < minCell);
    if (!small && (withheld.size === 0 || held.every((h) => h >= minCell))) break;
    withheld.add(s.nodeId);
    s.counts.forEach((c, i) => { held[i] = (held[i] ?? 0) + c; });
  }
  return withheld;
}

/** The counts a site's figures are judged by: patients, cases and non-cases. */
export function performanceCounts(p: Pick<Performance, 'numExamples' | 'positives'>): number[] {
  return [p.numExamples, p.positives, p.numExamples - p.positives];
}

/**
 * The sites (by id) whose validation or test figures are withheld: withheldByCounts over
 * patients, cases and non-cases, run over all sites and again over the sites with an AUC
 * (the pooled AUC averages only those).
 */
export function withheldFigures(figures: Iterable<readonly [string, Pick<Performance, 'numExamples' | 'positives' | 'auc'>]>, minCell: number): Set<string> {
  const sites = [...figures].map(([nodeId, p]) => ({ nodeId, counts: performanceCounts(p), auc: p.auc !== undefined }));
  const hidden = withheldByCounts(sites, minCell);
  for (const id of withheldByCounts(sites.filter((s) => s.auc), minCell)) hidden.add(id);
  return hidden;
}

/**
 * The per-site metrics of one round and phase that may be stored, and their example-weighted
 * global value (nodeId null) if it covers at least `minCell` examples. The withholding rule
 * runs over all sites and again over the sites with an AUC (the global AUC averages only
 * those), and a global AUC over fewer than `minCell` examples is dropped.
 */
export function disclosableMetrics<M extends EvalMetrics & { nodeId: string | null }>(sites: readonly M[], minCell: number): { shown: M[]; global: EvalMetrics | undefined; withheld: number } {
  const key = (m: M): string => m.nodeId ?? '';
  const withheld = withheldSites(sites.map((m) => ({ nodeId: key(m), numExamples: m.numExamples })), minCell);
  const withAuc = sites.filter((m) => m.auc !== undefined);
  for (const id of withheldSites(withAuc.map((m) => ({ nodeId: key(m), numExamples: m.numExamples })), minCell)) withheld.add(id);
  let global = weightedMetrics(sites);
  if (global !== undefined && global.numExamples < minCell) global = undefined;
  if (global !== undefined && withAuc.reduce((s, m) => s + m.numExamples, 0) < minCell) global = { ...global, auc: undefined };
  return { shown: sites.filter((m) => !withheld.has(key(m))), global, withheld: withheld.size };
}
