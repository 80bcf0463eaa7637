import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../coordinator.js';
import { SqliteStore } from '../sqlite-store.js';
import { fillSeries } from './series-test-support.js';
import { seriesDetail, seriesList, type SeriesViewContext } from './series-views.js';

let dir: string;
let store: SqliteStore;
let ctx: SeriesViewContext;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-views-'));
  store = new SqliteStore(join(dir, 'state.db'));
  ctx = { coordinator: { store, nodes: { list: () => store.listNodes() } } as unknown as Coordinator };
  await fillSeries(store);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const z = 1.959963984540054;

describe('series views', () => {
  it('lists each series with its schedule, rule, runs, champion and why no next run is due yet', async () => {
    const { series } = await seriesList(ctx);
    expect(series).toEqual([expect.objectContaining({
      name: 'sepsis', state: 'active', schedule: 'cron 0 3 1 1 * (UTC)', start: 'champion',
      promotion: { rule: 'auto', minDelta: 0.01, maxSiteLoss: 0.05, minSites: 2 }, runCount: 3,
      currentRun: { run: 3, studyId: 'sepsis-run3', studyState: 'RUNNING' }, championVersion: 2,
      nextRunAt: null, nextRunNote: 'after run 3 ends', error: null,
    })]);
    // Once run 3 ends, the next run is the cron time after run 3's scheduled time.
    await store.write([{ op: 'study.state', id: 'sepsis-run3', state: 'COMPLETED', reason: null, at: Date.UTC(2028, 0, 2) }], 'test.end');
    expect((await seriesList(ctx)).series[0]).toMatchObject({ currentRun: null, nextRunAt: '2029-01-01T03:00:00.000Z', nextRunNote: null });
    await store.write([{ op: 'series.update', name: 'sepsis', state: 'paused', at: 5 }], 'test.pause');
    expect((await seriesList(ctx)).series[0]).toMatchObject({ state: 'paused', nextRunAt: null, nextRunNote: 'paused' });
  });

  it('shows the runs with their release and decision, and the champion history with each decision\'s reasons', async () => {
    const d = await seriesDetail(ctx, 'sepsis');
    expect(d.template).toMatchObject({ name: 'sepsis', kind: 'StudySeries' });
    expect(d.varying).toContain('model.initialWeights');
    expect(d.runs.map((r) => [r.run, r.studyId, r.studyState, r.trigger, r.championVersion, r.releasedVersion, r.decision?.action ?? null])).toEqual([
      [1, 'sepsis-run1', 'COMPLETED', 'schedule', null, 1, 'promote'],
      [2, 'sepsis-run2', 'COMPLETED', 'operator:olivia', 1, 2, 'keep'],
      [3, 'sepsis-run3', 'RUNNING', 'schedule', 2, null, null],
    ]);
    expect(d.runs[1]).toMatchObject({ scheduledAt: '2027-01-01T03:00:00.000Z', templateSha256: d.templateSha256, decision: { decidedBy: 'rule', evidence: { promote: false, reasons: ['pooled AUC difference +0.020', 'its 95 % interval does not lie above 0'] } } });
    expect(d.runs[0]).not.toHaveProperty('template');
    expect(d.promotions.map((p) => [p.action, p.fromVersion, p.toVersion, p.decidedBy, p.evidence?.reasons[0]])).toEqual([
      ['promote', null, 1, 'rule', 'first release'],
      ['keep', 1, 2, 'rule', 'pooled AUC difference +0.020'],
      ['promote', 1, 2, 'operator:olivia', 'pooled AUC difference +0.020'],
    ]);
  });

  it("shows each released round's per-site test AUC and paired difference with intervals, small cells withheld", async () => {
    const { performance } = await seriesDetail(ctx, 'sepsis');
    expect(performance.map((p) => [p.run, p.version, p.championVersion, p.minCellCount, p.error])).toEqual([[1, 1, null, 10, null], [2, 2, 1, 10, null]]);
    const run2 = performance[1]!;
    // Tiny has 3 cases (< 10): withheld, and east (the next smallest) with it so the pooled
    // figures minus the shown sites do not give tiny's away. West has a comparison but no test row.
    expect(run2.sites.map((s) => s.site)).toEqual(['north', 'south']);
    expect(run2.withheldSites).toBe(3);
    const north = run2.sites[0]!;
    expect(north).toMatchObject({ numExamples: 400, auc: 0.82, difference: 0.03, championAuc: 0.79 });
    expect(north.aucInterval![0]).toBeCloseTo(0.82 - z * 0.02, 3);
    expect(north.differenceInterval![0]).toBeCloseTo(0.03 - z * 0.01, 6);
    expect(north.differenceInterval![1]).toBeCloseTo(0.03 + z * 0.01, 6);
    expect(run2.pooled).toMatchObject({ numExamples: 930, auc: 0.82 });
    expect(JSON.stringify(run2)).not.toMatch(/\b(tiny|east|west)\b/);
    // Run 1 had no champion: AUCs only.
    expect(performance[0]!.sites.map((s) => [s.site, s.auc, s.difference])).toEqual([['north', 0.8, null], ['south', 0.78, null]]);
  });

  it('says why figures cannot be shown instead of failing the page, and answers NOT_FOUND for an unknown series', async () => {
    const rows = await store.listMetrics('sepsis-run2');
    await store.insertMetrics([{ roundId: rows[0]!.roundId, nodeId: 'node_north', phase: 'comparison', numExamples: 1, loss: 0, accuracy: 0, performance: '{"n": -1}' }]);
    const d = await seriesDetail(ctx, 'sepsis');
    expect(d.performance[1]).toMatchObject({ sites: [], error: expect.stringMatching(/^figures cannot be shown: the stored comparison of north is malformed: /) });
    expect(d.performance[0]!.error).toBeNull();
    await expect(seriesDetail(ctx, 'nothing')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no series nothing' });
  });
});
