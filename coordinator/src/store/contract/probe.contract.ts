import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { enrol, studyWithRound } from './fixtures.js';

describeStores('store contract: storage probe', (ctx) => {
  it('probeWrite is a durable write that changes nothing a reader sees, and goes through the batch observer like any unit', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await studyWithRound(store, 's1', 'TRAINING', 1);
    const before = { nodes: await store.listNodes(), studies: await store.listStudies(), rounds: await store.listRounds('s1') };
    const batches: number[] = [];
    store.onBatch((b) => batches.push(b.units));
    try {
      await store.probeWrite();
      await store.probeWrite();
    } finally {
      store.onBatch(undefined);
    }
    expect(batches.length).toBeGreaterThanOrEqual(1);
    expect({ nodes: await store.listNodes(), studies: await store.listStudies(), rounds: await store.listRounds('s1') }).toEqual(before);
  });
});
