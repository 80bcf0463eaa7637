/**
 * Domain errors: one class, `FedlhsError`, whose `code` comes from one table, `ERRORS`. A code is
 * specific and stable (programs branch on it; `STALE`, not `FAILED_PRECONDITION`) and names its
 * status class, which the coordinator maps to a gRPC status in `grpc/status.ts` and to an HTTP
 * status in `admin/http-errors.ts`, and nowhere else. Typed `details` carry the machine-readable
 * part; the original `cause` and anything internal stay in the process and its logs.
 */

/**
 * How an error is answered on the wire: the gRPC status code of the same name, and the HTTP
 * status of `admin/http-errors.ts`.
 */
export type StatusClass =
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'DEADLINE_EXCEEDED'
  | 'ABORTED'
  | 'UNAVAILABLE'
  | 'DATA_LOSS'
  | 'INTERNAL';

/** One row of `ERRORS`. */
export interface ErrorSpec {
  readonly status: StatusClass;
  /**
   * A rejected contribution (update, statistics or evaluation report): the code is a proto
   * `RejectionReason` name, sent as the `fedlhs-rejection-reason` trailer and recorded.
   */
  readonly rejection?: true;
  /** For a rejection: the task ends REJECTED, so a corrected resend cannot pass. */
  readonly closesTask?: boolean;
  /** `false`: never leaves the process; a boundary answers INTERNAL and logs it. */
  readonly wire?: false;
}

const rej = <S extends StatusClass, T extends boolean>(status: S, closesTask: T) => ({ status, rejection: true, closesTask }) as const;

/**
 * Every error code, with its status class and flags. Codes are never renamed or reused:
 * clients, logs and stored rejections branch on them.
 */
export const ERRORS = {
  // Contributions. The `rejection` codes are exactly proto RejectionReason without its prefix
  // (coordinator/src/grpc/status.test.ts compares the sets).
  UNKNOWN_TASK: rej('NOT_FOUND', false),
  NOT_ASSIGNED: rej('PERMISSION_DENIED', false),
  STALE: rej('FAILED_PRECONDITION', false),
  DUPLICATE_CONFLICT: rej('ALREADY_EXISTS', false),
  REPLAYED: rej('ALREADY_EXISTS', true),
  /** Framing: a fixed resend may pass. */
  BAD_HEADER: rej('INVALID_ARGUMENT', false),
  SHAPE_MISMATCH: rej('INVALID_ARGUMENT', true),
  NON_FINITE: rej('INVALID_ARGUMENT', true),
  NORM_BOUND: rej('INVALID_ARGUMENT', true),
  INCONSISTENT_STATISTICS: rej('INVALID_ARGUMENT', true),
  LENGTH_MISMATCH: rej('DATA_LOSS', false),
  DIGEST_MISMATCH: rej('DATA_LOSS', false),
  INVALID_METRICS: rej('INVALID_ARGUMENT', true),
  BAD_EXAMPLE_COUNT: rej('INVALID_ARGUMENT', true),
  /** The task is closed; nothing more is accepted for it. */
  TASK_CLOSED: rej('FAILED_PRECONDITION', false),
  /**
   * The uploader sent nothing for transfer.uploadIdleSeconds: the coordinator ended the call.
   * Not closing: a resend may pass (issue 11; was recorded as LENGTH_MISMATCH).
   */
  UPLOAD_STALLED: rej('DEADLINE_EXCEEDED', false),
  /** The upload stream was cancelled or broke before its end (the client or the network). Not closing. */
  UPLOAD_CANCELLED: rej('ABORTED', false),
  /** A download whose client took no data for transfer.downloadIdleSeconds was ended (not a rejection). */
  DOWNLOAD_STALLED: { status: 'DEADLINE_EXCEEDED' },
  /** Another upload for the task is still running; retry after it ends. */
  UPLOAD_IN_PROGRESS: { status: 'ABORTED' },

  // Identity and administration.
  CREDENTIAL_INVALID: { status: 'UNAUTHENTICATED' },
  JOIN_TOKEN_INVALID: { status: 'UNAUTHENTICATED' },
  SITE_MISMATCH: { status: 'PERMISSION_DENIED' },
  ROLE_REQUIRED: { status: 'PERMISSION_DENIED' },
  /** A browser request from another origin (admin API). */
  ORIGIN_REFUSED: { status: 'PERMISSION_DENIED' },
  INVALID_ARGUMENT: { status: 'INVALID_ARGUMENT' },
  /** Was INVALID_MANIFEST. */
  MANIFEST_INVALID: { status: 'INVALID_ARGUMENT' },
  NOT_FOUND: { status: 'NOT_FOUND' },
  STUDY_NOT_RUNNING: { status: 'FAILED_PRECONDITION' },
  ALREADY_REVOKED: { status: 'FAILED_PRECONDITION' },
  /** RenewCertificate on a coordinator that does not issue node certificates (tls.clientCertificates "external"; issue 15). */
  CERTIFICATES_NOT_ISSUED: { status: 'FAILED_PRECONDITION' },
  /**
   * The node CA cannot issue: it has expired, or expires before a certificate issued now would
   * (issue 15). UNAVAILABLE so that agents retry: an operator renews the CA and the next attempt passes.
   */
  NODE_CA_EXPIRED: { status: 'UNAVAILABLE' },
  /**
   * An open transfer stream's client certificate expired or was superseded by a renewal past the
   * grace while the stream ran (issue 15). UNAVAILABLE so that the agent retries on a new
   * connection, which presents its newest certificate.
   */
  CERTIFICATE_ROTATED: { status: 'UNAVAILABLE' },
  OPERATOR_EXISTS: { status: 'ALREADY_EXISTS' },
  /** A series of that name exists already (issue 13). */
  SERIES_EXISTS: { status: 'ALREADY_EXISTS' },
  /** A series cannot start a run now: its last run is running, or its release or the champion decision on it is pending (issue 13). */
  SERIES_BUSY: { status: 'FAILED_PRECONDITION' },
  /** A champion change that changes nothing: the release is champion already, or there is no earlier champion to roll back to (issue 13). */
  CHAMPION_UNCHANGED: { status: 'FAILED_PRECONDITION' },
  /** The series clock is real time: only a coordinator started with series.simulatedClock lets it be moved (issue 13). */
  CLOCK_NOT_SIMULATED: { status: 'FAILED_PRECONDITION' },
  /** A simulation could not go on: what it drives did not do what the scenario needs (the message says what). */
  SIMULATION_FAILED: { status: 'FAILED_PRECONDITION', wire: false },
  CHECKPOINT_EXISTS: { status: 'ALREADY_EXISTS' },
  DATA_DIR_LOCKED: { status: 'FAILED_PRECONDITION' },
  /** A configured bound was reached (issue 11). */
  RESOURCE_LIMIT: { status: 'RESOURCE_EXHAUSTED' },
  /**
   * Too many requests or failures from one source or session in a window (issue 11):
   * `details.limit` names the config key, `details.retryAfterMs` when to try again.
   */
  RATE_LIMITED: { status: 'RESOURCE_EXHAUSTED' },

  // Storage.
  DATA_LOSS: { status: 'DATA_LOSS' },
  STORE_UNAVAILABLE: { status: 'UNAVAILABLE' },
  /**
   * The data directory or database cannot be written (disk full, read-only, I/O error): a
   * condition that may pass (issue 11). `details.kind` says which; nothing committed is touched.
   */
  STORAGE_FAULT: { status: 'UNAVAILABLE' },
  STORE_CONFLICT: { status: 'ABORTED' },
  STORE_VERSION_TOO_NEW: { status: 'FAILED_PRECONDITION' },
  /** This coordinator lost its lease to another (issue 15). */
  FENCED: { status: 'UNAVAILABLE' },
  /**
   * This coordinator is a standby (issue 15, active/standby): it refuses work until it holds the
   * leadership lease; `details.leader` is the active's advertised address when known.
   */
  NOT_LEADER: { status: 'UNAVAILABLE' },

  // In-process only: these never cross the wire.
  ATTEMPT_ABORTED: { status: 'INTERNAL', wire: false },
  STUDY_FAILED: { status: 'INTERNAL', wire: false },
  INVALID_TRANSITION: { status: 'INTERNAL', wire: false },
  CONFIG_INVALID: { status: 'INVALID_ARGUMENT', wire: false },
  /** The agent's data cannot serve the study; `details.readiness` is what it reports (replaces READINESS_* reasons). */
  DATA_NOT_READY: { status: 'FAILED_PRECONDITION', wire: false },
  /** Local EHR data cannot be read or parsed (was reason DATA_ERROR). */
  DATA_INVALID: { status: 'FAILED_PRECONDITION', wire: false },
  /** Local EHR data lacks what the study's feature spec needs (was reason FEATURE_SPEC_UNSUPPORTED). */
  FEATURE_SPEC_UNSUPPORTED: { status: 'FAILED_PRECONDITION', wire: false },
  /**
   * Federated normalisation cannot scale some features (withheld at every clinic, no usable
   * fallback); `details.features` names them. The study fails before training.
   */
  NORMALIZATION_IMPOSSIBLE: { status: 'FAILED_PRECONDITION', wire: false },
  /** No usable TensorFlow.js backend, or not the one asked for. */
  BACKEND_UNAVAILABLE: { status: 'FAILED_PRECONDITION', wire: false },
  /** An object used out of order: disposed, or busy (a programming error). */
  INVALID_STATE: { status: 'FAILED_PRECONDITION', wire: false },
  CREDENTIAL_REJECTED: { status: 'UNAUTHENTICATED', wire: false },
  /** A client (the coordinator CLI, the simulator) cannot reach the coordinator's admin API. */
  ADMIN_UNREACHABLE: { status: 'UNAVAILABLE', wire: false },
  MODEL_DIGEST_MISMATCH: { status: 'DATA_LOSS', wire: false },
  /**
   * A signed envelope (a model release, issue 12) does not verify: `details.why` is 'malformed',
   * 'signature' (no signature verifies with the trusted key) or 'payload_type'.
   */
  SIGNATURE_INVALID: { status: 'INVALID_ARGUMENT' },
  /** A bug; the message may leave the process, so it must hold nothing internal. */
  INTERNAL: { status: 'INTERNAL' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The codes of rejected contributions: proto RejectionReason names. */
export type RejectionCode = { [K in ErrorCode]: (typeof ERRORS)[K] extends { rejection: true } ? K : never }[ErrorCode];

/** The rejection codes, in table order. */
export const REJECTION_CODES: readonly RejectionCode[] = (Object.keys(ERRORS) as ErrorCode[]).filter(
  (c): c is RejectionCode => (ERRORS[c] as ErrorSpec).rejection === true,
);

/** What a readiness that is not READY can be (proto Readiness names). */
export type NotReady =
  | 'READINESS_NOT_APPROVED'
  | 'READINESS_COHORT_TOO_SMALL'
  | 'READINESS_FEATURE_SPEC_UNSUPPORTED'
  | 'READINESS_DATA_ERROR'
  | 'READINESS_WITHDRAWN';

/**
 * Typed details per code. A code not listed has none. A code whose details have a required
 * field must be constructed with them.
 */
export interface ErrorDetails {
  CREDENTIAL_INVALID: { why: 'missing' | 'malformed' | 'unknown' | 'revoked' | 'certificate' };
  JOIN_TOKEN_INVALID: { why: 'unknown' | 'used' | 'expired' };
  ROLE_REQUIRED: { role: 'admin' | 'viewer' };
  INVALID_ARGUMENT: { field?: string };
  /** `path`: JSON path of the offending value, e.g. "model.topology". */
  MANIFEST_INVALID: { path?: string };
  NOT_FOUND: { what: 'study' | 'node' | 'task' | 'round' | 'checkpoint' | 'model' | 'operator' | 'report' | 'manifest' | 'release' | 'release-file' | 'alias' | 'service' | 'patient' | 'series'; id?: string };
  RESOURCE_LIMIT: { limit: string; value: number; max: number };
  RATE_LIMITED: { limit: string; retryAfterMs: number };
  STORAGE_FAULT: { kind: 'disk_full' | 'read_only' | 'io_error' | 'unavailable'; op?: string };
  STORE_VERSION_TOO_NEW: { found: number; supported: number };
  NOT_LEADER: { leader?: string };
  CONFIG_INVALID: { key?: string };
  DATA_NOT_READY: { readiness: NotReady };
  DATA_INVALID: { file?: string; line?: number };
  FEATURE_SPEC_UNSUPPORTED: { missing?: string[] };
  NORMALIZATION_IMPOSSIBLE: { features: string[] };
  BACKEND_UNAVAILABLE: { backend?: string };
  NORM_BOUND: { norm: number; bound: number };
  SHAPE_MISMATCH: { tensor?: string };
  NON_FINITE: { tensor?: string; element?: number };
  SIGNATURE_INVALID: { why: 'malformed' | 'signature' | 'payload_type' | 'predicate' | 'subjects' | 'digest' | 'manifest' | 'descriptor' | 'key'; file?: string };
}

/**
 * The class-like codes of the old three-argument form.
 * @deprecated Use an `ErrorCode`; step 2d converts every use.
 */
export type LegacyErrorCode =
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

/** @deprecated The old name of `LegacyErrorCode`. */
export type FedlhsErrorCode = LegacyErrorCode;

const LEGACY_STATUS: Readonly<Record<LegacyErrorCode, StatusClass>> = {
  INVALID_MANIFEST: 'INVALID_ARGUMENT',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  NOT_FOUND: 'NOT_FOUND',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  DATA_LOSS: 'DATA_LOSS',
  ABORTED: 'ABORTED',
  UNAVAILABLE: 'UNAVAILABLE',
  INVALID_TRANSITION: 'INTERNAL',
  INTERNAL: 'INTERNAL',
};

/** Every code an instance can carry while the deprecated form is still in use. */
export type AnyErrorCode = ErrorCode | LegacyErrorCode;

type DetailsOf<C> = C extends keyof ErrorDetails ? ({} extends ErrorDetails[C] ? ErrorDetails[C] | undefined : ErrorDetails[C]) : undefined;

/** Options of the current form: `details` are required when the code's details have a required field. */
export type FedlhsErrorOptions<C extends ErrorCode> = { cause?: unknown } & (C extends keyof ErrorDetails
  ? {} extends ErrorDetails[C]
    ? { details?: ErrorDetails[C] }
    : { details: ErrorDetails[C] }
  : { details?: undefined });

type OptionsArg<C> = C extends ErrorCode
  ? C extends keyof ErrorDetails
    ? {} extends ErrorDetails[C]
      ? [options?: FedlhsErrorOptions<C>]
      : [options: FedlhsErrorOptions<C>]
    : [options?: FedlhsErrorOptions<C>]
  : [options: never];

/** @deprecated Options of the old form. */
export interface LegacyErrorOptions {
  cause?: unknown;
  /** A RejectionReason name, or a free-form discriminator. */
  reason?: string;
}

function specOf(code: string): ErrorSpec | undefined {
  return Object.hasOwn(ERRORS, code) ? (ERRORS as Record<string, ErrorSpec>)[code] : undefined;
}

/**
 * A domain error with a stable `code` from `ERRORS`.
 *
 * ```ts
 * throw new FedlhsError('STALE', `task ${id} is no longer open: its round closed`);
 * throw new FedlhsError('CREDENTIAL_INVALID', 'node credential was revoked', { details: { why: 'revoked' } });
 * ```
 */
export class FedlhsError<C extends AnyErrorCode = AnyErrorCode> extends Error {
  readonly code: C;
  readonly status: StatusClass;
  /** Typed per code (`ErrorDetails`); may reach clients (HTTP bodies), so nothing internal. */
  readonly details: DetailsOf<C> | (C extends LegacyErrorCode ? undefined : never);
  /**
   * For a rejection, its RejectionReason name (the code, or the old form's `reason`); for the
   * old form, whatever `reason` it was given.
   * @deprecated Branch on `code`, `isRejection` and `closesTask`.
   */
  readonly reason: string | undefined;
  /**
   * True if made in the old vocabulary: a class-like code not in `ERRORS`, or a `reason`. Such
   * errors keep the old wire form (no `fedlhs-error-code` trailer, HTTP body `{code, message}`)
   * until step 2d converts their call sites.
   */
  readonly legacy: boolean;
  /**
   * For a rejection: whether its task is still open for the caller after it (the wire's
   * `fedlhs-task-open`). Only whoever records the rejection knows the task's state afterwards
   * (the coordinator's update intake), so it is set there, once; undefined until then.
   */
  taskOpen: boolean | undefined = undefined;

  constructor(code: C, message: string, ...options: OptionsArg<C>);
  /** @deprecated The old form: a class-like code and a `reason`. Use an `ErrorCode` and `details`. */
  constructor(code: LegacyErrorCode, message: string, options?: LegacyErrorOptions);
  constructor(code: AnyErrorCode, message: string, options: { cause?: unknown; details?: unknown; reason?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FedlhsError';
    this.code = code as C;
    const spec = specOf(code);
    this.legacy = spec === undefined || options.reason !== undefined;
    // An unknown code (only reachable around the type system) must not hide the error being thrown.
    this.status = spec?.status ?? (LEGACY_STATUS as Record<string, StatusClass>)[code] ?? 'INTERNAL';
    this.details = options.details as this['details'];
    this.reason = options.reason ?? (spec?.rejection === true ? code : undefined);
  }

  /** The row of `ERRORS` that decides the flags: the code's, or for the old form its rejection reason's. */
  private get spec(): ErrorSpec | undefined {
    if (!this.legacy) return specOf(this.code);
    const byReason = this.reason === undefined ? undefined : specOf(this.reason);
    return byReason?.rejection === true ? byReason : undefined;
  }

  /** A rejected contribution: answered with a `fedlhs-rejection-reason` trailer and recorded. */
  get isRejection(): boolean {
    return this.spec?.rejection === true;
  }

  /** A rejection after which the task is closed (REJECTED). */
  get closesTask(): boolean {
    return this.spec?.closesTask === true;
  }

  /** False for in-process codes (and unknown ones): a boundary answers INTERNAL instead. */
  get onWire(): boolean {
    if (this.legacy) return this.code !== 'INVALID_TRANSITION' && Object.hasOwn(LEGACY_STATUS, this.code);
    return specOf(this.code)?.wire !== false;
  }
}

/**
 * Rebuilds, on the client side, the error a server answered with: `error` is the `error` member
 * of an admin API body (`{code, status?, message, details?}`). A code from `ERRORS` keeps its
 * code and details; anything else (an old-vocabulary body, or no body) becomes INTERNAL. The
 * message is `prefix` and the server's message; `cause` is the raw answer.
 */
export function errorFromBody(error: unknown, prefix = ''): FedlhsError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown; details?: unknown };
  const message = `${prefix}${typeof e.message === 'string' ? e.message : JSON.stringify(error) ?? 'no error body'}`;
  const known = typeof e.code === 'string' && Object.hasOwn(ERRORS, e.code) && e.code !== 'INTERNAL';
  // The code comes from the wire, so the type system cannot pair it with its details: the
  // server built them from the same table.
  if (known) return new FedlhsError(e.code as 'INTERNAL', message, { cause: error, details: e.details as undefined });
  return new FedlhsError('INTERNAL', message, { cause: error });
}

/** True if `value` is a FedlhsError, optionally with the given code. */
export function isFedlhsError(value: unknown): value is FedlhsError;
export function isFedlhsError<C extends ErrorCode>(value: unknown, code: C): value is FedlhsError<C>;
/** @deprecated Compare with an `ErrorCode`. */
export function isFedlhsError(value: unknown, code: LegacyErrorCode): value is FedlhsError;
export function isFedlhsError(value: unknown, code?: AnyErrorCode): value is FedlhsError {
  return value instanceof FedlhsError && (code === undefined || value.code === code);
}
