import { isFedlhsError, type StatusClass } from '@fedlhs/core';

/** The HTTP status of each status class: the only place the admin API maps errors. */
export const HTTP_STATUS: Readonly<Record<StatusClass, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  FAILED_PRECONDITION: 409,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  DEADLINE_EXCEEDED: 504,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  INTERNAL: 500,
};

/**
 * The JSON body of an admin API error. `code` is the specific code; `status` is the class
 * (what `code` held before codes became specific, so clients can switch over gradually).
 */
export interface HttpErrorBody {
  error: { code: string; status?: StatusClass; message: string; details?: unknown };
}

export interface HttpError {
  status: number;
  body: HttpErrorBody;
  /** Not a domain error the client may see: the caller logs `err`, the client gets a fixed text. */
  internal: boolean;
  /** Headers the answer needs (Retry-After of a RATE_LIMITED, Allow of a 405). */
  headers?: Record<string, string>;
}

/**
 * HTTP statuses more specific than a status class's, for errors about the request itself rather
 * than the domain: 405 (method), 413 (body too large), 415 (body not JSON). The error keeps its
 * code and class (INVALID_ARGUMENT), so clients that only know the class still read it right.
 */
export type SpecificHttpStatus = 405 | 413 | 415;

const SPECIFIC = new WeakMap<object, { status: SpecificHttpStatus; headers?: Record<string, string> }>();

/** `err`, to be answered with `status` (and `headers`) instead of its class's HTTP status. */
export function withHttpStatus<E extends object>(err: E, status: SpecificHttpStatus, headers?: Record<string, string>): E {
  SPECIFIC.set(err, headers === undefined ? { status } : { status, headers });
  return err;
}

/**
 * Turns any thrown value into the admin API's answer. Errors in the deprecated form keep the
 * old body `{code, message}`; in-process codes and other values answer 500 with a fixed text.
 */
export function toHttpError(err: unknown): HttpError {
  if (isFedlhsError(err) && err.onWire) {
    const specific = SPECIFIC.get(err);
    const status = specific?.status ?? HTTP_STATUS[err.status];
    if (err.legacy) return { status, body: { error: { code: err.code, message: err.message } }, internal: false };
    const body: HttpErrorBody = { error: { code: err.code, status: err.status, message: err.message } };
    if (err.details !== undefined) body.error.details = err.details;
    const headers = { ...specific?.headers };
    // RFC 9110 §10.2.3: whole seconds; at least 1 so a client does not retry at once.
    if (isFedlhsError(err, 'RATE_LIMITED')) headers['retry-after'] = String(Math.max(1, Math.ceil(err.details.retryAfterMs / 1000)));
    return Object.keys(headers).length === 0 ? { status, body, internal: false } : { status, body, internal: false, headers };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', status: 'INTERNAL', message: 'internal error (see coordinator log)' } }, internal: true };
}
