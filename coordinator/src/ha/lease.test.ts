import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { createTestSchema, testPostgresUnavailable, type TestPostgresScope } from '@fedlhs/testing';
import { storeTypes } from '../store/postgres/connection.js';
import { FENCE_CHECK, PostgresStore } from '../store/postgres/postgres-store.js';
import { LeaseClient } from './lease.js';
import { LeadershipKeeper, type DemoteReason } from './leadership.js';

const unavailable = await testPostgresUnavailable();
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Resolves when `predicate` holds, polling a promise-returning check (no fixed sleep decides the outcome). */
async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('leadership lease and fence on PostgreSQL', () => {
  if (unavailable) {
    it('needs PostgreSQL', () => {
      throw unavailable;
    });
    return;
  }
  const scopes: TestPostgresScope[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    for (const s of scopes) await s.drop();
  });
  /** A migrated schema of its own, and a superuser pool on it to look at (and move) the lease row. */
  const fresh = async (): Promise<{ scope: TestPostgresScope; admin: pg.Pool }> => {
    const scope = await createTestSchema('ha');
    scopes.push(scope);
    await (await PostgresStore.open({ connection: scope.connection, poolSize: 1 })).close();
    const admin = new pg.Pool({ ...scope.connection, max: 2, types: storeTypes });
    closers.push(() => admin.end());
    return { scope, admin };
  };
  const lease = (scope: TestPostgresScope, holder: string, leaseMs = 3000): LeaseClient => {
    const l = new LeaseClient({ connection: scope.connection, holder, address: `${holder}.example:7443`, leaseMs });
    closers.push(() => l.close());
    return l;
  };
  /** Expires the lease now by the database clock (what waiting leaseMs would do). */
  const expire = (admin: pg.Pool): Promise<unknown> => admin.query(`UPDATE leadership SET expires_at = now() - interval '1 millisecond' WHERE id = 1`);

  it('is free at first; one holder at a time; the fence grows by one at every takeover', async () => {
    const { scope, admin } = await fresh();
    const a = lease(scope, 'a');
    const b = lease(scope, 'b');
    expect(await a.read()).toMatchObject({ holder: null, fence: 0, expiresInMs: -Infinity });
    expect(await a.tryAcquire()).toEqual({ fence: 1, previous: null });
    expect(await b.tryAcquire()).toBeUndefined();
    const seen = await b.read();
    expect(seen).toMatchObject({ holder: 'a', address: 'a.example:7443', fence: 1 });
    expect(seen.expiresInMs).toBeGreaterThan(2000);
    expect(await a.renew(1)).toBe(true);
    await expire(admin);
    expect(await b.tryAcquire()).toEqual({ fence: 2, previous: 'a' });
    // The old holder can neither renew nor release what is no longer its lease.
    expect(await a.renew(1)).toBe(false);
    expect(await a.release(1)).toBe(false);
    expect((await a.read()).holder).toBe('b');
    // A clean release lets the next one in at once.
    expect(await b.release(2)).toBe(true);
    expect(await a.tryAcquire()).toEqual({ fence: 3, previous: 'b' });
  });

  it('gives the lease to exactly one of many standbys trying at once', async () => {
    const { scope } = await fresh();
    const clients = Array.from({ length: 6 }, (_, i) => lease(scope, `s${i}`));
    const results = await Promise.all(clients.map((c) => c.tryAcquire()));
    expect(results.filter((r) => r !== undefined)).toEqual([{ fence: 1, previous: null }]);
  });

  it('refuses every write of a store whose fence is stale, in the same transaction, and says so once per batch', async () => {
    const { scope, admin } = await fresh();
    const a = lease(scope, 'a');
    const b = lease(scope, 'b');
    const { fence } = (await a.tryAcquire())!;
    const fenced: (number | null)[] = [];
    const store = await PostgresStore.open({ connection: scope.connection, poolSize: 2, fence: { token: fence, onFenced: (c) => fenced.push(c), idleInTransactionMs: 3000 } });
    closers.push(() => store.close());
    const node = { id: 'n1', siteName: 's', credentialHash: 'h', createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' };
    await store.write([{ op: 'node.insert', n: node }], 'while active');
    expect((await store.getNode('n1'))?.siteName).toBe('s');

    await expire(admin);
    expect((await b.tryAcquire())?.fence).toBe(fence + 1);
    let err: unknown;
    try {
      await store.write([{ op: 'node.insert', n: { ...node, id: 'n2' } }], 'after the takeover');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('FENCED');
    expect((err as Error).message).toMatch(/fence 1 is stale \(the leadership row has 2\)/);
    expect(fenced).toEqual([2]);
    // Nothing of the refused batch reached the table; the single writes are fenced the same way.
    expect(await store.getNode('n2')).toBeUndefined();
    await expect(store.revokeNode('n1', 5)).rejects.toMatchObject({ code: 'FENCED' });
    expect((await store.getNode('n1'))?.revokedAt).toBeNull();
    // A store without a fence (ha.enabled false) writes as before.
    const plain = await PostgresStore.open({ connection: scope.connection, poolSize: 1 });
    closers.push(() => plain.close());
    await plain.write([{ op: 'node.insert', n: { ...node, id: 'n3' } }], 'single coordinator');
    expect(await plain.getNode('n3')).toBeDefined();
  });

  it('lets a takeover wait for a batch that passed the fence check, never the other way round', async () => {
    const { scope } = await fresh();
    const a = lease(scope, 'a', 2000);
    const { fence } = (await a.tryAcquire())!;
    // The lease has run out, but nobody took it yet: a's batches still pass the check.
    const admin = new pg.Client({ ...scope.connection, types: storeTypes });
    await admin.connect();
    closers.push(() => admin.end());
    await admin.query(`UPDATE leadership SET expires_at = now() - interval '1 millisecond' WHERE id = 1`);
    // An open transaction holding the row FOR SHARE, as a batch between its check and its COMMIT does.
    const batch = new pg.Client({ ...scope.connection, types: storeTypes });
    await batch.connect();
    closers.push(() => batch.end());
    await batch.query('BEGIN');
    expect((await batch.query(`SELECT fence FROM leadership WHERE id = 1 FOR SHARE`)).rows[0].fence).toBe(fence);
    // The standby's takeover cannot pass the share lock: it fails fast (lock_timeout) instead of queueing.
    const b = lease(scope, 'b', 2000);
    await expect(b.tryAcquire()).rejects.toThrow(/lock timeout/);
    await batch.query('COMMIT');
    expect((await b.tryAcquire())?.fence).toBe(fence + 1);
  });

  it('demotes an active whose renewals stop, within the lease, and lets a standby take over only after that', async () => {
    const { scope, admin } = await fresh();
    const leaseMs = 900;
    const events: string[] = [];
    const keeper = (name: string, l: LeaseClient): LeadershipKeeper =>
      new LeadershipKeeper({
        lease: l, leaseMs, log: quiet,
        onTakeover: (fence) => events.push(`${name} takeover ${fence}`),
        onDemote: (reason: DemoteReason, fence) => events.push(`${name} demoted ${fence} ${reason}`),
      });
    const la = lease(scope, 'a', leaseMs);
    const ka = keeper('a', la);
    void ka.start();
    await until(() => ka.isActive);
    const kb = keeper('b', lease(scope, 'b', leaseMs));
    void kb.start();
    closers.push(() => kb.stop(), () => ka.stop());
    // While a renews, b stays standby and knows where the active is.
    await until(() => kb.leaderAddress === 'a.example:7443');
    expect(kb.isActive).toBe(false);
    // a's renewals now fail (its lease client cannot reach the database): it demotes itself at its deadline.
    (la as unknown as { run: () => Promise<never> }).run = () => Promise.reject(new Error('network cut'));
    await until(() => !ka.isActive);
    await until(() => kb.isActive);
    expect(events).toEqual(['a takeover 1', 'a demoted 1 lease_expired', 'b takeover 2']);
    expect((await admin.query(`SELECT holder, fence FROM leadership`)).rows[0]).toEqual({ holder: 'b', fence: 2 });
  });

  it('demotes at once on a fenced write, and releases the lease on stop so the next takes over without waiting', async () => {
    const { scope } = await fresh();
    const events: string[] = [];
    const ka = new LeadershipKeeper({ lease: lease(scope, 'a', 60_000), leaseMs: 60_000, log: quiet, onTakeover: (f) => events.push(`takeover ${f}`), onDemote: (r, f) => events.push(`demoted ${f} ${r}`) });
    void ka.start();
    await until(() => ka.isActive);
    ka.fenced(ka.fence!);
    expect(events).toEqual(['takeover 1', 'demoted 1 fenced']);
    await ka.stop();
    const kb = new LeadershipKeeper({ lease: lease(scope, 'b', 60_000), leaseMs: 60_000, log: quiet, onTakeover: () => undefined, onDemote: () => undefined });
    const kc = new LeadershipKeeper({ lease: lease(scope, 'c', 60_000), leaseMs: 60_000, log: quiet, onTakeover: () => undefined, onDemote: () => undefined });
    // a's lease (60 s) was never released (it was demoted, not stopped while active): b waits.
    void kb.start();
    await until(() => kb.leaderAddress === 'a.example:7443' || kb.isActive);
    expect(kb.isActive).toBe(false);
    await kb.stop();
    const admin = new pg.Client({ ...scope.connection, types: storeTypes });
    await admin.connect();
    closers.push(() => admin.end());
    await admin.query(`UPDATE leadership SET expires_at = now() - interval '1 millisecond' WHERE id = 1`);
    const kd = new LeadershipKeeper({ lease: lease(scope, 'd', 60_000), leaseMs: 60_000, log: quiet, onTakeover: () => undefined, onDemote: () => undefined });
    void kd.start();
    await until(() => kd.isActive);
    // Stopping an active releases its lease: a standby with a 60 s lease takes it at its first check.
    expect(await kd.stop()).toBe(2);
    void kc.start();
    closers.push(() => kc.stop());
    await until(() => kc.isActive, 2000);
    expect(kc.fence).toBe(3);
  });
  it('an active whose own write batches are slow still renews (the fence check does not block renewal), and a takeover still waits for a batch that passed it', async () => {
    const { scope, admin } = await fresh();
    const LEASE = 2000;
    const demoted: DemoteReason[] = [];
    const keeper = new LeadershipKeeper({ lease: lease(scope, 'a', LEASE), leaseMs: LEASE, log: quiet, onTakeover: () => undefined, onDemote: (r) => demoted.push(r) });
    closers.push(() => keeper.stop());
    await keeper.start();
    expect(keeper.isActive).toBe(true);
    // The store's writer: back-to-back batches of 400 ms (> lease/6: a slow commit under load), for two leases.
    const writer = new pg.Client({ ...scope.connection, types: storeTypes });
    await writer.connect();
    closers.push(() => writer.end());
    for (let i = 0; i < 10 && keeper.isActive; i++) {
      await writer.query('BEGIN');
      expect((await writer.query<{ fence: number }>(FENCE_CHECK)).rows[0]!.fence).toBe(1);
      await writer.query('SELECT pg_sleep(0.4)');
      await writer.query('COMMIT');
    }
    expect(demoted).toEqual([]);
    expect(keeper.isActive).toBe(true);
    // A batch that passed the check holds the row: a takeover attempt (lease expired meanwhile) waits and fails on its lock timeout.
    await writer.query('BEGIN');
    await writer.query(FENCE_CHECK);
    await expire(admin);
    const other = lease(scope, 'b', LEASE);
    await expect(other.tryAcquire()).rejects.toThrow(/lock timeout/);
    await writer.query('COMMIT');
    expect(await other.tryAcquire()).toEqual({ fence: 2, previous: 'a' });
  });
  it('a coordinator started without ha.enabled refuses a database on which an active/standby lease is live (it would be a second, unfenced active)', async () => {
    const { scope, admin } = await fresh();
    const { openConfiguredStore } = await import('../app.js');
    const log = (await import('pino')).default({ level: 'silent' });
    const config = { dataDir: '/nonexistent', store: { kind: 'postgres' as const, url: scope.url, poolSize: 1 } };
    // No lease held: it opens.
    const first = await openConfiguredStore(config, log);
    await first.store!.close();
    expect(await lease(scope, 'a').tryAcquire()).toMatchObject({ fence: 1 });
    const err = await openConfiguredStore(config, log).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).message).toBe('store.url: an active/standby coordinator (a) holds the leadership lease on this database: start this one with ha.enabled too, or stop the pair');
    // Once the lease has expired (the pair stopped), it opens again.
    await expire(admin);
    const again = await openConfiguredStore(config, log);
    await again.store!.close();
  });
});
