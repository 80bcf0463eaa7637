import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_BROKER_ENV,
  TestPostgresError,
  acquireTestPostgres,
  createPostgresBroker,
  createTestDatabase,
  createTestSchema,
  findPostgresBinaries,
  postgresUrl,
  startTestPostgres,
  testPostgresUnavailable,
  type PostgresConnection,
  type TestPostgresScope,
} from './postgres.js';

async function withClient<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const one = async (config: pg.ClientConfig, sql: string, values: unknown[] = []): Promise<unknown> =>
  withClient(config, async (c) => Object.values((await c.query(sql, values)).rows[0] ?? {})[0]);

// How a suite asks for PostgreSQL (the store contract suite's describeStores will do the same):
// check once at top level (this starts the run's server if it is not up yet), and without
// PostgreSQL register one failing test that names what to install instead of the suite.
const unavailable = await testPostgresUnavailable();

describe('with PostgreSQL', () => {
  if (unavailable) {
    it('needs PostgreSQL', () => {
      throw unavailable;
    });
    return;
  }

  describe("a suite's own schema on the run's shared server", () => {
    let schema: TestPostgresScope;
    beforeAll(async () => {
      schema = await createTestSchema();
    });
    afterAll(() => schema?.drop());

    it('holds tables created without a schema name, and is gone once dropped', async () => {
      await withClient(schema.connection, async (c) => {
        expect((await c.query('SELECT current_schema() AS s')).rows).toEqual([{ s: schema.name }]);
        await c.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
        await c.query('INSERT INTO notes VALUES ($1, $2), ($3, $4)', [1, 'a', 2, 'b']);
        expect((await c.query('SELECT id, body FROM notes ORDER BY id')).rows).toEqual([
          { id: 1, body: 'a' },
          { id: 2, body: 'b' },
        ]);
      });
      // The URL form (for a child process's --store-url) reaches the same schema.
      expect(await one({ connectionString: schema.url }, 'SELECT count(*)::int FROM notes')).toBe(2);

      const base: PostgresConnection = { ...schema.connection, options: undefined };
      const exists = 'SELECT count(*)::int FROM information_schema.schemata WHERE schema_name = $1';
      expect(await one(base, exists, [schema.name])).toBe(1);
      await schema.drop();
      expect(await one(base, exists, [schema.name])).toBe(0);
    });

    it('gives each caller a different schema', async () => {
      const other = await createTestSchema('other');
      try {
        expect(other.name).toMatch(/^other_\d+_\d+_[0-9a-f]{6}$/);
        expect(other.name).not.toBe(schema.name);
      } finally {
        await other.drop();
      }
    });
  });

  describe('a database of its own', () => {
    it('is created, reachable by URL and dropped', async () => {
      const db = await createTestDatabase();
      expect(await one({ connectionString: db.url }, 'SELECT current_database()')).toBe(db.name);
      const held = new pg.Client(db.connection);
      await held.connect();
      held.on('error', () => {}); // DROP ... WITH (FORCE) ends this session
      await db.drop();
      const base = { ...db.connection, database: 'postgres' };
      expect(await one(base, 'SELECT count(*)::int FROM pg_database WHERE datname = $1', [db.name])).toBe(0);
      await held.end().catch(() => {});
    });
  });

  describe('startTestPostgres', () => {
    it('runs a socket-only, fsync-off server and removes its directory on stop', async () => {
      const server = await startTestPostgres();
      try {
        expect(server.version).toBeGreaterThanOrEqual(13);
        expect(server.connection.host).toBe(server.dir);
        expect(await one(server.connection, 'SHOW fsync')).toBe('off');
        expect(await one(server.connection, 'SHOW listen_addresses')).toBe('');
      } finally {
        await server.stop();
      }
      expect(existsSync(server.dir)).toBe(false);
      await server.stop(); // idempotent
    });
  });
});

describe('without PostgreSQL binaries', () => {
  const none = { PATH: '/nonexistent/bin' };

  it('names what to install', () => {
    expect(() => findPostgresBinaries(none, '/nonexistent/postgresql')).toThrowErrorMatchingInlineSnapshot(
      `[TestPostgresError: This suite needs PostgreSQL, and no PostgreSQL server binaries were found (looked in /nonexistent/postgresql/*/bin and on PATH). Install Debian's postgresql package (apt-get install postgresql) or set FEDLHS_PG_BIN to a directory with initdb, pg_ctl and postgres (PostgreSQL 13 or later). FEDLHS_TEST_POSTGRES_URL=postgres://... uses a server you run instead.]`,
    );
    expect(() => findPostgresBinaries({ FEDLHS_PG_BIN: '/nonexistent/bin' })).toThrowErrorMatchingInlineSnapshot(
      `[TestPostgresError: This suite needs PostgreSQL, and FEDLHS_PG_BIN=/nonexistent/bin has no initdb, pg_ctl, postgres. Install Debian's postgresql package (apt-get install postgresql) or set FEDLHS_PG_BIN to a directory with initdb, pg_ctl and postgres (PostgreSQL 13 or later). FEDLHS_TEST_POSTGRES_URL=postgres://... uses a server you run instead.]`,
    );
  });

  it('fails the suite that asks, through the broker, with that message', async () => {
    const broker = await createPostgresBroker({ env: { FEDLHS_PG_BIN: '/nonexistent/bin' } });
    try {
      const env = { [POSTGRES_BROKER_ENV]: broker.env[POSTGRES_BROKER_ENV] };
      const err = await acquireTestPostgres(env).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TestPostgresError);
      expect(err).toMatchObject({ code: 'POSTGRES_UNAVAILABLE', message: expect.stringContaining('apt-get install postgresql') });
      await expect(createTestSchema('t', env)).rejects.toThrow(/FEDLHS_PG_BIN=\/nonexistent\/bin has no initdb/);
    } finally {
      await broker.close();
    }
  });

  it('says how to run it when no broker or URL is configured', async () => {
    await expect(acquireTestPostgres({})).rejects.toMatchObject({ code: 'POSTGRES_NOT_PROVIDED' });
  });
});

describe('postgresUrl', () => {
  it('writes socket and TCP connections as pg reads them', () => {
    expect(postgresUrl({ host: '/tmp/fedlhs-pg-x', port: 5432, user: 'fedlhs', database: 'postgres', options: '-c search_path=t_1' })).toBe(
      'postgres:///postgres?host=%2Ftmp%2Ffedlhs-pg-x&user=fedlhs&options=-c%20search_path%3Dt_1',
    );
    expect(postgresUrl({ host: 'db.example', port: 5433, user: 'u', password: 'p w', database: 'd' })).toBe('postgres://u:p%20w@db.example:5433/d');
  });

  it('is read back from FEDLHS_TEST_POSTGRES_URL, as are the forms libpq accepts', async () => {
    const socket: PostgresConnection = { host: '/tmp/fedlhs-pg-x', port: 5432, user: 'fedlhs', database: 'postgres' };
    const tcp: PostgresConnection = { host: 'db.example', port: 5433, user: 'u', password: 'p@ w', database: 'd' };
    for (const c of [socket, tcp]) await expect(acquireTestPostgres({ FEDLHS_TEST_POSTGRES_URL: postgresUrl(c) })).resolves.toEqual(c);
    await expect(acquireTestPostgres({ FEDLHS_TEST_POSTGRES_URL: 'postgres://fedlhs@/postgres?host=/tmp/fedlhs-pg-x' })).resolves.toEqual(socket);
  });
});
