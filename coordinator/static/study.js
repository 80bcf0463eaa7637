// The study page: header, readiness of each clinic, model-quality charts, round timeline (with
// task failures and why rounds failed), rejections and cohort statistics.

import { adminButton, stopStudy } from './actions.js';
import { badge, formatBytes, formatDateTime, formatDuration, formatNumber, h, table, timeAgo, toDate } from './dom.js';
import { failureItem, readinessLabel, readinessName, taskFailures } from './readiness.js';
import { studyCharts } from './study-charts.js';
import { currentRound, nodeHref, progress, readinessSummary } from './views.js';

/**
 * @typedef {import('./api.js').StudyDetail} StudyDetail
 * @typedef {import('./api.js').ClinicNode} ClinicNode
 * @typedef {import('./api.js').ReadinessEntry} ReadinessEntry
 */

const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/**
 * @param {import('./actions.js').ActionContext} ctx
 * @param {StudyDetail} study
 * @param {ClinicNode[]} nodes from /status: site names for nodes missing from study.sites, and readiness
 */
export function studyView(ctx, study, nodes) {
  const known = new Map(nodes.map((n) => [n.id, n.siteName]));
  /** @param {string} nodeId */
  const site = (nodeId) => study.sites?.[nodeId] ?? known.get(nodeId) ?? nodeId;
  const strategy = study.manifest?.aggregation?.strategy ?? '—';
  const stop = study.state === 'RUNNING' ? adminButton(ctx, { id: 'stop-study', label: 'Stop study…', danger: true, onClick: () => void stopStudy(ctx, study) }) : null;
  const deadline = toDate(study.readiness?.deadline ?? null);
  return [h('article', { id: 'study', 'data-study-id': study.id, 'data-state': study.state },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ', study.name),
    h('div', { class: 'page-head' },
      h('h1', { tabindex: -1 }, study.name, ' ', badge(study.state)),
      stop ? h('div', { class: 'toolbar' }, stop) : null),
    h('dl', { class: 'meta' },
      item('Study ID', h('code', {}, study.id)),
      item('Strategy', h('code', {}, strategy)),
      item('Rounds committed', progress(study)),
      item('Current round', currentRound(study)),
      study.readiness ? item('Ready clinics', readinessSummary(study, false) ?? '—') : null,
      item('Created', formatDateTime(study.createdAt)),
      study.endedAt ? item('Ended', formatDateTime(study.endedAt)) : null,
      deadline ? item('Readiness deadline', h('span', { id: 'readiness-deadline' }, 'the study fails ', timeAgo(deadline.toISOString()), ' unless enough clinics are ready ',
        h('span', { class: 'muted small' }, `(${formatDateTime(deadline.getTime())})`))) : null,
      study.reason ? item(study.state === 'FAILED' ? 'Why it failed' : 'Reason', h('span', { class: study.state === 'FAILED' ? 'fail-reason' : null }, study.reason)) : null,
      item('Manifest SHA-256', h('code', { class: 'hash' }, study.manifestSha256))),
    normalizationWarning(study),
    readinessSection(study, nodes, site),
    h('section', { 'aria-labelledby': 'quality-title' },
      h('h2', { id: 'quality-title' }, 'Model quality'),
      h('div', { class: 'charts' }, studyCharts(study, site))),
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
 * A warning when some features are not scaled by federated statistics: every clinic withheld
 * them (small cells), so the manifest's data.normalizationFallback applied instead.
 * @param {StudyDetail} study
 */
function normalizationWarning(study) {
  const n = study.normalization;
  const fallbacks = n?.fallbackFeatures ?? [];
  if (!n || fallbacks.length === 0) return null;
  const total = n.features?.length ?? null;
  return h('div', { class: 'warn-box', id: 'normalization-warning', role: 'status' },
    h('p', {}, h('strong', {}, '⚠ Normalisation fallback: '),
      `${fallbacks.length}${total === null ? '' : ` of ${total}`} feature${(total ?? fallbacks.length) === 1 ? '' : 's'} ${fallbacks.length === 1 ? 'is' : 'are'} not scaled with federated statistics, `,
      'because every clinic withheld them (small cells). ',
      `The manifest's data.normalizationFallback is "${n.fallback}", so:`),
    h('ul', {}, fallbacks.map((f) => h('li', { 'data-feature': f.name },
      h('code', {}, f.name), ' — ',
      f.source === 'excluded' ? 'excluded: fed to the model as a constant 0, so it does not inform predictions' : 'scaled by its declared range instead of the pooled mean and standard deviation',
      typeof f.withheldAt === 'number' ? h('span', { class: 'muted' }, ` (withheld at ${f.withheldAt} clinic${f.withheldAt === 1 ? '' : 's'})`) : null))));
}

/** @param {string} term @param {Node | string} value */
function item(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/**
 * This study's readiness at each clinic, with the reason: the study's readiness view (while it
 * runs), or for an older coordinator what /status says per node.
 * @param {StudyDetail} study @param {ClinicNode[]} nodes @param {(id: string) => string} site
 */
function readinessSection(study, nodes, site) {
  /** @type {{ nodeId: string, online: boolean | null, readiness: string | null, detail: string }[]} */
  let entries;
  if (study.readiness === null) return null; // the study is not running
  if (study.readiness === undefined) {
    if (study.state !== 'RUNNING') return null;
    entries = nodes.filter((n) => !n.revoked).map((n) => ({
      nodeId: n.id, online: n.online, readiness: n.readiness?.[study.id]?.readiness ?? (n.online ? 'NOT_REPORTED' : 'OFFLINE'), detail: n.readiness?.[study.id]?.detail ?? '',
    }));
  } else {
    entries = (study.readiness.sites ?? []).map((x) => ({ nodeId: x.nodeId, online: x.online ?? null, readiness: x.readiness, detail: x.detail ?? '' }));
  }
  const rows = [...entries].sort((a, b) => site(a.nodeId).localeCompare(site(b.nodeId)) || a.nodeId.localeCompare(b.nodeId))
    .map((e) => h('tr', { 'data-node-id': e.nodeId, 'data-readiness': readinessName(e.readiness) },
      h('th', { scope: 'row' }, h('a', { href: nodeHref(e.nodeId) }, site(e.nodeId))),
      h('td', {}, e.online === null ? '—' : e.online ? 'online' : h('span', { class: 'muted' }, 'offline')),
      h('td', {}, readinessLabel(e))));
  const t = table({ id: 'study-readiness', caption: 'Readiness per clinic', columns: ['Site', 'Connection', 'Readiness and reason'], rows, empty: 'No clinic is enrolled.' });
  t.querySelector('caption')?.setAttribute('id', 'readiness-caption');
  return h('section', { 'aria-labelledby': 'readiness-caption' }, t,
    entries.some((e) => readinessName(e.readiness) === 'NOT_APPROVED')
      ? h('p', { class: 'help' }, '“Awaiting approval” is a normal state, not an error: that clinic’s operator has not yet reviewed and approved this manifest (fedlhs-agent review, then approve).')
      : null);
}

/** @param {StudyDetail} study @param {(id: string) => string} site */
function timeline(study, site) {
  const rows = [...(study.timeline ?? [])]
    .sort((a, b) => b.round - a.round || b.attempt - a.attempt)
    .map((r) => {
      // A rejected task whose upload is listed under "Rejected" is not repeated here.
      const rejectedSites = new Set(r.rejected.map((x) => x.nodeId));
      const failures = taskFailures(r).filter((f) => !(f.state === 'REJECTED' && f.nodeId !== null && rejectedSites.has(f.nodeId)));
      const failed = r.state === 'FAILED';
      return h('tr', { 'data-round': r.round, 'data-attempt': r.attempt, 'data-state': r.state },
        h('th', { scope: 'row', class: 'num' }, r.round),
        h('td', { class: 'num' }, r.attempt),
        h('td', {}, badge(r.state), r.reason ? h('div', { class: failed ? 'fail-reason small' : 'muted small' }, failed ? `Failed: ${r.reason}` : r.reason) : null),
        h('td', {}, startTime(r.startedAt)),
        h('td', { class: 'num' }, r.endedAt === null ? h('span', { class: 'muted' }, 'in progress') : formatDuration(r.durationMs)),
        h('td', { class: 'num' }, r.participants),
        h('td', { class: 'num' }, r.accepted),
        h('td', {}, r.stragglers.length === 0 ? h('span', { class: 'muted' }, 'none') : r.stragglers.map(site).join(', ')),
        h('td', { class: 'task-failures' }, failures.length === 0 ? h('span', { class: 'muted' }, 'none')
          : h('ul', { class: 'plain' }, failures.map((f) => failureItem(f, f.nodeId === null ? f.siteName : site(f.nodeId))))),
        h('td', {}, r.rejected.length === 0 ? h('span', { class: 'muted' }, 'none') : h('ul', { class: 'plain' }, r.rejected.map((x) => h('li', {},
          h('strong', {}, site(x.nodeId)), ' ', h('code', {}, x.reasonCode), x.reason ? ` — ${x.reason}` : '')))),
        h('td', { class: 'num' }, formatBytes(r.bytesIn)),
        h('td', { class: 'num' }, formatBytes(r.bytesOut)));
    });
  const t = table({
    id: 'timeline', caption: 'Round timeline (newest first)', rows, empty: 'No round has started yet.',
    columns: ['Round', 'Attempt', 'State', 'Started', 'Duration', 'Participants', 'Accepted', 'Stragglers', 'Failed or declined tasks', 'Rejected', 'Data in', 'Data out'],
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
