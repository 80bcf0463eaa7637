import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import { contributionRec, enrol, studyRec, studyWithRound, taskRec } from './store/contract/fixtures.js';
import { MIGRATIONS, SCHEMA_VERSION } from './store/sqlite/migrations.js';
import { TOOK_PART_IN_NAME } from './store/sqlite/series.js';

// Store behaviour common to every store is in the contract suite (store/contract/); this file
// covers what only SQLite has: the file, PRAGMAs, migrations from old files, storage faults.

const open: SqliteStore[] = [];

function tempDbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'fedlhs-store-')), 'coordinator.db');
}

function openStore(path = tempDbPath(), options?: SqliteStoreOptions): SqliteStore {
  const store = new SqliteStore(path, options);
  open.push(store);
  return store;
}

afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
});

describe('SqliteStore file and migrations', () => {
  it('creates the schema on a fresh file, in WAL mode, and records the version', async () => {
    const path = tempDbPath();
    await openStore(path).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(12);
      expect(SCHEMA_VERSION).toBe(12);
      const names = (type: string): string[] =>
        (db.prepare(`SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name`).all(type) as { name: string }[]).map((r) => r.name);
      expect(names('table')).toEqual([
        'admin_actions', 'audit_chain', 'audit_head', 'contributions', 'join_tokens', 'metrics', 'node_ca', 'node_certificates', 'nodes', 'operators', 'promotions', 'release_aliases', 'release_performance', 'releases', 'rounds',
        'series', 'series_runs', 'statistics', 'studies', 'study_approvals', 'tasks',
      ]);
      expect(names('index')).toEqual([
        'audit_chain_by_ref', 'contributions_by_node', 'contributions_by_round', 'contributions_by_study_sha', 'contributions_one_accepted', 'metrics_by_round', 'node_certificates_by_node',
        'nodes_by_created', 'promotions_by_series', 'rounds_one_commit', 'statistics_by_study', 'studies_by_name', 'tasks_by_node_ended', 'tasks_by_round',
      ]);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('upgrades a version-2 database: its tasks keep their details and get no end time', async () => {
    const path = tempDbPath();
    const db = new Database(path);
    db.exec(MIGRATIONS[0]!);
    db.exec(MIGRATIONS[1]!);
    db.pragma('user_version = 2');
    db.exec(`
      INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('n1', 'a', 'c', 1);
      INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s1', 's', '{}', 'h', 'RUNNING', 1);
      INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's1', 1, 1, 'TRAINING', 1);
      INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at) VALUES ('t1', 1, 'n1', 'TRAIN', 'FAILED', 'fit: boom', 'm', 9, 10);
    `);
    db.close();
    const store = openStore(path);
    expect(await store.getTask('t1')).toMatchObject({ state: 'FAILED', detail: 'fit: boom', endedAt: null });
    await store.setTaskState('t1', 'FAILED', 'fit: boom', 500);
    expect((await store.getTask('t1'))?.endedAt).toBe(500);
  });

  it('upgrades a version-8 database to secure-aggregation task kinds (migration 9): tasks, their order and the statistics referencing them kept', async () => {
    const path = tempDbPath();
    const db = new Database(path);
    for (const m of MIGRATIONS.slice(0, 8)) db.exec(m);
    db.pragma('user_version = 8');
    db.exec(`
      INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('n1', 'a', 'c', 1);
      INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s1', 's', '{}', 'h', 'RUNNING', 1);
      INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's1', 1, 1, 'STATISTICS', 1);
      INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES ('t2', 1, 'n1', 'STATISTICS', 'ACCEPTED', null, '', 9, 10, 11);
      INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES ('t1', 1, 'n1', 'TRAIN', 'FAILED', 'fit: boom', 'm', 9, 10, 12);
      INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES ('s1', 't2', 'n1', '{}', 11);
    `);
    expect(() => db.exec(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('x', 1, 'n1', 'SECAGG_KEYS', 'ASSIGNED', '', 9, 10)`)).toThrow(/CHECK/);
    db.close();
    const store = openStore(path);
    expect(await store.getTask('t1')).toMatchObject({ kind: 'TRAIN', state: 'FAILED', detail: 'fit: boom', endedAt: 12 });
    await store.write([{ op: 'task.insert', tasks: ['SECAGG_KEYS', 'SECAGG_SHARES', 'SECAGG_MASKED_INPUT', 'SECAGG_UNMASK'].map((kind, i) => ({
      id: `k${i}`, roundId: 1, studyId: 's1', round: 1, attempt: 1, nodeId: 'n1', kind: kind as 'SECAGG_KEYS', state: 'ASSIGNED' as const, detail: null, modelSha256: '', deadline: 99, createdAt: 20 + i, endedAt: null,
    })) }], 'test');
    expect((await store.getTask('k2'))?.kind).toBe('SECAGG_MASKED_INPUT');
    await store.close();
    const check = new Database(path);
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(check.pragma('foreign_key_check')).toEqual([]);
      expect((check.prepare(`SELECT id FROM tasks ORDER BY rowid`).all() as { id: string }[]).map((r) => r.id)).toEqual(['t2', 't1', 'k0', 'k1', 'k2', 'k3']);
      expect(() => check.exec(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('y', 1, 'n1', 'BOGUS', 'ASSIGNED', '', 9, 10)`)).toThrow(/CHECK/);
    } finally {
      check.close();
    }
  });

  it('upgrades a version-9 database to the consistency stage kind (migration 10): tasks, their order and the statistics referencing them kept', async () => {
    const path = tempDbPath();
    const db = new Database(path);
    for (const m of MIGRATIONS.slice(0, 9)) db.exec(m);
    db.pragma('user_version = 9');
    db.exec(`
      INSERT INTO nodes (id, site_name, credential_hash, created_at) VALUES ('n1', 'a', 'c', 1);
      INSERT INTO studies (id, name, manifest_json, manifest_hash, state, created_at) VALUES ('s1', 's', '{}', 'h', 'RUNNING', 1);
      INSERT INTO rounds (id, study_id, round, attempt, state, started_at) VALUES (1, 's1', 1, 1, 'STATISTICS', 1);
      INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES ('t2', 1, 'n1', 'STATISTICS', 'ACCEPTED', null, '', 9, 10, 11);
      INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at) VALUES ('t1', 1, 'n1', 'SECAGG_UNMASK', 'ACCEPTED', 'answer sha256 x', '', 9, 10, 12);
      INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES ('s1', 't2', 'n1', '{}', 11);
    `);
    expect(() => db.exec(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('x', 1, 'n1', 'SECAGG_CONSISTENCY', 'ASSIGNED', '', 9, 10)`)).toThrow(/CHECK/);
    db.close();
    const store = openStore(path);
    expect(await store.getTask('t1')).toMatchObject({ kind: 'SECAGG_UNMASK', state: 'ACCEPTED', detail: 'answer sha256 x', endedAt: 12 });
    await store.write([{ op: 'task.insert', tasks: [{
      id: 'c1', roundId: 1, studyId: 's1', round: 1, attempt: 1, nodeId: 'n1', kind: 'SECAGG_CONSISTENCY', state: 'ASSIGNED', detail: null, modelSha256: '', deadline: 99, createdAt: 20, endedAt: null,
    }] }], 'test');
    expect((await store.getTask('c1'))?.kind).toBe('SECAGG_CONSISTENCY');
    await store.close();
    const check = new Database(path);
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(check.pragma('foreign_key_check')).toEqual([]);
      expect((check.prepare(`SELECT id FROM tasks ORDER BY rowid`).all() as { id: string }[]).map((r) => r.id)).toEqual(['t2', 't1', 'c1']);
      expect((check.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name))
        .toEqual(['tasks_by_node_ended', 'tasks_by_round']);
      expect(() => check.exec(`INSERT INTO tasks (id, round_id, node_id, kind, state, model_sha256, deadline, created_at) VALUES ('y', 1, 'n1', 'SECAGG_OTHER', 'ASSIGNED', '', 9, 10)`)).toThrow(/CHECK/);
    } finally {
      check.close();
    }
  });

  it('refuses a newer database with STORE_VERSION_TOO_NEW and leaves it untouched', async () => {
    const path = tempDbPath();
    await openStore(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    let error: unknown;
    try {
      openStore(path);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FedlhsError);
    expect(error).toMatchObject({ code: 'STORE_VERSION_TOO_NEW', details: { found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION } });
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    check.close();
  });

  it('serves the hot reads from indexes, not table scans', async () => {
    const path = tempDbPath();
    await openStore(path).close();
    const db = new Database(path, { readonly: true });
    const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
    try {
      expect(plan(`SELECT id FROM tasks WHERE round_id = 1 AND state = 'ASSIGNED'`)).toMatch(/USING (COVERING )?INDEX tasks_by_round/);
      expect(plan(`SELECT * FROM contributions WHERE node_id = 'n' AND accepted = 0 ORDER BY id DESC LIMIT 1`)).toMatch(/INDEX contributions_by_node/);
      expect(plan(`SELECT round, attempt, reason_code, COUNT(*) FROM contributions WHERE study_id = 's' AND accepted = 0 GROUP BY round, attempt, reason_code`)).toMatch(/INDEX contributions_by_round/);
      expect(plan(`SELECT * FROM contributions WHERE study_id = 's' AND sha256 = 'x' AND accepted = 1 LIMIT 1`)).toMatch(/INDEX contributions_by_study_sha/);
      expect(plan(`SELECT * FROM nodes WHERE (created_at, id) > (1, 'a') ORDER BY created_at, id LIMIT 10`)).toMatch(/INDEX nodes_by_created/);
      expect(plan(`SELECT * FROM metrics WHERE round_id = 3`)).toMatch(/INDEX metrics_by_round/);
      expect(plan(`SELECT * FROM statistics WHERE study_id = 's'`)).toMatch(/INDEX statistics_by_study/);
      // Series (issue 13): a node's participation in a name, and a series' decisions.
      const tookPart = plan(TOOK_PART_IN_NAME.replace(/\?/g, "'x'"));
      expect(tookPart).toMatch(/INDEX studies_by_name/);
      expect(tookPart).not.toMatch(/SCAN (s|a|r|t|studies|tasks|rounds|study_approvals)\b/);
      expect(plan(`SELECT * FROM promotions WHERE series_name = 's' ORDER BY at, id`)).toMatch(/INDEX promotions_by_series/);
    } finally {
      db.close();
    }
  });
});

describe('SqliteStore statements and batches', () => {
  it('prepares each statement once', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    const prepare = vi.spyOn(Database.prototype, 'prepare');
    for (let i = 0; i < 3; i++) {
      await store.getStudy('s1');
      await store.setStudyParameters('s1', `${i}`);
      await store.listNodeSummaries({ limit: 5 });
    }
    const first = prepare.mock.calls.length;
    for (let i = 0; i < 3; i++) {
      await store.getStudy('s1');
      await store.setStudyParameters('s1', `${i}`);
      await store.listNodeSummaries({ limit: 5 });
    }
    expect(prepare.mock.calls.length).toBe(first);
  });

  it('reports every batch to the observer given at open', async () => {
    const seen: number[] = [];
    const store = openStore(tempDbPath(), { onBatch: (s) => seen.push(s.units), groupCommit: { windowMs: 0, maxUnits: 4 } });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.insertContribution(contributionRec(`t${i}`, `h${i}`, true))));
    expect(seen.reduce((a, b) => a + b, 0)).toBe(10);
    expect(Math.max(...seen)).toBe(4);
  });

  it('commits while a test fakes the timers', async () => {
    const store = openStore();
    vi.useFakeTimers();
    try {
      await store.insertStudy(studyRec('s1'));
      expect((await store.getStudy('s1'))?.id).toBe('s1');
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes queued before close are committed; writes after close are refused', async () => {
    const path = tempDbPath();
    const store = openStore(path);
    const pending = Array.from({ length: 20 }, (_, i) => store.insertContribution(contributionRec(`t${i}`, `h${i}`, true)));
    await store.close();
    await Promise.all(pending);
    await expect(store.insertContribution(contributionRec('late', 'x', true))).rejects.toThrow(/closed/);
    const again = openStore(path);
    expect(await again.listContributions({})).toHaveLength(20);
  });
});

describe('SqliteStore storage faults', () => {
  it('a full disk rejects units with STORAGE_FAULT (disk_full); each unit is wholly there or absent, and the process goes on', async () => {
    const path = tempDbPath();
    // A database that may not grow past its size after migration: the disk is "full".
    const sizing = openStore(path);
    await sizing.close();
    const pages = (() => {
      const db = new Database(path, { readonly: true });
      const n = db.pragma('page_count', { simple: true }) as number;
      db.close();
      return n;
    })();
    const store = openStore(path, { pragmas: [`max_page_count = ${pages + 2}`] });
    await enrol(store, 'n1');
    const r = await studyWithRound(store);
    const results: PromiseSettledResult<unknown>[] = [];
    for (let wave = 0; wave < 20 && !results.some((x) => x.status === 'rejected'); wave++) {
      const units = Array.from({ length: 50 }, (_, i) => {
        const id = `t${wave}-${i}`;
        return store.write([
          { op: 'task.insert', tasks: [{ ...taskRec(id, r, 'n1', 'ASSIGNED', i), detail: 'x'.repeat(400) }] },
          { op: 'contribution.insert', c: contributionRec(id, 'y'.repeat(400), false) },
        ], 'fill');
      });
      results.push(...(await Promise.allSettled(units)));
    }
    const rejected = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const x of rejected) {
      expect(x.reason).toBeInstanceOf(FedlhsError);
      expect(x.reason).toMatchObject({ code: 'STORAGE_FAULT', details: { kind: 'disk_full' }, message: expect.stringMatching(/SQLITE_FULL/) });
      expect((x.reason as Error).message).toContain(path);
    }
    // Every unit is all or nothing: a task is stored exactly when its contribution is.
    const tasks = new Set((await store.listTasks(r)).map((t) => t.id));
    const contributions = new Set((await store.listContributions({})).map((c) => c.taskId));
    expect(tasks).toEqual(contributions);
    expect(tasks.size).toBe(results.filter((x) => x.status === 'fulfilled').length);
    // Writes that need no new pages still work.
    await store.setStudyState('s1', 'STOPPED', 'disk full', 1);
    expect((await store.getStudy('s1'))?.state).toBe('STOPPED');
    await store.close();
  });

  it('a read-only database rejects units with STORAGE_FAULT (read_only); the write probe says so, and passes again once writable', async () => {
    const path = tempDbPath();
    const store = openStore(path);
    await enrol(store, 'n1');
    await store.probeWrite();
    // query_only is what a read-only file gives every write: SQLITE_READONLY.
    (store as unknown as { db: Database.Database }).db.pragma('query_only = 1');
    await expect(store.probeWrite()).rejects.toMatchObject({ code: 'STORAGE_FAULT', details: { kind: 'read_only' } });
    await expect(store.revokeNode('n1', 5)).rejects.toMatchObject({ code: 'STORAGE_FAULT', details: { kind: 'read_only' } });
    (store as unknown as { db: Database.Database }).db.pragma('query_only = 0');
    await store.probeWrite();
    expect(await store.revokeNode('n1', 5)).toBe(true);
    await store.close();
  });
});
