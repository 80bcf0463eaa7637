// The Releases screen: per study name its released versions with the round each came from, the
// selection rule, the pooled validation and test AUC with their intervals, its aliases, and
// its live AUC at each clinic with the drift verdict. The verdict is words first ("Drift",
// "OK", "Too few patients") and its reason is shown beside it: the colour only repeats it.
// Admins can point an alias at a version or remove one (actions.js); viewers see no controls.
// A release's own page sets each clinic's published validation and test figures beside its
// live ones, and lists the signed files (downloads) and the model card.

import { adminButton, isAdmin, removeReleaseAlias, setReleaseAlias } from './actions.js';
import { formatDateTime, formatNumber, h, table, timeAgo } from './dom.js';
import { pageHeading, studyHref } from './views.js';

/**
 * @typedef {import('./api.js').ReleaseList} ReleaseList
 * @typedef {import('./api.js').ReleaseSummary} ReleaseSummary
 * @typedef {import('./api.js').ReleaseAlias} ReleaseAlias
 * @typedef {import('./api.js').DriftVerdict} DriftVerdict
 * @typedef {import('./api.js').ReleaseDetail} ReleaseDetail
 * @typedef {import('./api.js').PublishedPerformance} PublishedPerformance
 * @typedef {import('./actions.js').ActionContext} ActionContext
 */

const DRIFT_LABEL = { ok: 'OK', drift: 'Drift', insufficient: 'Too few patients' };

/** @param {string} name @param {number} version */
export const releaseHref = (name, version) => `#/releases/${encodeURIComponent(name)}/${version}`;

/** "0.801 [0.760, 0.842]", or a dash. @param {{ auc: number | null, aucInterval: [number, number] | null } | null} f */
export function aucText(f) {
  if (!f || f.auc === null) return '—';
  return f.aucInterval ? `${formatNumber(f.auc)} [${formatNumber(f.aucInterval[0])}, ${formatNumber(f.aucInterval[1])}]` : formatNumber(f.auc);
}

/** The drift verdict as a labelled flag. @param {DriftVerdict['status']} status */
export function driftFlag(status) {
  return h('span', { class: `badge drift-${status}`, 'data-drift': status }, DRIFT_LABEL[status] ?? status);
}

/** One line per site: its live AUC, the verdict and why. @param {ReleaseSummary} r */
function liveCell(r) {
  if (r.live === null) return h('span', { class: 'muted' }, r.error ? 'Unavailable (see above)' : '—');
  if (r.live.sites.length === 0) return h('span', { class: 'muted' }, 'No clinic has reported yet');
  const line = (/** @type {string} */ name, /** @type {DriftVerdict} */ d, /** @type {string | null} */ at, /** @type {string} */ key) => h('li', { 'data-site': key, 'data-drift': d.status },
    h('span', { class: 'site' }, name), ' ', driftFlag(d.status), ' ',
    h('span', { class: 'num' }, d.live.auc === null ? (d.withheld ? 'figures withheld' : '') : `AUC ${aucText(d.live)}`),
    at ? h('span', { class: 'muted small' }, ' · ', timeAgo(at)) : null,
    h('div', { class: 'muted small reason' }, d.reason));
  return h('ul', { class: 'plain live-list' },
    r.live.sites.map((s) => line(s.siteName, s, s.measuredAt, s.nodeId)),
    r.live.pooled ? line(`All ${r.live.pooled.sites} reporting clinics`, r.live.pooled, null, 'pooled') : null);
}

/**
 * The aliases of a version, each with a remove button for admins.
 * @param {ActionContext} ctx @param {ReleaseSummary} r
 */
function aliasCell(ctx, r) {
  if (r.aliases.length === 0) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'plain alias-list' }, r.aliases.map((alias) => h('li', { 'data-alias': alias },
    h('code', {}, alias), ' ',
    adminButton(ctx, {
      label: 'Remove', key: `unalias-${r.studyName}-${alias}`, danger: true, accessibleLabel: `Remove alias ${alias} of ${r.studyName}`,
      onClick: () => void removeReleaseAlias(ctx, { studyName: r.studyName, alias, version: r.version }),
    }))));
}

/**
 * The table of one study name's versions.
 * @param {ActionContext} ctx @param {string} name @param {ReleaseSummary[]} versions @param {ReleaseAlias[]} aliases
 */
function studyReleases(ctx, name, versions, aliases) {
  const admin = isAdmin(ctx);
  const rows = versions.map((r) => h('tr', { 'data-release': `${r.studyName}@${r.version}` },
    h('th', { scope: 'row' }, h('a', { href: releaseHref(r.studyName, r.version), 'data-key': `release-link-${r.studyName}-${r.version}` }, `v${r.version}`), h('div', { class: 'id' }, r.parentVersion === null ? 'first release' : `after v${r.parentVersion}`), h('div', { class: 'muted small' }, timeAgo(r.createdAt))),
    h('td', {}, h('a', { href: studyHref(r.studyId) }, `Round ${r.round}`), h('div', { class: 'id' }, r.studyId)),
    h('td', {}, r.selection ? [h('code', {}, r.selection.rule), h('div', { class: 'muted small' }, r.selection.reason),
      r.selection.warnings.map((w) => h('div', { class: 'warn small' }, w))] : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'num' }, aucText(r.validation)),
    h('td', { class: 'num' }, aucText(r.test)),
    h('td', {}, aliasCell(ctx, r)),
    h('td', {}, r.error ? h('p', { class: 'fail-reason small', role: 'note' }, r.error) : null, liveCell(r)),
    admin ? h('td', {}, adminButton(ctx, {
      label: 'Set alias…', key: `alias-${r.studyName}-${r.version}`, accessibleLabel: `Set an alias for ${r.studyName} version ${r.version}`,
      onClick: () => void setReleaseAlias(ctx, r, aliases.filter((a) => a.studyName === r.studyName)),
    })) : null));
  const columns = ['Version', 'From', 'Selection', 'Validation AUC [95 % CI]', 'Test AUC [95 % CI]', 'Aliases', 'Live performance by clinic', ...(admin ? ['Actions'] : [])];
  return h('section', { 'aria-labelledby': `releases-${name}`, 'data-study-name': name },
    h('h2', { id: `releases-${name}` }, name),
    table({ caption: `Releases of ${name}, newest first`, columns, rows, empty: 'No releases.', className: 'releases' }));
}

/**
 * @param {ActionContext} ctx
 * @param {ReleaseList} data
 */
export function releasesView(ctx, data) {
  /** @type {Map<string, ReleaseSummary[]>} */
  const byName = new Map();
  for (const r of data.releases) byName.set(r.studyName, [...(byName.get(r.studyName) ?? []), r]);
  const names = [...byName.keys()].sort();
  return [
    pageHeading('Releases'),
    h('p', { class: 'muted' },
      'A release is made when a study completes: the round its selection rule chose, signed, with figures measured on each clinic’s test part. ',
      'Live performance is what clinics report after deploying it on newly labelled patients; a clinic is flagged when its live AUC is clearly below ',
      'the release’s test AUC, or its calibration is off (slope outside 0.8–1.25, or mean predicted risk more than 5 points from the observed rate). ',
      'Figures of clinics with few patients, cases or non-cases are withheld.'),
    // A flat list: the caller hands these nodes to replaceChildren().
    ...(names.length === 0
      ? [h('p', { class: 'muted', id: 'no-releases' }, 'No releases yet: a release is made when a study completes.')]
      : names.map((name) => studyReleases(ctx, name, byName.get(name) ?? [], data.aliases))),
  ];
}

/** @param {string} term @param {import('./dom.js').Child | import('./dom.js').Child[]} value */
function item(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/** "0.801 [0.760, 0.842] (n = 1200)" of a published figure set. @param {PublishedPerformance | undefined} p */
function published(p) {
  return p ? [aucText(p), h('div', { class: 'muted small' }, `${p.numExamples} patients`)] : h('span', { class: 'muted' }, '—');
}

/**
 * Per clinic: the release's published validation and test figures beside its live verdict.
 * @param {ReleaseDetail} r
 */
function siteTable(r) {
  const d = r.descriptor;
  const validation = new Map((d?.metrics.validation.sites ?? []).map((x) => [x.site, x.performance]));
  const test = new Map((d?.metrics.test.sites ?? []).map((x) => [x.site, x.performance]));
  const live = new Map((r.live?.sites ?? []).map((x) => [x.siteName, x]));
  const names = [...new Set([...validation.keys(), ...test.keys(), ...live.keys()])].sort();
  /** @param {DriftVerdict | undefined} v */
  const liveCells = (v) => v ? [
    h('td', {}, driftFlag(v.status), h('div', { class: 'muted small reason' }, v.reason)),
    h('td', { class: 'num' }, v.live.auc === null ? '—' : aucText(v.live), v.live.numExamples === null ? null : h('div', { class: 'muted small' }, `${v.live.numExamples} patients`)),
    h('td', { class: 'num' }, formatNumber(v.live.calibrationSlope)),
    h('td', { class: 'num' }, v.live.meanPredicted === null || v.live.observedRate === null ? '—' : `${(v.live.meanPredicted * 100).toFixed(1)} % / ${(v.live.observedRate * 100).toFixed(1)} %`),
  ] : [h('td', { colspan: 4, class: 'muted' }, 'No report yet')];
  const rows = names.map((name) => h('tr', { 'data-site': name, 'data-drift': live.get(name)?.status ?? null },
    h('th', { scope: 'row' }, name, live.get(name) ? h('div', { class: 'muted small' }, 'measured ', timeAgo(live.get(name)?.measuredAt)) : null),
    h('td', { class: 'num' }, published(validation.get(name))),
    h('td', { class: 'num' }, published(test.get(name))),
    ...liveCells(live.get(name))));
  if (d?.metrics.test.pooled || r.live?.pooled) {
    rows.push(h('tr', { 'data-site': 'pooled', 'data-drift': r.live?.pooled?.status ?? null },
      h('th', { scope: 'row' }, 'All clinics (pooled)'),
      h('td', { class: 'num' }, published(d?.metrics.validation.pooled ?? undefined)),
      h('td', { class: 'num' }, published(d?.metrics.test.pooled ?? undefined)),
      ...liveCells(r.live?.pooled ?? undefined)));
  }
  const withheld = d ? d.metrics.test.withheldSites : 0;
  return [
    table({
      id: 'release-sites', caption: 'Published figures and live performance by clinic', rows, empty: 'No clinic figures.',
      columns: ['Clinic', 'Validation AUC [95 % CI]', 'Test AUC [95 % CI]', 'Live verdict', 'Live AUC [95 % CI]', 'Calibration slope', 'Predicted / observed'],
    }),
    withheld > 0 ? h('p', { class: 'muted small' }, `${withheld} clinic(s) count only in the pooled figures (fewer than ${d?.metrics.minCellCount} patients, cases or non-cases).`) : null,
  ];
}

/**
 * One release: lineage, aliases, why its round, figures beside live performance, files, model card.
 * @param {ActionContext} ctx @param {ReleaseDetail} r @param {ReleaseAlias[]} aliases the study name's aliases (for the alias dialog)
 */
export function releaseView(ctx, r, aliases) {
  const d = r.descriptor;
  return [h('article', { id: 'release', 'data-release': `${r.studyName}@${r.version}` },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/releases' }, 'Releases'), ' › ', `${r.studyName} v${r.version}`),
    h('div', { class: 'page-head' },
      h('h1', { tabindex: -1 }, `${r.studyName} v${r.version}`),
      isAdmin(ctx) ? h('div', { class: 'toolbar' }, adminButton(ctx, { id: 'set-alias', label: 'Set alias…', onClick: () => void setReleaseAlias(ctx, r, aliases) })) : null),
    r.error ? h('p', { class: 'error', role: 'alert' }, r.error) : null,
    h('dl', { class: 'meta' },
      item('From', [h('a', { href: studyHref(r.studyId) }, r.studyId), `, round ${r.round}`]),
      item('Created', formatDateTime(r.createdAt)),
      item('Previous version', r.parentVersion === null ? 'none (first release)' : h('a', { href: releaseHref(r.studyName, r.parentVersion) }, `v${r.parentVersion}`)),
      item('Aliases', aliasCell(ctx, r)),
      r.selection ? item('Selection', [h('code', {}, r.selection.rule), ' — ', r.selection.reason, r.selection.warnings.map((w) => h('div', { class: 'warn small' }, w))]) : null,
      item('Manifest SHA-256', h('code', { class: 'hash' }, r.manifestSha256)),
      d ? item('Signed by key', h('code', { class: 'hash' }, d.lineage.signer)) : null),
    h('section', { 'aria-labelledby': 'release-figures' }, h('h2', { id: 'release-figures' }, 'Figures'), siteTable(r)),
    h('section', { 'aria-labelledby': 'release-files' }, h('h2', { id: 'release-files' }, 'Files'),
      h('p', { class: 'muted small' }, 'The signed bundle: clinics verify every file against the envelope with the key they pinned at enrolment.'),
      // Links are built from the release's own path (same origin), never taken as markup.
      h('ul', { class: 'plain files' }, r.files.map((f) => h('li', {},
        h('a', { href: `/api/v1/releases/${encodeURIComponent(r.studyName)}/${r.version}/files/${encodeURIComponent(f.name)}`, download: `${r.studyName}-v${r.version}-${f.name}` }, f.name),
        h('span', { class: 'muted small' }, ` ${f.size} bytes · sha256 `), h('code', { class: 'hash small' }, f.sha256))))),
    d ? h('section', { 'aria-labelledby': 'release-card' }, h('h2', { id: 'release-card' }, 'Model card'),
      h('dl', { class: 'meta' },
        item('Intended use', d.modelCard.intendedUse), item('Outcome', d.modelCard.outcome), item('Population', d.modelCard.population),
        item('Limitations', d.modelCard.limitations.length === 0 ? '—' : h('ul', {}, d.modelCard.limitations.map((l) => h('li', {}, l)))))) : null)];
}
