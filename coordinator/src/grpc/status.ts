import * as grpc from '@grpc/grpc-js';
import { isFedlhsError } from '@fedlhs/core';
import { REJECTION_REASON_KEY } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';

/** Trailing metadata key carrying a domain error's code (an `ERRORS` key) on every domain error. */
export const ERROR_CODE_KEY = 'fedlhs-error-code';

/** Trailing metadata key of a rejection: "true" if its task is still open for the caller, else "false". */
export const TASK_OPEN_KEY = 'fedlhs-task-open';

/** What a handler sends when it fails: never undefined fields, so callers need no fallbacks. */
export interface FailedStatus {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

const INTERNAL_TEXT = 'internal error (see coordinator log)';

/**
 * The one boundary where any thrown value becomes a gRPC status (the only place in the
 * coordinator that maps errors to gRPC codes).
 *
 * - A domain error answers the gRPC code named by its status class, with its message, and the
 *   trailer `fedlhs-error-code: <code>`; a rejection adds `fedlhs-rejection-reason: <code>`
 *   and, once the intake has decided it (`taskOpen`), `fedlhs-task-open: true|false`.
 * - An error in the deprecated form keeps the old wire form: its class's code, its message,
 *   and `fedlhs-rejection-reason` only when its reason is a rejection code.
 * - In-process codes (`wire: false`) and any other thrown value answer INTERNAL with a fixed
 *   text; what happened is logged (`event: 'grpc.internal'`), never sent.
 */
export function toStatus(err: unknown, log: Logger, method: string): FailedStatus {
  if (isFedlhsError(err) && err.onWire) {
    const metadata = new grpc.Metadata();
    if (!err.legacy) metadata.set(ERROR_CODE_KEY, err.code);
    if (err.isRejection && err.reason !== undefined) metadata.set(REJECTION_REASON_KEY, err.reason);
    if (err.isRejection && err.taskOpen !== undefined) metadata.set(TASK_OPEN_KEY, String(err.taskOpen));
    return { code: grpc.status[err.status], details: err.message, metadata };
  }
  log.error({ event: 'grpc.internal', err, method }, 'internal error in gRPC handler');
  return { code: grpc.status.INTERNAL, details: INTERNAL_TEXT, metadata: new grpc.Metadata() };
}

/** The bearer credential of a call, if any. */
export function authorizationOf(call: { metadata: grpc.Metadata }): string | undefined {
  const value = call.metadata.get('authorization')[0];
  return typeof value === 'string' ? value : undefined;
}
