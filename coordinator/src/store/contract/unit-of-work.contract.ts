import { expect, it } from 'vitest';
import type { BatchStats } from '../group-commit.js';
import { describeStores } from './describe-stores.js';
import { codeOf, contributionRec, enrol, studyRec, studyWithRound, taskRec } from './fixtures.js';

describeStores('store contract: unit of work', (ctx) => {
  const batches = (): BatchStats[] => {
    const seen: BatchStats[] = [];
    ctx.store.onBatch((s) => seen.push(s));
    return seen;
  };

  it('applies an op list all or nothing', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    const r = await studyWithRound(store);
    // The task insert and the contribution ran before the failing guard; neither remains.
    expect(await codeOf(store.write([
      { op: 'task.insert', tasks: [taskRec('t1', r, 'n1', 'ASSIGNED', 1)] },
      { op: 'contribution.insert', c: contributionRec('t1', 'a', true) },
      { op: 'task.end', id: 'ghost', to: 'ACCEPTED', detail: null, at: 2 },
    ], 'test'))).toBe('NOT_FOUND');
    expect(await store.getTask('t1')).toBeUndefined();
    expect(await store.listContributions({})).toEqual([]);
    // The accepted-update unit (design T1) as a whole.
    await store.insertTask(taskRec('t1', r, 'n1', 'ASSIGNED', 1));
    const result = await store.write([{ op: 'task.end', id: 't1', to: 'ACCEPTED', detail: null, at: 2 }, { op: 'contribution.insert', c: contributionRec('t1', 'a', true) }], 'accept');
    expect(result).toEqual({ roundIds: [], cancelled: [] });
    expect((await store.getTask('t1'))?.state).toBe('ACCEPTED');
    expect((await store.acceptedContribution('t1'))?.sha256).toBe('a');
  });

  it('a failing list in a batch is rolled back alone; the others commit', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    const r = await studyWithRound(store);
    await store.write([{ op: 'task.insert', tasks: ['a', 'b', 'c', 'd'].map((id, i) => taskRec(id, r, 'n1', 'ASSIGNED', i)) }], 'test');
    const seen = batches();
    // Each unit writes (an audit row) before its guard runs, so a failed unit has something to roll back.
    const accept = (id: string) => store.write([
      { op: 'admin.action', a: { at: 5, operator: 'test', action: 'accept', target: id, detail: null } },
      { op: 'task.end', id, to: 'ACCEPTED', detail: null, at: 5 },
      { op: 'contribution.insert', c: contributionRec(id, id, true) },
    ], 'accept');
    // Submitted together: 'a' twice (the second is STALE), and an unknown task.
    const results = await Promise.allSettled([accept('a'), accept('b'), accept('a'), accept('ghost'), accept('c')]);
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(results.flatMap((x) => (x.status === 'rejected' ? [(x.reason as { code?: string }).code] : []))).toEqual(['STALE', 'NOT_FOUND']);
    expect((await store.listContributions({})).map((c) => c.taskId)).toEqual(['a', 'b', 'c']);
    expect((await store.listTasks(r)).map((t) => t.state)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED', 'ASSIGNED']);
    expect((await store.listAdminActions(10)).map((a) => a.target).sort()).toEqual(['a', 'b', 'c']);
    // They shared a batch: the failures rolled back to their savepoints, not the batch.
    expect(seen.some((b) => b.units > 1 && b.failed > 0 && b.committed)).toBe(true);
    expect(seen.reduce((n, b) => n + b.units, 0)).toBe(5);
    expect(seen.reduce((n, b) => n + b.failed, 0)).toBe(2);
  });

  it('acknowledges a unit only once it is committed', async () => {
    const { store } = ctx;
    const events: string[] = [];
    store.onBatch((s) => events.push(`batch committed=${String(s.committed)}`));
    await store.insertStudy(studyRec('s1')).then(() => events.push('ack'));
    expect(events).toEqual(['batch committed=true', 'ack']);
    // Visible to another connection: committed, not only applied.
    const other = ctx.track(await ctx.opened.reopen());
    expect((await other.getStudy('s1'))?.id).toBe('s1');
  });

  it("keeps one caller's order across batches", async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) writes.push(store.setStudyParameters('s1', `{"v":${i}}`));
    await Promise.all(writes);
    expect((await store.getStudy('s1'))?.parameters).toBe('{"v":599}');
    // A unit queued behind another depends on it without awaiting it.
    await enrol(store, 'n1');
    const r = await studyWithRound(store, 's1', 'TRAINING', 1);
    const inserted = store.insertTask(taskRec('t1', r, 'n1', 'ASSIGNED', 1));
    const ended = store.write([{ op: 'task.end', id: 't1', to: 'DECLINED', detail: 'no', at: 2 }], 'decline');
    await Promise.all([inserted, ended]);
    expect((await store.getTask('t1'))?.state).toBe('DECLINED');
  });

  it('groups many concurrent units into few batches', async () => {
    const { store } = ctx;
    const seen = batches();
    const N = 600;
    await Promise.all(Array.from({ length: N }, (_, i) => store.insertContribution(contributionRec(`t${i}`, `h${i}`, true))));
    expect(seen.reduce((n, b) => n + b.units, 0)).toBe(N);
    expect(seen.every((b) => b.committed && b.failed === 0 && b.units <= 256)).toBe(true);
    // Batching happened: far fewer transactions than units.
    expect(seen.length).toBeLessThanOrEqual(N / 20);
    expect(Math.max(...seen.map((b) => b.units))).toBeGreaterThan(1);
    expect(seen.reduce((n, b) => n + b.ops, 0)).toBe(N);
    expect((await store.listContributions({})).length).toBe(N);
  });

  it('returns the ids of inserted rounds and cancelled tasks in op order', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const a = { studyId: 's1', round: 1, attempt: 1, state: 'TRAINING' as const, reason: null, startedAt: 1, endedAt: null, participants: 1, checkpointPath: null, checkpointSha256: null };
    const { roundIds } = await store.write([{ op: 'round.insert', r: a }, { op: 'round.insert', r: { ...a, attempt: 2 } }], 'test');
    expect(roundIds).toHaveLength(2);
    expect((await store.listRounds('s1')).map((r) => r.id)).toEqual(roundIds);
    await store.write([{ op: 'task.insert', tasks: [taskRec('x2', roundIds[1]!, 'n1', 'ASSIGNED', 2), taskRec('x1', roundIds[0]!, 'n1', 'ASSIGNED', 1), taskRec('y1', roundIds[0]!, 'n1', 'ASSIGNED', 3)] }], 'test');
    const { cancelled } = await store.write([
      { op: 'task.cancelOpen', roundId: roundIds[0]!, detail: 'closed', at: 9 },
      { op: 'task.cancelOpen', roundId: roundIds[1]!, detail: 'closed', at: 9 },
    ], 'test');
    expect(cancelled).toEqual(['x1', 'y1', 'x2']);
  });
});
