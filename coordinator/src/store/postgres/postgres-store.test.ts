import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { createTestSchema, postgresUrl, testPostgresUnavailable, type TestPostgresScope } from '@fedlhs/testing';
import type { NodeRecord, StudyRecord, TaskRecord } from '../../store.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../sqlite/migrations.js';
import { describeTarget, mapStoreError, parseInt8, redactUrl, storeTypes } from './connection.js';
import { migrate, MIGRATIONS } from './migrations.js';
import { PostgresBlobStore } from '../../blobs/postgres-blob-store.js';
import { PostgresStore } from './postgres-store.js';

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    return err instanceof FedlhsError ? err.code : `not a FedlhsError: ${String(err)}`;
  }
  return 'resolved';
};

describe('PostgreSQL connection helpers', () => {
  it('parses BIGINT to a number when it is a safe integer and refuses anything larger', () => {
    expect(parseInt8('1733000000000')).toBe(1733000000000);
    expect(parseInt8('-5')).toBe(-5);
    expect(() => parseInt8('9007199254740993')).toThrow(/beyond JavaScript's safe integers/);
  });

  it('redacts passwords in URLs, in the authority and as a parameter', () => {
    expect(redactUrl('postgres://fedlhs:s3cr%40t@db.example:5432/fedlhs')).toBe('postgres://fedlhs:***@db.example:5432/fedlhs');
    expect(redactUrl('postgres:///fedlhs?host=/tmp/x&password=hunter2&user=u')).toBe('postgres:///fedlhs?host=/tmp/x&password=***&user=u');
    expect(redactUrl('postgres://fedlhs@db/x')).toBe('postgres://fedlhs@db/x');
    expect(describeTarget({ host: '/tmp/sock', user: 'u', database: 'd', password: 'pw' })).toBe('postgres://u@/tmp/sock/d');
  });

  it('maps connection faults to STORE_UNAVAILABLE and leaves statement errors alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const mapped = mapStoreError(refused, 'postgres://u@h:5432/d') as FedlhsError;
    expect(mapped.code).toBe('STORE_UNAVAILABLE');
    expect(mapped.details).toEqual({ why: 'connection' });
    expect(mapped.cause).toBe(refused);
    const full = Object.assign(new Error('could not extend file'), { code: '53100' });
    expect((mapStoreError(full, 't') as FedlhsError).details).toEqual({ why: 'disk_full' });
    const unique = Object.assign(new Error('duplicate key'), { code: '23505' });
    expect(mapStoreError(unique, 't')).toBe(unique);
  });
});

const unavailable = await testPostgresUnavailable();
/** Tables only the PostgreSQL schema has (the parity check leaves them out). */
const PG_ONLY_TABLES = new Set(['schema_migrations', 'blobs', 'blob_chunks', 'leadership']);

describe('PostgresStore', () => {
  if (unavailable) {
    it('needs PostgreSQL', () => {
      throw unavailable;
    });
    return;
  }
  const scopes: TestPostgresScope[] = [];
  const stores: PostgresStore[] = [];
  const pools: pg.Pool[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const p of pools) await p.end().catch(() => undefined);
    for (const s of scopes) await s.drop();
  });
  const schema = async (): Promise<TestPostgresScope> => {
    const s = await createTestSchema('pgstore');
    scopes.push(s);
    return s;
  };
  const open = async (scope?: TestPostgresScope): Promise<{ store: PostgresStore; scope: TestPostgresScope; admin: pg.Pool }> => {
    const s = scope ?? (await schema());
    const store = await PostgresStore.open({ connection: s.connection, poolSize: 4 });
    stores.push(store);
    const admin = new pg.Pool({ ...s.connection, max: 2, types: storeTypes });
    pools.push(admin);
    return { store, scope: s, admin };
  };

  const node = (id: string): NodeRecord => ({ id, siteName: `site-${id}`, credentialHash: `c-${id}`, createdAt: 1000, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' });
  const study = (id: string): StudyRecord => ({
    id, name: id, manifestJson: '{}', manifestHash: 'm', state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null, createdAt: 1, endedAt: null,
  });
  const task = (id: string, roundId: number, nodeId: string): TaskRecord => ({
    id, roundId, studyId: 's', round: 1, attempt: 1, nodeId, kind: 'TRAIN', state: 'ASSIGNED', detail: null, modelSha256: 'x', deadline: 9e12, createdAt: 5, endedAt: null,
  });
  const studyWithRound = async (store: PostgresStore, nodes: string[]): Promise<number> => {
    const { roundIds } = await store.write(
      [
        ...nodes.map((id) => ({ op: 'node.insert' as const, n: node(id) })),
        { op: 'study.insert', s: study('s') },
        { op: 'round.insert', r: { studyId: 's', round: 1, attempt: 1, state: 'TRAINING', reason: null, startedAt: 2, endedAt: null, participants: 0, checkpointPath: null, checkpointSha256: null } },
      ],
      'setup',
    );
    return roundIds[0]!;
  };

  it('migrates a fresh schema once, records it, and is a no-op the second time', async () => {
    const { scope, admin } = await open();
    const versions = await admin.query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`);
    expect(versions.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(typeof versions.rows[0].applied_at).toBe('number');
    const client = new pg.Client(scope.connection);
    await client.connect();
    try {
      expect(await migrate(client)).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length });
    } finally {
      await client.end();
    }
  });

  it('upgrades a database of migration 3 to the release tables (4), keeping its metrics, which read without performance', async () => {
    const scope = await schema();
    const client = new pg.Client(scope.connection);
    await client.connect();
    try {
      await migrate(client, MIGRATIONS.slice(0, 3));
      await client.query(`INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s', 'sepsis', '{}', 'h', 'COMPLETED', 1)`);
      await client.query(`INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's', 1, 1, 'COMMITTED', 2)`);
      await client.query(`INSERT INTO metrics (round_id, node_id, phase, num_examples, loss, accuracy, auc) VALUES (1, NULL, 'evaluation', 50, 0.5, 0.75, 0.8)`);
    } finally {
      await client.end();
    }
    const store = await PostgresStore.open({ connection: scope.connection, poolSize: 2 });
    stores.push(store);
    expect(await store.listMetrics('s')).toEqual([{ roundId: 1, round: 1, nodeId: null, phase: 'evaluation', numExamples: 50, loss: 0.5, accuracy: 0.75, auc: 0.8, performance: undefined }]);
    const r = { studyName: 'sepsis', version: 1, studyId: 's', round: 1, manifestSha256: 'm'.repeat(64), envelope: '{}', files: [{ name: 'release.json', sha256: 'a'.repeat(64), size: 3 }], createdAt: 5, parentVersion: null };
    await store.write([{ op: 'release.insert', r }], 'release.insert');
    expect(await store.getRelease('sepsis', 1)).toEqual(r);
    expect((await store.referencedBlobs()).has('a'.repeat(64))).toBe(true);
  });

  it('upgrades a database of migration 4 to the series tables (5), keeping its studies, tasks, approvals and releases', async () => {
    const scope = await schema();
    const client = new pg.Client(scope.connection);
    await client.connect();
    try {
      await migrate(client, MIGRATIONS.slice(0, 4));
      await client.query(`INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('n1', 'a', 'c', 1), ('n2', 'b', 'c', 1)`);
      await client.query(`INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s', 'sepsis', '{}', 'h', 'COMPLETED', 1)`);
      await client.query(`INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's', 1, 1, 'COMMITTED', 2)`);
      await client.query(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('t', 1, 'n1', 'TRAIN', 'ACCEPTED', 'm', 9, 3)`);
      await client.query(`INSERT INTO study_approvals (study_id, node_id, manifest_sha256, approved_at) VALUES ('s', 'n2', 'm', 4)`);
      await client.query(`INSERT INTO releases (study_name, version, study_id, round, manifest_sha256, envelope, files, created_at) VALUES ('sepsis', 1, 's', 1, 'm', '{}', '[]', 5)`);
    } finally {
      await client.end();
    }
    const store = await PostgresStore.open({ connection: scope.connection, poolSize: 2 });
    stores.push(store);
    expect((await store.getRelease('sepsis', 1))?.studyId).toBe('s');
    expect([await store.nodeTookPartInName('n1', 'sepsis'), await store.nodeTookPartInName('n2', 'sepsis'), await store.nodeTookPartInName('n1', 'other')]).toEqual([true, true, false]);
    const series = { name: 'sepsis', template: '{}', templateSha256: 't'.repeat(64), state: 'active' as const, createdBy: 'alice', createdAt: 6, updatedAt: 6 };
    const run = { seriesName: 'sepsis', run: 1, studyId: 's', scheduledAt: 1, startedAt: 1, trigger: 'schedule', championVersion: null, template: '{}' };
    await store.write([{ op: 'series.insert', s: series }, { op: 'series.run', r: run }], 'series.insert');
    expect(await store.seriesRunOfStudy('s')).toEqual(run);
    expect(await store.listSeries()).toEqual([series]);
  });

  it('upgrades a database of migration 6 to the consistency stage kind (7), keeping its stage tasks', async () => {
    const scope = await schema();
    const client = new pg.Client(scope.connection);
    await client.connect();
    try {
      await migrate(client, MIGRATIONS.slice(0, 6));
      await client.query(`INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('n1', 'a', 'c', 1)`);
      await client.query(`INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s', 'sepsis', '{}', 'h', 'RUNNING', 1)`);
      await client.query(`INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's', 1, 1, 'TRAINING', 2)`);
      await client.query(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('t', 1, 'n1', 'SECAGG_UNMASK', 'ASSIGNED', '', 9, 3)`);
      await expect(client.query(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('c0', 1, 'n1', 'SECAGG_CONSISTENCY', 'ASSIGNED', '', 9, 3)`))
        .rejects.toThrow(/tasks_kind_check/);
    } finally {
      await client.end();
    }
    const store = await PostgresStore.open({ connection: scope.connection, poolSize: 2 });
    stores.push(store);
    expect((await store.getTask('t'))?.kind).toBe('SECAGG_UNMASK');
    await store.insertTask({ id: 'c1', roundId: 1, studyId: 's', round: 1, attempt: 1, nodeId: 'n1', kind: 'SECAGG_CONSISTENCY', state: 'ASSIGNED', detail: null, modelSha256: '', deadline: 9, createdAt: 4, endedAt: null });
    expect((await store.getTask('c1'))?.kind).toBe('SECAGG_CONSISTENCY');
    await expect(store.insertTask({ id: 'x', roundId: 1, studyId: 's', round: 1, attempt: 1, nodeId: 'n1', kind: 'SECAGG_OTHER' as never, state: 'ASSIGNED', detail: null, modelSha256: '', deadline: 9, createdAt: 5, endedAt: null })).rejects.toThrow();
  });

  it('creates the blob tables in migration 2, also over tables an earlier PostgresBlobStore.init() made', async () => {
    const scope = await schema();
    const client = new pg.Client(scope.connection);
    await client.connect();
    const pool = new pg.Pool({ ...scope.connection, max: 2 });
    try {
      // A database of the build before migration 2: version 1, blob tables from init(), a blob in them.
      await migrate(client, MIGRATIONS.slice(0, 1));
      const early = new PostgresBlobStore(pool);
      await early.init();
      const ref = await early.put([Buffer.from('kept across the upgrade')], { kind: 'checkpoint' });
      const store = await PostgresStore.open({ connection: scope.connection, poolSize: 2 });
      stores.push(store);
      const blobs = new PostgresBlobStore(store.pool, { schemaReady: true });
      await blobs.verify(ref);
      const ref2 = await blobs.put([Buffer.from('after')], { kind: 'checkpoint' });
      expect(await blobs.stat(ref2.sha256)).toEqual(ref2);
      const types = await client.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'blobs' ORDER BY column_name`);
      expect(types.rows).toEqual([
        { column_name: 'created_at', data_type: 'bigint' }, { column_name: 'kind', data_type: 'text' },
        { column_name: 'length', data_type: 'bigint' }, { column_name: 'sha256', data_type: 'text' },
      ]);
    } finally {
      await pool.end();
      await client.end();
    }
  });

  it('lets two coordinators migrate one database at once (advisory lock)', async () => {
    const scope = await schema();
    const clients = [new pg.Client(scope.connection), new pg.Client(scope.connection)];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const results = await Promise.all(clients.map((c) => migrate(c)));
      expect(results.map((r) => r.to)).toEqual([MIGRATIONS.length, MIGRATIONS.length]);
      const n = await clients[0]!.query(`SELECT count(*)::int AS n FROM schema_migrations`);
      expect(n.rows[0].n).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses a database newer than the code with STORE_VERSION_TOO_NEW', async () => {
    const { store, scope, admin } = await open();
    await store.close();
    await admin.query(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, [MIGRATIONS.length + 1]);
    const err = await PostgresStore.open({ connection: scope.connection }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('STORE_VERSION_TOO_NEW');
    expect((err as FedlhsError).details).toEqual({ found: MIGRATIONS.length + 1, supported: MIGRATIONS.length });
  });

  it('has the logical schema of SQLite: tables, columns, types, nullability and indexes', async () => {
    const { admin } = await open();
    const db = new Database(join(mkdtempSync(join(tmpdir(), 'fedlhs-parity-')), 'p.db'));
    for (const m of SQLITE_MIGRATIONS) db.exec(m);
    // SQLite INTEGER holds both numbers and 0/1 flags; booleans are BOOLEAN in PostgreSQL.
    const sqliteType = (t: string, column: string): string =>
      t === 'INTEGER' ? (column === 'accepted' ? 'boolean' : 'bigint') : t === 'REAL' ? 'double precision' : t.toLowerCase();
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    const lite: string[] = [];
    const liteIndexes: string[] = [];
    for (const t of tables) {
      for (const c of db.prepare(`PRAGMA table_info(${t})`).all() as { name: string; type: string; notnull: number; pk: number }[]) {
        // A PRIMARY KEY column is NOT NULL in PostgreSQL (SQLite leaves TEXT keys nullable for history's sake).
        lite.push(`${t}.${c.name} ${sqliteType(c.type, c.name)} ${c.notnull === 1 || c.pk > 0 ? 'NOT NULL' : 'NULL'}`);
      }
      for (const i of db.prepare(`PRAGMA index_list(${t})`).all() as { name: string; unique: number; origin: string; partial: number }[]) {
        if (i.origin !== 'c') continue; // constraints (PRIMARY KEY, UNIQUE) are compared as columns' keys below
        const cols = (db.prepare(`PRAGMA index_info(${i.name})`).all() as { name: string }[]).map((c) => c.name);
        liteIndexes.push(`${t}.${i.name}(${cols.join(',')})${i.unique ? ' unique' : ''}${i.partial ? ' partial' : ''}`);
      }
    }
    db.close();
    const cols = await admin.query(
      `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
    );
    const pgCols = cols.rows
      // schema_migrations is PostgreSQL's user_version; tasks.seq stands for SQLite's implicit rowid;
      // the blob tables are PostgreSQL's only (SQLite's blobs are files).
      .filter((r) => !PG_ONLY_TABLES.has(r.table_name) && !(r.table_name === 'tasks' && r.column_name === 'seq'))
      .map((r) => `${r.table_name}.${r.column_name} ${r.data_type} ${r.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}`);
    expect(lite.length).toBeGreaterThan(80);
    expect([...pgCols].sort()).toEqual([...lite].sort());
    const idx = await admin.query(
      `SELECT i.relname AS name, t.relname AS table, ix.indisunique AS unique, ix.indpred IS NOT NULL AS partial, ix.indisprimary AS primary, c.contype AS constraint,
              array_to_string(ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o), ',') AS cols
       FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
       LEFT JOIN pg_constraint c ON c.conindid = ix.indexrelid
       WHERE t.relnamespace = current_schema()::regnamespace`,
    );
    const pgIndexes = idx.rows
      .filter((r) => r.constraint === null && !PG_ONLY_TABLES.has(r.table))
      .map((r) => `${r.table}.${r.name}(${r.cols})${r.unique ? ' unique' : ''}${r.partial ? ' partial' : ''}`);
    expect(liteIndexes.length).toBeGreaterThan(8);
    expect(pgIndexes.sort()).toEqual(liteIndexes.sort());
  });

  it('inserts 10 000 tasks in one unit with one INSERT statement', async () => {
    const { store, admin } = await open();
    const nodes = Array.from({ length: 100 }, (_, i) => `n${i}`);
    const roundId = await studyWithRound(store, nodes);
    const tasks = Array.from({ length: 10_000 }, (_, i) => task(`t${i}`, roundId, nodes[i % 100]!));
    const spy = vi.spyOn(pg.Client.prototype, 'query');
    try {
      await store.write([{ op: 'task.insert', tasks }], 'assign');
      const texts = spy.mock.calls.map((c) => {
        const q = c[0] as unknown;
        return typeof q === 'string' ? q : (q as { text: string }).text;
      });
      expect(texts.filter((t) => /INSERT INTO tasks/.test(t))).toHaveLength(1);
      expect(texts).toHaveLength(3); // BEGIN, the INSERT, COMMIT
    } finally {
      spy.mockRestore();
    }
    expect((await admin.query(`SELECT count(*) AS n FROM tasks`)).rows[0].n).toBe(10_000);
    const listed = await store.listTasksPage({ roundId }, { limit: 1000 });
    expect(listed.items).toHaveLength(1000);
    expect(listed.next).not.toBeNull();
  });

  it('guards task.end (STALE, NOT_FOUND) and rolls back only the failing unit of a batch', async () => {
    const { store } = await open();
    const roundId = await studyWithRound(store, ['a', 'b']);
    await store.write([{ op: 'task.insert', tasks: [task('ta', roundId, 'a'), task('tb', roundId, 'b')] }], 'assign');
    const end = (id: string) => ({ op: 'task.end' as const, id, to: 'ACCEPTED' as const, detail: null, at: 10 });
    const contribution = (taskId: string, nodeId: string) => ({
      op: 'contribution.insert' as const,
      c: { taskId, studyId: 's', round: 1, attempt: 1, nodeId, numExamples: 5, sha256: `h-${taskId}`, bytes: 10, accepted: true, reasonCode: null, reason: null, receivedAt: 10 },
    });
    // Three units in one batch: the second fails its guard (ta is ended by the first).
    const outcomes = await Promise.allSettled([
      store.write([end('ta'), contribution('ta', 'a')], 'accept'),
      store.write([end('ta'), contribution('ta', 'a')], 'accept-again'),
      store.write([end('tb'), contribution('tb', 'b')], 'accept'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((outcomes[1] as PromiseRejectedResult).reason as FedlhsError).code).toBe('STALE');
    expect((await store.listContributions({ studyId: 's' })).map((c) => c.taskId)).toEqual(['ta', 'tb']);
    expect(await code(store.write([end('nope')], 'x'))).toBe('NOT_FOUND');
    const stats: number[] = [];
    store.onBatch((s) => stats.push(s.units));
    await store.write([{ op: 'node.seen', id: 'a', at: 77, agentVersion: 'v', trainingBackend: 'cpu' }], 'seen');
    expect(stats).toEqual([1]);
    expect((await store.getNode('a'))?.lastSeenAt).toBe(77);
  });

  it('commits a round once: round.commit on a final round is STALE', async () => {
    const { store } = await open();
    const roundId = await studyWithRound(store, ['a']);
    const metrics = [{ roundId, nodeId: null, phase: 'evaluation' as const, numExamples: 4, loss: 0.5, accuracy: 0.75, auc: 0.8 }];
    await store.commitRound(roundId, { path: 'p', sha256: 'h' }, metrics, '{"m":1}', 50);
    expect((await store.getStudy('s'))?.lastCommittedRound).toBe(1);
    expect(await store.listMetrics('s')).toEqual([{ ...metrics[0], round: 1 }]);
    expect(await code(store.commitRound(roundId, { path: 'p', sha256: 'h' }, [], null, 51))).toBe('STALE');
  });

  it('gives a join token to one of two concurrent redeemers', async () => {
    const { store, admin } = await open();
    await store.insertJoinToken({ id: 'tok', tokenHash: 'th', siteName: 'x', createdAt: 1, expiresAt: 9e12, usedAt: null, usedByNode: null, createdBy: 'admin' });
    const results = await Promise.all(['n1', 'n2', 'n3'].map((id) => store.redeemJoinToken('tok', node(id))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await admin.query(`SELECT count(*) AS n FROM nodes`)).rows[0].n).toBe(1);
    const winner = (await store.listNodes())[0]!.id;
    expect((await store.findJoinToken('th'))?.usedByNode).toBe(winner);
  });

  it('refuses a BIGINT beyond safe integers loudly', async () => {
    const { store, scope } = await open();
    const raw = new pg.Pool({ ...scope.connection, max: 1 });
    pools.push(raw);
    await raw.query(`INSERT INTO admin_actions (at, operator, action, target) VALUES (9007199254740993, 'o', 'a', 't')`);
    expect(await code(store.listAdminActions(10))).toBe('DATA_LOSS');
  });

  it('queues a burst of reads for its pool without timing them out (the connect timeout is for connecting only)', async () => {
    const s = await schema();
    // One connection and a 200 ms connect timeout: pg.Pool's own timeout would fail the reads
    // that wait longer than that for the connection; they must wait their turn instead.
    const store = await PostgresStore.open({ connection: s.connection, poolSize: 1, connectTimeoutMs: 200 });
    stores.push(store);
    await studyWithRound(store, ['n1']);
    const results = await Promise.all(Array.from({ length: 3000 }, () => store.listStudies()));
    expect(results.every((r) => r.length === 1)).toBe(true);
  });

  it('reports an unreachable server as STORE_UNAVAILABLE without leaking the password', async () => {
    const dir = mkdtempSync('/tmp/fedlhs-nopg-');
    const url = postgresUrl({ host: dir, port: 5432, user: 'u', password: 'hunter2', database: 'd' });
    const err = await PostgresStore.open({ connection: url, connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('STORE_UNAVAILABLE');
    expect((err as FedlhsError).details).toEqual({ why: 'connection' });
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('survives its connections being terminated: no crash, then serves again', async () => {
    const { store, admin, scope } = await open();
    await studyWithRound(store, ['a']);
    const warn = vi.fn();
    // Its own application_name, so that only its connections are terminated.
    const name = `fedlhs-kill-${process.pid}-${Date.now()}`;
    const s2 = await PostgresStore.open({ connection: { ...scope.connection, application_name: name }, logger: { info: () => undefined, warn } });
    stores.push(s2);
    await s2.write([{ op: 'node.seen', id: 'a', at: 1, agentVersion: '', trainingBackend: '' }], 'warm');
    expect(await s2.getNode('a')).toBeDefined();
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [name]);
    // The first use after the kill may fail (STORE_UNAVAILABLE) or reconnect; it must never be an unhandled error.
    const first = await code(s2.write([{ op: 'node.seen', id: 'a', at: 2, agentVersion: '', trainingBackend: '' }], 'after'));
    expect(['resolved', 'STORE_UNAVAILABLE']).toContain(first);
    await s2.write([{ op: 'node.seen', id: 'a', at: 3, agentVersion: '', trainingBackend: '' }], 'again');
    const r = await code(s2.getNode('a'));
    expect(['resolved', 'STORE_UNAVAILABLE']).toContain(r);
    expect((await s2.getNode('a'))?.lastSeenAt).toBe(3);
  });
});
