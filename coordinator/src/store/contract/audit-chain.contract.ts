import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { auditSourceOf } from '../../audit/sources.js';
import { verifyAuditChain, type AuditReport, type VerifyOptions } from '../../audit/verify.js';
import type { CoordinatorStore, ReleaseRecord } from '../../store.js';
import { SqliteStore } from '../../sqlite-store.js';
import { PostgresStore } from '../postgres/postgres-store.js';
import { describeStores } from './describe-stores.js';
import { codeOf, contributionRec, enrol, studyRec } from './fixtures.js';
import { LEGACY_ROWS } from './store-kinds.js';

const release = (studyId: string, version: number): ReleaseRecord => ({
  studyName: 'sepsis', version, studyId, round: 3, manifestSha256: 'm'.repeat(64), envelope: '{"payload":"e30"}',
  files: [{ name: 'weights.bin', sha256: 'f'.repeat(64), size: 4096 }], createdAt: 1000 + version, parentVersion: version > 1 ? version - 1 : null,
});

async function verify(store: CoordinatorStore, options: VerifyOptions = {}): Promise<AuditReport> {
  const source = auditSourceOf(store);
  try {
    return await verifyAuditChain(source, options);
  } finally {
    await source.close();
  }
}

/** Runs SQL on the store's database behind its back (what an intruder with database access does). */
async function tamper(store: CoordinatorStore, sql: string): Promise<void> {
  if (store instanceof SqliteStore) {
    const db = new Database(store.path);
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  } else if (store instanceof PostgresStore) {
    await store.pool.query(sql);
  } else throw new Error('unknown store');
}

/**
 * Every audited kind, in this order (seq 1..9): admin action, accepted and rejected contribution,
 * releases v1 and v2, alias set, alias moved, revocation by op, revocation by revokeNode.
 */
async function audited(store: CoordinatorStore): Promise<void> {
  await store.insertAdminAction({ at: 10, operator: 'ada', action: 'study.start', target: 's1', detail: 'manifest m' });
  await store.write([{ op: 'contribution.insert', c: contributionRec('t1', 'a'.repeat(64), true, { deltaNorm: 0.125 }) }], 'c');
  await store.insertContribution(contributionRec('t2', 'b'.repeat(64), false));
  for (const s of ['s1', 's2']) await store.insertStudy(studyRec(s, { name: 'sepsis', state: 'COMPLETED' }));
  await store.write([{ op: 'release.insert', r: release('s1', 1) }, { op: 'release.insert', r: release('s2', 2) }], 'release');
  await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 1, setBy: 'ada', at: 2000 }], 'alias');
  await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 2, setBy: 'ada', at: 2001 }], 'alias');
  await enrol(store, 'n1');
  await enrol(store, 'n2');
  await store.write([{ op: 'node.revoke', id: 'n1', at: 3000 }], 'revoke');
  expect(await store.revokeNode('n2', 3001)).toBe(true);
  // Revoking again changes nothing, so it is not chained.
  expect(await store.revokeNode('n2', 3002)).toBe(false);
  await store.write([{ op: 'node.revoke', id: 'n1', at: 3003 }], 'revoke');
}

describeStores('store contract: audit chain', (ctx) => {
  it('chains every audited write in its own unit, and verifies intact', async () => {
    const { store } = ctx;
    expect(await verify(store)).toEqual({ ok: true, entries: 0, headSeq: 0, head: '0'.repeat(64) });
    await audited(store);
    // A unit that fails leaves no entry behind (the alias names a version that does not exist).
    expect(await codeOf(store.write([{ op: 'admin.action', a: { at: 1, operator: 'ada', action: 'release.alias', target: 'x', detail: null } }, { op: 'release.alias', studyName: 'sepsis', alias: 'x', version: 9, setBy: 'ada', at: 1 }], 'bad'))).toBe('NOT_FOUND');
    const r = await verify(store);
    expect(r).toMatchObject({ ok: true, entries: 9 });
    expect(r.head).toMatch(/^[0-9a-f]{64}$/);
  });

  it('names an edited audited row, an edited entry, a removed entry and a removed row', async () => {
    const { store } = ctx;
    await audited(store);
    await tamper(store, `UPDATE contributions SET bytes = bytes + 1 WHERE task_id = 't2'`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'edited', seq: 3, kind: 'contribution', ref: '2' });
    await tamper(store, `UPDATE contributions SET bytes = bytes - 1 WHERE task_id = 't2'`);
    expect((await verify(store)).ok).toBe(true);
    await tamper(store, `UPDATE audit_chain SET at = at + 1 WHERE seq = 4`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'edited', seq: 4, kind: 'release', ref: 'sepsis v1' });
    await tamper(store, `UPDATE audit_chain SET at = at - 1 WHERE seq = 4`);
    await tamper(store, `UPDATE admin_actions SET operator = 'eve'`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'edited', seq: 1, kind: 'admin', ref: '1' });
    await tamper(store, `UPDATE admin_actions SET operator = 'ada'`);
    await tamper(store, `UPDATE nodes SET revoked_at = NULL WHERE id = 'n2'`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'removed', seq: 9, kind: 'node.revoke', ref: 'n2' });
    await tamper(store, `UPDATE nodes SET revoked_at = 3001 WHERE id = 'n2'`);
    await tamper(store, `UPDATE release_aliases SET version = 1`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'edited', seq: 7, kind: 'release.alias', ref: 'sepsis champion' });
    await tamper(store, `UPDATE release_aliases SET version = 2`);
    expect((await verify(store)).ok).toBe(true);
    await tamper(store, `DELETE FROM audit_chain WHERE seq = 6`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'removed', seq: 7 });
  });

  it('names reordered entries, a cut tail, and a row written outside the store', async () => {
    const { store } = ctx;
    await audited(store);
    await tamper(store, `UPDATE audit_chain SET seq = -seq WHERE seq IN (2, 3)`);
    await tamper(store, `UPDATE audit_chain SET seq = 5 + seq WHERE seq IN (-2, -3)`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'reordered', seq: 2, kind: 'contribution', ref: '2' });
    await tamper(store, `UPDATE audit_chain SET seq = -seq WHERE seq IN (2, 3)`);
    await tamper(store, `UPDATE audit_chain SET seq = 5 + seq WHERE seq IN (-2, -3)`);
    expect((await verify(store)).ok).toBe(true);
    await tamper(store, `DELETE FROM audit_chain WHERE seq >= 8`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'truncated', seq: 8 });
    await tamper(store, `UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit_chain WHERE seq = 7)`);
    expect((await verify(store)).problem).toMatchObject({ problem: 'unchained', kind: 'node.revoke', ref: 'n1' });
  });

  it('reads one snapshot: a write committed after it read the head is not mistaken for tampering', async () => {
    const { store } = ctx;
    await audited(store);
    let wrote = 0;
    // A contribution committed right after the head was read (the chain pages come after it).
    const r = await verify(store, {
      afterQuery: async (sql) => {
        if (wrote === 0 && sql.includes('FROM audit_head')) {
          wrote++;
          await store.insertContribution(contributionRec('t9', 'd'.repeat(64), false));
        }
      },
    });
    expect(wrote).toBe(1);
    expect(r).toMatchObject({ ok: true, entries: 9, headSeq: 9 });
    expect(await verify(store)).toMatchObject({ ok: true, entries: 10 });
  });

  it('reads one snapshot: an alias moved after it walked the chain is not mistaken for an edited alias', async () => {
    const { store } = ctx;
    await audited(store);
    let wrote = 0;
    // The move commits after the chain (and its newest move of the alias) was read, before the alias rows are.
    const r = await verify(store, {
      afterQuery: async (sql) => {
        if (wrote === 0 && sql.includes('NOT IN (SELECT ref FROM audit_chain')) {
          wrote++;
          await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 1, setBy: 'ada', at: 2002 }], 'alias');
        }
      },
    });
    expect(wrote).toBe(1);
    expect(r).toMatchObject({ ok: true, entries: 9 });
    expect(await verify(store)).toMatchObject({ ok: true, entries: 10 });
  });

  it('with a kept head (--head), names a cut tail whose audit_head was rewritten, and a rewritten entry', async () => {
    const { store } = ctx;
    await audited(store);
    const before = await verify(store);
    expect(before).toMatchObject({ ok: true, headSeq: 9 });
    const kept = { seq: before.headSeq, hash: before.head };
    expect(await verify(store, { kept })).toMatchObject({ ok: true, headSeq: 9 });
    // Hide the last revocation: its row, its entry, and the head set to the entry before (no hashing needed).
    await tamper(store, `UPDATE nodes SET revoked_at = NULL WHERE id = 'n2'`);
    await tamper(store, `DELETE FROM audit_chain WHERE seq = 9`);
    await tamper(store, `UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_chain WHERE seq = 8)`);
    expect((await verify(store)).ok).toBe(true);
    const cut = await verify(store, { kept });
    expect(cut.problem).toMatchObject({ problem: 'truncated', seq: 9 });
    expect(cut.problem!.message).toContain(`the kept head 9:${kept.hash}`);
    // A later real write takes seq 9 again: a different entry than the kept one.
    await store.insertAdminAction({ at: 20, operator: 'ada', action: 'study.stop', target: 's1', detail: null });
    expect(await verify(store, { kept })).toMatchObject({ ok: false, problem: { problem: 'edited', seq: 9, kind: 'admin' } });
  });

  it('never forks the chain under concurrent writers (two stores on one database)', async () => {
    const other = ctx.track(await ctx.opened.reopen());
    const writes = (s: CoordinatorStore, who: string) =>
      Array.from({ length: 20 }, (_, i) => s.insertContribution(contributionRec(`${who}${i}`, 'c'.repeat(64), false, { receivedAt: i })));
    await Promise.all([...writes(ctx.store, 'a'), ...writes(other, 'b')]);
    expect(await verify(ctx.store)).toMatchObject({ ok: true, entries: 40 });
  });

  if (ctx.kind.openUpgraded !== undefined) it('chains the rows written before the chain when it migrates (by id within each kind)', async () => {
    const upgraded = await ctx.kind.openUpgraded!();
    try {
      expect(await verify(upgraded.store)).toMatchObject({ ok: true, entries: 1 });
      const source = auditSourceOf(upgraded.store);
      try {
        expect(await source.query(`SELECT seq, kind, ref FROM audit_chain`, [])).toEqual([{ seq: 1, kind: 'contribution', ref: '1' }]);
      } finally {
        await source.close();
      }
      await upgraded.store.insertContribution(contributionRec(LEGACY_ROWS.taskId, 'n'.repeat(64), false));
      expect(await verify(upgraded.store)).toMatchObject({ ok: true, entries: 2 });
    } finally {
      await upgraded.cleanup();
    }
  });
});
