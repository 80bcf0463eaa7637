import { forTerminal, terminalTable } from '@fedlhs/service';
import type { PromotionView, SeriesDetailView, SeriesSummaryView } from './series-views.js';
import type { SeriesRunPerformance, SeriesSitePoint } from './series-performance.js';

/**
 * What `fedlhs-coordinator series list | show | promote | rollback` print, from the admin API's
 * series views. Every cell goes through terminalTable / forTerminal: site names, reasons and
 * template descriptions come from outside.
 */

const f3 = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(3));
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const v = (text: string | number): string => forTerminal(String(text));

/** "auto (gain >= +0.010, no site worse by > 0.050, >= 2 sites)" or "operator". */
export function promotionText(p: SeriesSummaryView['promotion']): string {
  if (p === null) return '-';
  return p.rule === 'operator' ? 'operator' : `auto (gain >= ${signed(p.minDelta)}, no site worse by > ${p.maxSiteLoss.toFixed(3)}, >= ${p.minSites} site(s))`;
}

/** When the next run starts, or why none is due. */
function nextRun(s: SeriesSummaryView): string {
  return s.nextRunAt ?? `- (${s.nextRunNote ?? 'unknown'})`;
}

/** The `series list` table, then the errors of series whose template cannot be read. */
export function seriesListText(series: readonly SeriesSummaryView[]): string {
  if (series.length === 0) return 'no series yet: create one with `fedlhs-coordinator series create <template.json>`\n';
  const rows = series.map((s) => [
    s.name, s.state, s.schedule ?? '-', s.start ?? '-', s.promotion === null ? '-' : s.promotion.rule, String(s.runCount),
    s.currentRun === null ? '-' : `run ${s.currentRun.run} (${s.currentRun.studyState})`, s.championVersion === null ? '-' : `v${s.championVersion}`, nextRun(s),
  ]);
  const errors = series.filter((s) => s.error !== null).map((s) => `${v(s.name)}: ${v(s.error!)}`);
  return `${terminalTable([['SERIES', 'STATE', 'SCHEDULE', 'START', 'PROMOTION', 'RUNS', 'IN PROGRESS', 'CHAMPION', 'NEXT RUN'], ...rows])}\n${errors.length === 0 ? '' : `\n${errors.join('\n')}\n`}`;
}

/** A champion decision in one line, its reasons indented below. */
export function promotionLines(p: PromotionView): string[] {
  const what = p.action === 'keep' ? `kept v${p.fromVersion ?? '-'} as champion over v${p.toVersion}` : p.action === 'rollback' ? `rolled back to v${p.toVersion} (from v${p.fromVersion ?? '-'})` : `promoted v${p.toVersion}${p.fromVersion === null ? '' : ` (was v${p.fromVersion})`}`;
  const lines = [`${p.at}  ${what}, by ${v(p.decidedBy)}${p.run === null ? '' : ` (run ${p.run})`}`];
  if (p.error !== null) lines.push(`    ERROR: ${v(p.error)}`);
  for (const r of p.evidence?.reasons ?? []) lines.push(`    ${v(r)}`);
  return lines;
}

/** One site's cell: "0.820 [0.781, 0.859] Δ +0.030 [+0.010, +0.050]". */
function cell(p: SeriesSitePoint | undefined): string {
  if (p === undefined) return '-';
  const auc = p.auc === null ? '-' : `${f3(p.auc)}${p.aucInterval === null ? '' : ` [${f3(p.aucInterval[0])}, ${f3(p.aucInterval[1])}]`}`;
  const diff = p.difference === null ? '' : ` Δ ${signed(p.difference)}${p.differenceInterval === null ? '' : ` [${signed(p.differenceInterval[0])}, ${signed(p.differenceInterval[1])}]`}`;
  return `${auc}${diff}`;
}

/** Per-site test AUC over runs: a row per site, a column per released run. */
export function performanceLines(runs: readonly SeriesRunPerformance[]): string[] {
  if (runs.length === 0) return ['no run has made a release yet'];
  const sites = [...new Set(runs.flatMap((r) => r.sites.map((s) => s.site)))].sort();
  const header = ['SITE', ...runs.map((r) => `RUN ${r.run} (v${r.version}${r.championVersion === null ? '' : ` vs v${r.championVersion}`})`)];
  const rows = sites.map((site) => [site, ...runs.map((r) => cell(r.sites.find((s) => s.site === site)))]);
  rows.push(['pooled', ...runs.map((r) => (r.pooled === null || r.pooled.auc === null ? '-' : `${f3(r.pooled.auc)}${r.pooled.aucInterval === null ? '' : ` [${f3(r.pooled.aucInterval[0])}, ${f3(r.pooled.aucInterval[1])}]`}`))]);
  const lines = [terminalTable([header, ...rows])];
  for (const r of runs) {
    if (r.error !== null) lines.push(`run ${r.run}: ${v(r.error)}`);
    if (r.withheldSites > 0) lines.push(`run ${r.run}: ${r.withheldSites} site(s) withheld (fewer than ${r.minCellCount ?? '?'} patients, cases or non-cases, or needed to protect such a site)`);
  }
  return lines;
}

/** The `series show` text: the series, its runs, the champion history and per-site AUC over runs. */
export function seriesDetailText(d: SeriesDetailView): string {
  const lines: string[] = [];
  lines.push(`series ${v(d.name)} (${d.state}), created by ${v(d.createdBy)} ${d.createdAt}, updated ${d.updatedAt}`);
  if (d.description !== '') lines.push(v(d.description));
  lines.push(`template sha256 ${d.templateSha256} (clinics approve it with: fedlhs-agent approve ${d.templateSha256})`);
  if (d.error !== null) lines.push(`ERROR: ${v(d.error)}`);
  lines.push(`schedule: ${d.schedule ?? '-'}; next run: ${nextRun(d)}`);
  lines.push(`start: ${d.start ?? '-'}; promotion: ${promotionText(d.promotion)}`);
  lines.push(`champion: ${d.championVersion === null ? 'none yet' : `v${d.championVersion}`}`);
  lines.push(`varies between runs: ${d.varying.join(', ') || '-'}`);
  lines.push('', 'runs:');
  lines.push(d.runs.length === 0 ? 'none yet' : terminalTable([['RUN', 'STUDY', 'STATE', 'SCHEDULED', 'STARTED', 'TRIGGER', 'COMPARED WITH', 'RELEASED', 'DECISION'], ...d.runs.map((r) => [
    String(r.run), r.studyId, r.studyState, r.scheduledAt, r.startedAt, r.trigger, r.championVersion === null ? '-' : `v${r.championVersion}`,
    r.releasedVersion === null ? '-' : `v${r.releasedVersion}`, r.decision === null ? '-' : `${r.decision.action} (${r.decision.decidedBy})`,
  ])]));
  lines.push('', 'champion history:');
  if (d.promotions.length === 0) lines.push('no decisions yet');
  for (const p of d.promotions) lines.push(...promotionLines(p));
  lines.push('', 'test AUC [95% CI] by site over runs, Δ: paired difference from the champion the run was compared with:');
  lines.push(...performanceLines(d.performance));
  return `${lines.join('\n')}\n`;
}
