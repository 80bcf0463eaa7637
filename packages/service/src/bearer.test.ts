import { describe, expect, it } from 'vitest';
import { bearerAuthorization, parseBearer } from './bearer.js';

const CRED = 'fnc_node_0123456789abcdef.AbC-_xyz0123456789abcdefghij';

describe('parseBearer', () => {
  it.each([
    ['canonical', `Bearer ${CRED}`],
    ['lowercase scheme', `bearer ${CRED}`],
    ['uppercase scheme, two spaces', `BEARER  ${CRED}`],
    ['mixed case, a tab', `bEaReR\t${CRED}`],
    ['spaces and tabs, whitespace around the value', ` \tBearer \t ${CRED} \t`],
  ])('accepts %s', (_label, value) => {
    expect(parseBearer(value)).toEqual({ ok: true, credential: CRED });
  });

  it('keeps the credential exactly as sent (it is case-sensitive)', () => {
    expect(parseBearer('bearer AbCdEf')).toEqual({ ok: true, credential: 'AbCdEf' });
  });

  it.each([
    ['absent', undefined],
    ['empty', ''],
    ['blank', ' \t '],
  ])('calls %s missing', (_label, value) => {
    expect(parseBearer(value)).toEqual({ ok: false, why: 'missing' });
  });

  it.each([
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['no separator', `Bearer${CRED}`],
    ['scheme only', 'Bearer'],
    ['scheme and blanks only', 'Bearer   '],
    ['two credentials', `Bearer ${CRED} ${CRED}`],
    ['a longer scheme name', `Bearerx ${CRED}`],
    ['a newline separator', `Bearer\n${CRED}`],
  ])('calls %s malformed', (_label, value) => {
    expect(parseBearer(value)).toEqual({ ok: false, why: 'malformed' });
  });

  it('round-trips what bearerAuthorization builds', () => {
    expect(bearerAuthorization(CRED)).toBe(`Bearer ${CRED}`);
    expect(parseBearer(bearerAuthorization(CRED))).toEqual({ ok: true, credential: CRED });
  });
});
