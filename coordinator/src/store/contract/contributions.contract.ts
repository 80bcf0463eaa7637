import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { contributionRec, UNIQUE_VIOLATION } from './fixtures.js';

describeStores('store contract: contributions', (ctx) => {
  it('findAcceptedBySha256 finds accepted updates of the study, except the same node in the same round', async () => {
    const { store } = ctx;
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
    const { store } = ctx;
    await store.insertContribution(contributionRec('t1', 'x', false));
    await store.insertContribution(contributionRec('t1', 'y', false));
    await store.insertContribution(contributionRec('t1', 'z', true));
    await expect(store.insertContribution(contributionRec('t1', 'w', true))).rejects.toThrow(UNIQUE_VIOLATION);
    expect((await store.acceptedContribution('t1'))?.sha256).toBe('z');
    expect(await store.acceptedContribution('t2')).toBeUndefined();
    expect((await store.listContributions({})).map((c) => [c.sha256, c.accepted])).toEqual([
      ['x', false],
      ['y', false],
      ['z', true],
    ]);
  });

  it('filters contributions by study and node, in recorded order', async () => {
    const { store } = ctx;
    await store.insertContribution(contributionRec('t1', 'a', true, { studyId: 's1', nodeId: 'n1' }));
    await store.insertContribution(contributionRec('t2', 'b', true, { studyId: 's1', nodeId: 'n2' }));
    await store.insertContribution(contributionRec('t3', 'c', true, { studyId: 's2', nodeId: 'n1' }));
    const shas = async (f: { studyId?: string; nodeId?: string }): Promise<string[]> => (await store.listContributions(f)).map((c) => c.sha256);
    expect(await shas({ studyId: 's1' })).toEqual(['a', 'b']);
    expect(await shas({ nodeId: 'n1' })).toEqual(['a', 'c']);
    expect(await shas({ studyId: 's1', nodeId: 'n1' })).toEqual(['a']);
    expect(await shas({})).toEqual(['a', 'b', 'c']);
  });

  it('listNormHistory returns the norms of accepted updates of the study, oldest first', async () => {
    const { store } = ctx;
    await store.insertContribution(contributionRec('t1', 'a', true, { deltaNorm: 2.5 }));
    await store.insertContribution(contributionRec('t2', 'b', false, { deltaNorm: 99 }));
    await store.insertContribution(contributionRec('t3', 'c', true, { deltaNorm: null }));
    await store.insertContribution(contributionRec('t4', 'd', true, { deltaNorm: 0.125, studyId: 's2' }));
    await store.insertContribution(contributionRec('t5', 'e', true, { deltaNorm: 1.5 }));
    expect(await store.listNormHistory('s1')).toEqual([2.5, 1.5]);
    expect(await store.listNormHistory('s2')).toEqual([0.125]);
    expect(await store.listNormHistory('s3')).toEqual([]);
  });
});
