// Operator dashboard: session, hash routing (#/, #/studies/{id}, #/clinics, #/clinics/{id}, #/releases, #/releases/{name}/{version}, #/series, #/series/{name}, #/audit) and live
// updates. Data flows one way: loaders fetch into `state`, render() draws the current route
// from `state`. Server-Sent Events say *that* something changed; we then refetch (coalesced,
// at most once per REFRESH_INTERVAL_MS) and redraw only if the data actually differs.

import { ApiError, api, coalesce, setUnauthenticatedHandler, subscribe } from './api.js';
import { describeError, initDialogs } from './dialogs.js';
import { h, refreshTimes, replaceKeepingState } from './dom.js';
import { nodeView } from './node.js';
import { releaseView, releasesView } from './releases.js';
import { seriesListView, seriesView } from './series.js';
import { studyView } from './study.js';
import { auditView, clinicsView, messageView, overviewView } from './views.js';

const REFRESH_INTERVAL_MS = 300;
const RESUBSCRIBE_MS = [2000, 5000, 10000, 30000];

/**
 * @typedef {{ name: 'overview' } | { name: 'clinics' } | { name: 'releases' } | { name: 'release', studyName: string, version: number } | { name: 'series' } | { name: 'seriesOne', seriesName: string } | { name: 'audit' } | { name: 'study', id: string } | { name: 'node', id: string } | { name: 'unknown' }} Route
 */

const state = {
  /** @type {import('./api.js').Operator | null} */ operator: null,
  /** @type {import('./api.js').Status | null} */ status: null,
  /** @type {import('./views.js').ReportsState} */ reports: null,
  /** @type {{ id: string, data: import('./api.js').StudyDetail | null } | null} */ study: null,
  /** @type {{ id: string, data: import('./api.js').NodeDetail | null } | null} */ node: null,
  /** @type {import('./api.js').AuditAction[] | null} */ audit: null,
  /** @type {import('./api.js').ReleaseList | null} */ releases: null,
  /** @type {{ key: string, data: import('./api.js').ReleaseDetail | null } | null} */ release: null,
  /** @type {{ series: import('./api.js').SeriesSummary[] } | null} */ seriesList: null,
  /** @type {{ name: string, data: import('./api.js').SeriesDetail | null } | null} */ series: null,
  /** Messages for the page's role="alert", by source. */
  /** @type {Record<'status' | 'study' | 'node' | 'audit' | 'releases' | 'series', string | null>} */ errors: { status: null, study: null, node: null, audit: null, releases: null, series: null },
  /** @type {Route} */ route: { name: 'overview' },
};
/** Last JSON seen per source, to skip redraws when an event changed nothing we show. */
const seen = new Map();

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const view = () => $('view');

/** @returns {Route} */
function parseRoute() {
  const path = location.hash.replace(/^#/, '') || '/';
  if (path === '/') return { name: 'overview' };
  if (path === '/clinics') return { name: 'clinics' };
  if (path === '/audit') return { name: 'audit' };
  if (path === '/releases') return { name: 'releases' };
  const rel = /^\/releases\/([^/]+)\/(\d{1,9})$/.exec(path);
  if (rel) return { name: 'release', studyName: decodeURIComponent(rel[1]), version: Number(rel[2]) };
  if (path === '/series') return { name: 'series' };
  const ser = /^\/series\/([^/]+)$/.exec(path);
  if (ser) return { name: 'seriesOne', seriesName: decodeURIComponent(ser[1]) };
  const m = /^\/studies\/([^/]+)$/.exec(path);
  if (m) return { name: 'study', id: decodeURIComponent(m[1]) };
  const n = /^\/clinics\/([^/]+)$/.exec(path);
  if (n) return { name: 'node', id: decodeURIComponent(n[1]) };
  return { name: 'unknown' };
}

/** @param {string} key @param {unknown} data @returns {boolean} whether it differs from last time */
function changed(key, data) {
  const json = JSON.stringify(data);
  if (seen.get(key) === json) return false;
  seen.set(key, json);
  return true;
}

async function loadStatus() {
  try {
    state.status = await api.status();
    state.errors.status = null;
    return changed('status', state.status);
  } catch (err) {
    state.errors.status = `Could not load the coordinator status: ${describeError(err)}`;
    return true;
  }
}

async function loadReports() {
  try {
    state.reports = await api.reports();
  } catch (err) {
    state.reports = { error: describeError(err) };
  }
  return changed('reports', state.reports);
}

/** @param {string} id */
async function loadStudy(id) {
  try {
    const data = await api.study(id);
    state.study = { id, data };
    state.errors.study = null;
    return changed(`study:${id}`, data);
  } catch (err) {
    if (state.study?.id !== id) state.study = { id, data: null };
    state.errors.study = err instanceof ApiError && err.status === 404
      ? `There is no study with the id ${id}.` : `Could not load the study: ${describeError(err)}`;
    return true;
  }
}

/** @param {string} id */
async function loadNode(id) {
  try {
    const data = await api.node(id);
    state.node = { id, data };
    state.errors.node = null;
    return changed(`node:${id}`, data);
  } catch (err) {
    if (state.node?.id !== id) state.node = { id, data: null };
    state.errors.node = err instanceof ApiError && err.status === 404
      ? `There is no clinic node with the id ${id}.` : `Could not load the clinic: ${describeError(err)}`;
    return true;
  }
}

/** The audit log is for admins; a viewer is told so without asking the server. */
const canReadAudit = () => state.operator?.role === 'admin';

async function loadAudit() {
  try {
    state.audit = (await api.audit()).actions;
    state.errors.audit = null;
    return changed('audit', state.audit);
  } catch (err) {
    state.audit = null;
    state.errors.audit = `Could not load the audit log: ${describeError(err)}`;
    return true;
  }
}

async function loadReleases() {
  try {
    state.releases = await api.releases();
    state.errors.releases = null;
    return changed('releases', state.releases);
  } catch (err) {
    state.errors.releases = `Could not load the releases: ${describeError(err)}`;
    return true;
  }
}

/** @param {string} studyName @param {number} version */
async function loadRelease(studyName, version) {
  const key = `${studyName}@${version}`;
  try {
    // The list too: the alias dialog says where an alias points now.
    const [data] = await Promise.all([api.release(studyName, version), loadReleases()]);
    state.release = { key, data };
    state.errors.releases = null;
    return changed(`release:${key}`, data);
  } catch (err) {
    if (state.release?.key !== key) state.release = { key, data: null };
    state.errors.releases = err instanceof ApiError && err.status === 404
      ? `There is no release ${studyName} v${version}.` : `Could not load the release: ${describeError(err)}`;
    return true;
  }
}

async function loadSeriesList() {
  try {
    state.seriesList = await api.seriesList();
    state.errors.series = null;
    return changed('series', state.seriesList);
  } catch (err) {
    state.errors.series = `Could not load the series: ${describeError(err)}`;
    return true;
  }
}

/** @param {string} name */
async function loadSeries(name) {
  try {
    const data = await api.series(name);
    state.series = { name, data };
    state.errors.series = null;
    return changed(`series:${name}`, data);
  } catch (err) {
    if (state.series?.name !== name) state.series = { name, data: null };
    state.errors.series = err instanceof ApiError && err.status === 404
      ? `There is no series ${name}.` : `Could not load the series: ${describeError(err)}`;
    return true;
  }
}

/** Fetch what the current route needs. */
async function loadRoute() {
  const r = state.route;
  const tasks = [];
  if (r.name === 'study') tasks.push(loadStudy(r.id));
  if (r.name === 'node') tasks.push(loadNode(r.id));
  if (r.name === 'audit' && canReadAudit()) tasks.push(loadAudit());
  if (r.name === 'releases') tasks.push(loadReleases());
  if (r.name === 'release') tasks.push(loadRelease(r.studyName, r.version));
  if (r.name === 'series') tasks.push(loadSeriesList());
  if (r.name === 'seriesOne') tasks.push(loadSeries(r.seriesName));
  if (r.name === 'overview') tasks.push(loadReports());
  await Promise.all(tasks);
}

/** The context views pass to admin actions. */
function actionContext() {
  return {
    operator: /** @type {import('./api.js').Operator} */ (state.operator),
    notify,
    refresh: () => trigger(null),
  };
}

/** @param {boolean} [moveFocus] after navigation: focus the page heading for screen readers */
function render(moveFocus = false) {
  if (!state.operator) return;
  const r = state.route;
  const ctx = actionContext();
  const loading = [h('p', { class: 'muted' }, 'Loading…')];
  /** @type {Node[]} */
  let children;
  let errors = [state.errors.status];
  if (r.name === 'overview') children = state.status ? overviewView(ctx, state.status, state.reports) : loading;
  else if (r.name === 'clinics') children = state.status ? clinicsView(ctx, state.status) : loading;
  else if (r.name === 'releases') {
    errors.push(state.errors.releases);
    children = state.releases ? releasesView(ctx, state.releases) : state.errors.releases ? messageView('Releases not available', 'The releases could not be shown.') : loading;
  } else if (r.name === 'release') {
    errors.push(state.errors.releases);
    const data = state.release?.key === `${r.studyName}@${r.version}` ? state.release.data : null;
    const aliases = (state.releases?.aliases ?? []).filter((a) => a.studyName === r.studyName);
    children = data ? releaseView(ctx, data, aliases) : state.errors.releases ? messageView('Release not available', 'The release could not be shown.') : loading;
  } else if (r.name === 'series') {
    errors.push(state.errors.series);
    children = state.seriesList ? seriesListView(ctx, state.seriesList) : state.errors.series ? messageView('Series not available', 'The series could not be shown.') : loading;
  } else if (r.name === 'seriesOne') {
    errors.push(state.errors.series);
    const data = state.series?.name === r.seriesName ? state.series.data : null;
    children = data ? seriesView(ctx, data) : state.errors.series ? messageView('Series not available', 'The series could not be shown.') : loading;
  }
  else if (r.name === 'audit') {
    errors = [state.errors.audit];
    if (!canReadAudit()) children = messageView('Audit log', 'The audit log of admin actions is shown to admins only.');
    else children = state.audit || state.errors.audit ? auditView(state.audit) : loading;
  } else if (r.name === 'study') {
    errors.push(state.errors.study);
    const data = state.study?.id === r.id ? state.study.data : null;
    children = data ? studyView(ctx, data, state.status?.nodes ?? []) : state.errors.study ? messageView('Study not available', 'The study could not be shown.') : loading;
  } else if (r.name === 'node') {
    errors.push(state.errors.node);
    const data = state.node?.id === r.id ? state.node.data : null;
    children = data ? nodeView(ctx, data, state.status) : state.errors.node ? messageView('Clinic not available', 'The clinic could not be shown.') : loading;
  } else children = messageView('Page not found', `There is no page at ${location.hash}.`);
  setPageError(errors.filter(Boolean).join(' '));

  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href') === '#/' ? 'overview' : a.getAttribute('href')?.slice(2);
    if (target === r.name || (r.name === 'study' && target === 'overview') || (r.name === 'node' && target === 'clinics') || (r.name === 'release' && target === 'releases') || (r.name === 'seriesOne' && target === 'series')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  replaceKeepingState(view(), children);
  const heading = view().querySelector('h1');
  document.title = `${heading?.textContent?.trim() ?? 'Dashboard'} — fedlhs coordinator`;
  if (moveFocus) heading?.focus();
}

/** @param {string} text */
function setPageError(text) {
  const el = $('page-error');
  if (el.textContent !== text) el.textContent = text;
  el.hidden = text === '';
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let noticeTimer;
/** Announce a completed action (role="status"), for ten seconds. @param {string} message */
function notify(message) {
  $('notice').textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($('notice').textContent = ''), 10000);
}

async function onRouteChange() {
  if (!state.operator) return;
  state.route = parseRoute();
  state.errors.study = null;
  state.errors.node = null;
  state.errors.audit = null;
  state.errors.releases = null;
  state.errors.series = null;
  render(true);
  const route = state.route;
  await loadRoute();
  if (state.route === route) render(true);
}

/** Live updates: called (coalesced) after change events and after every (re)connect. */
const trigger = coalesce(async ({ all, studyIds }) => {
  if (!state.operator) return;
  const r = state.route;
  const tasks = [loadStatus()];
  if (r.name === 'study' && (all || studyIds.has(r.id))) tasks.push(loadStudy(r.id));
  if (r.name === 'node') tasks.push(loadNode(r.id));
  if (r.name === 'audit' && canReadAudit()) tasks.push(loadAudit());
  // A release appears when a study completes and aliases change without a study id: reload on any change.
  if (r.name === 'releases') tasks.push(loadReleases());
  if (r.name === 'release') tasks.push(loadRelease(r.studyName, r.version));
  // A series changes with its runs' studies and its champion alias too: reload on any change.
  if (r.name === 'series') tasks.push(loadSeriesList());
  if (r.name === 'seriesOne') tasks.push(loadSeries(r.seriesName));
  const results = await Promise.all(tasks);
  if (results.some(Boolean) && state.route === r) render();
}, REFRESH_INTERVAL_MS);

/** @type {(() => void) | null} */
let unsubscribe = null;
let failures = 0;

/** @param {'connecting' | 'live' | 'reconnecting'} s */
function setLive(s) {
  const el = $('live');
  el.dataset.state = s;
  el.textContent = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' }[s];
  el.title = s === 'live' ? 'Receiving live updates from the coordinator' : 'Live updates paused; the page may be out of date';
}

function connectEvents() {
  unsubscribe?.();
  setLive('connecting');
  unsubscribe = subscribe({
    onChange: trigger,
    onOpen: () => {
      failures = 0;
      trigger(null); // events may have been missed while disconnected
    },
    onState: (s) => {
      if (s !== 'closed') return setLive(s);
      // The server refused the stream (EventSource does not retry that): is the session gone?
      setLive('reconnecting');
      const delay = RESUBSCRIBE_MS[Math.min(failures++, RESUBSCRIBE_MS.length - 1)];
      setTimeout(async () => {
        if (!state.operator) return;
        try {
          await api.session();
          connectEvents();
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) showLogin('Your session has ended. Log in again.');
          else connectEvents();
        }
      }, delay);
    },
  });
}

/** @param {import('./api.js').Operator} operator */
async function startSession(operator) {
  state.operator = operator;
  $('operator').replaceChildren(operator.name, ' ', h('span', { class: `role role-${operator.role}` }, operator.role));
  $('viewer-note').hidden = operator.role === 'admin';
  $('nav-audit').hidden = operator.role !== 'admin';
  $('login-view').hidden = true;
  for (const id of ['nav', 'user', 'live', 'view']) $(id).hidden = false;
  state.route = parseRoute();
  render(true);
  connectEvents();
  const route = state.route;
  await Promise.all([loadStatus(), loadRoute(), route.name === 'overview' ? null : loadReports()]);
  if (state.route === route) render(true);
}

/** @param {string | null} message */
function showLogin(message) {
  unsubscribe?.();
  unsubscribe = null;
  Object.assign(state, { operator: null, status: null, reports: null, study: null, node: null, audit: null, releases: null, release: null, seriesList: null, series: null, errors: { status: null, study: null, node: null, audit: null, releases: null, series: null } });
  seen.clear();
  for (const d of document.querySelectorAll('dialog[open]')) /** @type {HTMLDialogElement} */ (d).close();
  for (const id of ['nav', 'user', 'live', 'view', 'viewer-note', 'page-error']) $(id).hidden = true;
  view().replaceChildren();
  $('login-view').hidden = false;
  $('login-error').textContent = message ?? '';
  $('login-error').hidden = !message;
  document.title = 'Log in — fedlhs coordinator';
  $('token').focus();
}

async function onLogin(/** @type {SubmitEvent} */ e) {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  const button = /** @type {HTMLButtonElement} */ ($('login'));
  button.disabled = true;
  $('login-error').hidden = true;
  try {
    const { operator } = await api.login(input.value);
    input.value = '';
    await startSession(operator);
  } catch (err) {
    $('login-error').textContent = describeError(err);
    $('login-error').hidden = false;
    input.focus();
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function boot() {
  initDialogs();
  setUnauthenticatedHandler(() => {
    if (state.operator) showLogin('Your session has ended. Log in again.');
  });
  $('login-form').addEventListener('submit', onLogin);
  // Logged out locally even if the call fails; the cookie then expires on its own.
  $('logout').addEventListener('click', () => void api.logout().catch(() => {}).finally(() => showLogin(null)));
  window.addEventListener('hashchange', () => void onRouteChange());
  setInterval(() => refreshTimes(view()), 10000);
  try {
    const { operator } = await api.session();
    await startSession(operator);
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 401 ? null : describeError(err));
  }
}

void boot();
