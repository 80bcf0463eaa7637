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
}

/**
 * Turns any thrown value into the admin API's answer. Errors in the deprecated form keep the
 * old body `{code, message}`; in-process codes and other values answer 500 with a fixed text.
 */
export function toHttpError(err: unknown): HttpError {
  if (isFedlhsError(err) && err.onWire) {
    const status = HTTP_STATUS[err.status];
    if (err.legacy) return { status, body: { error: { code: err.code, message: err.message } }, internal: false };
    const body: HttpErrorBody = { error: { code: err.code, status: err.status, message: err.message } };
    if (err.details !== undefined) body.error.details = err.details;
    return { status, body, internal: false };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', status: 'INTERNAL', message: 'internal error (see coordinator log)' } }, internal: true };
}
