import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../coordinator.js';
import { SqliteStore } from '../sqlite-store.js';
import { seriesDetailText, seriesListText } from './series-lines.js';
import { fillSeries } from './series-test-support.js';
import { seriesDetail, seriesList, type SeriesViewContext } from './series-views.js';

let dir: string;
let store: SqliteStore;
let ctx: SeriesViewContext;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-lines-'));
  store = new SqliteStore(join(dir, 'state.db'));
  ctx = { coordinator: { store, nodes: { list: () => store.listNodes() } } as unknown as Coordinator };
  await fillSeries(store);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('series CLI text', () => {
  it('lists series in a table', async () => {
    const text = seriesListText((await seriesList(ctx)).series);
    expect(text.split('\n')[0]).toMatch(/^SERIES +STATE +SCHEDULE +START +PROMOTION +RUNS +IN PROGRESS +CHAMPION +NEXT RUN$/);
    expect(text.split('\n')[1]).toMatch(/^sepsis +active +cron 0 3 1 1 \* \(UTC\) +champion +auto +3 +run 3 \(RUNNING\) +v2 +- \(after run 3 ends\)$/);
    expect(seriesListText([])).toMatch(/^no series yet/);
  });

  it('shows runs, the champion history with reasons and per-site AUC over runs, withheld sites counted, not named', async () => {
    const text = seriesDetailText(await seriesDetail(ctx, 'sepsis'));
    expect(text).toContain('promotion: auto (gain >= +0.010, no site worse by > 0.050, >= 2 site(s))');
    expect(text).toMatch(/\n2 +sepsis-run2 +COMPLETED +2027-01-01T03:00:00.000Z +\S+ +operator:olivia +v1 +v2 +keep \(rule\)\n/);
    expect(text).toContain('kept v1 as champion over v2, by rule (run 2)\n    pooled AUC difference +0.020\n    its 95 % interval does not lie above 0\n');
    expect(text).toContain('promoted v2 (was v1), by operator:olivia (run 2)');
    expect(text).toMatch(/\nnorth +0\.800 \[0\.761, 0\.839\] +0\.820 \[0\.781, 0\.859\] Δ \+0\.030 \[\+0\.010, \+0\.050\]\n/);
    expect(text).toContain('run 2: 3 site(s) withheld (fewer than 10 patients');
    expect(text).not.toMatch(/\b(tiny|east|west)\b/);
  });
});
