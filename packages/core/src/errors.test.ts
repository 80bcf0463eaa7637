import { describe, expect, it } from 'vitest';
import { ERRORS, FedlhsError, REJECTION_CODES, errorFromBody, isFedlhsError, type ErrorCode, type ErrorSpec } from './errors.js';

function thrown(f: () => unknown): FedlhsError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

describe('the ERRORS table', () => {
  it('gives every code a status class and its flags', () => {
    const rows = (Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]).map(
      ([code, s]) => `${code} ${s.status}${s.rejection === true ? ` rejection closesTask=${String(s.closesTask)}` : ''}${s.wire === false ? ' in-process' : ''}`,
    );
    expect(rows).toMatchInlineSnapshot(`
      [
        "UNKNOWN_TASK NOT_FOUND rejection closesTask=false",
        "NOT_ASSIGNED PERMISSION_DENIED rejection closesTask=false",
        "STALE FAILED_PRECONDITION rejection closesTask=false",
        "DUPLICATE_CONFLICT ALREADY_EXISTS rejection closesTask=false",
        "REPLAYED ALREADY_EXISTS rejection closesTask=true",
        "BAD_HEADER INVALID_ARGUMENT rejection closesTask=false",
        "SHAPE_MISMATCH INVALID_ARGUMENT rejection closesTask=true",
        "NON_FINITE INVALID_ARGUMENT rejection closesTask=true",
        "NORM_BOUND INVALID_ARGUMENT rejection closesTask=true",
        "INCONSISTENT_STATISTICS INVALID_ARGUMENT rejection closesTask=true",
        "LENGTH_MISMATCH DATA_LOSS rejection closesTask=false",
        "DIGEST_MISMATCH DATA_LOSS rejection closesTask=false",
        "INVALID_METRICS INVALID_ARGUMENT rejection closesTask=true",
        "BAD_EXAMPLE_COUNT INVALID_ARGUMENT rejection closesTask=true",
        "TASK_CLOSED FAILED_PRECONDITION rejection closesTask=false",
        "UPLOAD_STALLED DEADLINE_EXCEEDED rejection closesTask=false",
        "UPLOAD_CANCELLED ABORTED rejection closesTask=false",
        "DOWNLOAD_STALLED DEADLINE_EXCEEDED",
        "UPLOAD_IN_PROGRESS ABORTED",
        "CREDENTIAL_INVALID UNAUTHENTICATED",
        "JOIN_TOKEN_INVALID UNAUTHENTICATED",
        "SITE_MISMATCH PERMISSION_DENIED",
        "ROLE_REQUIRED PERMISSION_DENIED",
        "ORIGIN_REFUSED PERMISSION_DENIED",
        "INVALID_ARGUMENT INVALID_ARGUMENT",
        "MANIFEST_INVALID INVALID_ARGUMENT",
        "NOT_FOUND NOT_FOUND",
        "STUDY_NOT_RUNNING FAILED_PRECONDITION",
        "ALREADY_REVOKED FAILED_PRECONDITION",
        "CERTIFICATES_NOT_ISSUED FAILED_PRECONDITION",
        "NODE_CA_EXPIRED UNAVAILABLE",
        "CERTIFICATE_ROTATED UNAVAILABLE",
        "OPERATOR_EXISTS ALREADY_EXISTS",
        "SERIES_EXISTS ALREADY_EXISTS",
        "SERIES_BUSY FAILED_PRECONDITION",
        "CHAMPION_UNCHANGED FAILED_PRECONDITION",
        "CLOCK_NOT_SIMULATED FAILED_PRECONDITION",
        "SIMULATION_FAILED FAILED_PRECONDITION in-process",
        "CHECKPOINT_EXISTS ALREADY_EXISTS",
        "DATA_DIR_LOCKED FAILED_PRECONDITION",
        "RESOURCE_LIMIT RESOURCE_EXHAUSTED",
        "RATE_LIMITED RESOURCE_EXHAUSTED",
        "DATA_LOSS DATA_LOSS",
        "STORE_UNAVAILABLE UNAVAILABLE",
        "STORAGE_FAULT UNAVAILABLE",
        "STORE_CONFLICT ABORTED",
        "STORE_VERSION_TOO_NEW FAILED_PRECONDITION",
        "FENCED UNAVAILABLE",
        "NOT_LEADER UNAVAILABLE",
        "ATTEMPT_ABORTED INTERNAL in-process",
        "STUDY_FAILED INTERNAL in-process",
        "INVALID_TRANSITION INTERNAL in-process",
        "CONFIG_INVALID INVALID_ARGUMENT in-process",
        "DATA_NOT_READY FAILED_PRECONDITION in-process",
        "DATA_INVALID FAILED_PRECONDITION in-process",
        "FEATURE_SPEC_UNSUPPORTED FAILED_PRECONDITION in-process",
        "NORMALIZATION_IMPOSSIBLE FAILED_PRECONDITION in-process",
        "BACKEND_UNAVAILABLE FAILED_PRECONDITION in-process",
        "INVALID_STATE FAILED_PRECONDITION in-process",
        "CREDENTIAL_REJECTED UNAUTHENTICATED in-process",
        "ADMIN_UNREACHABLE UNAVAILABLE in-process",
        "MODEL_DIGEST_MISMATCH DATA_LOSS in-process",
        "SIGNATURE_INVALID INVALID_ARGUMENT",
        "INTERNAL INTERNAL",
      ]
    `);
  });

  it('lists the rejection codes in table order', () => {
    expect(REJECTION_CODES).toMatchInlineSnapshot(`
      [
        "UNKNOWN_TASK",
        "NOT_ASSIGNED",
        "STALE",
        "DUPLICATE_CONFLICT",
        "REPLAYED",
        "BAD_HEADER",
        "SHAPE_MISMATCH",
        "NON_FINITE",
        "NORM_BOUND",
        "INCONSISTENT_STATISTICS",
        "LENGTH_MISMATCH",
        "DIGEST_MISMATCH",
        "INVALID_METRICS",
        "BAD_EXAMPLE_COUNT",
        "TASK_CLOSED",
        "UPLOAD_STALLED",
        "UPLOAD_CANCELLED",
      ]
    `);
  });

  it('keeps rejections on the wire and codes in upper snake case', () => {
    for (const [code, spec] of Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      if (spec.rejection === true) expect([code, spec.wire]).toEqual([code, undefined]);
      else expect([code, spec.closesTask]).toEqual([code, undefined]);
    }
  });
});

describe('FedlhsError', () => {
  it('carries a code, its status class, typed details and the cause', () => {
    const cause = new Error('ENOENT');
    const err = new FedlhsError('CREDENTIAL_INVALID', 'node credential was revoked on 2026-11-02T09:00:00.000Z', { details: { why: 'revoked' }, cause });
    expect(err).toBeInstanceOf(Error);
    expect({ name: err.name, code: err.code, status: err.status, details: err.details, legacy: err.legacy, reason: err.reason }).toMatchInlineSnapshot(`
      {
        "code": "CREDENTIAL_INVALID",
        "details": {
          "why": "revoked",
        },
        "legacy": false,
        "name": "FedlhsError",
        "reason": undefined,
        "status": "UNAUTHENTICATED",
      }
    `);
    expect(err.cause).toBe(cause);
    expect([err.isRejection, err.closesTask, err.onWire]).toEqual([false, false, true]);
    expect(() => {
      throw err;
    }).toThrowErrorMatchingInlineSnapshot(`[FedlhsError: node credential was revoked on 2026-11-02T09:00:00.000Z]`);
    expect('cause' in new FedlhsError('STALE', 'x')).toBe(false);
  });

  it('says whether a rejection closes its task', () => {
    const stale = thrown(() => {
      throw new FedlhsError('STALE', 'task t1 (study s1, round 2) is no longer open: the round closed');
    });
    expect([stale.code, stale.status, stale.reason, stale.isRejection, stale.closesTask]).toEqual(['STALE', 'FAILED_PRECONDITION', 'STALE', true, false]);
    const shape = new FedlhsError('SHAPE_MISMATCH', 'tensor "hidden/kernel" has shape [7,8], expected [6,8]', { details: { tensor: 'hidden/kernel' } });
    expect([shape.isRejection, shape.closesTask, shape.details]).toEqual([true, true, { tensor: 'hidden/kernel' }]);
    expect(shape.message).toMatchInlineSnapshot(`"tensor "hidden/kernel" has shape [7,8], expected [6,8]"`);
  });

  it('marks in-process codes as not for the wire', () => {
    expect(new FedlhsError('STUDY_FAILED', 'every clinic failed the same way').onWire).toBe(false);
    expect(new FedlhsError('INVALID_TRANSITION', 'round cannot go from COMMITTED to TRAINING').onWire).toBe(false);
    expect(new FedlhsError('DATA_NOT_READY', 'cohort of 3 is below 20', { details: { readiness: 'READINESS_COHORT_TOO_SMALL' } }).onWire).toBe(false);
    expect(new FedlhsError('INTERNAL', 'no committed checkpoint for round 1').onWire).toBe(true);
  });

  it('keeps the deprecated three-argument form working as before', () => {
    const stale = new FedlhsError('FAILED_PRECONDITION', 'study s1 is not running', { reason: 'STALE' });
    expect({ code: stale.code, status: stale.status, reason: stale.reason, legacy: stale.legacy, rejection: stale.isRejection, closes: stale.closesTask, wire: stale.onWire }).toMatchInlineSnapshot(`
      {
        "closes": false,
        "code": "FAILED_PRECONDITION",
        "legacy": true,
        "reason": "STALE",
        "rejection": true,
        "status": "FAILED_PRECONDITION",
        "wire": true,
      }
    `);
    const nan = new FedlhsError('INVALID_ARGUMENT', 'non-finite value (NaN) in tensor "hidden/kernel" at element 3', { reason: 'NON_FINITE' });
    expect([nan.code, nan.status, nan.legacy, nan.isRejection, nan.closesTask]).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT', true, true, true]);
    // A discriminator reason is not a rejection.
    const data = new FedlhsError('FAILED_PRECONDITION', 'data.csv: file is empty (no header row)', { reason: 'DATA_ERROR' });
    expect([data.reason, data.legacy, data.isRejection, data.onWire]).toEqual(['DATA_ERROR', true, false, true]);
    // Old class codes keep their status class; INVALID_MANIFEST is INVALID_ARGUMENT.
    expect(new FedlhsError('INVALID_MANIFEST', 'invalid study manifest: rounds: must be ≥ 1')).toMatchObject({ code: 'INVALID_MANIFEST', status: 'INVALID_ARGUMENT', legacy: true });
    expect(new FedlhsError('UNAUTHENTICATED', 'join token is not valid')).toMatchObject({ code: 'UNAUTHENTICATED', status: 'UNAUTHENTICATED', legacy: true, details: undefined });
    // A code shared by both vocabularies, without a reason, is the current form.
    expect(new FedlhsError('NOT_FOUND', 'no study s9')).toMatchObject({ code: 'NOT_FOUND', status: 'NOT_FOUND', legacy: false, details: undefined });
    expect(new FedlhsError('INVALID_TRANSITION', 'round cannot go from COMMITTED to TRAINING', { reason: 'X' }).onWire).toBe(false);
  });

  it('does not hide the error being thrown behind an unknown code', () => {
    const err = new FedlhsError('NO_SUCH_CODE' as ErrorCode, 'x');
    expect([err.code, err.status, err.legacy, err.onWire, err.isRejection]).toEqual(['NO_SUCH_CODE', 'INTERNAL', true, false, false]);
  });
});

describe('isFedlhsError', () => {
  it('narrows to a code', () => {
    const err: unknown = new FedlhsError('JOIN_TOKEN_INVALID', 'join token expired on 2026-11-02T09:00:00.000Z', { details: { why: 'expired' } });
    expect(isFedlhsError(err)).toBe(true);
    expect(isFedlhsError(new Error('x'))).toBe(false);
    expect(isFedlhsError(err, 'CREDENTIAL_INVALID')).toBe(false);
    if (!isFedlhsError(err, 'JOIN_TOKEN_INVALID')) throw new Error('not narrowed');
    const why: 'unknown' | 'used' | 'expired' = err.details.why;
    expect(why).toBe('expired');
    // Old class codes still match errors made in the old form.
    expect(isFedlhsError(new FedlhsError('FAILED_PRECONDITION', 'x', { reason: 'STALE' }), 'FAILED_PRECONDITION')).toBe(true);
    expect(isFedlhsError(new FedlhsError('FAILED_PRECONDITION', 'x', { reason: 'STALE' }), 'STALE')).toBe(false);
  });
});

describe('errorFromBody', () => {
  it('rebuilds a known code with its details, prefixing the message', () => {
    const body = { code: 'MANIFEST_INVALID', status: 'INVALID_ARGUMENT', message: 'invalid study manifest: rounds: must be ≥ 1', details: { path: 'rounds' } };
    const err = errorFromBody(body, '400 MANIFEST_INVALID: ');
    expect(err).toBeInstanceOf(FedlhsError);
    expect({ code: err.code, status: err.status, message: err.message, details: err.details, legacy: err.legacy, cause: err.cause }).toEqual({
      code: 'MANIFEST_INVALID', status: 'INVALID_ARGUMENT', message: '400 MANIFEST_INVALID: invalid study manifest: rounds: must be ≥ 1', details: { path: 'rounds' }, legacy: false, cause: body,
    });
    expect(errorFromBody({ code: 'STALE', message: 'task t1 is no longer open' })).toMatchObject({ code: 'STALE', isRejection: true, closesTask: false });
  });

  it('answers INTERNAL for an old-vocabulary code, a code not in the table, or no body, keeping the text', () => {
    expect(errorFromBody({ code: 'UNAUTHENTICATED', message: 'unknown admin token' }, '401 UNAUTHENTICATED: ')).toMatchObject({ code: 'INTERNAL', message: '401 UNAUTHENTICATED: unknown admin token' });
    expect(errorFromBody({ code: 'toString', message: 'x' })).toMatchObject({ code: 'INTERNAL', message: 'x' });
    expect(errorFromBody(undefined, '502 : ')).toMatchObject({ code: 'INTERNAL', message: '502 : no error body' });
    expect(errorFromBody({ error: 'nope' })).toMatchObject({ code: 'INTERNAL', message: '{"error":"nope"}' });
  });
});

// Type checks only (tsc -p tsconfig.check.json); never called.
export function typeChecks(): unknown[] {
  return [
    // @ts-expect-error details with a required field are required
    new FedlhsError('CREDENTIAL_INVALID', 'x'),
    // @ts-expect-error details must fit the code
    new FedlhsError('CREDENTIAL_INVALID', 'x', { details: { why: 'lost' } }),
    // @ts-expect-error a code without details takes none
    new FedlhsError('STALE', 'x', { details: { why: 'missing' } }),
    // @ts-expect-error an unknown code
    new FedlhsError('STALLED', 'x'),
    // @ts-expect-error a reason belongs to the deprecated form only
    new FedlhsError('CREDENTIAL_INVALID', 'x', { details: { why: 'missing' }, reason: 'STALE' }),
    new FedlhsError('INVALID_ARGUMENT', 'x', { details: { field: 'site' } }),
    new FedlhsError('INVALID_ARGUMENT', 'x'),
    new FedlhsError('NOT_FOUND', 'x', { details: { what: 'study', id: 's1' } }),
    // The deprecated form still compiles.
    new FedlhsError('FAILED_PRECONDITION', 'x', { reason: 'STALE', cause: new Error('y') }),
    new FedlhsError('NOT_FOUND', 'x'),
  ];
}
