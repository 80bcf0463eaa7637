import { expect, it } from 'vitest';
import type { NodeRecord, TaskRecord } from '../../store.js';
import { describeStores } from './describe-stores.js';
import { codeOf, contributionRec, enrol, FOREIGN_KEY_VIOLATION, nodeRec, roundRec, studyRec, studyWithRound, taskRec } from './fixtures.js';

describeStores('store contract: tasks', (ctx) => {
  it('returns a task with the study, round and attempt of its round', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 4, 2, 'TRAINING'));
    await store.insertTask(taskRec('t1', r, 'n1', 'ASSIGNED', 10));
    expect(await store.getTask('t1')).toEqual({ ...taskRec('t1', r, 'n1', 'ASSIGNED', 10), studyId: 's1', round: 4, attempt: 2 });
    expect(await store.getTask('t2')).toBeUndefined();
  });

  it('keeps secure-aggregation stage tasks (issue 14: SQLite migrations 9 and 10, PostgreSQL 6 and 7)', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    const kinds = ['SECAGG_KEYS', 'SECAGG_SHARES', 'SECAGG_MASKED_INPUT', 'SECAGG_CONSISTENCY', 'SECAGG_UNMASK'] as const;
    await store.write([{ op: 'task.insert', tasks: kinds.map((kind, i) => ({ ...taskRec(`t${i}`, r, 'n1', 'ASSIGNED', 10 + i), kind })) }], 'phase.enter');
    expect(await Promise.all(kinds.map(async (_, i) => (await store.getTask(`t${i}`))?.kind))).toEqual([...kinds]);
    await expect(store.insertTask({ ...taskRec('bad', r, 'n1', 'ASSIGNED', 20), kind: 'SECAGG_OTHER' as never })).rejects.toThrow();
  });

  it('refuses a task for an unknown node', async () => {
    const { store } = ctx;
    const r = await studyWithRound(store);
    await expect(store.insertTask(taskRec('t1', r, 'ghost', 'ASSIGNED', 10))).rejects.toThrow(FOREIGN_KEY_VIOLATION);
  });

  it('inserts 10 000 tasks in one unit and pages through them', async () => {
    const { store } = ctx;
    const N = 10_000;
    const nodes: NodeRecord[] = Array.from({ length: N }, (_, i) => nodeRec(`n${String(i).padStart(5, '0')}`, { createdAt: i }));
    await store.write(nodes.map((n) => ({ op: 'node.insert' as const, n })), 'nodes');
    const r = await studyWithRound(store);
    const tasks: TaskRecord[] = nodes.map((n, i) => taskRec(`t${String(i).padStart(5, '0')}`, r, n.id, 'ASSIGNED', 1000));
    await store.write([{ op: 'task.insert', tasks }], 'phase.enter');
    expect(await store.roundTaskCounts('s1')).toEqual([{ roundId: r, kind: 'TRAIN', state: 'ASSIGNED', count: N }]);
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await store.listTasksPage({ roundId: r }, { limit: 1000, ...(after === undefined ? {} : { after }) });
      seen.push(...page.items.map((t) => t.id));
      after = page.next ?? undefined;
    } while (after !== undefined);
    expect(seen).toEqual(tasks.map((t) => t.id));
    const { cancelled } = await store.write([{ op: 'task.cancelOpen', roundId: r, detail: 'round closed', at: 2000 }], 'phase.close');
    expect(cancelled).toHaveLength(N);
    expect(await store.roundTaskCounts('s1')).toEqual([{ roundId: r, kind: 'TRAIN', state: 'CANCELLED', count: N }]);
  });

  it('task.end ends an open task once: a second end is STALE, an unknown task NOT_FOUND', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    const r = await studyWithRound(store);
    await store.insertTask(taskRec('t1', r, 'n1', 'ASSIGNED', 10));
    await store.write([{ op: 'task.end', id: 't1', to: 'ACCEPTED', detail: null, at: 50 }], 'accept');
    expect(await store.getTask('t1')).toMatchObject({ state: 'ACCEPTED', detail: null, endedAt: 50 });
    // A second result for the same task (with its contribution) leaves no trace.
    expect(await codeOf(store.write([{ op: 'contribution.insert', c: contributionRec('t1', 'b', false) }, { op: 'task.end', id: 't1', to: 'REJECTED', detail: 'late', at: 60 }], 'reject'))).toBe('STALE');
    expect(await store.getTask('t1')).toMatchObject({ state: 'ACCEPTED', detail: null, endedAt: 50 });
    expect(await store.listContributions({ nodeId: 'n1' })).toEqual([]);
    expect(await codeOf(store.write([{ op: 'task.end', id: 'nope', to: 'FAILED', detail: 'x', at: 70 }], 'fail'))).toBe('NOT_FOUND');
  });

  it('openTasksForNode returns only ASSIGNED tasks of running phases, oldest first', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertStudy(studyRec('s1'));
    const waiting = await store.insertRound(roundRec('s1', 1, 1, 'WAITING_FOR_NODES'));
    const training = await store.insertRound(roundRec('s1', 1, 2, 'TRAINING'));
    const aggregating = await store.insertRound(roundRec('s1', 2, 1, 'AGGREGATING'));
    const evaluating = await store.insertRound(roundRec('s1', 3, 1, 'EVALUATING'));
    const statistics = await store.insertRound(roundRec('s1', 0, 1, 'STATISTICS'));
    const failed = await store.insertRound(roundRec('s1', 4, 1, 'FAILED'));
    await store.write([{ op: 'task.insert', tasks: [
      taskRec('eval-assigned', evaluating, 'n1', 'ASSIGNED', 20, 'EVALUATE'),
      taskRec('train-assigned', training, 'n1', 'ASSIGNED', 10),
      taskRec('stats-assigned', statistics, 'n1', 'ASSIGNED', 5, 'STATISTICS'),
      taskRec('train-accepted', training, 'n1', 'ACCEPTED', 11),
      taskRec('train-declined', training, 'n1', 'DECLINED', 12),
      taskRec('waiting-assigned', waiting, 'n1', 'ASSIGNED', 13),
      taskRec('aggregating-assigned', aggregating, 'n1', 'ASSIGNED', 14),
      taskRec('failed-assigned', failed, 'n1', 'ASSIGNED', 15),
      taskRec('other-node', training, 'n2', 'ASSIGNED', 16),
    ] }], 'test');
    expect((await store.openTasksForNode('n1')).map((t) => t.id)).toEqual(['stats-assigned', 'train-assigned', 'eval-assigned']);
    expect((await store.openTasksForNode('n2')).map((t) => t.id)).toEqual(['other-node']);
    expect(await store.openTasksForNode('n3')).toEqual([]);
  });

  it('cancelOpenTasks cancels and returns only the ASSIGNED tasks of that round', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    const r = await studyWithRound(store, 's1', 'TRAINING', 1);
    const other = await studyWithRound(store, 's1', 'TRAINING', 2);
    await store.write([{ op: 'task.insert', tasks: [taskRec('a', r, 'n1', 'ASSIGNED', 1), taskRec('b', r, 'n1', 'ACCEPTED', 2), taskRec('c', other, 'n1', 'ASSIGNED', 3)] }], 'test');
    expect(await store.cancelOpenTasks(r, 'round closed', 77)).toEqual(['a']);
    expect((await store.listTasks(r)).map((t) => [t.id, t.state, t.detail, t.endedAt])).toEqual([
      ['a', 'CANCELLED', 'round closed', 77],
      ['b', 'ACCEPTED', null, null],
    ]);
    expect((await store.getTask('c'))?.state).toBe('ASSIGNED');
    expect(await store.cancelOpenTasks(r, 'again', 78)).toEqual([]);
  });

  it("listNodeTasks returns a node's tasks in the given states, most recently ended first", async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    const r1 = await studyWithRound(store, 's1', 'FAILED', 1, 1);
    const r2 = await studyWithRound(store, 's1', 'TRAINING', 1, 2);
    await store.write([{ op: 'task.insert', tasks: [
      taskRec('old-failure', r1, 'n1', 'ASSIGNED', 1), taskRec('cancelled', r1, 'n1', 'ASSIGNED', 2),
      taskRec('declined', r2, 'n1', 'ASSIGNED', 3), taskRec('other-node', r2, 'n2', 'ASSIGNED', 4),
    ] }], 'test');
    await store.setTaskState('old-failure', 'FAILED', 'fit: x has 2410 values', 100);
    await store.setTaskState('cancelled', 'CANCELLED', 'round failed', 110);
    await store.write([{ op: 'task.end', id: 'declined', to: 'DECLINED', detail: 'not approved', at: 200 }], 'test');
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
