import { expect, it } from 'vitest';
import type { CoordinatorStore, PromotionRecord, ReleaseRecord, SeriesRecord, SeriesRunRecord } from '../../store.js';
import type { WriteOp } from '../write-ops.js';
import { describeStores } from './describe-stores.js';
import { codeOf, enrol, FOREIGN_KEY_VIOLATION, roundRec, studyRec, taskRec, UNIQUE_VIOLATION } from './fixtures.js';
import { LEGACY_ROWS } from './store-kinds.js';

const d = (c: string): string => c.repeat(64);

const seriesRec = (name: string, over: Partial<SeriesRecord> = {}): SeriesRecord => ({
  name, template: JSON.stringify({ kind: 'StudySeries', name }), templateSha256: d('t'), state: 'active', createdBy: 'alice', createdAt: 100, updatedAt: 100, ...over,
});

const runRec = (seriesName: string, run: number, studyId: string, over: Partial<SeriesRunRecord> = {}): SeriesRunRecord => ({
  seriesName, run, studyId, scheduledAt: 1000 * run, startedAt: 1000 * run + 5, trigger: 'schedule', championVersion: run > 1 ? run - 1 : null,
  template: JSON.stringify({ kind: 'StudySeries', name: seriesName, run }), ...over,
});

const promotionRec = (seriesName: string, toVersion: number, at: number, over: Partial<Omit<PromotionRecord, 'id'>> = {}): Omit<PromotionRecord, 'id'> => ({
  seriesName, run: toVersion, fromVersion: toVersion > 1 ? toVersion - 1 : null, toVersion, action: 'promote', decidedBy: 'rule',
  evidence: JSON.stringify({ promote: true, reasons: [] }), at, ...over,
});

const releaseRec = (studyId: string, name: string, version: number): ReleaseRecord => ({
  studyName: name, version, studyId, round: 1, manifestSha256: d('m'), envelope: '{}',
  files: [{ name: 'weights.bin', sha256: d(String(version)), size: 10 }], createdAt: 10 + version, parentVersion: null,
});

/** The ops that start run `run` of `name`: its study and the run row, in one unit (as the scheduler writes them). */
const startRun = (name: string, run: number, studyId: string, over: Partial<SeriesRunRecord> = {}): WriteOp[] => [
  { op: 'study.insert', s: studyRec(studyId, { name }) },
  { op: 'series.run', r: runRec(name, run, studyId, over) },
];

const rejection = (r: PromiseSettledResult<unknown>): string => (r.status === 'rejected' ? `${(r.reason as { code?: string }).code}: ${String((r.reason as Error).message)}` : 'ok');

async function withSeries(store: CoordinatorStore, ...names: string[]): Promise<void> {
  for (const name of names) await store.write([{ op: 'series.insert', s: seriesRec(name) }], 'series.insert');
}

describeStores('store contract: series', (ctx) => {
  it('inserts series and reads them back, by name; unknown reads are undefined or empty', async () => {
    const { store } = ctx;
    const b = seriesRec('sepsis', { createdAt: 200, updatedAt: 200, state: 'paused' });
    const a = seriesRec('readmission');
    await store.write([{ op: 'series.insert', s: b }], 'series.insert');
    await store.write([{ op: 'series.insert', s: a }], 'series.insert');
    expect(await store.listSeries()).toEqual([a, b]);
    expect(await store.getSeries('sepsis')).toEqual(b);
    expect(await store.getSeries('nothing')).toBeUndefined();
    expect(await store.listSeriesRuns('nothing')).toEqual([]);
    expect(await store.listPromotions('nothing')).toEqual([]);
    expect(await store.seriesRunOfStudy('nothing')).toBeUndefined();
  });

  it('series.insert of a taken name is SERIES_EXISTS naming it, and rolls back its unit', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis');
    const audit: WriteOp = { op: 'admin.action', a: { at: 1, operator: 'bob', action: 'series.create', target: 'sepsis', detail: null } };
    const [again] = await Promise.allSettled([store.write([audit, { op: 'series.insert', s: seriesRec('sepsis', { createdBy: 'bob' }) }], 'series.insert')]);
    expect(rejection(again!)).toMatch(/^SERIES_EXISTS: .*series sepsis already exists/);
    expect(await store.getSeries('sepsis')).toEqual(seriesRec('sepsis'));
    expect(await store.listAdminActions(10)).toEqual([]);
  });

  it('series.update replaces the template and/or the state; a missing series is NOT_FOUND', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis', 'other');
    await store.write([{ op: 'series.update', name: 'sepsis', state: 'paused', at: 300 }], 'series.update');
    expect(await store.getSeries('sepsis')).toEqual(seriesRec('sepsis', { state: 'paused', updatedAt: 300 }));
    await store.write([{ op: 'series.update', name: 'sepsis', template: { json: '{"v":2}', sha256: d('2') }, at: 400 }], 'series.update');
    expect(await store.getSeries('sepsis')).toEqual(seriesRec('sepsis', { state: 'paused', template: '{"v":2}', templateSha256: d('2'), updatedAt: 400 }));
    await store.write([{ op: 'series.update', name: 'sepsis', template: { json: '{"v":3}', sha256: d('3') }, state: 'active', at: 500 }], 'series.update');
    expect(await store.getSeries('sepsis')).toEqual(seriesRec('sepsis', { template: '{"v":3}', templateSha256: d('3'), updatedAt: 500 }));
    const [missing] = await Promise.allSettled([store.write([{ op: 'series.update', name: 'ghost', state: 'paused', at: 600 }], 'series.update')]);
    expect(rejection(missing!)).toMatch(/^NOT_FOUND: series ghost does not exist/);
    // The other series is untouched.
    expect(await store.getSeries('other')).toEqual(seriesRec('other'));
  });

  it('series.run records runs with their study, oldest first; seriesRunOfStudy finds them', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis', 'other');
    await store.write(startRun('sepsis', 1, 's1'), 'series.run');
    await store.write(startRun('other', 1, 'o1', { trigger: 'operator:alice' }), 'series.run');
    await store.write(startRun('sepsis', 2, 's2'), 'series.run');
    expect(await store.listSeriesRuns('sepsis')).toEqual([runRec('sepsis', 1, 's1'), runRec('sepsis', 2, 's2')]);
    expect(await store.listSeriesRuns('other')).toEqual([runRec('other', 1, 'o1', { trigger: 'operator:alice' })]);
    expect(await store.seriesRunOfStudy('s2')).toEqual(runRec('sepsis', 2, 's2'));
    expect((await store.getStudy('s2'))?.name).toBe('sepsis');
    // A study that is not a run.
    await store.insertStudy(studyRec('plain'));
    expect(await store.seriesRunOfStudy('plain')).toBeUndefined();
  });

  it('series.run of a taken run number is STALE (two schedulers raced) and rolls back its study; of a missing series NOT_FOUND', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis');
    await store.write(startRun('sepsis', 1, 's1'), 'series.run');
    // Two schedulers start run 2 at once: one wins, the other's study is rolled back with it.
    const raced = await Promise.allSettled([store.write(startRun('sepsis', 2, 'a2'), 'series.run'), store.write(startRun('sepsis', 2, 'b2'), 'series.run')]);
    expect(raced.map(rejection)).toEqual(['ok', expect.stringMatching(/^STALE: run 2 of series sepsis already exists \(two schedulers raced\)/)]);
    expect((await store.listSeriesRuns('sepsis')).map((r) => `${r.run}:${r.studyId}`)).toEqual(['1:s1', '2:a2']);
    expect(await store.getStudy('b2')).toBeUndefined();
    const [missing] = await Promise.allSettled([store.write(startRun('ghost', 1, 'g1'), 'series.run')]);
    expect(rejection(missing!)).toMatch(/^NOT_FOUND: series ghost does not exist/);
    expect(await store.getStudy('g1')).toBeUndefined();
    // A study can be one run only, and must exist: loud constraint errors, not a silent skip.
    await expect(store.write([{ op: 'series.run', r: runRec('sepsis', 3, 's1') }], 'series.run')).rejects.toThrow(UNIQUE_VIOLATION);
    await expect(store.write([{ op: 'series.run', r: runRec('sepsis', 3, 'no-such-study') }], 'series.run')).rejects.toThrow(FOREIGN_KEY_VIOLATION);
    expect(await store.listSeriesRuns('sepsis')).toHaveLength(2);
  });

  it('promotion.insert records decisions, ids assigned, oldest first per series', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis', 'other');
    await store.write([{ op: 'promotion.insert', p: promotionRec('sepsis', 1, 50) }], 'promotion.insert');
    await store.write([{ op: 'promotion.insert', p: promotionRec('other', 1, 40) }], 'promotion.insert');
    const keep = promotionRec('sepsis', 2, 60, { action: 'keep', evidence: JSON.stringify({ promote: false, reasons: ['auc delta 0.001 < 0.01'] }) });
    const rollback = promotionRec('sepsis', 1, 70, { run: null, fromVersion: 3, action: 'rollback', decidedBy: 'operator:alice' });
    await store.write([{ op: 'promotion.insert', p: keep }, { op: 'promotion.insert', p: rollback }], 'promotion.insert');
    const found = await store.listPromotions('sepsis');
    expect(found.map(({ id: _id, ...rest }) => rest)).toEqual([promotionRec('sepsis', 1, 50), keep, rollback]);
    const ids = found.map((p) => p.id);
    expect(ids.every((id) => Number.isSafeInteger(id) && id > 0)).toBe(true);
    expect(new Set([...ids, ...(await store.listPromotions('other')).map((p) => p.id)]).size).toBe(4);
    expect((await store.listPromotions('other')).map((p) => p.toVersion)).toEqual([1]);
  });

  it('a promotion and its alias move are one unit: a missing version leaves no promotion row', async () => {
    const { store } = ctx;
    await withSeries(store, 'sepsis');
    await store.write([...startRun('sepsis', 1, 's1'), { op: 'release.insert', r: releaseRec('s1', 'sepsis', 1) }], 'release');
    const promote = (version: number, at: number): Promise<unknown> => store.write([
      { op: 'promotion.insert', p: promotionRec('sepsis', version, at) },
      { op: 'release.alias', studyName: 'sepsis', alias: 'champion', version, setBy: 'rule', at },
    ], 'series.promote');
    expect(await codeOf(promote(2, 10))).toBe('NOT_FOUND');
    expect(await store.listPromotions('sepsis')).toEqual([]);
    expect(await store.listReleaseAliases('sepsis')).toEqual([]);
    await promote(1, 20);
    expect((await store.listPromotions('sepsis')).map((p) => p.toVersion)).toEqual([1]);
    expect((await store.listReleaseAliases('sepsis')).map((a) => a.version)).toEqual([1]);
  });

  it('nodeTookPartInName: an approval or a task in any study of the name; not of another name', async () => {
    const { store } = ctx;
    for (const n of ['n1', 'n2', 'n3', 'n4']) await enrol(store, n);
    await store.insertStudy(studyRec('s1', { name: 'sepsis' }));
    await store.insertStudy(studyRec('s2', { name: 'sepsis' }));
    await store.insertStudy(studyRec('x1', { name: 'readmission' }));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    const x1 = await store.insertRound(roundRec('x1', 1, 1, 'TRAINING'));
    // n1 trained in run 1 only; n2 approved run 2 only; n3 took part in the other name only.
    await store.insertTask(taskRec('t1', r1, 'n1', 'DECLINED', 10));
    await store.write([{ op: 'approval.record', studyId: 's2', nodeId: 'n2', manifestSha256: d('a'), at: 5 }], 'approval.record');
    await store.insertTask(taskRec('t3', x1, 'n3', 'ACCEPTED', 10));
    await store.write([{ op: 'approval.record', studyId: 'x1', nodeId: 'n3', manifestSha256: d('a'), at: 5 }], 'approval.record');
    expect(await store.nodeTookPartInName('n1', 'sepsis')).toBe(true);
    expect(await store.nodeTookPartInName('n2', 'sepsis')).toBe(true);
    expect(await store.nodeTookPartInName('n3', 'sepsis')).toBe(false);
    expect(await store.nodeTookPartInName('n4', 'sepsis')).toBe(false);
    expect(await store.nodeTookPartInName('n3', 'readmission')).toBe(true);
    expect(await store.nodeTookPartInName('n1', 'readmission')).toBe(false);
    expect(await store.nodeTookPartInName('ghost', 'sepsis')).toBe(false);
    expect(await store.nodeTookPartInName('n1', 'nothing')).toBe(false);
    // Names are exact: no pattern matching, no case folding.
    expect(await store.nodeTookPartInName('n1', 'SEPSIS')).toBe(false);
    expect(await store.nodeTookPartInName('n1', 'seps%')).toBe(false);
  });

  it("stores metrics of the 'comparison' phase", async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const perf = JSON.stringify({ auc: 0.7, n: 30 });
    await store.insertMetrics([{ roundId: r1, nodeId: 'n1', phase: 'comparison', numExamples: 30, loss: 0.6, accuracy: 0.7, auc: 0.7, performance: perf }]);
    expect(await store.listMetrics('s1')).toEqual([{ roundId: r1, round: 1, nodeId: 'n1', phase: 'comparison', numExamples: 30, loss: 0.6, accuracy: 0.7, auc: 0.7, performance: perf }]);
  });

  // SQLite's previous schema (user_version 7) with rows of every older table: migrated in place.
  if (ctx.kind.openUpgraded !== undefined) it('upgrades a database of the previous schema: old rows kept, series work on its studies', async () => {
    const upgraded = await ctx.kind.openUpgraded!();
    try {
      const { store } = upgraded;
      const L = LEGACY_ROWS;
      expect((await store.getStudy(L.studyId))?.name).toBe('old');
      expect(await store.listMetrics(L.studyId)).toHaveLength(1);
      expect(await store.nodeTookPartInName(L.nodeId, 'old')).toBe(true);
      expect(await store.listSeries()).toEqual([]);
      await store.write([{ op: 'series.insert', s: seriesRec('old') }, { op: 'series.run', r: runRec('old', 1, L.studyId) }], 'series.insert');
      expect(await store.seriesRunOfStudy(L.studyId)).toEqual(runRec('old', 1, L.studyId));
    } finally {
      await upgraded.cleanup();
    }
  });
});
