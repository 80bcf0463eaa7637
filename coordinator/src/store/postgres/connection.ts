import pg from 'pg';
import { FedlhsError, type FedlhsErrorOptions } from '@fedlhs/core';

/** Why the store cannot serve (design §2.6): `details.why` of STORE_UNAVAILABLE. */
export type UnavailableWhy = 'connection' | 'disk_full' | 'read_only';

const INT8_OID = 20;

/**
 * BIGINT as a JS number: pg returns int8 as a string by default, which would leak strings into
 * records typed `number`. A value beyond 2^53 cannot be a millisecond time or a count we wrote,
 * so it is refused loudly rather than rounded (pg turns a parser's throw into the query's error).
 */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new FedlhsError('DATA_LOSS', `PostgreSQL returned the BIGINT ${text}, beyond JavaScript's safe integers`);
  return n;
}

/** The type parsers of every connection the store opens (pool and committer). */
export const storeTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * `url` with any password replaced by `***`, for logs and error messages. Handles both the
 * authority form (`postgres://u:secret@host/db`) and libpq's `?password=` parameter.
 */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^@/?#]*@/i, '$1***@')
    .replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/** A short, password-free description of where a pool connects, e.g. `postgres://fedlhs@/tmp/x/db`. */
export function describeTarget(config: pg.ClientConfig): string {
  if (config.connectionString !== undefined) return redactUrl(config.connectionString);
  const host = config.host ?? 'localhost';
  const where = host.startsWith('/') ? `${host}` : `${host}:${config.port ?? 5432}`;
  return `postgres://${config.user ?? ''}@${where}/${config.database ?? ''}`;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);
// SQLSTATE classes and codes that mean "the server is not there for us" rather than "this statement is wrong".
const CONNECTION_SQLSTATE = /^(08|28|3D|57P0[1-4]|53300|53400)/;
const CONNECTION_MESSAGES = /Connection terminated|not queryable|timeout exceeded when trying to connect|Client was closed|Cannot use a pool after calling end|connection is closed/i;

/** Why `err` means the store is unavailable, or undefined if it is an ordinary statement error. */
export function unavailableWhy(err: unknown): UnavailableWhy | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === '53100') return 'disk_full';
    if (code === '25006') return 'read_only';
    if (CONNECTION_CODES.has(code) || CONNECTION_SQLSTATE.test(code)) return 'connection';
  }
  return CONNECTION_MESSAGES.test(err.message) ? 'connection' : undefined;
}

/** PostgreSQL asks for the transaction to be retried (serialization failure, deadlock). */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}

/** STORE_UNAVAILABLE with `details.why`. */
export function storeUnavailable(why: UnavailableWhy, message: string, cause?: unknown): FedlhsError {
  // ErrorDetails has no STORE_UNAVAILABLE row yet (design §2.6 names `details.why`); this cast goes
  // when packages/core/src/errors.ts gains `STORE_UNAVAILABLE: { why: ... }`.
  const options = { cause, details: { why } } as unknown as FedlhsErrorOptions<'STORE_UNAVAILABLE'>;
  return new FedlhsError('STORE_UNAVAILABLE', message, options);
}

/** `err` as the caller should see it: STORE_UNAVAILABLE for a storage fault, else unchanged. */
export function mapStoreError(err: unknown, target: string): unknown {
  if (err instanceof FedlhsError) return err;
  const why = unavailableWhy(err);
  if (why === undefined) return err;
  const what = why === 'connection' ? 'cannot be reached' : why === 'disk_full' ? 'is out of disk space' : 'is read-only';
  return storeUnavailable(why, `the PostgreSQL store at ${target} ${what}: ${redactUrl((err as Error).message)}`, err);
}
