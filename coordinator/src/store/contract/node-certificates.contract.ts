import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { enrol } from './fixtures.js';

const cert = (serial: string, nodeId: string, issuedAt: number, notAfter = issuedAt + 1000) => ({ serial, nodeId, issuedAt, notAfter });

describeStores('store contract: node certificates', (ctx) => {
  it('records issued serials and lists those not expired, oldest first', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertNodeCertificate(cert('0B', 'n2', 20));
    await store.insertNodeCertificate(cert('0A', 'n1', 10, 15));
    await store.insertNodeCertificate(cert('0C', 'n1', 30));
    expect((await store.listNodeCertificates(0)).map((c) => c.serial)).toEqual(['0A', '0B', '0C']);
    expect(await store.listNodeCertificates(15)).toEqual([
      { serial: '0B', nodeId: 'n2', issuedAt: 20, notAfter: 1020, supersededAt: null, revokedAt: null },
      { serial: '0C', nodeId: 'n1', issuedAt: 30, notAfter: 1030, supersededAt: null, revokedAt: null },
    ]);
  });

  it('refuses a serial twice and a certificate of an unknown node', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertNodeCertificate(cert('0A', 'n1', 10));
    await expect(store.insertNodeCertificate(cert('0A', 'n1', 11))).rejects.toThrow();
    await expect(store.insertNodeCertificate(cert('0B', 'ghost', 11))).rejects.toThrow();
    expect((await store.listNodeCertificates(0)).map((c) => c.serial)).toEqual(['0A']);
  });

  it("supersedes only the node's older serials, once", async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertNodeCertificate(cert('0A', 'n1', 10));
    await store.insertNodeCertificate(cert('0B', 'n1', 20));
    await store.insertNodeCertificate(cert('0C', 'n1', 30));
    await store.insertNodeCertificate(cert('0D', 'n2', 5));
    expect(await store.supersedeNodeCertificates('n1', 30, 40)).toBe(2);
    expect(await store.supersedeNodeCertificates('n1', 30, 50)).toBe(0);
    const bySerial = new Map((await store.listNodeCertificates(0)).map((c) => [c.serial, c.supersededAt]));
    expect(Object.fromEntries(bySerial)).toEqual({ '0A': 40, '0B': 40, '0C': null, '0D': null });
  });

  it("revoking a node revokes every certificate of it, and no other node's", async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await store.insertNodeCertificate(cert('0A', 'n1', 10));
    await store.insertNodeCertificate(cert('0B', 'n1', 20));
    await store.insertNodeCertificate(cert('0C', 'n2', 20));
    expect(await store.revokeNode('n1', 99)).toBe(true);
    expect(await store.revokeNode('n1', 100)).toBe(false);
    const byserial = Object.fromEntries((await store.listNodeCertificates(0)).map((c) => [c.serial, c.revokedAt]));
    expect(byserial).toEqual({ '0A': 99, '0B': 99, '0C': null });
  });

  it('records a certificate issued to a node revoked meanwhile as revoked with it (a renewal racing the revocation)', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    expect(await store.revokeNode('n1', 77)).toBe(true);
    await store.insertNodeCertificate(cert('0A', 'n1', 100));
    await store.insertNodeCertificate(cert('0B', 'n2', 100));
    const byserial = Object.fromEntries((await store.listNodeCertificates(0)).map((c) => [c.serial, c.revokedAt]));
    expect(byserial).toEqual({ '0A': 77, '0B': null });
  });

  it('records the node CA once: a second, different CA gets the first back', async () => {
    const { store } = ctx;
    expect(await store.getNodeCa()).toBeUndefined();
    const first = { fingerprint: 'AA:01', certificatePem: 'pem-1', recordedAt: 1 };
    expect(await store.recordNodeCa(first)).toEqual(first);
    expect(await store.recordNodeCa({ fingerprint: 'BB:02', certificatePem: 'pem-2', recordedAt: 2 })).toEqual(first);
    expect(await store.getNodeCa()).toEqual(first);
  });
});
