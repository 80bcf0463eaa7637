import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { enrol, studyWithRound, taskRec } from './fixtures.js';

describeStores('store contract: participation', (ctx) => {
  it('nodeTookPart: a node with any task of a study, in any state or kind, took part in it; others did not', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await enrol(store, 'n3');
    const r1 = await studyWithRound(store, 's1', 'TRAINING', 1);
    const r2 = await studyWithRound(store, 's2', 'FAILED', 1);
    await store.insertTask(taskRec('t1', r1, 'n1', 'ASSIGNED', 10));
    // A task that ended without a contribution still makes the node a participant.
    await store.insertTask(taskRec('t2', r2, 'n2', 'DECLINED', 20, 'STATISTICS'));
    expect(await store.nodeTookPart('n1', 's1')).toBe(true);
    expect(await store.nodeTookPart('n2', 's2')).toBe(true);
    // A task in another study does not count, nor does being enrolled.
    expect(await store.nodeTookPart('n1', 's2')).toBe(false);
    expect(await store.nodeTookPart('n2', 's1')).toBe(false);
    expect(await store.nodeTookPart('n3', 's1')).toBe(false);
    expect(await store.nodeTookPart('ghost', 's1')).toBe(false);
    expect(await store.nodeTookPart('n1', 'no-such-study')).toBe(false);
  });

  it('nodeTookPart: a node that approved a study (approval.record) took part in it without a task; the first approval is kept', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await studyWithRound(store, 's1', 'TRAINING', 1);
    await studyWithRound(store, 's2', 'TRAINING', 1);
    expect(await store.nodeTookPart('n1', 's1')).toBe(false);
    await store.write([{ op: 'approval.record', studyId: 's1', nodeId: 'n1', manifestSha256: 'a'.repeat(64), at: 5 }], 'approval.record');
    // Recorded again (a READY after a restart): no error, nothing changes.
    await store.write([{ op: 'approval.record', studyId: 's1', nodeId: 'n1', manifestSha256: 'a'.repeat(64), at: 9 }], 'approval.record');
    expect(await store.nodeTookPart('n1', 's1')).toBe(true);
    expect(await store.nodeTookPart('n1', 's2')).toBe(false);
    expect(await store.nodeTookPart('n2', 's1')).toBe(false);
  });
});
