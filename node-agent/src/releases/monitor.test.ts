import { mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@fedlhs/model';
import { AgentState } from '../agent-state.js';
import { deployRelease } from './deploy.js';
import { exportFingerprint, ReleaseMonitor } from './monitor.js';
import { buildRelease, fakeClient, releaseKeyPair, writeKept, writeTestCsv } from './test-support.js';

const key = releaseKeyPair();

beforeAll(async () => {
  await initBackend('cpu');
});

function setup(rows: number) {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-monitor-'));
  const state = new AgentState(stateDir);
  const csv = join(stateDir, 'data.csv');
  writeTestCsv(csv, rows);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const fake = fakeClient({ releases: () => [], served: () => undefined });
  const monitor = new ReleaseMonitor({
    stateDir, state, client: fake.client, credential: 'c', pinnedPem: key.pinned.publicPem, coordinator: 'coord:1', log,
    data: { format: 'flat-table', path: csv, keyColumn: 'record_id', minCohort: 20 },
  });
  return { stateDir, state, csv, monitor, calls: fake.calls, lines };
}

describe('ReleaseMonitor', () => {
  it('reports the deployed release\'s performance on the hold-out split once per export, audited with exactly what was sent', async () => {
    const t = setup(400);
    expect(await t.monitor.tick()).toEqual([]); // nothing deployed
    writeKept(t.stateDir, buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey }));
    await deployRelease({ stateDir: t.stateDir, state: t.state, pinnedPem: key.pinned.publicPem, data: undefined, by: 'operator:t', coordinator: 'coord:1' }, 'sepsis', 1);

    const first = await t.monitor.tick();
    expect(first).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 1, outcome: 'sent' })]);
    expect(t.calls.reports).toHaveLength(1);
    const report = t.calls.reports[0]! as { studyName: string; version: number; exportFingerprint: string; performance: { numExamples: number; positives: number; auc: number; calibration: unknown[] } };
    expect(report).toMatchObject({ studyName: 'sepsis', version: 1, exportFingerprint: exportFingerprint(t.csv) });
    // The hold-out half of 400 rows; the weights are the ones the labels were drawn from.
    expect(report.performance.numExamples).toBeGreaterThan(150);
    expect(report.performance.numExamples).toBeLessThan(250);
    expect(report.performance.auc).toBeGreaterThan(0.75);
    expect(report.performance.calibration).toHaveLength(10);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_performance_sent');
    expect(audit.map((a) => a.outcome)).toEqual(['sending', 'accepted']);
    expect(audit[1]!.sent).toEqual({ releasePerformanceReport: report });

    // The same export: nothing measured or sent again.
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'unchanged' })]);
    expect(t.calls.reports).toHaveLength(1);

    // A refreshed export: measured and reported again, with the new fingerprint.
    writeTestCsv(t.csv, 500, 2);
    utimesSync(t.csv, new Date(), new Date(Date.now() + 5000));
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'sent' })]);
    expect(t.calls.reports).toHaveLength(2);
    expect((t.calls.reports[1] as { exportFingerprint: string }).exportFingerprint).not.toBe(report.exportFingerprint);
  });

  it('still reports figures under the study\'s minimum cell count, and says so in the log', async () => {
    const t = setup(12);
    writeKept(t.stateDir, buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey }));
    await deployRelease({ stateDir: t.stateDir, state: t.state, pinnedPem: key.pinned.publicPem, data: undefined, by: 'operator:t', coordinator: 'coord:1' }, 'sepsis', 1);
    const results = await t.monitor.tick();
    expect(results, JSON.stringify(results)).toEqual([expect.objectContaining({ outcome: 'sent' })]);
    expect(t.lines.filter((l) => l.event === 'release.performance_small_cells')).toHaveLength(1);
    expect(t.state.readAudit().filter((a) => a.event === 'release_performance_sent').at(-1)?.detail).toContain('under minCellCount 5');
  });
});
