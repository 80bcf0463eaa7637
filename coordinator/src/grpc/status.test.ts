import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition } from '@grpc/proto-loader';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ERRORS, FedlhsError, REJECTION_CODES, type ErrorCode } from '@fedlhs/core';
import { loadFedlhsProto } from '@fedlhs/proto';
import { toStatus } from './status.js';

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

/** A status as the client sees it: code name, message and trailers. */
function wire(err: unknown, log = capture().log): { code: string; details: string; trailers: Record<string, unknown> } {
  const s = toStatus(err, log, 'UploadUpdate');
  return { code: grpc.status[s.code], details: s.details, trailers: s.metadata.getMap() };
}

/** An example of every code, as the current form builds it. */
function example(code: ErrorCode): FedlhsError {
  switch (code) {
    case 'CREDENTIAL_INVALID':
      return new FedlhsError(code, 'node credential is malformed', { details: { why: 'malformed' } });
    case 'JOIN_TOKEN_INVALID':
      return new FedlhsError(code, 'join token is not valid', { details: { why: 'unknown' } });
    case 'ROLE_REQUIRED':
      return new FedlhsError(code, 'POST /api/v1/join-tokens needs the admin role; vera is a viewer', { details: { role: 'admin' } });
    case 'NOT_FOUND':
      return new FedlhsError(code, 'no study s9', { details: { what: 'study', id: 's9' } });
    case 'RESOURCE_LIMIT':
      return new FedlhsError(code, 'the round already holds 64 updates', { details: { limit: 'heldUpdates', value: 65, max: 64 } });
    case 'STORE_VERSION_TOO_NEW':
      return new FedlhsError(code, 'the store is at version 9; this coordinator knows up to 4', { details: { found: 9, supported: 4 } });
    case 'DATA_NOT_READY':
      return new FedlhsError(code, 'no local data configured (data.path)', { details: { readiness: 'READINESS_DATA_ERROR' } });
    case 'NORM_BOUND':
      return new FedlhsError(code, 'update is 9.1 from the global model; the bound is 3', { details: { norm: 9.1, bound: 3 } });
    default:
      return new FedlhsError(code as Exclude<ErrorCode, 'CREDENTIAL_INVALID' | 'JOIN_TOKEN_INVALID' | 'ROLE_REQUIRED' | 'NOT_FOUND' | 'RESOURCE_LIMIT' | 'STORE_VERSION_TOO_NEW' | 'DATA_NOT_READY' | 'NORM_BOUND'>, `a ${code} error`);
  }
}

describe('proto RejectionReason and the ERRORS table', () => {
  it('name the same rejection codes', () => {
    // Read from the .proto files at run time (not the generated types), so an edit to either side
    // without the other fails here.
    const definition = loadFedlhsProto().fedlhs.v1.RejectionReason as EnumTypeDefinition;
    const values = (definition.type as { value: { name: string; number: number }[] }).value;
    expect(values[0]).toMatchObject({ name: 'REJECTION_REASON_UNSPECIFIED', number: 0 });
    const proto = values.slice(1).map((v) => v.name.replace(/^REJECTION_REASON_/, ''));
    expect([...proto].sort()).toEqual([...REJECTION_CODES].sort());
  });
});

describe('toStatus', () => {
  it('maps every code to the gRPC code of its status class, with the error-code and rejection trailers', () => {
    const rows = (Object.keys(ERRORS) as ErrorCode[]).map((code) => {
      const w = wire(example(code));
      const trailers = Object.entries(w.trailers).map(([k, v]) => `${k}=${String(v)}`).join(' ');
      return `${code}: ${w.code}${w.details === `a ${code} error` ? '' : ` "${w.details}"`}${trailers === '' ? '' : ` [${trailers}]`}`;
    });
    expect(rows).toMatchInlineSnapshot(`
      [
        "UNKNOWN_TASK: NOT_FOUND [fedlhs-error-code=UNKNOWN_TASK fedlhs-rejection-reason=UNKNOWN_TASK]",
        "NOT_ASSIGNED: PERMISSION_DENIED [fedlhs-error-code=NOT_ASSIGNED fedlhs-rejection-reason=NOT_ASSIGNED]",
        "STALE: FAILED_PRECONDITION [fedlhs-error-code=STALE fedlhs-rejection-reason=STALE]",
        "DUPLICATE_CONFLICT: ALREADY_EXISTS [fedlhs-error-code=DUPLICATE_CONFLICT fedlhs-rejection-reason=DUPLICATE_CONFLICT]",
        "REPLAYED: ALREADY_EXISTS [fedlhs-error-code=REPLAYED fedlhs-rejection-reason=REPLAYED]",
        "BAD_HEADER: INVALID_ARGUMENT [fedlhs-error-code=BAD_HEADER fedlhs-rejection-reason=BAD_HEADER]",
        "SHAPE_MISMATCH: INVALID_ARGUMENT [fedlhs-error-code=SHAPE_MISMATCH fedlhs-rejection-reason=SHAPE_MISMATCH]",
        "NON_FINITE: INVALID_ARGUMENT [fedlhs-error-code=NON_FINITE fedlhs-rejection-reason=NON_FINITE]",
        "NORM_BOUND: INVALID_ARGUMENT "update is 9.1 from the global model; the bound is 3" [fedlhs-error-code=NORM_BOUND fedlhs-rejection-reason=NORM_BOUND]",
        "INCONSISTENT_STATISTICS: INVALID_ARGUMENT [fedlhs-error-code=INCONSISTENT_STATISTICS fedlhs-rejection-reason=INCONSISTENT_STATISTICS]",
        "LENGTH_MISMATCH: DATA_LOSS [fedlhs-error-code=LENGTH_MISMATCH fedlhs-rejection-reason=LENGTH_MISMATCH]",
        "DIGEST_MISMATCH: DATA_LOSS [fedlhs-error-code=DIGEST_MISMATCH fedlhs-rejection-reason=DIGEST_MISMATCH]",
        "INVALID_METRICS: INVALID_ARGUMENT [fedlhs-error-code=INVALID_METRICS fedlhs-rejection-reason=INVALID_METRICS]",
        "BAD_EXAMPLE_COUNT: INVALID_ARGUMENT [fedlhs-error-code=BAD_EXAMPLE_COUNT fedlhs-rejection-reason=BAD_EXAMPLE_COUNT]",
        "TASK_CLOSED: FAILED_PRECONDITION [fedlhs-error-code=TASK_CLOSED fedlhs-rejection-reason=TASK_CLOSED]",
        "UPLOAD_STALLED: DEADLINE_EXCEEDED [fedlhs-error-code=UPLOAD_STALLED fedlhs-rejection-reason=UPLOAD_STALLED]",
        "UPLOAD_CANCELLED: ABORTED [fedlhs-error-code=UPLOAD_CANCELLED fedlhs-rejection-reason=UPLOAD_CANCELLED]",
        "DOWNLOAD_STALLED: DEADLINE_EXCEEDED [fedlhs-error-code=DOWNLOAD_STALLED]",
        "UPLOAD_IN_PROGRESS: ABORTED [fedlhs-error-code=UPLOAD_IN_PROGRESS]",
        "CREDENTIAL_INVALID: UNAUTHENTICATED "node credential is malformed" [fedlhs-error-code=CREDENTIAL_INVALID]",
        "JOIN_TOKEN_INVALID: UNAUTHENTICATED "join token is not valid" [fedlhs-error-code=JOIN_TOKEN_INVALID]",
        "SITE_MISMATCH: PERMISSION_DENIED [fedlhs-error-code=SITE_MISMATCH]",
        "ROLE_REQUIRED: PERMISSION_DENIED "POST /api/v1/join-tokens needs the admin role; vera is a viewer" [fedlhs-error-code=ROLE_REQUIRED]",
        "ORIGIN_REFUSED: PERMISSION_DENIED [fedlhs-error-code=ORIGIN_REFUSED]",
        "INVALID_ARGUMENT: INVALID_ARGUMENT [fedlhs-error-code=INVALID_ARGUMENT]",
        "MANIFEST_INVALID: INVALID_ARGUMENT [fedlhs-error-code=MANIFEST_INVALID]",
        "NOT_FOUND: NOT_FOUND "no study s9" [fedlhs-error-code=NOT_FOUND]",
        "STUDY_NOT_RUNNING: FAILED_PRECONDITION [fedlhs-error-code=STUDY_NOT_RUNNING]",
        "ALREADY_REVOKED: FAILED_PRECONDITION [fedlhs-error-code=ALREADY_REVOKED]",
        "CERTIFICATES_NOT_ISSUED: FAILED_PRECONDITION [fedlhs-error-code=CERTIFICATES_NOT_ISSUED]",
        "NODE_CA_EXPIRED: UNAVAILABLE [fedlhs-error-code=NODE_CA_EXPIRED]",
        "CERTIFICATE_ROTATED: UNAVAILABLE [fedlhs-error-code=CERTIFICATE_ROTATED]",
        "OPERATOR_EXISTS: ALREADY_EXISTS [fedlhs-error-code=OPERATOR_EXISTS]",
        "SERIES_EXISTS: ALREADY_EXISTS [fedlhs-error-code=SERIES_EXISTS]",
        "SERIES_BUSY: FAILED_PRECONDITION [fedlhs-error-code=SERIES_BUSY]",
        "CHAMPION_UNCHANGED: FAILED_PRECONDITION [fedlhs-error-code=CHAMPION_UNCHANGED]",
        "CLOCK_NOT_SIMULATED: FAILED_PRECONDITION [fedlhs-error-code=CLOCK_NOT_SIMULATED]",
        "SIMULATION_FAILED: INTERNAL \"internal error (see coordinator log)\"",
        "CHECKPOINT_EXISTS: ALREADY_EXISTS [fedlhs-error-code=CHECKPOINT_EXISTS]",
        "DATA_DIR_LOCKED: FAILED_PRECONDITION [fedlhs-error-code=DATA_DIR_LOCKED]",
        "RESOURCE_LIMIT: RESOURCE_EXHAUSTED "the round already holds 64 updates" [fedlhs-error-code=RESOURCE_LIMIT]",
        "RATE_LIMITED: RESOURCE_EXHAUSTED [fedlhs-error-code=RATE_LIMITED]",
        "DATA_LOSS: DATA_LOSS [fedlhs-error-code=DATA_LOSS]",
        "STORE_UNAVAILABLE: UNAVAILABLE [fedlhs-error-code=STORE_UNAVAILABLE]",
        "STORAGE_FAULT: UNAVAILABLE [fedlhs-error-code=STORAGE_FAULT]",
        "STORE_CONFLICT: ABORTED [fedlhs-error-code=STORE_CONFLICT]",
        "STORE_VERSION_TOO_NEW: FAILED_PRECONDITION "the store is at version 9; this coordinator knows up to 4" [fedlhs-error-code=STORE_VERSION_TOO_NEW]",
        "FENCED: UNAVAILABLE [fedlhs-error-code=FENCED]",
        "NOT_LEADER: UNAVAILABLE [fedlhs-error-code=NOT_LEADER]",
        "ATTEMPT_ABORTED: INTERNAL "internal error (see coordinator log)"",
        "STUDY_FAILED: INTERNAL "internal error (see coordinator log)"",
        "INVALID_TRANSITION: INTERNAL "internal error (see coordinator log)"",
        "CONFIG_INVALID: INTERNAL "internal error (see coordinator log)"",
        "DATA_NOT_READY: INTERNAL "internal error (see coordinator log)"",
        "DATA_INVALID: INTERNAL "internal error (see coordinator log)"",
        "FEATURE_SPEC_UNSUPPORTED: INTERNAL "internal error (see coordinator log)"",
        "NORMALIZATION_IMPOSSIBLE: INTERNAL "internal error (see coordinator log)"",
        "BACKEND_UNAVAILABLE: INTERNAL "internal error (see coordinator log)"",
        "INVALID_STATE: INTERNAL "internal error (see coordinator log)"",
        "CREDENTIAL_REJECTED: INTERNAL "internal error (see coordinator log)"",
        "ADMIN_UNREACHABLE: INTERNAL "internal error (see coordinator log)"",
        "MODEL_DIGEST_MISMATCH: INTERNAL "internal error (see coordinator log)"",
        "SIGNATURE_INVALID: INVALID_ARGUMENT [fedlhs-error-code=SIGNATURE_INVALID]",
        "INTERNAL: INTERNAL [fedlhs-error-code=INTERNAL]",
      ]
    `);
  });

  it('sends fedlhs-task-open with a rejection once the intake has set taskOpen', () => {
    const open = new FedlhsError('DIGEST_MISMATCH', 'digest differs');
    open.taskOpen = true;
    const closed = new FedlhsError('TASK_CLOSED', 'task t1 is closed');
    closed.taskOpen = false;
    const notRejection = new FedlhsError('UPLOAD_IN_PROGRESS', 'busy');
    notRejection.taskOpen = true;
    expect([open, closed, notRejection].map((e) => wire(e).trailers)).toEqual([
      { 'fedlhs-error-code': 'DIGEST_MISMATCH', 'fedlhs-rejection-reason': 'DIGEST_MISMATCH', 'fedlhs-task-open': 'true' },
      { 'fedlhs-error-code': 'TASK_CLOSED', 'fedlhs-rejection-reason': 'TASK_CLOSED', 'fedlhs-task-open': 'false' },
      { 'fedlhs-error-code': 'UPLOAD_IN_PROGRESS' },
    ]);
  });

  it('keeps the old wire form for errors in the deprecated form', () => {
    const cases = [
      new FedlhsError('FAILED_PRECONDITION', 'task t1 (study s1, round 1) is no longer open: it is REJECTED', { reason: 'STALE' }),
      new FedlhsError('INVALID_ARGUMENT', 'non-finite value (NaN) in tensor "hidden/kernel" at element 3', { reason: 'NON_FINITE' }),
      new FedlhsError('DATA_LOSS', 'stream ended after 10 of 40 bytes', { reason: 'LENGTH_MISMATCH' }),
      new FedlhsError('UNAUTHENTICATED', 'join token is not valid'),
      new FedlhsError('INVALID_MANIFEST', 'invalid study manifest: rounds: must be ≥ 1'),
      new FedlhsError('ABORTED', 'an upload for task t1 is already in progress; retry after it ends'),
      // A discriminator never was a rejection reason: no trailer.
      new FedlhsError('FAILED_PRECONDITION', 'data directory /d is in use', { reason: 'DATA_DIR_LOCKED' }),
    ];
    expect(cases.map((e) => wire(e))).toMatchInlineSnapshot(`
      [
        {
          "code": "FAILED_PRECONDITION",
          "details": "task t1 (study s1, round 1) is no longer open: it is REJECTED",
          "trailers": {
            "fedlhs-rejection-reason": "STALE",
          },
        },
        {
          "code": "INVALID_ARGUMENT",
          "details": "non-finite value (NaN) in tensor "hidden/kernel" at element 3",
          "trailers": {
            "fedlhs-rejection-reason": "NON_FINITE",
          },
        },
        {
          "code": "DATA_LOSS",
          "details": "stream ended after 10 of 40 bytes",
          "trailers": {
            "fedlhs-rejection-reason": "LENGTH_MISMATCH",
          },
        },
        {
          "code": "UNAUTHENTICATED",
          "details": "join token is not valid",
          "trailers": {},
        },
        {
          "code": "INVALID_ARGUMENT",
          "details": "invalid study manifest: rounds: must be ≥ 1",
          "trailers": {},
        },
        {
          "code": "ABORTED",
          "details": "an upload for task t1 is already in progress; retry after it ends",
          "trailers": {},
        },
        {
          "code": "FAILED_PRECONDITION",
          "details": "data directory /d is in use",
          "trailers": {},
        },
      ]
    `);
  });

  it('answers INTERNAL with a fixed text for anything else, and logs what happened', () => {
    const { log, lines } = capture();
    expect(wire(new TypeError("Cannot read properties of undefined (reading 'round')"), log)).toMatchInlineSnapshot(`
      {
        "code": "INTERNAL",
        "details": "internal error (see coordinator log)",
        "trailers": {},
      }
    `);
    expect(wire(new FedlhsError('STUDY_FAILED', 'round 2: every clinic failed the same way'), log).details).toBe('internal error (see coordinator log)');
    expect(lines.map((l) => ({ level: l.level, event: l.event, method: l.method, msg: l.msg, err: (l.err as { message: string }).message }))).toMatchInlineSnapshot(`
      [
        {
          "err": "Cannot read properties of undefined (reading 'round')",
          "event": "grpc.internal",
          "level": 50,
          "method": "UploadUpdate",
          "msg": "internal error in gRPC handler",
        },
        {
          "err": "round 2: every clinic failed the same way",
          "event": "grpc.internal",
          "level": 50,
          "method": "UploadUpdate",
          "msg": "internal error in gRPC handler",
        },
      ]
    `);
  });
});
