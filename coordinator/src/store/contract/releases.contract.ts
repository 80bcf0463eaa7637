import { expect, it } from 'vitest';
import type { CoordinatorStore, ReleasePerformanceRecord, ReleaseRecord } from '../../store.js';
import { describeStores } from './describe-stores.js';
import { codeOf, enrol, roundRec, studyRec } from './fixtures.js';
import { LEGACY_ROWS } from './store-kinds.js';

const d = (c: string): string => c.repeat(64);

/** Version `version` of `name`, made from study `studyId`; its files' digests start with `tag`. */
const releaseRec = (studyId: string, name: string, version: number, tag: string, over: Partial<ReleaseRecord> = {}): ReleaseRecord => ({
  studyName: name, version, studyId, round: 3, manifestSha256: d('m'),
  envelope: JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'e30', signatures: [{ keyid: 'k', sig: 's' }] }),
  files: [
    { name: 'release.json', sha256: d(tag), size: 120 },
    { name: 'weights.bin', sha256: `${tag}f`.padEnd(64, '0'), size: 4096 },
  ],
  createdAt: 1000 + version, parentVersion: version > 1 ? version - 1 : null, ...over,
});

const perf = (nodeId: string, fingerprint: string, receivedAt: number, over: Partial<ReleasePerformanceRecord> = {}): ReleasePerformanceRecord => ({
  studyName: 'sepsis', version: 1, nodeId, exportFingerprint: fingerprint, performance: JSON.stringify({ auc: 0.8, n: 120 }), measuredAt: receivedAt - 5, receivedAt, ...over,
});

/** Studies s1..sN, each with a release insert of `rec(i)`. */
async function released(store: CoordinatorStore, recs: readonly ReleaseRecord[]): Promise<void> {
  for (const r of recs) {
    if ((await store.getStudy(r.studyId)) === undefined) await store.insertStudy(studyRec(r.studyId, { name: r.studyName, state: 'COMPLETED' }));
    await store.write([{ op: 'release.insert', r }], 'release.insert');
  }
}

describeStores('store contract: releases', (ctx) => {
  it('inserts releases and reads them back: one, by study, newest version first, at most limit', async () => {
    const { store } = ctx;
    const v1 = releaseRec('s1', 'sepsis', 1, 'a');
    const v2 = releaseRec('s2', 'sepsis', 2, 'b');
    const v3 = releaseRec('s3', 'sepsis', 3, 'c');
    const other = releaseRec('s4', 'readmission', 1, 'd', { createdAt: 1500 });
    await released(store, [v1, v2, other, v3]);
    expect(await store.getRelease('sepsis', 2)).toEqual(v2);
    expect(await store.getRelease('sepsis', 9)).toBeUndefined();
    expect(await store.getRelease('nothing', 1)).toBeUndefined();
    expect(await store.releaseOfStudy('s3')).toEqual(v3);
    expect(await store.releaseOfStudy('s5')).toBeUndefined();
    expect(await store.listReleases('sepsis', 10)).toEqual([v3, v2, v1]);
    expect(await store.listReleases('sepsis', 2)).toEqual([v3, v2]);
    expect(await store.listReleases('nothing', 10)).toEqual([]);
    // Every study name: the newest first.
    expect((await store.listReleases(undefined, 10)).map((r) => `${r.studyName}@${r.version}`)).toEqual(['readmission@1', 'sepsis@3', 'sepsis@2', 'sepsis@1']);
    expect(await store.listReleases(undefined, 1)).toEqual([other]);
    expect(await codeOf(store.listReleases(undefined, 0))).toBe('INVALID_ARGUMENT');
  });

  it('release.insert of an existing version, or of a study already released, is STALE and rolled back alone', async () => {
    const { store } = ctx;
    const v1 = releaseRec('s1', 'sepsis', 1, 'a');
    await released(store, [v1]);
    await store.insertStudy(studyRec('s2', { name: 'sepsis' }));
    const audit = { op: 'admin.action' as const, a: { at: 1, operator: 'builder', action: 'release.create', target: 'sepsis', detail: null } };
    // Two builders raced for version 1 (from another study), and the same study released twice.
    const results = await Promise.allSettled([
      store.write([audit, { op: 'release.insert', r: releaseRec('s2', 'sepsis', 1, 'x') }], 'release.insert'),
      store.write([audit, { op: 'release.insert', r: releaseRec('s1', 'sepsis', 2, 'y') }], 'release.insert'),
      store.write([{ op: 'release.insert', r: releaseRec('s2', 'sepsis', 2, 'b') }], 'release.insert'),
    ]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok'))).toEqual(['STALE', 'STALE', 'ok']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/sepsis v1 already exists/);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/study s1 already has a release/);
    expect(await store.listReleases('sepsis', 10)).toEqual([releaseRec('s2', 'sepsis', 2, 'b'), v1]);
    expect(await store.listAdminActions(10)).toEqual([]);
  });

  it('sets, moves and removes aliases; an unknown version or an unset alias is NOT_FOUND', async () => {
    const { store } = ctx;
    await released(store, [releaseRec('s1', 'sepsis', 1, 'a'), releaseRec('s2', 'sepsis', 2, 'b'), releaseRec('s3', 'readmission', 1, 'c')]);
    const alias = (studyName: string, name: string, version: number | null, at: number) =>
      store.write([{ op: 'release.alias', studyName, alias: name, version, setBy: 'alice', at }], 'release.alias');
    await alias('sepsis', 'champion', 1, 10);
    await alias('sepsis', 'challenger', 2, 11);
    await alias('readmission', 'champion', 1, 12);
    expect(await store.listReleaseAliases('sepsis')).toEqual([
      { studyName: 'sepsis', alias: 'challenger', version: 2, setBy: 'alice', setAt: 11 },
      { studyName: 'sepsis', alias: 'champion', version: 1, setBy: 'alice', setAt: 10 },
    ]);
    // Moving replaces where it pointed, who set it and when.
    await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 2, setBy: 'bob', at: 20 }], 'release.alias');
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')).toEqual({ studyName: 'sepsis', alias: 'champion', version: 2, setBy: 'bob', setAt: 20 });
    expect(await codeOf(alias('sepsis', 'champion', 7, 21))).toBe('NOT_FOUND');
    expect(await codeOf(alias('nothing', 'champion', 1, 21))).toBe('NOT_FOUND');
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version).toBe(2);
    await alias('sepsis', 'challenger', null, 22);
    expect(await codeOf(alias('sepsis', 'challenger', null, 23))).toBe('NOT_FOUND');
    expect((await store.listReleaseAliases(undefined)).map((a) => `${a.studyName}:${a.alias}@${a.version}`)).toEqual(['readmission:champion@1', 'sepsis:champion@2']);
    expect(await store.listReleaseAliases('nothing')).toEqual([]);
  });

  it('keeps a performance report once per (release, node, export fingerprint) and says which were duplicates', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await enrol(store, 'n2');
    await released(store, [releaseRec('s1', 'sepsis', 1, 'a'), releaseRec('s2', 'sepsis', 2, 'b')]);
    const report = (p: ReleasePerformanceRecord) => store.write([{ op: 'release.performance', p }], 'release.performance');
    expect((await report(perf('n1', 'fp1', 100))).duplicates).toBe(0);
    expect((await report(perf('n2', 'fp1', 90))).duplicates).toBe(0);
    // The agent resent it (a lost acknowledgement): kept once, the first copy wins, no error.
    expect((await report(perf('n1', 'fp1', 200, { performance: '{"auc":0.1}' }))).duplicates).toBe(1);
    expect((await report(perf('n1', 'fp2', 300))).duplicates).toBe(0);
    expect((await report(perf('n1', 'fp1', 400, { version: 2 }))).duplicates).toBe(0);
    const both = await store.write([{ op: 'release.performance', p: perf('n1', 'fp2', 500) }, { op: 'release.performance', p: perf('n2', 'fp9', 510) }], 'release.performance');
    expect(both).toEqual({ roundIds: [], cancelled: [], duplicates: 1 });
    expect(await store.listReleasePerformance('sepsis', 1)).toEqual([perf('n2', 'fp1', 90), perf('n1', 'fp1', 100), perf('n1', 'fp2', 300), perf('n2', 'fp9', 510)]);
    expect(await store.listReleasePerformance('sepsis', 2)).toEqual([perf('n1', 'fp1', 400, { version: 2 })]);
    expect(await store.listReleasePerformance('sepsis', 3)).toEqual([]);
  });

  it("stores metrics' performance JSON and the 'test' phase, by round.commit and metrics.insert", async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const pv = JSON.stringify({ auc: 0.81, aucCi: [0.7, 0.9], n: 40 });
    const pt = JSON.stringify({ auc: 0.78, n: 20 });
    await store.write([{
      op: 'round.commit', id: r1, checkpoint: { path: 'blob:sha256:' + d('1'), sha256: d('1') }, strategyState: null, at: 50,
      metrics: [
        { roundId: r1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.81, performance: pv },
        { roundId: r1, nodeId: null, phase: 'test', numExamples: 20, loss: 0.55, accuracy: 0.7, auc: 0.78, performance: pt },
        { roundId: r1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9, performance: null },
      ],
    }], 'round.commit');
    await store.insertMetrics([{ roundId: r1, nodeId: 'n1', phase: 'test', numExamples: 12, loss: 0.6, accuracy: 0.66, auc: 0.7, performance: pt }]);
    expect(await store.listMetrics('s1')).toEqual([
      { roundId: r1, round: 1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.81, performance: pv },
      { roundId: r1, round: 1, nodeId: null, phase: 'test', numExamples: 20, loss: 0.55, accuracy: 0.7, auc: 0.78, performance: pt },
      // Not reported reads as absent (like auc).
      { roundId: r1, round: 1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9, auc: undefined, performance: undefined },
      { roundId: r1, round: 1, nodeId: 'n1', phase: 'test', numExamples: 12, loss: 0.6, accuracy: 0.66, auc: 0.7, performance: pt },
    ]);
    expect((await store.listMetrics('s1'))[2]?.performance).toBeUndefined();
  });

  it('referencedBlobs keeps every release file, also of studies long finished', async () => {
    const { store } = ctx;
    const v1 = releaseRec('s1', 'sepsis', 1, 'a');
    const v2 = releaseRec('s2', 'sepsis', 2, 'b');
    expect(await store.referencedBlobs()).toEqual(new Set());
    await released(store, [v1, v2]);
    expect(await store.referencedBlobs()).toEqual(new Set([...v1.files, ...v2.files].map((f) => f.sha256)));
  });

  // SQLite's previous schema (SCHEMA_VERSION - 1) with a metric row of an old round: migrated in place.
  if (ctx.kind.openUpgraded !== undefined) it('upgrades a database of the previous schema: old metrics read without performance, releases work', async () => {
    const upgraded = await ctx.kind.openUpgraded!();
    try {
      const { store } = upgraded;
      const L = LEGACY_ROWS;
      expect(await store.listMetrics(L.studyId)).toEqual([
        { roundId: 1, round: 1, nodeId: null, phase: 'evaluation', numExamples: 50, loss: 0.5, accuracy: 0.75, auc: 0.8, performance: undefined },
      ]);
      const r = releaseRec(L.studyId, 'old', 1, 'a', { round: 1 });
      await store.write([{ op: 'release.insert', r }, { op: 'release.alias', studyName: 'old', alias: 'champion', version: 1, setBy: 'alice', at: 5 }], 'release.insert');
      expect(await store.releaseOfStudy(L.studyId)).toEqual(r);
      expect(await store.listReleaseAliases('old')).toHaveLength(1);
      expect((await store.referencedBlobs()).has(d('a'))).toBe(true);
    } finally {
      await upgraded.cleanup();
    }
  });
});
