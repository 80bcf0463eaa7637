import Database from 'better-sqlite3';
import pg from 'pg';
import type { CoordinatorStore } from '../store.js';
import { SqliteStore } from '../sqlite-store.js';
import { storeTypes } from '../store/postgres/connection.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import type { AuditRow } from './audited-rows.js';
import type { AuditQuery } from './verify.js';

/** A read-only query function on a store's database, and how to let it go. */
export interface AuditSource {
  query: AuditQuery;
  /**
   * Runs `fn` with queries that all read one snapshot of the database, so writes committed by a
   * running coordinator meanwhile are not seen half-way (`audit verify` compares the head, the
   * chain and the audited rows with each other: review auditchain HIGH 1).
   */
  snapshot<T>(fn: (query: AuditQuery) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the audit SQL has no `?` inside literals). */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

/** A read-only connection to a SQLite store file (WAL: it reads beside a running coordinator). */
export function sqliteAuditSource(path: string): AuditSource {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const query: AuditQuery = async (sql, params) => db.prepare(sql).all(...params) as AuditRow[];
  return {
    query,
    // In WAL mode a read transaction keeps the snapshot its first read took until COMMIT.
    snapshot: async (fn) => {
      db.exec('BEGIN');
      try {
        return await fn(query);
      } finally {
        db.exec('COMMIT');
      }
    },
    close: async () => {
      db.close();
    },
  };
}

/** Queries on a PostgreSQL pool (BIGINT as numbers, as the store reads them). */
export function postgresAuditSource(pool: pg.Pool, end: boolean): AuditSource {
  return {
    query: async (sql, params) => (await pool.query(numbered(sql), params)).rows as AuditRow[],
    // One connection, one REPEATABLE READ transaction: every query sees the snapshot of the first.
    snapshot: async (fn) => {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const result = await fn(async (sql, params) => (await client.query(numbered(sql), params)).rows as AuditRow[]);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    close: async () => {
      if (end) await pool.end();
    },
  };
}

/** A PostgreSQL store's database by URL, on a pool of one connection of its own. */
export function postgresUrlAuditSource(url: string): AuditSource {
  return postgresAuditSource(new pg.Pool({ connectionString: url, max: 1, types: storeTypes, application_name: 'fedlhs-coordinator audit verify' }), true);
}

/** The source for an open store (tests): SQLite by its file, PostgreSQL on the store's own pool. */
export function auditSourceOf(store: CoordinatorStore): AuditSource {
  if (store instanceof SqliteStore) return sqliteAuditSource(store.path);
  if (store instanceof PostgresStore) return postgresAuditSource(store.pool, false);
  throw new Error(`no audit source for store kind ${store.kind}`);
}
