/**
 * Domain errors. Each carries a stable string `code` that programs branch on, a message for
 * people, and the original `cause`. The coordinator maps codes to gRPC status codes at one
 * boundary; internal details stay in `cause` and in logs.
 */
export type FedlhsErrorCode =
  | 'INVALID_MANIFEST'
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'DATA_LOSS'
  | 'ABORTED'
  | 'UNAVAILABLE'
  | 'INVALID_TRANSITION'
  | 'INTERNAL';

export class FedlhsError extends Error {
  readonly code: FedlhsErrorCode;
  /** Machine-readable detail, e.g. a RejectionReason name for rejected contributions. */
  readonly reason: string | undefined;

  constructor(code: FedlhsErrorCode, message: string, options: { cause?: unknown; reason?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FedlhsError';
    this.code = code;
    this.reason = options.reason;
  }
}

/** True if `value` is a FedlhsError, optionally with the given code. */
export function isFedlhsError(value: unknown, code?: FedlhsErrorCode): value is FedlhsError {
  return value instanceof FedlhsError && (code === undefined || value.code === code);
}
