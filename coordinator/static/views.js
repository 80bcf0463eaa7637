// The overview, clinics and audit screens. Views are pure functions from data to DOM nodes;
// app.js decides when to call them. Admin controls exist only for admins: a viewer's page has
// no admin buttons and no "Actions" columns at all (the coordinator refuses viewers anyway).

import { adminButton, createOperator, isAdmin, issueJoinToken, revokeNode, startStudy, stopStudy } from './actions.js';
import { badge, formatDateTime, formatUptime, h, table, timeAgo } from './dom.js';
import { lastErrorCell, readinessLabel } from './readiness.js';

/**
 * @typedef {import('./api.js').Status} Status
 * @typedef {import('./api.js').StudySummary} StudySummary
 * @typedef {import('./api.js').ClinicNode} ClinicNode
 * @typedef {import('./actions.js').ActionContext} ActionContext
 * @typedef {{ reports: { name: string, url: string }[] } | { error: string } | null} ReportsState
 */

/** @param {string} id */
export const studyHref = (id) => `#/studies/${encodeURIComponent(id)}`;
/** @param {string} id */
export const nodeHref = (id) => `#/clinics/${encodeURIComponent(id)}`;

/** @param {string} text @param {HTMLElement | null} [aside] */
export function pageHeading(text, aside = null) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: -1 }, text), aside);
}

/** @param {Status} status */
function coordinatorInfo(status) {
  const running = status.studies.filter((st) => st.state === 'RUNNING').length;
  // Counts of every node come from the summary (the node list is one page of them).
  const online = status.summary?.nodes.online ?? status.nodes.filter((n) => n.online).length;
  const total = status.summary?.nodes.total ?? status.nodes.length;
  return h('p', { class: 'muted' },
    `Version ${status.coordinator.version}, up ${formatUptime(status.coordinator.uptimeSeconds)} · `,
    `${running} running ${running === 1 ? 'study' : 'studies'} · ${online} of ${total} clinics online`);
}

/** The admin toolbar, or null for a viewer. @param {ActionContext} ctx */
function toolbar(ctx) {
  if (!isAdmin(ctx)) return null;
  return h('div', { class: 'toolbar' },
    adminButton(ctx, { id: 'start-study', label: 'Start study…', onClick: () => void startStudy(ctx) }),
    adminButton(ctx, { id: 'issue-token', label: 'Issue join token…', onClick: () => void issueJoinToken(ctx) }),
    adminButton(ctx, { id: 'create-operator', label: 'Add operator…', onClick: () => void createOperator(ctx) }));
}

/** @param {ActionContext} ctx @param {Status} status @param {ReportsState} reports */
export function overviewView(ctx, status, reports) {
  return [
    pageHeading('Overview', toolbar(ctx)),
    coordinatorInfo(status),
    h('section', { 'aria-labelledby': 'studies-caption' }, studiesTable(ctx, status.studies)),
    h('section', {}, clinicsTable(ctx, status)),
    reportsSection(reports),
  ];
}

/** @param {ActionContext} ctx @param {StudySummary[]} studies */
export function studiesTable(ctx, studies) {
  const admin = isAdmin(ctx);
  const sorted = [...studies].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const rows = sorted.map((st) => h('tr', { 'data-study-id': st.id },
    h('th', { scope: 'row' },
      h('a', { href: studyHref(st.id), 'data-key': `study-link-${st.id}` }, st.name),
      h('div', { class: 'id' }, st.id)),
    h('td', {}, badge(st.state), st.reason ? h('div', { class: st.state === 'FAILED' ? 'fail-reason small' : 'muted small' }, st.reason) : null),
    h('td', {}, progress(st)),
    h('td', {}, currentRound(st), readinessSummary(st, true)),
    h('td', {}, timeAgo(st.createdAt)),
    admin ? h('td', {}, st.state === 'RUNNING'
      ? adminButton(ctx, { label: 'Stop', key: `stop-${st.id}`, danger: true, accessibleLabel: `Stop study ${st.name}`, onClick: () => void stopStudy(ctx, st) })
      : null) : null));
  const columns = ['Study', 'State', 'Rounds committed', 'Current round', 'Created', ...(admin ? ['Actions'] : [])];
  const t = table({ id: 'studies', caption: 'Studies', columns, rows, empty: admin ? 'No studies yet. Start one with “Start study”.' : 'No studies yet.' });
  t.querySelector('caption')?.setAttribute('id', 'studies-caption');
  return t;
}

/** @param {StudySummary} st */
export function progress(st) {
  const total = Math.max(st.totalRounds, 1);
  return h('div', { class: 'progress' },
    h('progress', { max: total, value: Math.min(st.lastCommittedRound, total), 'aria-label': `${st.lastCommittedRound} of ${st.totalRounds} rounds committed` }),
    h('span', { class: 'num' }, `${st.lastCommittedRound} / ${st.totalRounds}`));
}

/** @param {StudySummary} st */
export function currentRound(st) {
  const c = st.current;
  if (!c) return h('span', { class: 'muted' }, '—');
  return h('div', {},
    h('span', {}, `Round ${c.round}${c.attempt > 1 ? ` (attempt ${c.attempt})` : ''} `), badge(c.state),
    c.deadline ? h('div', { class: 'muted small' }, 'deadline ', timeAgo(c.deadline)) : null);
}

/**
 * How many clinics are READY of the clients.min the study needs, for a running study; with
 * `compact` (the studies table) only when too few are, and with the readiness deadline.
 * @param {StudySummary} st @param {boolean} compact
 */
export function readinessSummary(st, compact) {
  const r = st.readiness;
  if (!r || st.state !== 'RUNNING' || typeof r.needed !== 'number' || typeof r.ready !== 'number') return null;
  const short = r.ready < r.needed;
  if (compact && !short) return null;
  return h('div', { class: short ? 'readiness-summary short small' : 'readiness-summary small', 'data-ready': r.ready, 'data-needed': r.needed },
    `${r.ready} of ${r.needed} needed clinic${r.needed === 1 ? '' : 's'} ready`,
    compact && short && r.deadline ? [' · study fails ', timeAgo(r.deadline), ' if still short'] : null);
}

/** @param {ClinicNode} n */
export function nodeStatus(n) {
  if (n.revoked) return h('span', { class: 'status revoked' }, h('span', { 'aria-hidden': 'true' }, '⊘ '), 'Revoked');
  return n.online
    ? h('span', { class: 'status online' }, h('span', { 'aria-hidden': 'true' }, '● '), 'Online')
    : h('span', { class: 'status offline' }, h('span', { 'aria-hidden': 'true' }, '○ '), 'Offline');
}

/**
 * Readiness per study, each as a state with its reason ("awaiting approval" is neutral).
 * @param {ClinicNode} n @param {Map<string, string>} studyNames
 */
export function readinessList(n, studyNames) {
  const entries = Object.entries(n.readiness ?? {});
  if (entries.length === 0) return h('span', { class: 'muted' }, n.online ? 'no study offered' : '—');
  return h('ul', { class: 'plain readiness-list' }, entries.map(([studyId, r]) => h('li', { 'data-study-id': studyId },
    readinessLabel(r, { prefix: studyNames.get(studyId) ?? studyId }))));
}

/** @param {ActionContext} ctx @param {Status} status */
export function clinicsTable(ctx, status) {
  const admin = isAdmin(ctx);
  const studyNames = new Map(status.studies.map((st) => [st.id, st.name]));
  /** @param {string} id */
  const studyName = (id) => studyNames.get(id) ?? id;
  const nodes = [...status.nodes].sort((a, b) => a.siteName.localeCompare(b.siteName) || a.id.localeCompare(b.id));
  const rows = nodes.map((n) => h('tr', { 'data-node-id': n.id, 'data-online': String(n.online), class: n.revoked ? 'revoked-row' : null },
    h('th', { scope: 'row' }, h('a', { href: nodeHref(n.id), 'data-key': `node-link-${n.id}` }, n.siteName), h('div', { class: 'id' }, n.id)),
    h('td', {}, nodeStatus(n)),
    h('td', {}, timeAgo(n.lastHeartbeatAt ?? n.lastSeenAt, 'never')),
    h('td', {}, n.agentVersion || '—'),
    h('td', {}, n.trainingBackend || '—'),
    h('td', { class: 'num' }, n.roundsContributed ?? 0),
    h('td', {}, readinessList(n, studyNames)),
    h('td', { class: 'error-cell' }, lastErrorCell(n, studyName)),
    admin ? h('td', {}, revokeButton(ctx, n)) : null));
  return table({
    id: 'clinics', caption: 'Clinics', rows,
    empty: admin ? 'No clinic has enrolled yet. Issue a join token to enrol one.' : 'No clinic has enrolled yet.',
    columns: ['Site', 'Status', 'Last heartbeat', 'Agent version', 'Training backend', 'Rounds contributed', 'Readiness (reason)', 'Last error', ...(admin ? ['Actions'] : [])],
  });
}

/** The revoke button for a node (null for a viewer). @param {ActionContext} ctx @param {ClinicNode} n @param {string} [id] */
export function revokeButton(ctx, n, id) {
  return adminButton(ctx, {
    id, label: n.revoked ? 'Revoked' : 'Revoke', key: id ? undefined : `revoke-${n.id}`, danger: true, disabled: n.revoked,
    accessibleLabel: `Revoke node ${n.id} (${n.siteName})`, onClick: () => void revokeNode(ctx, n),
  });
}

/** @param {ReportsState} reports */
function reportsSection(reports) {
  let body;
  if (reports === null) body = h('p', { class: 'muted' }, 'Loading…');
  else if ('error' in reports) body = h('p', { class: 'muted' }, `Reports are not available: ${reports.error}`);
  else if (reports.reports.length === 0) body = h('p', { class: 'muted' }, 'No simulation or benchmark reports yet.');
  else {
    // Only same-origin paths become links: a report URL is data from the server, not markup.
    body = h('ul', { class: 'reports' }, reports.reports.map((r) => h('li', {}, /^\/(?!\/)/.test(r.url)
      ? h('a', { href: r.url, target: '_blank', rel: 'noopener', 'data-key': `report-${r.url}` }, r.name,
        h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'))
      : `${r.name} (${r.url})`)));
  }
  return h('section', { 'aria-labelledby': 'reports-title' }, h('h2', { id: 'reports-title' }, 'Reports'), body);
}

/** @param {ActionContext} ctx @param {Status} status */
export function clinicsView(ctx, status) {
  return [
    pageHeading('Clinics', isAdmin(ctx) ? h('div', { class: 'toolbar' },
      adminButton(ctx, { id: 'issue-token', label: 'Issue join token…', onClick: () => void issueJoinToken(ctx) })) : null),
    h('p', { class: 'muted' }, 'Each clinic runs one node agent. A node is online while its agent holds a session with the coordinator.'),
    clinicsTable(ctx, status),
    // Never a silent cut: say when the table is one page of a larger network.
    status.nodesNext ? h('p', { class: 'muted', id: 'clinics-truncated' },
      `Showing the first ${status.nodes.length} of ${status.summary?.nodes.total ?? 'more'} clinics (in enrolment order). `,
      'The full list is available page by page from GET /api/v1/status?cursor=… and from fedlhs-coordinator status.') : null,
  ];
}

/** @param {import('./api.js').AuditAction[] | null} actions */
export function auditView(actions) {
  const sorted = [...(actions ?? [])].sort((a, b) => b.at.localeCompare(a.at));
  const rows = sorted.map((a) => h('tr', {},
    h('th', { scope: 'row' }, h('time', { datetime: a.at }, formatDateTime(a.at))),
    h('td', {}, a.operator),
    h('td', {}, h('code', {}, a.action)),
    h('td', {}, a.target ?? '—'),
    h('td', { class: 'detail' }, a.detail === null || a.detail === undefined ? '—' : typeof a.detail === 'string' ? a.detail : JSON.stringify(a.detail))));
  return [
    pageHeading('Audit log'),
    h('p', { class: 'muted' }, 'Every admin action, newest first. Only admins can read this log.'),
    actions === null ? h('p', { class: 'muted' }, 'Not available.')
      : table({ id: 'audit', caption: 'Admin actions', columns: ['When', 'Operator', 'Action', 'Target', 'Detail'], rows, empty: 'No admin actions recorded yet.' }),
  ];
}

/** @param {string} title @param {string} text */
export function messageView(title, text) {
  return [pageHeading(title), h('p', {}, text), h('p', {}, h('a', { href: '#/' }, 'Back to the overview'))];
}
