// The shared confirmation dialog (#dialog, buttons #cancel and #confirm) and the one-time
// join-token dialog. Every admin action goes through confirmAction(): the dialog states what
// will happen, runs the call on Confirm, and shows the server's refusal in its role="alert"
// element without closing, so the operator can correct the input or read why.

import { ApiError } from './api.js';
import { focusKey, formatDateTime, restoreFocus } from './dom.js';

/**
 * @typedef {{ title: string, message: () => string, fields?: HTMLElement[], confirmLabel: string,
 *   danger?: boolean, action: () => Promise<unknown> }} ConfirmOptions
 */

const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

// opener is a focusKey(), not an element: a live update may redraw the button while the dialog is open.
/** @type {{ options: ConfirmOptions, resolve: (v: unknown) => void, opener: string | null } | null} */
let current = null;
let busy = false;

/** Wire the dialogs' buttons once, at start-up. */
export function initDialogs() {
  const dialog = /** @type {HTMLDialogElement} */ (byId('dialog'));
  const form = /** @type {HTMLFormElement} */ (byId('dialog-form'));
  form.addEventListener('input', () => {
    if (current) byId('dialog-message').textContent = current.options.message();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault(); // keep the dialog open until the server has answered
    void runAction();
  });
  byId('cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('cancel', (e) => {
    if (busy) e.preventDefault();
  });
  dialog.addEventListener('close', () => {
    const done = current;
    current = null;
    byId('dialog-fields').replaceChildren();
    if (done) {
      done.resolve(undefined);
      restoreFocus(done.opener);
    }
  });

  const tokenDialog = /** @type {HTMLDialogElement} */ (byId('token-dialog'));
  byId('copy-token').addEventListener('click', () => void copyToken());
  byId('token-close').addEventListener('click', () => tokenDialog.close());
  tokenDialog.addEventListener('close', () => {
    // The token is shown once: do not leave it in the page after the dialog closes.
    /** @type {HTMLInputElement} */ (byId('token-value')).value = '';
    byId('copy-status').textContent = '';
    restoreFocus(secretOpener);
  });
}

/**
 * Ask for confirmation, then run the action. Resolves with the action's result, or undefined if
 * the operator cancelled.
 * @param {ConfirmOptions} options
 * @returns {Promise<unknown>}
 */
export function confirmAction(options) {
  const dialog = /** @type {HTMLDialogElement} */ (byId('dialog'));
  if (dialog.open) dialog.close();
  return new Promise((resolve) => {
    current = { options, resolve, opener: focusKey(document.activeElement) };
    byId('dialog-title').textContent = options.title;
    byId('dialog-fields').replaceChildren(...(options.fields ?? []));
    byId('dialog-message').textContent = options.message();
    showError(null);
    const confirm = /** @type {HTMLButtonElement} */ (byId('confirm'));
    confirm.textContent = options.confirmLabel;
    confirm.classList.toggle('danger', options.danger === true);
    confirm.disabled = false;
    dialog.showModal();
    // Fields first; for a bare confirmation start on Cancel, so Enter alone does not act.
    const first = dialog.querySelector('#dialog-fields input, #dialog-fields textarea');
    (first instanceof HTMLElement ? first : byId('cancel')).focus();
  });
}

async function runAction() {
  if (!current || busy) return;
  const active = current;
  const dialog = /** @type {HTMLDialogElement} */ (byId('dialog'));
  const confirm = /** @type {HTMLButtonElement} */ (byId('confirm'));
  busy = true;
  confirm.disabled = true;
  dialog.setAttribute('aria-busy', 'true');
  showError(null);
  try {
    const result = await active.options.action();
    current = null; // resolve with the result, not with the close handler's undefined
    active.resolve(result);
    dialog.close();
    restoreFocus(active.opener);
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
    confirm.disabled = false;
    dialog.removeAttribute('aria-busy');
  }
}

/** @param {unknown} err */
function showError(err) {
  const el = byId('dialog-error');
  el.textContent = err === null ? '' : describeError(err);
  el.hidden = err === null;
}

/**
 * Text for an error from the API (the server's own message, plus its code for IT staff).
 * @param {unknown} err
 */
export function describeError(err) {
  if (err instanceof ApiError) {
    const prefix = err.status === 403 ? 'Not allowed: ' : '';
    return `${prefix}${err.message}${err.status > 0 ? ` (${err.code})` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Where focus returns when the secret dialog closes (a focusKey). */
let secretOpener = '#issue-token';

/**
 * Show a secret (a join token, an operator token) once, with a Copy button.
 * @param {{ title: string, help: string, label: string, value: string, opener: string }} o
 */
export function showSecret(o) {
  secretOpener = o.opener;
  byId('token-dialog-title').textContent = o.title;
  byId('token-dialog-help').textContent = o.help;
  byId('token-value-label').textContent = o.label;
  const input = /** @type {HTMLInputElement} */ (byId('token-value'));
  input.value = o.value;
  /** @type {HTMLDialogElement} */ (byId('token-dialog')).showModal();
  input.select();
}

/**
 * Show a freshly issued join token, once, with a Copy button.
 * @param {{ token: string, site: string, expiresAt: string }} issued
 */
export function showJoinToken(issued) {
  showSecret({
    title: `Join token for ${issued.site}`, label: 'Join token', value: issued.token, opener: '#issue-token',
    help: `Copy it now: it is shown only once. Valid until ${formatDateTime(issued.expiresAt)}.`,
  });
}

async function copyToken() {
  const input = /** @type {HTMLInputElement} */ (byId('token-value'));
  const status = byId('copy-status');
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch {
    // navigator.clipboard needs a secure context, and the admin port is often plain HTTP on the
    // hospital network: fall back to selecting the text and the older copy command.
    input.select();
    copied = document.execCommand('copy');
  }
  status.textContent = copied ? 'Copied to the clipboard.' : 'Could not copy: the token is selected, press Ctrl+C.';
}
