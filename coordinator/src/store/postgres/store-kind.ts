import pg from 'pg';
import { createTestSchema, type PostgresConnection, type TestPostgresScope } from '@fedlhs/testing';
import type { LogicalColumn, LogicalSchema, OpenedStore, StoreKind } from '../contract/kind.js';
import { MIGRATIONS } from './migrations.js';
import { PostgresStore } from './postgres-store.js';

/**
 * The PostgreSQL entry of the store contract suite (contract/store-kinds.ts): each store gets a
 * fresh schema on the run's throwaway server (@fedlhs/testing). Nothing is skipped:
 * without PostgreSQL, `createTestSchema` throws a message naming what to install, and the suite
 * fails with it instead of skipping.
 */

const TYPES: Record<string, string> = { text: 'text', bigint: 'integer', integer: 'integer', boolean: 'boolean', 'double precision': 'real' };

async function postgresSchema(connection: PostgresConnection): Promise<LogicalSchema> {
  const client = new pg.Client(connection);
  await client.connect();
  try {
    const tables: Record<string, LogicalColumn[]> = {};
    const cols = await client.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, column_name`,
    );
    for (const c of cols.rows) {
      (tables[c.table_name] ??= []).push({ name: c.column_name, type: TYPES[c.data_type] ?? c.data_type, notNull: c.is_nullable === 'NO' });
    }
    const indexes: Record<string, string> = {};
    const idx = await client.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()`);
    // The schema name differs per test: leave it out of the definitions.
    for (const r of idx.rows) indexes[r.indexname] = r.indexdef.replace(/\s+ON\s+\S+\./, ' ON ');
    return { tables, indexes };
  } finally {
    await client.end();
  }
}

function opened(scope: TestPostgresScope, store: PostgresStore): OpenedStore {
  return {
    store,
    cleanup: async () => {
      await store.close();
      await scope.drop();
    },
    reopen: () => PostgresStore.open({ connection: scope.connection, poolSize: 2 }),
    schema: () => postgresSchema(scope.connection),
  };
}

export const postgresKind: StoreKind = {
  kind: 'postgres',
  open: async () => {
    const scope = await createTestSchema('contract');
    return opened(scope, await PostgresStore.open({ connection: scope.connection, poolSize: 4 }));
  },
  openTooNew: async () => {
    const scope = await createTestSchema('contract');
    try {
      await (await PostgresStore.open({ connection: scope.connection, poolSize: 1 })).close();
      const client = new pg.Client(scope.connection);
      await client.connect();
      try {
        await client.query(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, [MIGRATIONS.length + 1]);
      } finally {
        await client.end();
      }
      await (await PostgresStore.open({ connection: scope.connection, poolSize: 1 })).close();
    } finally {
      await scope.drop();
    }
  },
};
