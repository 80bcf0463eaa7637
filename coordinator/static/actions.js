// Admin actions: start and stop studies, issue join tokens, revoke nodes. Each one opens the
// shared confirmation dialog stating what will happen, then calls the API.
//
// Roles are enforced by the coordinator, not here: the UI only disables buttons for viewers as a
// courtesy. "Issue join token" stays enabled for viewers on purpose, so a viewer who tries it
// sees the server's 403 PERMISSION_DENIED message (in the dialog's role="alert" element) — the
// browser test relies on that to show the server is the authority.

import { api } from './api.js';
import { confirmAction, showJoinToken } from './dialogs.js';
import { h } from './dom.js';

/**
 * @typedef {import('./api.js').Operator} Operator
 * @typedef {{ operator: Operator, notify: (message: string) => void, refresh: () => void }} ActionContext
 */

/**
 * A button for an admin-only action. For a viewer it is disabled and described by the
 * "viewer note" in the page header, unless `forViewers` keeps it enabled (see above).
 * @param {ActionContext} ctx
 * @param {{ label: string, onClick: () => void, id?: string, key?: string, danger?: boolean, forViewers?: boolean, disabled?: boolean, accessibleLabel?: string }} o
 */
export function adminButton(ctx, o) {
  const viewer = ctx.operator.role !== 'admin';
  const blocked = viewer && !o.forViewers;
  return h('button', {
    type: 'button', id: o.id, 'data-key': o.key, class: o.danger ? 'danger' : null,
    disabled: blocked || o.disabled === true, 'aria-label': o.accessibleLabel,
    title: blocked ? 'Needs the admin role' : null, 'aria-describedby': viewer ? 'viewer-note' : null,
    onclick: o.onClick,
  }, o.label);
}

/** @param {ActionContext} ctx */
export async function startStudy(ctx) {
  const textarea = h('textarea', { id: 'manifest', rows: 12, required: true, spellcheck: 'false', 'aria-describedby': 'manifest-help' });
  const file = h('input', { id: 'manifest-file', type: 'file', accept: '.json,.yaml,.yml,application/json,text/yaml' });
  file.addEventListener('change', async () => {
    const chosen = /** @type {HTMLInputElement} */ (file).files?.[0];
    if (chosen) {
      /** @type {HTMLTextAreaElement} */ (textarea).value = await chosen.text();
      textarea.dispatchEvent(new Event('input', { bubbles: true }));
    }
  });
  const text = () => /** @type {HTMLTextAreaElement} */ (textarea).value;
  const created = /** @type {import('./api.js').StudySummary | undefined} */ (await confirmAction({
    title: 'Start study',
    fields: [
      h('label', { for: 'manifest' }, 'Study manifest (JSON or YAML)'),
      textarea,
      h('p', { id: 'manifest-help', class: 'help' }, 'The coordinator validates the manifest and refuses it with the reason if anything is wrong.'),
      h('label', { for: 'manifest-file' }, 'Or load the manifest from a file'),
      file,
    ],
    message: () => {
      const name = manifestName(text());
      return `Start ${name ? `study “${name}”` : 'this study'} now? Connected clinics that approve it will be asked to join round 1.`;
    },
    confirmLabel: 'Start study',
    action: () => api.startStudy(text()),
  }));
  if (created) {
    ctx.notify(`Study ${created.name} started.`);
    location.hash = `#/studies/${encodeURIComponent(created.id)}`;
    ctx.refresh();
  }
}

/**
 * The study name from manifest text, for the confirmation message only (the server parses it).
 * @param {string} text
 */
function manifestName(text) {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed?.name === 'string' ? parsed.name : null;
  } catch {
    return /^name:\s*["']?([^"'#\n]+?)["']?\s*(#.*)?$/m.exec(text)?.[1] ?? null;
  }
}

/** @param {ActionContext} ctx */
export async function issueJoinToken(ctx) {
  const site = h('input', { id: 'token-site', type: 'text', required: true, maxlength: 100, autocomplete: 'off', placeholder: 'clinic-a' });
  const hours = h('input', { id: 'token-hours', type: 'number', required: true, min: 1, max: 720, step: 1, value: 24 });
  const siteValue = () => /** @type {HTMLInputElement} */ (site).value.trim();
  const hoursValue = () => Number(/** @type {HTMLInputElement} */ (hours).value);
  const issued = /** @type {{ token: string, site: string, expiresAt: string } | undefined} */ (await confirmAction({
    title: 'Issue join token',
    fields: [
      h('label', { for: 'token-site' }, 'Site name'), site,
      h('label', { for: 'token-hours' }, 'Valid for (hours)'), hours,
    ],
    message: () => `Issue a join token for site “${siteValue() || '…'}”, valid for ${hoursValue() || '…'} hours? ` +
      'Anyone holding it can enrol a node as this site until it expires. It is shown only once.',
    confirmLabel: 'Issue token',
    action: () => api.issueJoinToken(siteValue(), Math.round(hoursValue() * 3600)),
  }));
  if (issued) {
    showJoinToken(issued);
    ctx.refresh();
  }
}

/**
 * @param {ActionContext} ctx
 * @param {import('./api.js').ClinicNode} node
 */
export async function revokeNode(ctx, node) {
  const done = await confirmAction({
    title: 'Revoke node',
    message: () => `Revoke node ${node.id} (${node.siteName})? Its agent will be disconnected and its credentials ` +
      'stop working; the site needs a new join token to take part again.',
    confirmLabel: 'Revoke',
    danger: true,
    action: () => api.revokeNode(node.id).then(() => true),
  });
  if (done) {
    ctx.notify(`Node ${node.id} (${node.siteName}) revoked.`);
    ctx.refresh();
  }
}

/**
 * @param {ActionContext} ctx
 * @param {{ id: string, name: string }} study
 */
export async function stopStudy(ctx, study) {
  const done = await confirmAction({
    title: 'Stop study',
    message: () => `Stop study ${study.name} (${study.id})? The round in progress is abandoned and no further ` +
      'rounds will run; committed rounds are kept. This cannot be undone.',
    confirmLabel: 'Stop study',
    danger: true,
    action: () => api.stopStudy(study.id).then(() => true),
  });
  if (done) {
    ctx.notify(`Study ${study.name} stopped.`);
    ctx.refresh();
  }
}
