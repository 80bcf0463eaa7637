/**
 * The `authorization` value of a bearer credential, shared by the coordinator's gRPC services
 * (node credentials) and its admin API (operator tokens), and by clients that build it.
 *
 * RFC 9110 §11.1 / RFC 6750 §2.1: `credentials = auth-scheme 1*SP token68`, the scheme compared
 * case-insensitively. fedlhs accepts "Bearer" in any case, then one or more spaces or tabs, then
 * the credential; spaces and tabs around the whole value are ignored (RFC 9110 §5.5). The credential itself is returned
 * as sent (it is case-sensitive).
 */

/** Why a value is not a bearer credential: absent, or present in another form. */
export type BearerProblem = 'missing' | 'malformed';

/** A parsed authorization value: the credential, or why there is none. */
export type ParsedBearer = { ok: true; credential: string } | { ok: false; why: BearerProblem };

const BEARER = /^[ \t]*bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Parses an `authorization` value. `undefined` or an empty value is `missing`; another scheme
 * (`Basic x`), "Bearer" without a credential, or a credential containing whitespace is `malformed`.
 */
export function parseBearer(value: string | undefined): ParsedBearer {
  if (value === undefined || value.trim() === '') return { ok: false, why: 'missing' };
  const m = BEARER.exec(value);
  return m === null ? { ok: false, why: 'malformed' } : { ok: true, credential: m[1]! };
}

/** The canonical `authorization` value for a credential, as fedlhs clients send it. */
export function bearerAuthorization(credential: string): string {
  return `Bearer ${credential}`;
}
