// A clinic's (node's) page, #/clinics/{nodeId}: its connection, readiness per study with the
// reason, its last error, its failed or declined tasks and every contribution it sent.

import { badge, formatBytes, formatDateTime, h, table, timeAgo, toDate } from './dom.js';
import { failureItem, lastErrorCell, lastErrorOf, readinessLabel, readinessName, taskFailures } from './readiness.js';
import { nodeStatus, pageHeading, revokeButton, studyHref } from './views.js';

/**
 * @typedef {import('./api.js').NodeDetail} NodeDetail
 * @typedef {import('./api.js').Status} Status
 */

/** Contributions shown, newest first; the API has them all. */
const MAX_CONTRIBUTIONS = 200;

/**
 * @param {import('./actions.js').ActionContext} ctx
 * @param {NodeDetail} node
 * @param {Status | null} status for study names
 */
export function nodeView(ctx, node, status) {
  const studyNames = new Map((status?.studies ?? []).map((st) => [st.id, st.name]));
  /** @param {string | null | undefined} id */
  const studyLink = (id) => (id ? h('a', { href: studyHref(id) }, studyNames.get(id) ?? id) : h('span', { class: 'muted' }, '—'));
  const revoke = node.revoked ? null : revokeButton(ctx, node, 'revoke-node');
  return [h('article', { id: 'node', 'data-node-id': node.id, 'data-online': String(node.online) },
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/clinics' }, 'Clinics'), ' › ', node.siteName),
    pageHeading(node.siteName, revoke ? h('div', { class: 'toolbar' }, revoke) : null),
    h('dl', { class: 'meta' },
      item('Node ID', h('code', {}, node.id)),
      item('Status', nodeStatus(node)),
      item('Last heartbeat', timeAgo(node.lastHeartbeatAt ?? node.lastSeenAt, 'never')),
      item('Agent version', node.agentVersion || '—'),
      item('Training backend', node.trainingBackend || '—'),
      item('Rounds contributed', String(node.roundsContributed ?? 0))),
    lastErrorBox(node, (id) => studyNames.get(id) ?? id),
    readinessTable(node, studyLink),
    failuresSection(node, studyLink),
    contributionsTable(node, studyLink))];
}

/** @param {string} term @param {Node | string} value */
function item(term, value) {
  return h('div', {}, h('dt', {}, term), h('dd', {}, value));
}

/** @param {NodeDetail} node @param {(id: string) => string} studyName */
function lastErrorBox(node, studyName) {
  const e = lastErrorOf(node);
  if (!e) return null;
  return h('div', { class: e.state === 'DECLINED' ? 'warn-box' : 'error-box', id: 'node-last-error' },
    h('strong', {}, 'Last failure: '), lastErrorCell(node, studyName));
}

/** @param {NodeDetail} node @param {(id: string) => HTMLElement} studyLink */
function readinessTable(node, studyLink) {
  const rows = Object.entries(node.readiness ?? {}).map(([studyId, r]) => h('tr', { 'data-study-id': studyId, 'data-readiness': readinessName(r.readiness) },
    h('th', { scope: 'row' }, studyLink(studyId)),
    h('td', {}, readinessLabel(r))));
  return table({
    id: 'node-readiness', caption: 'Readiness per study', columns: ['Study', 'Readiness and reason'], rows,
    empty: node.online ? 'This clinic has not reported readiness for any study.' : 'The clinic is offline: readiness is reported while its agent is connected.',
  });
}

/** @param {NodeDetail} node @param {(id: string | null | undefined) => HTMLElement} studyLink */
function failuresSection(node, studyLink) {
  if (!Array.isArray(node.failures)) return null; // not in this API version
  const rows = taskFailures(node).map((f) => h('tr', { 'data-state': f.state },
    h('td', {}, studyLink(f.studyId)),
    h('td', { class: 'num' }, f.round ?? '—'),
    h('td', {}, h('ul', { class: 'plain' }, failureItem(f, null)))));
  return table({ id: 'node-failures', caption: 'Failed, declined or rejected tasks (newest first)', columns: ['Study', 'Round', 'What happened'], rows, empty: 'No task of this clinic has failed, been declined or been rejected.' });
}

/** @param {NodeDetail} node @param {(id: string) => HTMLElement} studyLink */
function contributionsTable(node, studyLink) {
  const all = [...(node.contributions ?? [])].sort((a, b) => Number(new Date(b.receivedAt)) - Number(new Date(a.receivedAt)));
  const rows = all.slice(0, MAX_CONTRIBUTIONS).map((c) => h('tr', { 'data-accepted': String(c.accepted) },
    h('td', {}, studyLink(c.studyId)),
    h('td', { class: 'num' }, c.round),
    h('td', { class: 'num' }, c.attempt || '—'),
    h('td', {}, c.accepted ? badge('accepted') : h('span', {}, badge('rejected'), ' ', h('code', {}, c.reasonCode ?? '?'), c.reason ? h('div', { class: 'small' }, c.reason) : null)),
    h('td', { class: 'num' }, c.numExamples === null ? h('span', { class: 'muted', title: 'Hidden: below the minimum cell size' }, 'suppressed') : c.numExamples.toLocaleString()),
    h('td', { class: 'num' }, formatBytes(c.bytes)),
    h('td', {}, receivedTime(c.receivedAt))));
  return h('section', {},
    table({ id: 'node-contributions', caption: 'Contributions (newest first)', columns: ['Study', 'Round', 'Attempt', 'Outcome', 'Examples', 'Size', 'Received'], rows, empty: 'No contribution received from this clinic yet.' }),
    all.length > MAX_CONTRIBUTIONS ? h('p', { class: 'help' }, `Showing the newest ${MAX_CONTRIBUTIONS} of ${all.length}.`) : null);
}

/** @param {string | number} when */
function receivedTime(when) {
  const d = toDate(when);
  return d ? h('time', { datetime: d.toISOString() }, formatDateTime(d.getTime())) : '—';
}
