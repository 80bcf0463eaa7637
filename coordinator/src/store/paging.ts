import { FedlhsError } from '@fedlhs/core';
import type { Page, PageRequest } from '../store.js';

/** Most items one page may hold. */
export const MAX_PAGE = 1000;

/** Checks a page request's limit (1..MAX_PAGE); a bad one is the caller's INVALID_ARGUMENT. */
export function pageLimit(page: PageRequest): number {
  const { limit } = page;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new FedlhsError('INVALID_ARGUMENT', `page limit must be an integer from 1 to ${MAX_PAGE}, not ${String(limit)}`, { details: { field: 'limit' } });
  }
  return limit;
}

/** The key of a row a keyset page continues after: (created_at, id) for nodes and tasks, [id] for contributions. */
export type CursorKey = readonly (string | number)[];

/** An opaque cursor for `key` (base64url JSON, so it survives a URL query). */
export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * The key in `cursor`, checked against the expected shape ('s' string, 'n' number per position);
 * undefined when there is no cursor. A malformed cursor is INVALID_ARGUMENT, never a silent restart.
 */
export function decodeCursor(cursor: string | undefined, shape: string): (string | number)[] | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    key = undefined;
  }
  const ok =
    Array.isArray(key) &&
    key.length === shape.length &&
    key.every((v, i) => (shape[i] === 'n' ? typeof v === 'number' && Number.isFinite(v) : typeof v === 'string'));
  if (!ok) throw new FedlhsError('INVALID_ARGUMENT', 'malformed page cursor', { details: { field: 'cursor' } });
  return key as (string | number)[];
}

/**
 * Builds a page from up to limit + 1 rows (the extra one only says a next page exists).
 * `keyOf` gives the cursor key of the last row kept.
 */
export function toPage<R, T>(rows: readonly R[], limit: number, map: (r: R) => T, keyOf: (r: R) => CursorKey): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(map), next: more && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
