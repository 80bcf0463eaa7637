import { describe, expect, it } from 'vitest';
import { FedlhsError, type StatusClass } from '@fedlhs/core';
import { HTTP_STATUS, toHttpError, withHttpStatus } from './http-errors.js';

describe('toHttpError', () => {
  it('maps each status class to one HTTP status', () => {
    expect(Object.entries(HTTP_STATUS).map(([c, s]) => `${c} ${s}`)).toMatchInlineSnapshot(`
      [
        "INVALID_ARGUMENT 400",
        "UNAUTHENTICATED 401",
        "PERMISSION_DENIED 403",
        "NOT_FOUND 404",
        "FAILED_PRECONDITION 409",
        "ALREADY_EXISTS 409",
        "ABORTED 409",
        "RESOURCE_EXHAUSTED 429",
        "DEADLINE_EXCEEDED 504",
        "UNAVAILABLE 503",
        "DATA_LOSS 500",
        "INTERNAL 500",
      ]
    `);
    const classes: StatusClass[] = ['INVALID_ARGUMENT', 'UNAUTHENTICATED', 'PERMISSION_DENIED', 'NOT_FOUND', 'FAILED_PRECONDITION', 'ALREADY_EXISTS', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED', 'ABORTED', 'UNAVAILABLE', 'DATA_LOSS', 'INTERNAL'];
    expect(Object.keys(HTTP_STATUS).sort()).toEqual(classes.sort());
  });

  it('answers the specific code, its class, the message and the details', () => {
    expect(toHttpError(new FedlhsError('NOT_FOUND', 'no study s9', { details: { what: 'study', id: 's9' } }))).toMatchInlineSnapshot(`
      {
        "body": {
          "error": {
            "code": "NOT_FOUND",
            "details": {
              "id": "s9",
              "what": "study",
            },
            "message": "no study s9",
            "status": "NOT_FOUND",
          },
        },
        "internal": false,
        "status": 404,
      }
    `);
    expect(toHttpError(new FedlhsError('ROLE_REQUIRED', 'POST /api/v1/join-tokens needs the admin role; vera is a viewer', { details: { role: 'admin' } })).status).toBe(403);
    expect(toHttpError(new FedlhsError('STORE_UNAVAILABLE', 'the database does not answer')).status).toBe(503);
    expect(toHttpError(new FedlhsError('RESOURCE_LIMIT', 'too many', { details: { limit: 'downloads', value: 9, max: 8 } })).status).toBe(429);
    expect(JSON.stringify(toHttpError(new FedlhsError('MANIFEST_INVALID', 'invalid study manifest: rounds: must be ≥ 1')).body)).toMatchInlineSnapshot(
      `"{"error":{"code":"MANIFEST_INVALID","status":"INVALID_ARGUMENT","message":"invalid study manifest: rounds: must be ≥ 1"}}"`,
    );
  });

  it('keeps the old body {code, message} for errors in the deprecated form', () => {
    const cases = [
      new FedlhsError('INVALID_MANIFEST', 'invalid study manifest: rounds: must be ≥ 1'),
      new FedlhsError('UNAUTHENTICATED', 'the operator token is not valid'),
      new FedlhsError('PERMISSION_DENIED', 'POST /api/v1/join-tokens needs the admin role; vera is a viewer'),
      new FedlhsError('FAILED_PRECONDITION', 'study s1 is COMPLETED'),
      new FedlhsError('ALREADY_EXISTS', 'an operator named vera exists'),
    ];
    expect(cases.map((e) => `${toHttpError(e).status} ${JSON.stringify(toHttpError(e).body)}`)).toMatchInlineSnapshot(`
      [
        "400 {"error":{"code":"INVALID_MANIFEST","message":"invalid study manifest: rounds: must be ≥ 1"}}",
        "401 {"error":{"code":"UNAUTHENTICATED","message":"the operator token is not valid"}}",
        "403 {"error":{"code":"PERMISSION_DENIED","message":"POST /api/v1/join-tokens needs the admin role; vera is a viewer"}}",
        "409 {"error":{"code":"FAILED_PRECONDITION","message":"study s1 is COMPLETED"}}",
        "409 {"error":{"code":"ALREADY_EXISTS","message":"an operator named vera exists"}}",
      ]
    `);
  });

  it('answers 500 with a fixed text for in-process codes and anything else', () => {
    const internal = toHttpError(new FedlhsError('INVALID_TRANSITION', 'round cannot go from COMMITTED to TRAINING'));
    expect(internal).toMatchInlineSnapshot(`
      {
        "body": {
          "error": {
            "code": "INTERNAL",
            "message": "internal error (see coordinator log)",
            "status": "INTERNAL",
          },
        },
        "internal": true,
        "status": 500,
      }
    `);
    expect(toHttpError(new Error('SQLITE_CORRUPT: database disk image is malformed'))).toEqual(internal);
    expect(toHttpError('a string')).toEqual(internal);
  });

  it('answers RATE_LIMITED 429 with Retry-After in whole seconds (at least 1)', () => {
    const limited = toHttpError(new FedlhsError('RATE_LIMITED', 'too many failed credential checks', { details: { limit: 'limits.authFailuresPerMinute', retryAfterMs: 1500 } }));
    expect(limited.status).toBe(429);
    expect(limited.headers).toEqual({ 'retry-after': '2' });
    expect(limited.body.error.details).toEqual({ limit: 'limits.authFailuresPerMinute', retryAfterMs: 1500 });
    expect(toHttpError(new FedlhsError('RATE_LIMITED', 'x', { details: { limit: 'l', retryAfterMs: 0 } })).headers).toEqual({ 'retry-after': '1' });
  });

  it('answers a request error with its specific status (405, 413, 415) and headers, keeping code and class', () => {
    const notJson = toHttpError(withHttpStatus(new FedlhsError('INVALID_ARGUMENT', 'request body must be application/json', { details: { field: 'content-type' } }), 415));
    expect(notJson.status).toBe(415);
    expect(notJson.body).toEqual({ error: { code: 'INVALID_ARGUMENT', status: 'INVALID_ARGUMENT', message: 'request body must be application/json', details: { field: 'content-type' } } });
    const method = toHttpError(withHttpStatus(new FedlhsError('INVALID_ARGUMENT', 'x', { details: { field: 'method' } }), 405, { allow: 'GET' }));
    expect([method.status, method.headers]).toEqual([405, { allow: 'GET' }]);
    expect(toHttpError(withHttpStatus(new Error('not a domain error'), 413)).status).toBe(500);
  });
});
