import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { enrol, nodeRec, token } from './fixtures.js';

describeStores('store contract: enrolment', (ctx) => {
  it('redeems a token once, creating exactly one node', async () => {
    const { store } = ctx;
    await store.insertJoinToken(token('jt1'));
    expect(await store.redeemJoinToken('jt1', nodeRec('n1'))).toBe(true);
    expect(await store.redeemJoinToken('jt1', nodeRec('n2', { createdAt: 3000 }))).toBe(false);
    expect((await store.listNodes()).map((n) => n.id)).toEqual(['n1']);
    expect(await store.getNode('n2')).toBeUndefined();
    expect(await store.getNode('n1')).toEqual(nodeRec('n1'));
    expect(await store.findJoinToken('hash-jt1')).toEqual(token('jt1', { usedAt: 2000, usedByNode: 'n1' }));
  });

  it('two concurrent redeems of one token make one node', async () => {
    const { store } = ctx;
    await store.insertJoinToken(token('jt1'));
    const results = await Promise.all([store.redeemJoinToken('jt1', nodeRec('n1')), store.redeemJoinToken('jt1', nodeRec('n2'))]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const nodes = await store.listNodes();
    expect(nodes).toHaveLength(1);
    expect((await store.findJoinToken('hash-jt1'))?.usedByNode).toBe(nodes[0]?.id);
  });

  it('returns false, and creates no node, for an unknown token id', async () => {
    const { store } = ctx;
    expect(await store.redeemJoinToken('nope', nodeRec('n1'))).toBe(false);
    expect(await store.listNodes()).toEqual([]);
  });

  it('finds tokens by hash only', async () => {
    const { store } = ctx;
    await store.insertJoinToken(token('jt1'));
    expect(await store.findJoinToken('hash-jt2')).toBeUndefined();
    expect((await store.findJoinToken('hash-jt1'))?.id).toBe('jt1');
  });

  it('revokes a node once and records when it was seen', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    expect(await store.revokeNode('n1', 5000)).toBe(true);
    expect(await store.revokeNode('n1', 6000)).toBe(false);
    expect(await store.revokeNode('ghost', 6000)).toBe(false);
    await store.touchNode('n1', 5500, '0.1.0', 'wasm');
    expect(await store.getNode('n1')).toEqual(nodeRec('n1', { revokedAt: 5000, lastSeenAt: 5500, agentVersion: '0.1.0', trainingBackend: 'wasm' }));
    await store.write([{ op: 'node.seen', id: 'n1', at: 5600, agentVersion: '0.2.0', trainingBackend: 'node' }], 'test');
    expect(await store.getNode('n1')).toMatchObject({ lastSeenAt: 5600, agentVersion: '0.2.0', trainingBackend: 'node' });
  });

  it('lists nodes in enrolment order', async () => {
    const { store } = ctx;
    await enrol(store, 'b', { createdAt: 20 });
    await enrol(store, 'a', { createdAt: 30 });
    await enrol(store, 'c', { createdAt: 10 });
    expect((await store.listNodes()).map((n) => n.id)).toEqual(['c', 'b', 'a']);
  });

  it('keeps operators and the admin audit trail, newest action first', async () => {
    const { store } = ctx;
    await store.insertOperator({ id: 'o1', name: 'alice', role: 'admin', tokenHash: 'th1', createdAt: 1, createdBy: 'bootstrap', revokedAt: null });
    expect(await store.findOperator('th1')).toEqual({ id: 'o1', name: 'alice', role: 'admin', tokenHash: 'th1', createdAt: 1, createdBy: 'bootstrap', revokedAt: null });
    expect(await store.findOperator('th2')).toBeUndefined();
    await store.insertAdminAction({ at: 1, operator: 'alice', action: 'study.start', target: 's1', detail: null });
    await store.write([{ op: 'admin.action', a: { at: 2, operator: 'alice', action: 'node.revoke', target: 'n1', detail: 'lost laptop' } }], 'test');
    expect((await store.listAdminActions(10)).map((a) => a.action)).toEqual(['node.revoke', 'study.start']);
    expect(await store.listAdminActions(1)).toEqual([{ at: 2, operator: 'alice', action: 'node.revoke', target: 'n1', detail: 'lost laptop' }]);
  });
});
