import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { codeOf } from './fixtures.js';
import { LEGACY_ROWS } from './store-kinds.js';

describeStores('store contract: migrations', (ctx) => {
  // Only stores with a schema history have an older database to upgrade (PostgreSQL's 0001 is the whole schema).
  if (ctx.kind.openUpgraded !== undefined) it('upgrades an older database to the same schema as a fresh one, keeping its rows', async () => {
    const upgraded = await ctx.kind.openUpgraded!();
    try {
      expect(await upgraded.schema()).toEqual(await ctx.opened.schema());
      const { store } = upgraded;
      const L = LEGACY_ROWS;
      expect(await store.getNode(L.nodeId)).toMatchObject({ siteName: 'old clinic', revokedAt: null, lastSeenAt: null });
      expect(await store.getTask(L.taskId)).toMatchObject({ state: 'ACCEPTED', studyId: L.studyId, round: 1, attempt: 1, endedAt: 35 });
      expect(await store.getCommittedRound(L.studyId, 1)).toMatchObject({ state: 'COMMITTED', participants: 1 });
      expect(await store.findAcceptedBySha256(L.sha256, L.studyId)).toMatchObject({ taskId: L.taskId, deltaNorm: null });
      expect((await store.listNodeSummaries({ limit: 10 })).items).toMatchObject([{ id: L.nodeId, roundsContributed: 1, lastRejection: null, lastProblemTask: null }]);
      expect(await store.roundTaskCounts(L.studyId)).toEqual([{ roundId: 1, kind: 'TRAIN', state: 'ACCEPTED', count: 1 }]);
    } finally {
      await upgraded.cleanup();
    }
  });

  it('reopens its own database without migrating again or losing data', async () => {
    await ctx.store.write([{ op: 'study.insert', s: { id: 's1', name: 'n', manifestJson: '{}', manifestHash: 'h', state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null, createdAt: 1, endedAt: null } }], 'test');
    const before = await ctx.opened.schema();
    const again = ctx.track(await ctx.opened.reopen());
    expect((await again.listStudies()).map((s) => s.id)).toEqual(['s1']);
    expect(await ctx.opened.schema()).toEqual(before);
  });

  it.runIf(ctx.kind.openTooNew !== undefined)('refuses a database written by a newer version', async () => {
    expect(await codeOf(ctx.kind.openTooNew!())).toBe('STORE_VERSION_TOO_NEW');
  });
});
