import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Enrolment, NodeDirectory } from './enrolment.js';
import { SessionRegistry } from './sessions.js';
import { SqliteStore } from './sqlite-store.js';
import type { CoordinatorStore, NodeRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';
import { LogSink } from './test-support.js';

const stores: SqliteStore[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
});

function openStore(): SqliteStore {
  const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'fedlhs-enrol-')), 'coordinator.db'));
  stores.push(store);
  return store;
}

const nodeRec = (id: string, over: Partial<NodeRecord> = {}): NodeRecord => ({
  id, siteName: 'clinic-a', credentialHash: `cred-${id}`, createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '', ...over,
});

/** A store that records `write` units and can be told to fail them. */
function recordingStore(nodes: NodeRecord[] = []) {
  const units: { ops: readonly WriteOp[]; label: string }[] = [];
  let fail = false;
  const store = {
    kind: 'sqlite',
    listNodes: async () => nodes.map((n) => ({ ...n })),
    write: async (ops: readonly WriteOp[], label: string) => {
      if (fail) throw new Error('disk full');
      units.push({ ops, label });
      return { roundIds: [], cancelled: [] };
    },
  } as unknown as CoordinatorStore; // only the methods NodeDirectory calls
  return { store, units, failWrites: (f: boolean) => (fail = f) };
}

describe('NodeDirectory write-behind of last-seen times', () => {
  it('writes one node.seen unit per interval with the latest value per node', async () => {
    vi.useFakeTimers();
    const log = new LogSink();
    const { store, units } = recordingStore([nodeRec('n1'), nodeRec('n2')]);
    const dir = new NodeDirectory({ store, log: pino(log), flushIntervalMs: 5000 });
    await dir.load();
    dir.seen('n1', 100, '0.1', 'cpu');
    dir.seen('n2', 150, '0.1', 'wasm');
    dir.seen('n1', 200, '0.2', 'cpu');
    // In memory at once, in the store not yet.
    expect(dir.get('n1')).toMatchObject({ lastSeenAt: 200, agentVersion: '0.2' });
    expect(units).toEqual([]);
    await vi.advanceTimersByTimeAsync(4999);
    expect(units).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(units).toEqual([
      {
        label: 'node.seen',
        ops: [
          { op: 'node.seen', id: 'n2', at: 150, agentVersion: '0.1', trainingBackend: 'wasm' },
          { op: 'node.seen', id: 'n1', at: 200, agentVersion: '0.2', trainingBackend: 'cpu' },
        ],
      },
    ]);
    expect(dir.pendingCount).toBe(0);
    // Idle: no timer, no empty units.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(units).toHaveLength(1);
  });

  it('flushes what is pending on close, and keeps entries of a failed flush for the next one', async () => {
    const log = new LogSink();
    const { store, units, failWrites } = recordingStore([nodeRec('n1')]);
    const dir = new NodeDirectory({ store, log: pino(log), flushIntervalMs: 60_000 });
    dir.seen('n1', 100, 'a', 'cpu');
    failWrites(true);
    await expect(dir.flush()).rejects.toThrow('disk full');
    expect(log.lines.find((l) => l.event === 'node.seen_flush_failed')).toMatchObject({ level: 40, nodes: 1 });
    expect(dir.pendingCount).toBe(1);
    dir.seen('n2', 300, 'b', 'wasm');
    failWrites(false);
    await dir.close();
    expect(units).toEqual([
      {
        label: 'node.seen',
        ops: [
          { op: 'node.seen', id: 'n1', at: 100, agentVersion: 'a', trainingBackend: 'cpu' },
          { op: 'node.seen', id: 'n2', at: 300, agentVersion: 'b', trainingBackend: 'wasm' },
        ],
      },
    ]);
    expect(dir.pendingCount).toBe(0);
  });

  it('lands the last-seen time in a real store on close', async () => {
    const store = openStore();
    await store.insertJoinToken({ id: 'jt1', tokenHash: 'h', siteName: 'clinic-a', createdAt: 1, expiresAt: 9, usedAt: null, usedByNode: null, createdBy: 'x' });
    await store.redeemJoinToken('jt1', nodeRec('n1'));
    const dir = new NodeDirectory({ store, log: pino(new LogSink()) });
    await dir.load();
    dir.seen('n1', 1234, '0.3', 'tensorflow');
    expect((await store.getNode('n1'))?.lastSeenAt).toBe(null);
    await dir.close();
    expect(await store.getNode('n1')).toMatchObject({ lastSeenAt: 1234, agentVersion: '0.3', trainingBackend: 'tensorflow' });
  });
});

describe('Enrolment with the node directory', () => {
  async function setup() {
    const store = openStore();
    const log = new LogSink();
    const sessions = new SessionRegistry();
    const enrolment = new Enrolment({ store, sessions, log: pino(log), now: () => 1_000_000 });
    const { token } = await enrolment.createJoinToken('clinic-a', 600, 'test');
    const { nodeId, credential } = await enrolment.enrol(token, 'clinic-a', null);
    return { store, enrolment, nodeId, bearer: `Bearer ${credential}` };
  }

  it('authenticates from memory: no database read per call', async () => {
    const { store, enrolment, nodeId, bearer } = await setup();
    const getNode = vi.spyOn(store, 'getNode');
    const listNodes = vi.spyOn(store, 'listNodes');
    for (let i = 0; i < 50; i++) expect((await enrolment.authenticate(bearer)).id).toBe(nodeId);
    expect(getNode).not.toHaveBeenCalled();
    expect(listNodes.mock.calls.length).toBeLessThanOrEqual(1);
    await expect(enrolment.authenticate(bearer.slice(0, -2) + 'xx')).rejects.toThrow('node credential is not valid');
  });

  it('refuses a revoked credential immediately, before the store write has returned', async () => {
    const { store, enrolment, nodeId, bearer } = await setup();
    await enrolment.authenticate(bearer);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let writing!: () => void;
    const storeCalled = new Promise<void>((resolve) => (writing = resolve));
    const revoke = store.revokeNode.bind(store);
    vi.spyOn(store, 'revokeNode').mockImplementation(async (id, at) => {
      writing();
      await gate;
      return revoke(id, at);
    });
    const revoking = enrolment.revokeNode(nodeId, 'admin', 16);
    await storeCalled; // revokeNode is waiting for the store
    await expect(enrolment.authenticate(bearer)).rejects.toThrow(/revoked/);
    release();
    await revoking;
    await expect(enrolment.authenticate(bearer)).rejects.toThrow(/revoked on/);
    expect((await store.getNode(nodeId))?.revokedAt).toBe(1_000_000);
    await expect(enrolment.revokeNode(nodeId, 'admin', 16)).rejects.toMatchObject({ code: 'ALREADY_REVOKED' });
    await expect(enrolment.revokeNode('node_nope', 'admin', 16)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('undoes the in-memory revocation when the store write fails', async () => {
    const { store, enrolment, nodeId, bearer } = await setup();
    vi.spyOn(store, 'revokeNode').mockRejectedValue(new Error('disk full'));
    await expect(enrolment.revokeNode(nodeId, 'admin', 16)).rejects.toThrow('disk full');
    expect((await enrolment.authenticate(bearer)).id).toBe(nodeId);
  });
});
