// Admin actions: start and stop studies, issue join tokens, revoke nodes, add operators, name
// releases (aliases). Each one opens the shared confirmation dialog stating what will happen,
// then calls the API.
//
// A viewer gets no admin controls at all: adminButton() returns null for them, so the buttons are
// not in the page (not merely disabled). That is presentation only: the coordinator checks the
// role of every request and answers a viewer's admin call with 403 PERMISSION_DENIED.

import { api } from './api.js';
import { confirmAction, showJoinToken, showSecret } from './dialogs.js';
import { h } from './dom.js';

/**
 * @typedef {import('./api.js').Operator} Operator
 * @typedef {{ operator: Operator, notify: (message: string) => void, refresh: () => void }} ActionContext
 */

/** Whether the signed-in operator may see admin controls. @param {ActionContext} ctx */
export function isAdmin(ctx) {
  return ctx.operator.role === 'admin';
}

/**
 * A button for an admin-only action (marked data-admin-action), or null for anyone but an admin.
 * @param {ActionContext} ctx
 * @param {{ label: string, onClick: () => void, id?: string, key?: string, danger?: boolean, disabled?: boolean, accessibleLabel?: string }} o
 * @returns {HTMLElement | null}
 */
export function adminButton(ctx, o) {
  if (!isAdmin(ctx)) return null;
  return h('button', {
    type: 'button', id: o.id, 'data-key': o.key, 'data-admin-action': true, class: o.danger ? 'danger' : null,
    disabled: o.disabled === true, 'aria-label': o.accessibleLabel, onclick: o.onClick,
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

/** @param {ActionContext} ctx */
export async function createOperator(ctx) {
  const name = h('input', { id: 'operator-name', type: 'text', required: true, maxlength: 64, autocomplete: 'off', placeholder: 'alice' });
  const role = h('select', { id: 'operator-role' }, h('option', { value: 'viewer', selected: true }, 'viewer (read-only)'), h('option', { value: 'admin' }, 'admin'));
  const nameValue = () => /** @type {HTMLInputElement} */ (name).value.trim();
  const roleValue = () => /** @type {'viewer' | 'admin'} */ (/** @type {HTMLSelectElement} */ (role).value);
  const created = /** @type {{ name: string, role: string, token: string } | undefined} */ (await confirmAction({
    title: 'Add operator',
    fields: [
      h('label', { for: 'operator-name' }, 'Name'), name,
      h('label', { for: 'operator-role' }, 'Role'), role,
    ],
    message: () => `Create operator “${nameValue() || '…'}” with the ${roleValue()} role? ` +
      (roleValue() === 'admin' ? 'Admins can start and stop studies, issue join tokens, revoke nodes, add operators and set release aliases. ' : 'Viewers can see everything on this dashboard but change nothing. ') +
      'The token is shown only once.',
    confirmLabel: 'Create operator',
    action: () => api.createOperator(nameValue(), roleValue()),
  }));
  if (created) {
    showSecret({ title: `Operator token for ${created.name} (${created.role})`, help: 'Copy it now and give it to the operator: it is shown only once.', label: 'Operator token', value: created.token, opener: '#create-operator' });
    ctx.refresh();
  }
}

/** Aliases: 1-32 lowercase letters, digits or "-", and not a number (as the coordinator checks). */
const ALIAS_PATTERN = '[a-z0-9\\-]{1,32}';

/**
 * Point an alias of a study name at a release version (moving it if it is set elsewhere).
 * @param {ActionContext} ctx
 * @param {{ studyName: string, version: number }} release the release the button belongs to
 * @param {{ alias: string, version: number }[]} aliases the study name's aliases now
 */
export async function setReleaseAlias(ctx, release, aliases) {
  const alias = h('input', { id: 'alias-name', type: 'text', required: true, maxlength: 32, pattern: ALIAS_PATTERN, autocomplete: 'off', spellcheck: 'false', placeholder: 'champion', 'aria-describedby': 'alias-help' });
  const aliasValue = () => /** @type {HTMLInputElement} */ (alias).value.trim();
  const done = /** @type {{ alias: string, version: number, previous: number | null } | undefined} */ (await confirmAction({
    title: `Name ${release.studyName} v${release.version}`,
    fields: [
      h('label', { for: 'alias-name' }, 'Alias'), alias,
      h('p', { id: 'alias-help', class: 'help' }, 'For example champion or challenger: 1–32 lowercase letters, digits or “-”, not a number. Clinics can deploy a release by its alias.'),
    ],
    message: () => {
      const name = aliasValue();
      const current = aliases.find((a) => a.alias === name);
      const moving = current && current.version !== release.version ? ` It now names v${current.version} and will be moved.` : '';
      return `Point ${release.studyName}@${name || '…'} at version ${release.version}?${moving} The change is recorded in the audit log under your name.`;
    },
    confirmLabel: 'Set alias',
    action: () => api.setReleaseAlias(release.studyName, aliasValue(), release.version),
  }));
  if (done) {
    ctx.notify(`${release.studyName}@${done.alias} now names version ${done.version}.`);
    ctx.refresh();
  }
}

/**
 * @param {ActionContext} ctx
 * @param {{ studyName: string, alias: string, version: number }} a
 */
export async function removeReleaseAlias(ctx, a) {
  const done = await confirmAction({
    title: 'Remove alias',
    message: () => `Remove the alias ${a.studyName}@${a.alias} (now version ${a.version})? Clinics that follow this alias will no longer see it. ` +
      'The change is recorded in the audit log under your name.',
    confirmLabel: 'Remove alias',
    danger: true,
    action: () => api.removeReleaseAlias(a.studyName, a.alias).then(() => true),
  });
  if (done) {
    ctx.notify(`Alias ${a.studyName}@${a.alias} removed.`);
    ctx.refresh();
  }
}
