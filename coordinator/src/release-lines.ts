import { forTerminal, terminalTable } from '@fedlhs/service';
import type { FigureSummary, ReleaseDetailView, ReleaseSummaryView } from './admin/release-views.js';
import type { DriftVerdict } from './releases/drift.js';

/**
 * What `fedlhs-coordinator release list | show` print, from the admin API's release views.
 * Every cell goes through terminalTable / forTerminal: site names and reasons come from outside.
 */

const f3 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));
const ci = (i: readonly [number, number] | null | undefined): string => (i == null ? '' : ` [${f3(i[0])}, ${f3(i[1])}]`);
const v = (text: string | number): string => forTerminal(String(text));

/** "0.801 [0.760, 0.842] on 1200" or "-". */
export function figure(f: FigureSummary | null): string {
  return f === null || f.auc === null ? '-' : `${f3(f.auc)}${ci(f.aucInterval)}`;
}

/** "2 sites: 1 ok, 1 drift" (or "no reports", or the error). */
function liveSummary(r: ReleaseSummaryView): string {
  if (r.live === null) return r.error === null ? '-' : 'unavailable';
  if (r.live.sites.length === 0) return 'no reports';
  const counts = new Map<string, number>();
  for (const s of r.live.sites) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  return `${r.live.sites.length} site(s): ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`;
}

/** The `release list` table, then the errors of releases whose figures cannot be shown. */
export function releaseListText(releases: readonly ReleaseSummaryView[]): string {
  if (releases.length === 0) return 'no releases yet: a release is made when a study completes\n';
  const rows = releases.map((r) => [
    r.studyName, `v${r.version}`, String(r.round), r.selection?.rule ?? '-', figure(r.validation), figure(r.test), r.aliases.join(',') || '-', liveSummary(r),
  ]);
  const errors = releases.filter((r) => r.error !== null).map((r) => `${v(r.studyName)} v${r.version}: ${v(r.error!)}`);
  return `${terminalTable([['STUDY', 'VERSION', 'ROUND', 'RULE', 'VALIDATION AUC [95% CI]', 'TEST AUC [95% CI]', 'ALIASES', 'LIVE'], ...rows])}\n${errors.length === 0 ? '' : `\n${errors.join('\n')}\n`}`;
}

function verdictCells(d: DriftVerdict): string[] {
  const l = d.live;
  return [
    d.status.toUpperCase(), l.numExamples === null ? '<withheld>' : String(l.numExamples), l.auc === null ? '-' : `${f3(l.auc)}${ci(l.aucInterval)}`,
    f3(l.calibrationSlope), l.meanPredicted === null || l.observedRate === null ? '-' : `${(l.meanPredicted * 100).toFixed(1)}% / ${(l.observedRate * 100).toFixed(1)}%`,
  ];
}

/** The `release show` text: figures, live verdicts per site, files and the model card. */
export function releaseDetailText(r: ReleaseDetailView): string {
  const lines: string[] = [];
  lines.push(`release ${v(r.studyName)} v${r.version}: study ${v(r.studyId)}, round ${r.round}, created ${r.createdAt}${r.parentVersion === null ? '' : `, parent v${r.parentVersion}`}`);
  lines.push(`aliases: ${r.aliases.length === 0 ? '-' : r.aliases.map(v).join(', ')}`);
  lines.push(`manifest sha256 ${r.manifestSha256}`);
  if (r.error !== null) lines.push(`ERROR: ${v(r.error)}`);
  if (r.selection !== null) {
    lines.push(`selection (${r.selection.rule}): ${v(r.selection.reason)}`);
    for (const w of r.selection.warnings) lines.push(`  warning: ${v(w)}`);
  }
  const d = r.descriptor;
  if (d !== null) {
    const k = d.metrics.minCellCount;
    lines.push('', `published figures (small cells under ${k} withheld):`);
    const part = (name: string, p: typeof d.metrics.test): string[][] => [
      ...(p.pooled === null ? [] : [[`  ${name}`, 'pooled', String(p.pooled.numExamples), `${f3(p.pooled.auc)}${ci(p.pooled.aucInterval)}`, f3(p.pooled.calibrationSlope), f3(p.pooled.brier)]]),
      ...p.sites.map((s) => [`  ${name}`, s.site, String(s.performance.numExamples), `${f3(s.performance.auc)}${ci(s.performance.aucInterval)}`, f3(s.performance.calibrationSlope), f3(s.performance.brier)]),
    ];
    lines.push(terminalTable([['  PART', 'SITE', 'PATIENTS', 'AUC [95% CI]', 'CAL. SLOPE', 'BRIER'], ...part('validation', d.metrics.validation), ...part('test', d.metrics.test)]));
    const withheld = d.metrics.test.withheldSites;
    if (withheld > 0) lines.push(`  ${withheld} site(s) count only in the pooled test figures (small cells)`);
    if (d.metrics.test.sitesWithoutFigures.length > 0) lines.push(`  no test figures from: ${d.metrics.test.sitesWithoutFigures.map(v).join(', ')}`);
  }
  lines.push('');
  if (r.live === null) lines.push('live performance: unavailable');
  else if (r.live.sites.length === 0) lines.push('live performance: no site has reported yet');
  else {
    lines.push(`live performance (latest report per site; ${r.reports} report(s) received), against the test AUC interval${ci(r.live.reference.testAucInterval) || ' (none published)'}:`);
    const rows = r.live.sites.map((s) => [`  ${s.siteName}`, ...verdictCells(s), s.measuredAt]);
    if (r.live.pooled !== null) rows.push([`  pooled (${r.live.pooled.sites} sites)`, ...verdictCells(r.live.pooled), '']);
    lines.push(terminalTable([['  SITE', 'STATUS', 'PATIENTS', 'LIVE AUC [95% CI]', 'CAL. SLOPE', 'PREDICTED / OBSERVED', 'MEASURED'], ...rows]));
    for (const s of r.live.sites) lines.push(`  ${v(s.siteName)}: ${v(s.reason)}`);
    if (r.live.pooled !== null) lines.push(`  pooled: ${v(r.live.pooled.reason)}`);
  }
  lines.push('', terminalTable([['FILE', 'SIZE', 'SHA-256'], ...r.files.map((f) => [f.name, String(f.size), f.sha256])]));
  if (d !== null) {
    lines.push('', `model card: intended use: ${v(d.modelCard.intendedUse)}`, `  outcome: ${v(d.modelCard.outcome)}`, `  population: ${v(d.modelCard.population)}`);
    for (const l of d.modelCard.limitations) lines.push(`  limitation: ${v(l)}`);
  }
  return `${lines.join('\n')}\n`;
}
