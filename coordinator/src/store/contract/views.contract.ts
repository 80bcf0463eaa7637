import { expect, it } from 'vitest';
import type { Page } from '../../store.js';
import { describeStores } from './describe-stores.js';
import { codeOf, contributionRec, enrol, nodeRec, studyWithRound, taskRec } from './fixtures.js';

/** Every item of every page, following `next`. */
async function allPages<T>(fetch: (after: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const page = await fetch(after);
    out.push(...page.items);
    if (page.next === null) return out;
    after = page.next;
  }
  throw new Error('paging did not end');
}

const pageReq = (limit: number, after: string | undefined) => (after === undefined ? { limit } : { limit, after });

describeStores('store contract: paged and aggregated views', (ctx) => {
  it('pages nodes in enrolment order; the cursor is stable while nodes are inserted', async () => {
    const { store } = ctx;
    // Two nodes share a created_at: the id breaks the tie.
    for (const [id, at] of [['a', 10], ['c', 20], ['b', 20], ['d', 30], ['e', 40]] as const) await enrol(store, id, { createdAt: at });
    const first = await store.listNodeSummaries({ limit: 2 });
    expect(first.items.map((n) => n.id)).toEqual(['a', 'b']);
    expect(first.next).not.toBeNull();
    // Inserted behind the cursor (not shown again) and ahead of it (shown once).
    await store.write([{ op: 'node.insert', n: nodeRec('early', { createdAt: 5 }) }, { op: 'node.insert', n: nodeRec('late', { createdAt: 50 }) }], 'test');
    const rest = await allPages((after) => store.listNodeSummaries(pageReq(2, after ?? first.next!)));
    expect(rest.map((n) => n.id)).toEqual(['c', 'd', 'e', 'late']);
    const all = await allPages((after) => store.listNodeSummaries(pageReq(3, after)));
    expect(all.map((n) => n.id)).toEqual(['early', 'a', 'b', 'c', 'd', 'e', 'late']);
    expect(all[1]).toMatchObject(nodeRec('a', { createdAt: 10 }));
    const last = await store.listNodeSummaries({ limit: 7 });
    expect(last.next).toBeNull();
    expect(await store.listNodeSummaries({ limit: 1, after: (await store.listNodeSummaries({ limit: 6 })).next! })).toMatchObject({ items: [{ id: 'late' }], next: null });
  });

  it('counts nodes and revoked nodes', async () => {
    const { store } = ctx;
    expect(await store.countNodes()).toEqual({ total: 0, revoked: 0 });
    for (const id of ['a', 'b', 'c']) await enrol(store, id);
    await store.revokeNode('b', 99);
    expect(await store.countNodes()).toEqual({ total: 3, revoked: 1 });
  });

  it("summarises a node: rounds contributed, its last rejection and its last failed task", async () => {
    const { store } = ctx;
    await enrol(store, 'n1', { createdAt: 1 });
    await enrol(store, 'n2', { createdAt: 2 });
    const r1 = await studyWithRound(store, 's1', 'TRAINING', 1, 1);
    const r2 = await studyWithRound(store, 's1', 'TRAINING', 1, 2);
    await store.write([{ op: 'task.insert', tasks: [taskRec('t1', r1, 'n1', 'ASSIGNED', 1), taskRec('t2', r2, 'n1', 'ASSIGNED', 2), taskRec('t3', r2, 'n2', 'ASSIGNED', 3)] }], 'test');
    // Round 1 in two attempts counts once; round 2 of s1 and round 1 of s2 count.
    await store.insertContribution(contributionRec('t1', 'a', true, { round: 1, attempt: 1 }));
    await store.insertContribution(contributionRec('t2', 'b', true, { round: 1, attempt: 2 }));
    await store.insertContribution(contributionRec('tx', 'c', true, { round: 2, attempt: 1 }));
    await store.insertContribution(contributionRec('ty', 'd', true, { studyId: 's2', round: 1 }));
    await store.insertContribution(contributionRec('tz', 'e', false, { round: 3, reasonCode: 'NON_FINITE', reason: 'NaN', receivedAt: 10 }));
    await store.insertContribution(contributionRec('tw', 'f', false, { round: 3, reasonCode: 'NORM_BOUND', reason: 'too big', receivedAt: 20 }));
    await store.write([{ op: 'task.end', id: 't3', to: 'FAILED', detail: 'fit: boom', at: 30 }], 'test');
    const { items } = await store.listNodeSummaries({ limit: 10 });
    expect(items.map((n) => [n.id, n.roundsContributed, n.lastRejection?.sha256 ?? null, n.lastProblemTask?.id ?? null])).toEqual([
      ['n1', 3, 'f', null],
      ['n2', 0, null, 't3'],
    ]);
    expect(items[0]?.lastRejection).toEqual(contributionRec('tw', 'f', false, { round: 3, reasonCode: 'NORM_BOUND', reason: 'too big', receivedAt: 20 }));
    expect(items[1]?.lastProblemTask).toMatchObject({ state: 'FAILED', detail: 'fit: boom', endedAt: 30, studyId: 's1', round: 1, attempt: 2 });
  });

  it('counts a study’s tasks per round, kind and state', async () => {
    const { store } = ctx;
    for (const id of ['a', 'b', 'c']) await enrol(store, id);
    const r1 = await studyWithRound(store, 's1', 'EVALUATING', 1);
    const r2 = await studyWithRound(store, 's1', 'TRAINING', 2);
    const other = await studyWithRound(store, 's2', 'TRAINING', 1);
    await store.write([{ op: 'task.insert', tasks: [
      taskRec('1a', r1, 'a', 'ACCEPTED', 1), taskRec('1b', r1, 'b', 'ACCEPTED', 1), taskRec('1c', r1, 'c', 'CANCELLED', 1),
      taskRec('1ae', r1, 'a', 'ASSIGNED', 2, 'EVALUATE'), taskRec('2a', r2, 'a', 'ASSIGNED', 3), taskRec('x', other, 'a', 'ASSIGNED', 3),
    ] }], 'test');
    expect(await store.roundTaskCounts('s1')).toEqual([
      { roundId: r1, kind: 'EVALUATE', state: 'ASSIGNED', count: 1 },
      { roundId: r1, kind: 'TRAIN', state: 'ACCEPTED', count: 2 },
      { roundId: r1, kind: 'TRAIN', state: 'CANCELLED', count: 1 },
      { roundId: r2, kind: 'TRAIN', state: 'ASSIGNED', count: 1 },
    ]);
    expect(await store.roundTaskCounts('nope')).toEqual([]);
  });

  it('groups rejections by round, attempt and reason, and totals contributions per attempt', async () => {
    const { store } = ctx;
    const rej = (task: string, round: number, attempt: number, reasonCode: string | null, bytes = 10) =>
      store.insertContribution(contributionRec(task, task, false, { round, attempt, reasonCode, bytes }));
    await rej('a', 1, 1, 'NON_FINITE');
    await rej('b', 1, 1, 'NON_FINITE');
    await rej('c', 1, 1, 'DIGEST_MISMATCH');
    await rej('d', 1, 1, null);
    await rej('e', 2, 1, 'NORM_BOUND', 30);
    await store.insertContribution(contributionRec('f', 'f', true, { round: 2, attempt: 1, bytes: 100 }));
    await store.insertContribution(contributionRec('g', 'g', false, { studyId: 's2' }));
    expect(await store.rejectionsByReason('s1')).toEqual([
      { round: 1, attempt: 1, reasonCode: null, count: 1 },
      { round: 1, attempt: 1, reasonCode: 'DIGEST_MISMATCH', count: 1 },
      { round: 1, attempt: 1, reasonCode: 'NON_FINITE', count: 2 },
      { round: 2, attempt: 1, reasonCode: 'NORM_BOUND', count: 1 },
    ]);
    expect(await store.contributionTotals('s1')).toEqual([
      { round: 1, attempt: 1, accepted: 0, rejected: 4, bytes: 40 },
      { round: 2, attempt: 1, accepted: 1, rejected: 1, bytes: 130 },
    ]);
    expect(await store.rejectionsByReason('s3')).toEqual([]);
    expect(await store.contributionTotals('s3')).toEqual([]);
  });

  it('pages contributions by filter in recorded order, stable while contributions are added', async () => {
    const { store } = ctx;
    for (let i = 0; i < 7; i++) {
      await store.insertContribution(contributionRec(`t${i}`, `h${i}`, i % 3 !== 0, { nodeId: i % 2 === 0 ? 'n1' : 'n2', round: 1 + (i % 2), attempt: 1 }));
    }
    const first = await store.listContributionsPage({ studyId: 's1' }, { limit: 3 });
    expect(first.items.map((c) => c.sha256)).toEqual(['h0', 'h1', 'h2']);
    await store.insertContribution(contributionRec('t7', 'h7', true));
    const rest = await allPages((after) => store.listContributionsPage({ studyId: 's1' }, pageReq(3, after ?? first.next!)));
    expect(rest.map((c) => c.sha256)).toEqual(['h3', 'h4', 'h5', 'h6', 'h7']);
    const sha = async (f: Parameters<typeof store.listContributionsPage>[0]) => (await allPages((after) => store.listContributionsPage(f, pageReq(2, after)))).map((c) => c.sha256);
    expect(await sha({ nodeId: 'n1' })).toEqual(['h0', 'h2', 'h4', 'h6', 'h7']);
    expect(await sha({ nodeId: 'n1', accepted: false })).toEqual(['h0', 'h6']);
    expect(await sha({ studyId: 's1', round: 2, attempt: 1 })).toEqual(['h1', 'h3', 'h5']);
    expect(await sha({ accepted: true })).toEqual(['h1', 'h2', 'h4', 'h5', 'h7']);
    expect(await sha({ studyId: 'none' })).toEqual([]);
    expect(first.items[0]).toEqual(contributionRec('t0', 'h0', false, { nodeId: 'n1', round: 1, attempt: 1 }));
  });

  it("pages a round's tasks by state and kind", async () => {
    const { store } = ctx;
    for (const id of ['a', 'b', 'c', 'd']) await enrol(store, id);
    const r = await studyWithRound(store, 's1', 'EVALUATING');
    await store.write([{ op: 'task.insert', tasks: [
      taskRec('ta', r, 'a', 'FAILED', 4), taskRec('tb', r, 'b', 'ACCEPTED', 3), taskRec('tc', r, 'c', 'DECLINED', 2),
      taskRec('td', r, 'd', 'FAILED', 1), taskRec('ea', r, 'a', 'FAILED', 1, 'EVALUATE'),
    ] }], 'test');
    const ids = async (f: Omit<Parameters<typeof store.listTasksPage>[0], 'roundId'>) => (await allPages((after) => store.listTasksPage({ roundId: r, ...f }, pageReq(1, after)))).map((t) => t.id);
    expect(await ids({})).toEqual(['ea', 'td', 'tc', 'tb', 'ta']);
    expect(await ids({ states: ['FAILED', 'DECLINED'], kinds: ['TRAIN'] })).toEqual(['td', 'tc', 'ta']);
    expect(await ids({ kinds: ['EVALUATE'] })).toEqual(['ea']);
    expect(await ids({ states: [] })).toEqual([]);
    expect((await store.listTasksPage({ roundId: r }, { limit: 1 })).items[0]).toMatchObject({ id: 'ea', studyId: 's1', round: 1, attempt: 1 });
  });

  it('refuses a malformed cursor or limit with INVALID_ARGUMENT', async () => {
    const { store } = ctx;
    expect(await codeOf(store.listNodeSummaries({ limit: 10, after: 'not a cursor' }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(store.listContributionsPage({}, { limit: 10, after: Buffer.from('["x"]').toString('base64url') }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(store.listTasksPage({ roundId: 1 }, { limit: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(store.listNodeSummaries({ limit: 100_000 }))).toBe('INVALID_ARGUMENT');
  });
});
