import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from './sqlite-store.js';
import type { ContributionRecord, JoinTokenRecord, NodeRecord, RoundRecord, StudyRecord, TaskRecord } from './store.js';

const open: SqliteStore[] = [];

function tempDbPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'fedlhs-store-')), 'coordinator.db');
}

function openStore(path = tempDbPath()): SqliteStore {
  const store = new SqliteStore(path);
  open.push(store);
  return store;
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined);
});

const token = (id: string, over: Partial<JoinTokenRecord> = {}): JoinTokenRecord => ({
  id,
  tokenHash: `hash-${id}`,
  siteName: 'clinic-a',
  createdAt: 1000,
  expiresAt: 9000,
  usedAt: null,
  usedByNode: null,
  createdBy: 'admin',
  ...over,
});

const nodeRec = (id: string, over: Partial<NodeRecord> = {}): NodeRecord => ({
  id,
  siteName: 'clinic-a',
  credentialHash: `cred-${id}`,
  createdAt: 2000,
  revokedAt: null,
  lastSeenAt: null,
  agentVersion: '',
  trainingBackend: '',
  ...over,
});

const studyRec = (id: string): StudyRecord => ({
  id,
  name: `study-${id}`,
  manifestJson: '{}',
  manifestHash: 'm'.repeat(64),
  state: 'RUNNING',
  reason: null,
  lastCommittedRound: 0,
  strategyState: null,
  parameters: null,
  createdAt: 100,
  endedAt: null,
});

const roundRec = (studyId: string, round: number, attempt: number, state: RoundRecord['state']): Omit<RoundRecord, 'id'> => ({
  studyId,
  round,
  attempt,
  state,
  reason: null,
  startedAt: 500 + round * 10 + attempt,
  endedAt: null,
  participants: 0,
  checkpointPath: null,
  checkpointSha256: null,
});

const taskRec = (id: string, roundId: number, nodeId: string, state: TaskRecord['state'], createdAt: number, kind: TaskRecord['kind'] = 'TRAIN'): TaskRecord => ({
  id,
  roundId,
  // studyId, round and attempt are not stored on the task: they come from its round.
  studyId: '',
  round: 0,
  attempt: 0,
  nodeId,
  kind,
  state,
  detail: null,
  modelSha256: 'a'.repeat(64),
  deadline: 99_000,
  createdAt,
  endedAt: null,
});

const contributionRec = (taskId: string, sha256: string, accepted: boolean, over: Partial<ContributionRecord> = {}): ContributionRecord => ({
  taskId,
  studyId: 's1',
  round: 1,
  attempt: 1,
  nodeId: 'n1',
  numExamples: 120,
  sha256,
  bytes: 4096,
  accepted,
  reasonCode: accepted ? null : 'DIGEST_MISMATCH',
  reason: accepted ? null : 'sha256 mismatch',
  receivedAt: 7000,
  deltaNorm: null,
  ...over,
});

/** Enrols a node the only way the store allows: by redeeming a join token. */
async function enrol(store: SqliteStore, id: string): Promise<void> {
  await store.insertJoinToken(token(`jt-${id}`));
  expect(await store.redeemJoinToken(`jt-${id}`, nodeRec(id))).toBe(true);
}

describe('SqliteStore migrations', () => {
  it('creates the schema on a fresh file and records the version', async () => {
    const path = tempDbPath();
    const store = openStore(path);
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3);
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
      expect(tables).toEqual(['admin_actions', 'contributions', 'join_tokens', 'metrics', 'nodes', 'operators', 'rounds', 'statistics', 'studies', 'tasks']);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('reopens an existing file without re-running migrations or losing data', async () => {
    const path = tempDbPath();
    const first = openStore(path);
    await first.insertStudy(studyRec('s1'));
    await first.close();

    const second = openStore(path);
    expect((await second.listStudies()).map((s) => s.id)).toEqual(['s1']);
    await second.close();
    const third = openStore(path);
    expect(await third.getStudy('s1')).toEqual(studyRec('s1'));
    await third.close();

    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    db.close();
  });

  it('upgrades a version-2 database: its tasks keep their details and get no end time', async () => {
    const path = tempDbPath();
    const first = openStore(path);
    await enrol(first, 'n1');
    await first.insertStudy(studyRec('s1'));
    const r = await first.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    await first.insertTask({ ...taskRec('t1', r, 'n1', 'FAILED', 10), detail: 'fit: boom' });
    await first.close();
    // Back to the schema of version 2, as a coordinator before this migration left it.
    const db = new Database(path);
    db.exec(`DROP INDEX tasks_by_node_ended; ALTER TABLE tasks DROP COLUMN ended_at;`);
    db.pragma('user_version = 2');
    db.close();
    const second = openStore(path);
    expect(await second.getTask('t1')).toMatchObject({ state: 'FAILED', detail: 'fit: boom', endedAt: null });
    await second.setTaskState('t1', 'FAILED', 'fit: boom', 500);
    expect((await second.getTask('t1'))?.endedAt).toBe(500);
  });
});

describe('SqliteStore join tokens', () => {
  it('redeems a token once, creating exactly one node', async () => {
    const store = openStore();
    await store.insertJoinToken(token('jt1'));
    expect(await store.redeemJoinToken('jt1', nodeRec('n1'))).toBe(true);
    expect(await store.redeemJoinToken('jt1', nodeRec('n2', { createdAt: 3000 }))).toBe(false);

    expect((await store.listNodes()).map((n) => n.id)).toEqual(['n1']);
    expect(await store.getNode('n2')).toBeUndefined();
    expect(await store.getNode('n1')).toEqual(nodeRec('n1'));
    expect(await store.findJoinToken('hash-jt1')).toEqual(token('jt1', { usedAt: 2000, usedByNode: 'n1' }));
  });

  it('returns false, and creates no node, for an unknown token id', async () => {
    const store = openStore();
    expect(await store.redeemJoinToken('nope', nodeRec('n1'))).toBe(false);
    expect(await store.listNodes()).toEqual([]);
  });

  it('finds tokens by hash only', async () => {
    const store = openStore();
    await store.insertJoinToken(token('jt1'));
    expect(await store.findJoinToken('hash-jt2')).toBeUndefined();
    expect((await store.findJoinToken('hash-jt1'))?.id).toBe('jt1');
  });

  it('revokes a node once and records when it was seen', async () => {
    const store = openStore();
    await enrol(store, 'n1');
    expect(await store.revokeNode('n1', 5000)).toBe(true);
    expect(await store.revokeNode('n1', 6000)).toBe(false);
    await store.touchNode('n1', 5500, '0.1.0', 'wasm');
    expect(await store.getNode('n1')).toEqual(nodeRec('n1', { revokedAt: 5000, lastSeenAt: 5500, agentVersion: '0.1.0', trainingBackend: 'wasm' }));
  });
});

describe('SqliteStore rounds', () => {
  it('commits a round: state, checkpoint, study progress and metrics together', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await store.commitRound(
      r1,
      { path: '/cp/round-000001.f32', sha256: 'c'.repeat(64) },
      [
        { roundId: r1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.8 },
        { roundId: r1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9 },
      ],
      '{"m":1}',
      8000,
    );

    const [round] = await store.listRounds('s1');
    expect(round).toEqual({ ...roundRec('s1', 1, 1, 'COMMITTED'), id: r1, endedAt: 8000, checkpointPath: '/cp/round-000001.f32', checkpointSha256: 'c'.repeat(64) });
    expect(await store.getCommittedRound('s1', 1)).toEqual(round);
    expect(await store.getStudy('s1')).toMatchObject({ lastCommittedRound: 1, strategyState: '{"m":1}' });
    expect(await store.listMetrics('s1')).toEqual([
      { roundId: r1, round: 1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.8 },
      { roundId: r1, round: 1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9, auc: undefined },
    ]);
  });

  it('rolls the whole commit back when a metric cannot be stored', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const good = { roundId: r1, nodeId: null, phase: 'evaluation' as const, numExamples: 40, loss: 0.5, accuracy: 0.75 };
    // round_id 999 violates the metrics → rounds foreign key, after the round and study updates ran.
    await expect(store.commitRound(r1, { path: '/cp', sha256: 'c'.repeat(64) }, [good, { ...good, roundId: 999 }], 'x', 8000)).rejects.toThrow(/FOREIGN KEY/);

    expect((await store.listRounds('s1'))[0]).toMatchObject({ state: 'EVALUATING', endedAt: null, checkpointPath: null });
    expect(await store.getStudy('s1')).toMatchObject({ lastCommittedRound: 0, strategyState: null });
    expect(await store.listMetrics('s1')).toEqual([]);
    expect(await store.getCommittedRound('s1', 1)).toBeUndefined();
  });

  it('refuses to commit a round that does not exist', async () => {
    const store = openStore();
    await expect(store.commitRound(42, { path: '/cp', sha256: 'c' }, [], null, 1)).rejects.toThrowErrorMatchingInlineSnapshot(`[Error: round 42 does not exist]`);
  });

  it('forbids two COMMITTED rows for the same study and round', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    await store.insertStudy(studyRec('s2'));
    const a1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const a2 = await store.insertRound(roundRec('s1', 1, 2, 'EVALUATING'));
    const other = await store.insertRound(roundRec('s2', 1, 1, 'EVALUATING'));
    await store.commitRound(a1, { path: '/a1', sha256: '1'.repeat(64) }, [], null, 100);

    await expect(store.commitRound(a2, { path: '/a2', sha256: '2'.repeat(64) }, [], null, 200)).rejects.toThrow(/UNIQUE constraint failed: rounds\.study_id, rounds\.round/);
    await expect(store.setRoundState(a2, 'COMMITTED', null, 200)).rejects.toThrow(/UNIQUE constraint failed/);
    expect(await store.getCommittedRound('s1', 1)).toMatchObject({ id: a1, checkpointPath: '/a1' });
    expect((await store.listRounds('s1')).map((r) => r.state)).toEqual(['COMMITTED', 'EVALUATING']);

    // Other studies, and other states of the same round, are unaffected by the index.
    await store.commitRound(other, { path: '/s2', sha256: '3'.repeat(64) }, [], null, 300);
    await store.setRoundState(a2, 'FAILED', 'superseded', 300);
    await store.insertRound(roundRec('s1', 1, 3, 'FAILED'));
    expect((await store.listRounds('s1')).map((r) => `${r.attempt}:${r.state}`)).toEqual(['1:COMMITTED', '2:FAILED', '3:FAILED']);
  });

  it('forbids a second row for the same (study, round, attempt)', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    await expect(store.insertRound(roundRec('s1', 1, 1, 'TRAINING'))).rejects.toThrow(/UNIQUE constraint failed/);
  });

  it('fails open rounds and cancels their ASSIGNED tasks, leaving final rounds and other studies alone', async () => {
    const store = openStore();
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    await store.insertStudy(studyRec('s2'));
    const committed = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await store.commitRound(committed, { path: '/cp', sha256: 'c'.repeat(64) }, [], null, 600);
    const failed = await store.insertRound(roundRec('s1', 2, 1, 'TRAINING'));
    await store.setRoundState(failed, 'FAILED', 'deadline passed', 650);
    const training = await store.insertRound(roundRec('s1', 2, 2, 'TRAINING'));
    const evaluating = await store.insertRound(roundRec('s1', 3, 1, 'EVALUATING'));
    const elsewhere = await store.insertRound(roundRec('s2', 1, 1, 'TRAINING'));
    await store.insertTask(taskRec('t-committed', committed, 'n1', 'ASSIGNED', 1));
    await store.insertTask(taskRec('t-failed', failed, 'n1', 'ASSIGNED', 2));
    await store.insertTask(taskRec('t-open', training, 'n1', 'ASSIGNED', 3));
    await store.insertTask(taskRec('t-done', training, 'n1', 'ACCEPTED', 4));
    await store.insertTask(taskRec('t-eval', evaluating, 'n1', 'ASSIGNED', 5, 'EVALUATE'));
    await store.insertTask(taskRec('t-elsewhere', elsewhere, 'n1', 'ASSIGNED', 6));

    expect(await store.failOpenRounds('s1', 'coordinator restarted', 9000)).toBe(2);

    const rounds = await store.listRounds('s1');
    expect(rounds.map((r) => [r.round, r.attempt, r.state, r.reason, r.endedAt])).toEqual([
      [1, 1, 'COMMITTED', null, 600],
      [2, 1, 'FAILED', 'deadline passed', 650],
      [2, 2, 'FAILED', 'coordinator restarted', 9000],
      [3, 1, 'FAILED', 'coordinator restarted', 9000],
    ]);
    const state = async (id: string): Promise<[string, string | null] | undefined> => {
      const t = await store.getTask(id);
      return t === undefined ? undefined : [t.state, t.detail];
    };
    expect(await state('t-open')).toEqual(['CANCELLED', 'coordinator restarted']);
    expect(await state('t-eval')).toEqual(['CANCELLED', 'coordinator restarted']);
    expect(await state('t-done')).toEqual(['ACCEPTED', null]);
    expect(await state('t-committed')).toEqual(['ASSIGNED', null]);
    expect(await state('t-failed')).toEqual(['ASSIGNED', null]);
    expect(await state('t-elsewhere')).toEqual(['ASSIGNED', null]);
    expect((await store.listRounds('s2'))[0]?.state).toBe('TRAINING');

    expect(await store.failOpenRounds('s1', 'again', 9500)).toBe(0);
  });
});

describe('SqliteStore tasks', () => {
  it('returns a task with the study, round and attempt of its round', async () => {
    const store = openStore();
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 4, 2, 'TRAINING'));
    await store.insertTask(taskRec('t1', r, 'n1', 'ASSIGNED', 10));
    expect(await store.getTask('t1')).toEqual({ ...taskRec('t1', r, 'n1', 'ASSIGNED', 10), studyId: 's1', round: 4, attempt: 2 });
    expect(await store.getTask('t2')).toBeUndefined();
  });

  it('refuses a task for an unknown node', async () => {
    const store = openStore();
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    await expect(store.insertTask(taskRec('t1', r, 'ghost', 'ASSIGNED', 10))).rejects.toThrow(/FOREIGN KEY/);
  });

  it('openTasksForNode returns only ASSIGNED tasks of TRAINING or EVALUATING rounds, oldest first', async () => {
    const store = openStore();
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertStudy(studyRec('s1'));
    const waiting = await store.insertRound(roundRec('s1', 1, 1, 'WAITING_FOR_NODES'));
    const training = await store.insertRound(roundRec('s1', 1, 2, 'TRAINING'));
    const aggregating = await store.insertRound(roundRec('s1', 2, 1, 'AGGREGATING'));
    const evaluating = await store.insertRound(roundRec('s1', 3, 1, 'EVALUATING'));
    const failed = await store.insertRound(roundRec('s1', 4, 1, 'FAILED'));
    await store.insertTask(taskRec('eval-assigned', evaluating, 'n1', 'ASSIGNED', 20, 'EVALUATE'));
    await store.insertTask(taskRec('train-assigned', training, 'n1', 'ASSIGNED', 10));
    await store.insertTask(taskRec('train-accepted', training, 'n1', 'ACCEPTED', 11));
    await store.insertTask(taskRec('train-declined', training, 'n1', 'DECLINED', 12));
    await store.insertTask(taskRec('waiting-assigned', waiting, 'n1', 'ASSIGNED', 13));
    await store.insertTask(taskRec('aggregating-assigned', aggregating, 'n1', 'ASSIGNED', 14));
    await store.insertTask(taskRec('failed-assigned', failed, 'n1', 'ASSIGNED', 15));
    await store.insertTask(taskRec('other-node', training, 'n2', 'ASSIGNED', 16));

    expect((await store.openTasksForNode('n1')).map((t) => t.id)).toEqual(['train-assigned', 'eval-assigned']);
    expect((await store.openTasksForNode('n2')).map((t) => t.id)).toEqual(['other-node']);
    expect(await store.openTasksForNode('n3')).toEqual([]);
  });

  it('cancelOpenTasks cancels and returns only the ASSIGNED tasks of that round', async () => {
    const store = openStore();
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    const other = await store.insertRound(roundRec('s1', 2, 1, 'TRAINING'));
    await store.insertTask(taskRec('a', r, 'n1', 'ASSIGNED', 1));
    await store.insertTask(taskRec('b', r, 'n1', 'ACCEPTED', 2));
    await store.insertTask(taskRec('c', other, 'n1', 'ASSIGNED', 3));
    expect(await store.cancelOpenTasks(r, 'round closed', 77)).toEqual(['a']);
    expect((await store.listTasks(r)).map((t) => [t.id, t.state, t.detail, t.endedAt])).toEqual([
      ['a', 'CANCELLED', 'round closed', 77],
      ['b', 'ACCEPTED', null, null],
    ]);
    expect((await store.getTask('c'))?.state).toBe('ASSIGNED');
  });

  it("listNodeTasks returns a node's tasks in the given states, most recently ended first", async () => {
    const store = openStore();
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'FAILED'));
    const r2 = await store.insertRound(roundRec('s1', 1, 2, 'TRAINING'));
    await store.insertTask(taskRec('old-failure', r1, 'n1', 'ASSIGNED', 1));
    await store.insertTask(taskRec('cancelled', r1, 'n1', 'ASSIGNED', 2));
    await store.insertTask(taskRec('declined', r2, 'n1', 'ASSIGNED', 3));
    await store.insertTask(taskRec('other-node', r2, 'n2', 'ASSIGNED', 4));
    await store.setTaskState('old-failure', 'FAILED', 'fit: x has 2410 values', 100);
    await store.setTaskState('cancelled', 'CANCELLED', 'round failed', 110);
    await store.setTaskState('declined', 'DECLINED', 'not approved', 200);
    await store.setTaskState('other-node', 'FAILED', 'elsewhere', 300);
    const problems = await store.listNodeTasks('n1', ['FAILED', 'DECLINED', 'REJECTED'], 10);
    expect(problems.map((t) => [t.id, t.state, t.detail, t.endedAt, t.studyId, t.round, t.attempt])).toEqual([
      ['declined', 'DECLINED', 'not approved', 200, 's1', 1, 2],
      ['old-failure', 'FAILED', 'fit: x has 2410 values', 100, 's1', 1, 1],
    ]);
    expect((await store.listNodeTasks('n1', ['FAILED', 'DECLINED'], 1)).map((t) => t.id)).toEqual(['declined']);
    expect(await store.listNodeTasks('n1', [], 10)).toEqual([]);
  });
});

describe('SqliteStore contributions', () => {
  it('findAcceptedBySha256 ignores rejected contributions', async () => {
    const store = openStore();
    const sha = 'd'.repeat(64);
    await store.insertContribution(contributionRec('t1', sha, false));
    expect(await store.findAcceptedBySha256(sha, 's1')).toBeUndefined();
    await store.insertContribution(contributionRec('t2', sha, true, { nodeId: 'n2', attempt: 2 }));
    expect(await store.findAcceptedBySha256(sha, 's1')).toEqual(contributionRec('t2', sha, true, { nodeId: 'n2', attempt: 2 }));
    expect(await store.findAcceptedBySha256(sha, 'another-study')).toBeUndefined();
    // The same node's identical update in a retried attempt of the same round is not a replay.
    expect(await store.findAcceptedBySha256(sha, 's1', { nodeId: 'n2', round: 1 })).toBeUndefined();
    expect(await store.findAcceptedBySha256(sha, 's1', { nodeId: 'n3', round: 1 })).toBeDefined();
    expect(await store.findAcceptedBySha256(sha, 's1', { nodeId: 'n2', round: 2 })).toBeDefined();
    expect(await store.findAcceptedBySha256('e'.repeat(64), 's1')).toBeUndefined();
  });

  it('allows many rejected but only one accepted contribution per task', async () => {
    const store = openStore();
    await store.insertContribution(contributionRec('t1', 'x', false));
    await store.insertContribution(contributionRec('t1', 'y', false));
    await store.insertContribution(contributionRec('t1', 'z', true));
    await expect(store.insertContribution(contributionRec('t1', 'w', true))).rejects.toThrow(/UNIQUE constraint failed/);
    expect((await store.acceptedContribution('t1'))?.sha256).toBe('z');
    expect((await store.listContributions({})).map((c) => [c.sha256, c.accepted])).toEqual([
      ['x', false],
      ['y', false],
      ['z', true],
    ]);
  });

  it('filters contributions by study and node', async () => {
    const store = openStore();
    await store.insertContribution(contributionRec('t1', 'a', true, { studyId: 's1', nodeId: 'n1' }));
    await store.insertContribution(contributionRec('t2', 'b', true, { studyId: 's1', nodeId: 'n2' }));
    await store.insertContribution(contributionRec('t3', 'c', true, { studyId: 's2', nodeId: 'n1' }));
    const shas = async (f: { studyId?: string; nodeId?: string }): Promise<string[]> => (await store.listContributions(f)).map((c) => c.sha256);
    expect(await shas({ studyId: 's1' })).toEqual(['a', 'b']);
    expect(await shas({ nodeId: 'n1' })).toEqual(['a', 'c']);
    expect(await shas({ studyId: 's1', nodeId: 'n1' })).toEqual(['a']);
  });
});
