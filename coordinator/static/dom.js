// DOM building and formatting helpers shared by the views.
//
// Every piece of text from the network (site names, error messages, manifest fields) reaches the
// page through text nodes or attribute values set here, never through innerHTML, so it is escaped
// by construction: no module of the dashboard uses innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>} Attrs
 */

/**
 * Create an HTML element. Attributes named on* with a function value become event listeners
 * (no inline handler attributes: the CSP forbids them); `false`, null and undefined are skipped.
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/**
 * Create an SVG element (same conventions as h()).
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {Attrs} attrs
 * @param {(Child | Child[])[]} children
 * @returns {E}
 */
function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (typeof value === 'function') el.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : String(child));
  }
  return el;
}

/**
 * A table with a caption, column headers (<th scope="col">) and the given body rows.
 * @param {{ id?: string, caption: string, columns: string[], rows: HTMLElement[], empty: string, className?: string }} o
 */
export function table({ id, caption, columns, rows, empty, className }) {
  const body = rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty))];
  return h('div', { class: 'table-wrap' },
    h('table', { id, class: className },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, body)));
}

/**
 * A coloured state label; the text carries the meaning, the colour only repeats it.
 * @param {string} state
 */
export function badge(state) {
  return h('span', { class: `badge state-${state.toLowerCase()}` }, state.replaceAll('_', ' '));
}

const relFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/**
 * A Date from an ISO string or epoch milliseconds (some fields, e.g. a round's deadline, may be
 * either), or null when there is none or it does not parse.
 * @param {string | number | null | undefined} when
 */
export function toDate(when) {
  if (when === null || when === undefined || when === '') return null;
  const d = new Date(when);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** @param {string | number | null | undefined} when */
export function formatDateTime(when) {
  const d = toDate(when);
  return d ? dateFormat.format(d) : '—';
}

/** @param {Date} d @param {number} [now] */
export function relativeTime(d, now = Date.now()) {
  const seconds = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 5) return 'just now';
  if (abs < 60) return relFormat.format(seconds, 'second');
  if (abs < 3600) return relFormat.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relFormat.format(Math.round(seconds / 3600), 'hour');
  return relFormat.format(Math.round(seconds / 86400), 'day');
}

/**
 * A <time> element showing relative time, with the absolute time as its tooltip. Its text is
 * refreshed by refreshTimes() so "2 minutes ago" stays true between server events.
 * @param {string | number | null | undefined} when
 * @param {string} [never] text when there is no time
 */
export function timeAgo(when, never = '—') {
  const d = toDate(when);
  if (!d) return h('span', { class: 'muted' }, never);
  return h('time', { datetime: d.toISOString(), title: dateFormat.format(d), 'data-relative': true }, relativeTime(d));
}

/** Update the text of every relative <time> under root. @param {ParentNode} root */
export function refreshTimes(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('time[data-relative]')) {
    const d = toDate(el.getAttribute('datetime'));
    if (d) el.textContent = relativeTime(d, now);
  }
}

/** @param {number | null | undefined} bytes */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '—';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** @param {number | null | undefined} ms */
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min ${Math.round(sec % 60)} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** @param {number} seconds */
export function formatUptime(seconds) {
  return formatDuration(seconds * 1000);
}

/** @param {number | null | undefined} v @param {number} [digits] */
export function formatNumber(v, digits = 3) {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits);
}

/**
 * Replace the children of root, keeping what the user was doing: keyboard focus (by id or
 * data-key) and which <details> were open (by data-key). Live updates redraw whole views, and
 * without this a keyboard user would be thrown back to the top of the page on every event.
 * @param {HTMLElement} root
 * @param {Node[]} children
 */
export function replaceKeepingState(root, children) {
  const active = document.activeElement;
  const focus = active && root.contains(active) ? focusKey(active) : null;
  const open = new Set([...root.querySelectorAll('details[open][data-key]')].map((d) => d.getAttribute('data-key')));
  root.replaceChildren(...children);
  for (const d of root.querySelectorAll('details[data-key]')) {
    if (open.has(d.getAttribute('data-key'))) d.setAttribute('open', '');
  }
  if (focus) restoreFocus(focus, { preventScroll: true });
}

/**
 * A key that finds "the same" control again after a redraw: its id, else its data-key.
 * @param {Element | null} el
 * @returns {string | null}
 */
export function focusKey(el) {
  if (!el) return null;
  if (el.id) return `#${el.id}`;
  const key = el.getAttribute('data-key');
  return key ? `[data-key="${CSS.escape(key)}"]` : null;
}

/** Focus the element found by focusKey(), if it is still in the page. @param {string | null} key @param {FocusOptions} [options] */
export function restoreFocus(key, options) {
  const target = key ? document.querySelector(key.startsWith('#') ? `#${CSS.escape(key.slice(1))}` : key) : null;
  if (target instanceof HTMLElement) target.focus(options);
}
