// How a clinic stands: readiness per study (a state, with its reason), its last failure and
// the failed, declined or rejected tasks of a round. Shared by the overview, clinics, clinic
// (node) and study pages.
//
// States and errors are kept apart on purpose: a clinic waiting for its operator to approve a
// manifest is doing what it should, so "awaiting approval" is drawn in neutral colours and never
// in the error column. Only failures (a data error, a failed or rejected task) are errors.
//
// Every field read here may be absent (an older coordinator): absent means nothing is shown.

import { formatDateTime, h, timeAgo } from './dom.js';

/**
 * @typedef {import('./api.js').ReadinessEntry} ReadinessEntry
 * @typedef {import('./api.js').ClinicNode} ClinicNode
 * @typedef {import('./api.js').TaskFailure} TaskFailure
 * @typedef {'ok' | 'pending' | 'attention' | 'problem' | 'unknown'} Tone
 */

/**
 * Wording and tone per readiness, by name without the proto's READINESS_ prefix (/status gives
 * the prefixed names per node, the study readiness view gives bare ones plus the coordinator's
 * OFFLINE / NOT_REPORTED / OTHER_MANIFEST). `pending` is neutral; `problem` is an error.
 */
const READINESS = /** @type {Record<string, { label: string, tone: Tone }>} */ ({
  READY: { label: 'ready', tone: 'ok' },
  NOT_APPROVED: { label: 'awaiting approval', tone: 'pending' },
  COHORT_TOO_SMALL: { label: 'cohort too small', tone: 'attention' },
  FEATURE_SPEC_UNSUPPORTED: { label: 'data format not supported', tone: 'problem' },
  DATA_ERROR: { label: 'data error', tone: 'problem' },
  WITHDRAWN: { label: 'withdrawn', tone: 'attention' },
  OTHER_MANIFEST: { label: 'other manifest version', tone: 'attention' },
  OFFLINE: { label: 'offline', tone: 'unknown' },
  NOT_REPORTED: { label: 'not reported yet', tone: 'unknown' },
  UNSPECIFIED: { label: 'not reported', tone: 'unknown' },
});

/** "NOT_APPROVED" from "READINESS_NOT_APPROVED" or "NOT_APPROVED"; "NONE" when absent. @param {string | null | undefined} name */
export const readinessName = (name) => (name ? String(name).replace(/^READINESS_/, '') : 'NONE');

/** @param {string | null | undefined} name a readiness, with or without the READINESS_ prefix */
export function readinessInfo(name) {
  const bare = readinessName(name);
  if (bare === 'NONE') return READINESS.UNSPECIFIED;
  return READINESS[bare] ?? { label: bare.replaceAll('_', ' ').toLowerCase(), tone: /** @type {Tone} */ ('attention') };
}

/**
 * A readiness as a label (text first; the tone only repeats it) with its reason beneath.
 * @param {{ readiness?: string | null, detail?: string | null } | null | undefined} entry
 * @param {{ prefix?: string | null }} [o]
 */
export function readinessLabel(entry, o = {}) {
  const info = readinessInfo(entry?.readiness);
  return h('div', { class: 'readiness', 'data-readiness': readinessName(entry?.readiness), 'data-tone': info.tone },
    o.prefix ? `${o.prefix}: ` : null,
    h('span', { class: `readiness-label tone-${info.tone}` }, info.label),
    entry?.detail ? h('div', { class: 'readiness-reason small' }, entry.detail) : null);
}

/** @typedef {{ reason: string, round: number | null, studyId: string | null, at: string | number | null, kind: string | null, state: string | null }} LastFailure */

/**
 * The node's last failure from `lastError`: the structured { studyId, round, kind, state,
 * reason, at } the coordinator gives, or the plain text older coordinators gave. Such a text
 * that only repeats a NOT_APPROVED readiness detail is not an error (the readiness column
 * already says the clinic awaits approval), so it is dropped.
 * @param {ClinicNode} n
 * @returns {LastFailure | null}
 */
export function lastErrorOf(n) {
  const e = n.lastError;
  if (e === null || e === undefined || e === '') return null;
  if (typeof e === 'object') {
    if (!e.reason) return null;
    return { reason: String(e.reason), round: e.round ?? null, studyId: e.studyId ?? null, at: e.at ?? null, kind: e.kind ?? null, state: e.state ?? null };
  }
  const pending = Object.values(n.readiness ?? {}).filter((r) => readinessName(r.readiness) === 'NOT_APPROVED');
  if (pending.some((r) => r.detail !== '' && e.trim() === r.detail.trim())) return null;
  return { reason: e, round: null, studyId: null, at: null, kind: null, state: null };
}

const PHASE = /** @type {Record<string, string>} */ ({ TRAIN: 'training', EVALUATE: 'evaluation', STATISTICS: 'statistics' });

/** "training failed", "evaluation declined", "update rejected". @param {string | null} kind @param {string | null} state */
function outcomeWords(kind, state) {
  const what = state === 'REJECTED' && (kind === 'TRAIN' || !kind) ? 'update' : kind ? (PHASE[kind] ?? kind.toLowerCase()) : 'task';
  return `${what} ${(state ?? 'FAILED').toLowerCase()}`;
}

/** A decline is the clinic saying no (e.g. it stopped being ready); failures and rejections are errors. @param {string | null} state */
const toneOf = (state) => (state === 'DECLINED' ? 'attention' : 'problem');

/**
 * The last failure in a table cell: what failed, why, where and when.
 * @param {ClinicNode} n @param {(studyId: string) => string} [studyName]
 */
export function lastErrorCell(n, studyName) {
  const e = lastErrorOf(n);
  if (!e) return h('span', { class: 'muted' }, 'none');
  const where = [e.studyId ? (studyName?.(e.studyId) ?? e.studyId) : null, e.round !== null ? `round ${e.round}` : null].filter(Boolean).join(', ');
  return h('div', { class: 'last-error-wrap', 'data-state': e.state },
    e.state ? h('span', { class: `tone-${toneOf(e.state)} small outcome` }, outcomeWords(e.kind, e.state), ': ') : null,
    h('span', { class: e.state === 'DECLINED' ? 'last-error declined' : 'last-error', title: e.reason }, e.reason),
    where || e.at ? h('div', { class: 'muted small' }, where, where && e.at ? ' · ' : null, e.at ? timeAgo(e.at) : null) : null);
}

/**
 * The failed, declined or rejected tasks of a timeline row or of a node (`failures`), each with
 * its reason; none when the field is absent.
 * @param {{ failures?: TaskFailure[] } | null | undefined} holder
 */
export function taskFailures(holder) {
  const list = Array.isArray(holder?.failures) ? holder.failures : [];
  return list.map((f) => ({
    nodeId: f.nodeId ?? null, siteName: f.siteName ?? null, studyId: f.studyId ?? null, round: f.round ?? null, kind: f.kind ?? null,
    state: f.state ?? 'FAILED', reason: f.reason ?? null, at: f.at ?? null,
  }));
}

/**
 * One failed/declined/rejected task: "clinic-b training failed: out of memory".
 * @param {ReturnType<typeof taskFailures>[number]} f @param {string | null} who site name, or null to omit
 */
export function failureItem(f, who) {
  return h('li', { class: f.state === 'DECLINED' ? 'task-declined' : 'task-failed', 'data-state': f.state, 'data-node-id': f.nodeId },
    who ? h('strong', {}, who) : null, who ? ' ' : null,
    h('span', { class: `tone-${toneOf(f.state)}` }, outcomeWords(f.kind, f.state)),
    f.reason ? `: ${f.reason}` : h('span', { class: 'muted' }, ' (no reason given)'),
    f.at ? h('span', { class: 'muted small', title: formatDateTime(f.at) }, ' · ', timeAgo(f.at)) : null);
}
