// The study page: header, model-quality charts, round timeline, rejections and cohort statistics.

import { adminButton, stopStudy } from './actions.js';
import { dataTable, legend, lineChart, seriesStyle } from './charts.js';
import { badge, formatBytes, formatDateTime, formatDuration, formatNumber, h, table, toDate } from './dom.js';
import { currentRound, progress } from './views.js';

/**
 * @typedef {import('./api.js').StudyDetail} StudyDetail
 * @typedef {import('./api.js').Metric} Metric
 * @typedef {import('./charts.js').Series} Series
 */

/** A site is "lagging" when its AUC is this far below the global AUC of the same round. */
const LAG_THRESHOLD = 0.05;
/** A site is "degrading" when its latest AUC is this far below its own best. */
const DEGRADE_THRESHOLD = 0.03;

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/**
 * @param {import('./actions.js').ActionContext} ctx
 * @param {StudyDetail} study
 * @param {Map<string, string>} knownSites site names from /status, for nodes missing from study.sites
 */
export function studyView(ctx, study, knownSites) {
  /** @param {string} nodeId */
  const site = (nodeId) => study.sites?.[nodeId] ?? knownSites.get(nodeId) ?? nodeId;
  const strategy = study.manifest?.aggregation?.strategy ?? '—';
  return [h('article', { id: 'study', 'data-study-id': study.id, 'data-state': study.state },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ', study.name),
    h('div', { class: 'page-head' },
      h('h1', { tabindex: -1 }, study.name, ' ', badge(study.state)),
      study.state === 'RUNNING'
        ? h('div', { class: 'toolbar' }, adminButton(ctx, { id: 'stop-study', label: 'Stop study…', danger: true, onClick: () => void stopStudy(ctx, study) }))
        : null),
    h('dl', { class: 'meta' },
      item('Study ID', h('code', {}, study.id)),
      item('Strategy', h('code', {}, strategy)),
      item('Rounds committed', progress(study)),
      item('Current round', currentRound(study)),
      item('Created', formatDateTime(study.createdAt)),
      study.endedAt ? item('Ended', formatDateTime(study.endedAt)) : null,
      study.reason ? item('Reason', study.reason) : null,
      item('Manifest SHA-256', h('code', { class: 'hash' }, study.manifestSha256))),
    normalizationWarning(study),
    h('section', { 'aria-labelledby': 'quality-title' },
      h('h2', { id: 'quality-title' }, 'Model quality'),
      h('div', { class: 'charts' }, charts(study, site))),
    h('section', { 'aria-labelledby': 'timeline-caption' }, timeline(study, site)),
    h('div', { class: 'columns' },
      h('section', {}, rejections(study)),
      h('section', {}, statistics(study, site))),
    h('details', { class: 'manifest', 'data-key': 'manifest' },
      h('summary', {}, 'Manifest'),
      h('pre', {}, JSON.stringify(study.manifest, null, 2))),
    study.parameters === null || study.parameters === undefined ? null : h('details', { class: 'manifest', 'data-key': 'parameters' },
      h('summary', {}, 'Parameters'),
      h('pre', {}, JSON.stringify(study.parameters, null, 2))))];
}

/**
 * A warning line when some features are not scaled by federated statistics (withheld at every
 * clinic, so the manifest's fallback applied).
 * @param {StudyDetail} study
 */
function normalizationWarning(study) {
  const fallbacks = study.normalization?.fallbackFeatures ?? [];
  if (fallbacks.length === 0) return null;
  const what = fallbacks.map((f) => `${f.name} (${f.source === 'excluded' ? 'excluded: constant 0' : 'scaled by its declared range'})`).join(', ');
  return h('p', { class: 'warn', id: 'normalization-warning', role: 'status' },
    `⚠ Statistics withheld at every clinic (small cells); data.normalizationFallback "${study.normalization?.fallback}" applied to: ${what}.`);
}

/** @param {string} term @param {Node | string} value */
function item(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/**
 * Evaluation metrics per round (the last report wins if a round was retried).
 * @param {Metric[]} metrics @param {(m: Metric) => boolean} pick @param {(m: Metric) => number | undefined} value
 */
function perRound(metrics, pick, value) {
  /** @type {Map<number, number>} */
  const out = new Map();
  for (const m of metrics) {
    const v = value(m);
    if (pick(m) && typeof v === 'number' && Number.isFinite(v)) out.set(m.round, v);
  }
  return [...out].sort((a, b) => a[0] - b[0]).map(([x, y]) => ({ x, y }));
}

/** @param {{ x: number, y: number }[]} pts @param {string} what @param {number} digits */
const labelled = (pts, what, digits = 3) => pts.map((p) => ({ ...p, label: `Round ${p.x}: ${what} ${p.y.toFixed(digits)}` }));

/** @param {{ x: number, y: number }[]} pts */
const last = (pts) => pts[pts.length - 1];

/** @param {StudyDetail} study @param {(id: string) => string} site */
function charts(study, site) {
  const metrics = study.metrics ?? [];
  const globalEval = (/** @type {Metric} */ m) => m.nodeId === null && m.phase === 'evaluation';
  const globalTrain = (/** @type {Metric} */ m) => m.nodeId === null && m.phase === 'training';
  const xMax = study.totalRounds;

  const evalLoss = perRound(metrics, globalEval, (m) => m.loss);
  const trainLoss = perRound(metrics, globalTrain, (m) => m.loss);
  /** @type {Series[]} */
  const lossSeries = [{ name: 'Evaluation loss', ...seriesStyle(0), dash: '', points: labelled(evalLoss, 'evaluation loss', 4) }];
  if (trainLoss.length > 0) lossSeries.push({ name: 'Training loss', ...seriesStyle(1), dash: '6 3', marker: 'square', points: labelled(trainLoss, 'training loss', 4) });

  const auc = perRound(metrics, globalEval, (m) => m.auc);
  const acc = perRound(metrics, globalEval, (m) => m.accuracy);
  /** @type {Series[]} */
  const qualitySeries = [
    { name: 'AUC', ...seriesStyle(0), points: labelled(auc, 'AUC') },
    { name: 'Accuracy', ...seriesStyle(1), dash: '6 3', marker: 'square', points: labelled(acc, 'accuracy') },
  ];

  const siteIds = [...new Set(metrics.filter((m) => m.nodeId !== null && m.phase === 'evaluation').map((m) => /** @type {string} */ (m.nodeId)))]
    .sort((a, b) => site(a).localeCompare(site(b)) || a.localeCompare(b));
  const globalAuc = new Map(auc.map((p) => [p.x, p.y]));
  const lastRound = Math.max(0, ...metrics.map((m) => m.round));
  const siteSeries = siteIds.map((id, i) => {
    const pts = perRound(metrics, (m) => m.nodeId === id && m.phase === 'evaluation', (m) => m.auc);
    return { name: site(id), ...seriesStyle(i), points: labelled(pts, `${site(id)} AUC`), ...siteNote(pts, globalAuc, lastRound) };
  });
  const flagged = siteSeries.filter((se) => se.flagged);

  const lossChart = lineChart({
    key: 'global-loss', title: 'Global loss per round', yLabel: 'Loss', xMax, series: lossSeries, yRange: [0, Infinity],
    summary: evalLoss.length ? `Round ${last(evalLoss).x}: evaluation loss ${last(evalLoss).y.toFixed(4)}.` : '',
    empty: 'No evaluation results yet.',
  });
  const qualityChart = lineChart({
    key: 'global-auc', title: 'Global AUC and accuracy per round', yLabel: 'AUC / accuracy', xMax, series: qualitySeries, yRange: [0, 1],
    summary: [auc.length ? `Round ${last(auc).x}: AUC ${last(auc).y.toFixed(3)}.` : 'No AUC reported.', acc.length ? `Accuracy ${last(acc).y.toFixed(3)}.` : ''].join(' '),
    empty: 'No evaluation results yet.',
  });
  const siteChart = lineChart({
    key: 'site-auc', title: 'AUC per site per round', yLabel: 'AUC', xMax, series: siteSeries, yRange: [0, 1], width: 1100, height: 300,
    summary: `${siteSeries.length} sites. ${flagged.length ? `Needs attention: ${flagged.map((se) => `${se.name} (${se.note})`).join('; ')}.` : 'No site lags behind the global model.'}`,
    empty: 'No per-site evaluation results yet.',
  });
  // The per-site chart gets the richer legend: latest value and a flag per site.
  siteChart.querySelector('ul.legend')?.replaceWith(legend(siteSeries) ?? '');
  return [
    h('div', {}, lossChart, dataTable('global-loss', lossSeries, (v) => v.toFixed(4))),
    h('div', {}, qualityChart, dataTable('global-auc', qualitySeries, (v) => v.toFixed(3))),
    h('div', { class: 'wide' }, siteChart,
      h('p', { class: 'help' }, `Flagged: AUC more than ${LAG_THRESHOLD} below the global model's (lagging), or more than ${DEGRADE_THRESHOLD} below the site's own best (degrading).`),
      withheldNote(study, site),
      dataTable('site-auc', siteSeries, (v) => v.toFixed(3))),
  ];
}

/**
 * Sites whose per-site results are suppressed (too few hold-out records, or needed to keep such
 * a site from being recovered from the global value); they count only in the global metrics.
 * @param {StudyDetail} study @param {(id: string) => string} site
 */
function withheldNote(study, site) {
  /** @type {Map<string, number[]>} */
  const bySite = new Map();
  for (const w of study.metricsWithheld ?? []) bySite.set(w.nodeId, [...(bySite.get(w.nodeId) ?? []), w.round]);
  if (bySite.size === 0) return null;
  const list = [...bySite].map(([id, rounds]) => `${site(id)} (round${rounds.length > 1 ? 's' : ''} ${rounds.join(', ')})`).join('; ');
  return h('p', { class: 'help', id: 'metrics-withheld' }, `Suppressed (small cells; counted only in the global metrics): ${list}.`);
}

/**
 * The legend note for one site's AUC series, and whether it needs attention.
 * @param {{ x: number, y: number }[]} pts @param {Map<number, number>} globalAuc @param {number} lastRound
 */
function siteNote(pts, globalAuc, lastRound) {
  if (pts.length === 0) return { note: 'no AUC reported', flagged: false };
  const latest = last(pts);
  const notes = [`AUC ${latest.y.toFixed(3)} in round ${latest.x}`];
  let flagged = false;
  const g = globalAuc.get(latest.x);
  if (g !== undefined && g - latest.y > LAG_THRESHOLD) {
    notes.push(`lagging: ${(latest.y - g).toFixed(3)} vs global`);
    flagged = true;
  }
  const best = pts.reduce((a, b) => (b.y > a.y ? b : a));
  if (best.y - latest.y > DEGRADE_THRESHOLD) {
    notes.push(`degrading: best was ${best.y.toFixed(3)} in round ${best.x}`);
    flagged = true;
  }
  if (latest.x < lastRound - 1) notes.push(`no report since round ${latest.x}`);
  return { note: `${flagged ? '⚠ ' : ''}${notes.join('; ')}`, flagged };
}

/** @param {StudyDetail} study @param {(id: string) => string} site */
function timeline(study, site) {
  const rows = [...(study.timeline ?? [])]
    .sort((a, b) => b.round - a.round || b.attempt - a.attempt)
    .map((r) => h('tr', { 'data-round': r.round, 'data-attempt': r.attempt, 'data-state': r.state },
      h('th', { scope: 'row', class: 'num' }, r.round),
      h('td', { class: 'num' }, r.attempt),
      h('td', {}, badge(r.state), r.reason ? h('div', { class: 'muted small' }, r.reason) : null),
      h('td', {}, startTime(r.startedAt)),
      h('td', { class: 'num' }, r.endedAt === null ? h('span', { class: 'muted' }, 'in progress') : formatDuration(r.durationMs)),
      h('td', { class: 'num' }, r.participants),
      h('td', { class: 'num' }, r.accepted),
      h('td', {}, r.stragglers.length === 0 ? h('span', { class: 'muted' }, 'none') : r.stragglers.map(site).join(', ')),
      h('td', {}, r.rejected.length === 0 ? h('span', { class: 'muted' }, 'none') : h('ul', { class: 'plain' }, r.rejected.map((x) => h('li', {},
        h('strong', {}, site(x.nodeId)), ' ', h('code', {}, x.reasonCode), x.reason ? ` — ${x.reason}` : '')))),
      h('td', { class: 'num' }, formatBytes(r.bytesIn)),
      h('td', { class: 'num' }, formatBytes(r.bytesOut))));
  const t = table({
    id: 'timeline', caption: 'Round timeline (newest first)', rows, empty: 'No round has started yet.',
    columns: ['Round', 'Attempt', 'State', 'Started', 'Duration', 'Participants', 'Accepted', 'Stragglers', 'Rejected', 'Data in', 'Data out'],
  });
  t.querySelector('caption')?.setAttribute('id', 'timeline-caption');
  return t;
}

/** @param {string | null} when */
function startTime(when) {
  const d = toDate(when);
  return d ? h('time', { datetime: d.toISOString(), title: formatDateTime(d.getTime()) }, timeFormat.format(d)) : '—';
}

/** @param {StudyDetail} study */
function rejections(study) {
  const rows = Object.entries(study.rejectionsByReason ?? {}).sort((a, b) => b[1] - a[1])
    .map(([reason, count]) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, reason)), h('td', { class: 'num' }, count)));
  return table({ caption: 'Rejected contributions by reason', columns: ['Reason', 'Rejected'], rows, empty: 'No update or statistics report has been rejected.' });
}

/** @param {StudyDetail} study @param {(id: string) => string} site */
function statistics(study, site) {
  const rows = [...(study.statistics ?? [])].sort((a, b) => site(a.nodeId).localeCompare(site(b.nodeId)))
    .map((st) => h('tr', {},
      h('th', { scope: 'row' }, site(st.nodeId)),
      h('td', { class: 'num' }, st.rows === null || st.rows === 0
        ? h('span', { class: 'muted', title: 'Hidden: the count is below the minimum cell size' }, 'suppressed')
        : st.rows.toLocaleString()),
      h('td', { class: 'num' }, st.prevalence === null
        ? h('span', { class: 'muted', title: 'Hidden: the count is below the minimum cell size' }, 'suppressed')
        : `${formatNumber(st.prevalence * 100, 1)} %`)));
  return table({ caption: 'Cohort statistics per site', columns: ['Site', 'Rows', 'Label prevalence'], rows, empty: 'No statistics reported yet.' });
}
