// The Series screens (issue 13, continuous learning). The list: each series with its schedule,
// promotion rule, runs, champion and next run. A series' page: its runs (study, state, when,
// trigger, the champion it was compared with, the release it made and the decision on it), the
// champion history with every decision's reasons, and each clinic's test AUC over runs with its
// paired difference from the champion (a table, and a chart of the AUCs). Clinics whose figures
// are withheld (small cells) are counted, never shown. Admins get Promote / Rollback / Pause /
// Resume / Run now, each behind the shared confirmation dialog; viewers see no controls.

import { adminButton, isAdmin } from './actions.js';
import { api } from './api.js';
import { lineChart, seriesStyle } from './charts.js';
import { confirmAction } from './dialogs.js';
import { badge, formatDateTime, formatNumber, h, table, timeAgo } from './dom.js';
import { releaseHref } from './releases.js';
import { pageHeading, studyHref } from './views.js';

/**
 * @typedef {import('./api.js').SeriesSummary} SeriesSummary
 * @typedef {import('./api.js').SeriesDetail} SeriesDetail
 * @typedef {import('./api.js').SeriesPromotion} SeriesPromotion
 * @typedef {import('./api.js').SeriesSitePoint} SeriesSitePoint
 * @typedef {import('./actions.js').ActionContext} ActionContext
 */

/** @param {string} name */
export const seriesHref = (name) => `#/series/${encodeURIComponent(name)}`;

/** @param {SeriesSummary['promotion']} p */
function promotionText(p) {
  if (!p) return '—';
  if (p.rule === 'operator') return 'By an operator (the evidence is recorded)';
  const sign = (/** @type {number} */ x) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
  return `Automatic: pooled AUC gain ≥ ${sign(p.minDelta)} with its 95 % interval above 0, at least ${p.minSites} clinic(s), none worse by more than ${p.maxSiteLoss.toFixed(3)}`;
}

/** The next run, or why none is due. @param {SeriesSummary} s */
function nextRun(s) {
  if (s.nextRunAt) return Date.parse(s.nextRunAt) <= Date.now() ? [formatDateTime(s.nextRunAt), h('div', { class: 'muted small' }, 'due: starts at once')] : [formatDateTime(s.nextRunAt), h('div', { class: 'muted small' }, timeAgo(s.nextRunAt))];
  return h('span', { class: 'muted' }, s.nextRunNote ?? '—');
}

/** @param {string} name @param {number | null} version */
const versionLink = (name, version) => (version === null ? h('span', { class: 'muted' }, '—') : h('a', { href: releaseHref(name, version) }, `v${version}`));

/** @param {ActionContext} ctx @param {{ series: SeriesSummary[] }} data */
export function seriesListView(ctx, data) {
  const rows = data.series.map((s) => h('tr', { 'data-series': s.name },
    h('th', { scope: 'row' }, h('a', { href: seriesHref(s.name), 'data-key': `series-link-${s.name}` }, s.name), s.description ? h('div', { class: 'muted small' }, s.description) : null),
    h('td', {}, badge(s.state)),
    h('td', {}, s.schedule ? h('code', {}, s.schedule) : '—'),
    h('td', {}, s.start ?? '—'),
    h('td', {}, s.promotion?.rule ?? '—'),
    h('td', { class: 'num' }, String(s.runCount)),
    h('td', {}, s.currentRun ? [h('a', { href: studyHref(s.currentRun.studyId) }, `Run ${s.currentRun.run}`), ' ', badge(s.currentRun.studyState)] : h('span', { class: 'muted' }, '—')),
    h('td', {}, versionLink(s.name, s.championVersion)),
    h('td', {}, nextRun(s)),
    h('td', {}, s.error ? h('p', { class: 'fail-reason small', role: 'note' }, s.error) : null)));
  return [
    pageHeading('Series'),
    h('p', { class: 'muted' },
      'A series is a study template run on a schedule. Each run is an ordinary study named after the series; its release (the challenger) is compared with the series’ champion ',
      'on the same test patients at every clinic, and promoted by the template’s rule or by an operator. Figures of clinics with few patients, cases or non-cases are withheld.'),
    table({ id: 'series-list', caption: 'Study series', columns: ['Series', 'State', 'Schedule', 'Start', 'Promotion', 'Runs', 'In progress', 'Champion', 'Next run', 'Problems'], rows, empty: 'No series yet: create one with fedlhs-coordinator series create <template.json>.' }),
  ];
}

/** @param {string} term @param {import('./dom.js').Child | import('./dom.js').Child[]} value */
function item(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/** A decision in words. @param {Pick<SeriesPromotion, 'action' | 'fromVersion' | 'toVersion'>} p */
function decisionText(p) {
  if (p.action === 'keep') return `Kept v${p.fromVersion ?? '—'}; v${p.toVersion} not promoted`;
  if (p.action === 'rollback') return `Rolled back to v${p.toVersion}${p.fromVersion === null ? '' : ` (from v${p.fromVersion})`}`;
  return `Promoted v${p.toVersion}${p.fromVersion === null ? '' : ` (was v${p.fromVersion})`}`;
}

/** @param {string} by */
const byText = (by) => (by === 'rule' ? 'by the rule' : `by ${by.replace(/^operator:/, '')}`);

/** @param {ActionContext} ctx @param {SeriesDetail} d */
function runsTable(ctx, d) {
  const admin = isAdmin(ctx);
  const rows = [...d.runs].reverse().map((r) => h('tr', { 'data-run': r.run },
    h('th', { scope: 'row' }, `Run ${r.run}`),
    h('td', {}, h('a', { href: studyHref(r.studyId) }, r.studyId), ' ', badge(r.studyState)),
    h('td', {}, formatDateTime(r.scheduledAt), h('div', { class: 'muted small' }, 'started ', timeAgo(r.startedAt))),
    h('td', {}, r.trigger.startsWith('operator:') ? `run now by ${r.trigger.slice('operator:'.length)}` : r.trigger),
    h('td', {}, versionLink(d.name, r.championVersion)),
    h('td', {}, versionLink(d.name, r.releasedVersion)),
    h('td', {}, r.decision ? [decisionText(r.decision), h('div', { class: 'muted small' }, byText(r.decision.decidedBy))] : h('span', { class: 'muted' }, r.releasedVersion === null ? '—' : 'no decision recorded')),
    admin ? h('td', {}, r.releasedVersion !== null && r.releasedVersion !== d.championVersion ? promoteButton(ctx, d, r.releasedVersion) : null) : null));
  return table({ id: 'series-runs', caption: 'Runs, newest first', columns: ['Run', 'Study', 'Scheduled', 'Trigger', 'Compared with', 'Released', 'Decision', ...(admin ? ['Actions'] : [])], rows, empty: 'No runs yet.' });
}

/** The champion history, oldest first, each decision with its reasons. @param {SeriesDetail} d */
function history(d) {
  if (d.promotions.length === 0) return h('p', { class: 'muted' }, 'No decisions yet: the first release of the series becomes its champion.');
  return h('ol', { class: 'plain decisions', id: 'series-history' }, d.promotions.map((p) => h('li', { 'data-decision': p.id, 'data-action': p.action },
    h('strong', {}, decisionText(p)), ' ', h('span', { class: 'muted small' }, byText(p.decidedBy), p.run === null ? '' : ` · run ${p.run}`, ' · ', formatDateTime(p.at)),
    p.error ? h('p', { class: 'fail-reason small', role: 'note' }, p.error) : null,
    p.evidence ? h('ul', { class: 'reasons small' }, p.evidence.reasons.map((reason) => h('li', {}, reason))) : null)));
}

/** @param {number} x */
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;

/** A clinic's cell: AUC [CI], and the paired difference from the champion [CI]. @param {SeriesSitePoint | undefined} p */
function siteCell(p) {
  if (!p) return h('td', { class: 'num missing' }, '—');
  return h('td', { class: 'num' },
    p.auc === null ? '—' : `${formatNumber(p.auc)}${p.aucInterval ? ` [${formatNumber(p.aucInterval[0])}, ${formatNumber(p.aucInterval[1])}]` : ''}`,
    p.difference === null ? null : h('div', { class: 'small' }, `Δ ${signed(p.difference)}${p.differenceInterval ? ` [${signed(p.differenceInterval[0])}, ${signed(p.differenceInterval[1])}]` : ''}`));
}

/** Per-clinic test AUC over runs: a chart of the AUCs and the table with intervals and differences. @param {SeriesDetail} d */
function performance(d) {
  const runs = d.performance;
  if (runs.length === 0) return [h('p', { class: 'muted' }, 'No run has made a release yet.')];
  const sites = [...new Set(runs.flatMap((r) => r.sites.map((s) => s.site)))].sort();
  const rows = sites.map((site) => h('tr', { 'data-site': site }, h('th', { scope: 'row' }, site), runs.map((r) => siteCell(r.sites.find((s) => s.site === site)))));
  rows.push(h('tr', { 'data-site': 'pooled' }, h('th', { scope: 'row' }, 'All clinics (pooled)'), runs.map((r) => h('td', { class: 'num' },
    r.pooled?.auc == null ? '—' : `${formatNumber(r.pooled.auc)}${r.pooled.aucInterval ? ` [${formatNumber(r.pooled.aucInterval[0])}, ${formatNumber(r.pooled.aucInterval[1])}]` : ''}`))));
  const chart = lineChart({
    key: `series-auc-${d.name}`, title: `Test AUC by clinic over runs of ${d.name}`, yLabel: 'Test AUC', xMax: Math.max(...runs.map((r) => r.run)), yRange: [0, 1],
    series: sites.map((site, i) => ({ name: site, ...seriesStyle(i), points: runs.flatMap((r) => {
      const p = r.sites.find((s) => s.site === site);
      return p && p.auc !== null ? [{ x: r.run, y: p.auc, label: `Run ${r.run} (v${r.version}): AUC ${formatNumber(p.auc)}` }] : [];
    }) })),
    summary: `${sites.length} clinic(s) over ${runs.length} released run(s)`, empty: 'No clinic figures to show.',
  });
  // The chart's x axis counts runs here, not rounds.
  const xLabel = chart.querySelector('text.axis-label');
  if (xLabel) xLabel.textContent = 'Run';
  const notes = runs.flatMap((r) => [
    r.error ? h('p', { class: 'fail-reason small', role: 'note' }, `Run ${r.run}: ${r.error}`) : null,
    r.withheldSites > 0 ? h('p', { class: 'muted small' }, `Run ${r.run}: ${r.withheldSites} clinic(s) withheld (fewer than ${r.minCellCount ?? '?'} patients, cases or non-cases, or needed to protect such a clinic).`) : null,
  ]);
  return [
    h('div', { class: 'series-chart' }, chart),
    table({
      id: 'series-performance', caption: 'Test AUC [95 % CI] by clinic and run; Δ: paired difference from the champion the run was compared with [95 % CI]', rows, empty: 'No clinic figures.',
      columns: ['Clinic', ...runs.map((r) => `Run ${r.run} · v${r.version}${r.championVersion === null ? '' : ` vs v${r.championVersion}`}`)],
    }),
    ...notes,
  ];
}

/** @param {ActionContext} ctx @param {SeriesDetail} d @param {number} version */
function promoteButton(ctx, d, version) {
  return adminButton(ctx, {
    label: `Promote v${version}…`, key: `promote-${d.name}-${version}`, accessibleLabel: `Make ${d.name} version ${version} the champion`,
    onClick: () => void seriesAction(ctx, {
      title: `Promote ${d.name} v${version}`, confirmLabel: 'Promote', done: `${d.name} v${version} is now the champion.`,
      message: `Make v${version} the champion of ${d.name}${d.championVersion === null ? '' : ` in place of v${d.championVersion}`}? Clinics following ${d.name}@champion will deploy it. The decision is recorded with its run's evidence under your name.`,
      action: () => api.promoteSeries(d.name, version),
    }),
  });
}

/**
 * Confirm, call, announce, refresh.
 * @param {ActionContext} ctx @param {{ title: string, message: string, confirmLabel: string, done: string, danger?: boolean, action: () => Promise<unknown> }} o
 */
async function seriesAction(ctx, o) {
  const result = await confirmAction({ title: o.title, message: () => o.message, confirmLabel: o.confirmLabel, danger: o.danger, action: () => o.action().then(() => true) });
  if (result) {
    ctx.notify(o.done);
    ctx.refresh();
  }
}

/** @param {ActionContext} ctx @param {SeriesDetail} d */
function toolbar(ctx, d) {
  if (!isAdmin(ctx)) return null;
  const earlier = d.promotions.some((p) => p.action !== 'keep' && p.toVersion !== d.championVersion);
  return h('div', { class: 'toolbar' },
    adminButton(ctx, {
      id: 'series-rollback', label: 'Roll back…', danger: true, disabled: d.championVersion === null || !earlier,
      onClick: () => void seriesAction(ctx, {
        title: `Roll back ${d.name}`, confirmLabel: 'Roll back', danger: true, done: `The champion of ${d.name} was rolled back.`,
        message: `Point ${d.name}@champion back at the champion before v${d.championVersion}? Clinics following it will deploy that release again. Recorded under your name.`,
        action: () => api.rollbackSeries(d.name),
      }),
    }),
    adminButton(ctx, {
      id: 'series-run-now', label: 'Run now…', disabled: d.currentRun !== null,
      onClick: () => void seriesAction(ctx, {
        title: `Run ${d.name} now`, confirmLabel: 'Start run', done: `A run of ${d.name} was started.`,
        message: `Start run ${d.runCount + 1} of ${d.name} now instead of waiting for its schedule? Clinics that approved the template take part.`,
        action: () => api.runSeriesNow(d.name),
      }),
    }),
    d.state === 'active'
      ? adminButton(ctx, {
        id: 'series-pause', label: 'Pause…',
        onClick: () => void seriesAction(ctx, { title: `Pause ${d.name}`, confirmLabel: 'Pause', done: `${d.name} is paused.`, message: `Stop starting runs of ${d.name}? A run in progress goes on.`, action: () => api.setSeriesState(d.name, 'pause') }),
      })
      : adminButton(ctx, {
        id: 'series-resume', label: 'Resume…',
        onClick: () => void seriesAction(ctx, { title: `Resume ${d.name}`, confirmLabel: 'Resume', done: `${d.name} is active again.`, message: `Start runs of ${d.name} on its schedule again?`, action: () => api.setSeriesState(d.name, 'resume') }),
      }));
}

/** One series. @param {ActionContext} ctx @param {SeriesDetail} d */
export function seriesView(ctx, d) {
  return [h('article', { id: 'series', 'data-series': d.name },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/series' }, 'Series'), ' › ', d.name),
    h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, d.name, ' ', badge(d.state)), toolbar(ctx, d)),
    d.error ? h('p', { class: 'error', role: 'alert' }, d.error) : null,
    d.description ? h('p', {}, d.description) : null,
    h('dl', { class: 'meta' },
      item('Champion', versionLink(d.name, d.championVersion)),
      item('Schedule', d.schedule ? h('code', {}, d.schedule) : '—'),
      item('Next run', nextRun(d)),
      item('Training starts from', d.start === 'champion' ? 'the champion' : d.start === 'scratch' ? 'the template’s initial weights' : '—'),
      item('Created', [formatDateTime(d.createdAt), ` by ${d.createdBy}`]),
      item('Promotion', promotionText(d.promotion)),
      item('Template SHA-256 (what clinics approve)', h('code', { class: 'hash' }, d.templateSha256)),
      item('Varies between runs', d.varying.length === 0 ? '—' : d.varying.flatMap((f, i) => [i > 0 ? ', ' : '', h('code', {}, f)]))),
    h('section', { 'aria-labelledby': 'series-runs-title' }, h('h2', { id: 'series-runs-title' }, 'Runs'), runsTable(ctx, d)),
    h('section', { 'aria-labelledby': 'series-history-title' }, h('h2', { id: 'series-history-title' }, 'Champion history'), history(d)),
    h('section', { 'aria-labelledby': 'series-perf-title' }, h('h2', { id: 'series-perf-title' }, 'Test AUC by clinic over runs'), performance(d)),
    h('details', { class: 'manifest', 'data-key': `series-template-${d.name}` }, h('summary', {}, 'Template'), h('pre', {}, JSON.stringify(d.template, null, 2))))];
}
