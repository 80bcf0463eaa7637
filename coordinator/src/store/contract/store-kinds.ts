import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../sqlite-store.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../sqlite/migrations.js';
import { postgresKind } from '../postgres/store-kind.js';
import type { LogicalColumn, LogicalSchema, OpenedStore, StoreKind } from './kind.js';

export type { LogicalColumn, LogicalSchema, OpenedStore, StoreKind } from './kind.js';

/** The rows `openUpgraded` databases hold (made by the old schema). */
export const LEGACY_ROWS = {
  nodeId: 'legacy-node',
  studyId: 'legacy-study',
  taskId: 'legacy-task',
  /** Round 1 attempt 1, COMMITTED, with the node's accepted contribution of sha256 'l'×64 and a global evaluation metric (no performance). */
  sha256: 'l'.repeat(64),
} as const;

function sqlitePath(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-store-contract-'));
  return { dir, path: join(dir, 'coordinator.db') };
}

function sqliteSchema(path: string): LogicalSchema {
  const db = new Database(path, { readonly: true });
  try {
    const tables: Record<string, LogicalColumn[]> = {};
    const names = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[];
    for (const { name } of names) {
      const cols = db.prepare(`SELECT name, type, "notnull" AS nn, pk FROM pragma_table_info(?)`).all(name) as { name: string; type: string; nn: number; pk: number }[];
      tables[name] = cols
        .map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: c.nn === 1 || c.pk === 1 }))
        .sort((a, b) => a.name.localeCompare(b.name));
    }
    const indexes: Record<string, string> = {};
    for (const r of db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`).all() as { name: string; sql: string }[]) {
      indexes[r.name] = r.sql.replace(/\s+/g, ' ').trim();
    }
    return { tables, indexes };
  } finally {
    db.close();
  }
}

function openedSqlite(dir: string, path: string, store: SqliteStore): OpenedStore {
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
    reopen: async () => new SqliteStore(path),
    schema: async () => sqliteSchema(path),
  };
}

export const sqliteKind: StoreKind = {
  kind: 'sqlite',
  open: async () => {
    const { dir, path } = sqlitePath();
    return openedSqlite(dir, path, new SqliteStore(path));
  },
  openUpgraded: async () => {
    const { dir, path } = sqlitePath();
    const db = new Database(path);
    const previous = SCHEMA_VERSION - 1;
    for (let v = 0; v < previous; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${previous}`);
    const L = LEGACY_ROWS;
    db.exec(`
      INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('${L.nodeId}', 'old clinic', 'cred', 10);
      INSERT INTO studies (id, name, manifest_json, manifest_hash, state, last_committed_round, created_at) VALUES ('${L.studyId}', 'old', '{}', 'h', 'RUNNING', 1, 20);
      INSERT INTO rounds (id, study_id, round, attempt, state, started_at, ended_at, participants) VALUES (1, '${L.studyId}', 1, 1, 'COMMITTED', 30, 40, 1);
      INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at, ended_at) VALUES ('${L.taskId}', 1, '${L.nodeId}', 'TRAIN', 'ACCEPTED', 'm', 99, 31, 35);
      INSERT INTO contributions (task_id, study_id, round, attempt, node_id, num_examples, sha256, bytes, accepted, received_at) VALUES ('${L.taskId}', '${L.studyId}', 1, 1, '${L.nodeId}', 50, '${L.sha256}', 64, 1, 35);
      INSERT INTO metrics (round_id, node_id, phase, num_examples, loss, accuracy, auc) VALUES (1, NULL, 'evaluation', 50, 0.5, 0.75, 0.8);
    `);
    db.close();
    return openedSqlite(dir, path, new SqliteStore(path));
  },
  openTooNew: async () => {
    const { dir, path } = sqlitePath();
    try {
      await new SqliteStore(path).close();
      const db = new Database(path);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.close();
      const store = new SqliteStore(path);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/**
 * Every store kind the contract suite runs against. Append an entry to add a store; the body of
 * each `describeStores` then runs once per kind.
 */
export const storeKinds: StoreKind[] = [sqliteKind, postgresKind];
