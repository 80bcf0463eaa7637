import { mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { isTestPart, releasePolicy } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import { AgentState } from '../agent-state.js';
import { deployRelease } from './deploy.js';
import { exportFingerprint, ReleaseMonitor } from './monitor.js';
import { loadDeployedRelease } from './local-releases.js';
import { LocalData } from '../local-data.js';
import { buildRelease, fakeClient, releaseKeyPair, writeKept, writeTestCsv } from './test-support.js';

const key = releaseKeyPair();

beforeAll(async () => {
  await initBackend('cpu');
});

function setup(rows: number, o: { keyColumn?: string } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedlhs-monitor-'));
  const state = new AgentState(stateDir);
  const csv = join(stateDir, 'data.csv');
  writeTestCsv(csv, rows);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const fake = fakeClient({ releases: () => [], served: () => undefined });
  const data = { format: 'flat-table' as const, path: csv, keyColumn: o.keyColumn ?? 'record_id', minCohort: 20 };
  const monitor = new ReleaseMonitor({ stateDir, state, client: fake.client, credential: 'c', pinnedPem: key.pinned.publicPem, coordinator: 'coord:1', log, data });
  return { stateDir, state, csv, data, monitor, calls: fake.calls, lines };
}

async function deploySepsis(t: { stateDir: string; state: AgentState }): Promise<void> {
  writeKept(t.stateDir, buildRelease({ studyName: 'sepsis', version: 1, privateKey: key.privateKey }));
  await deployRelease({ stateDir: t.stateDir, state: t.state, pinnedPem: key.pinned.publicPem, data: undefined, by: 'operator:t', coordinator: 'coord:1' }, 'sepsis', 1);
}

/** Rewrites the export with other rows (seed) and a later modification time, so its fingerprint changes. */
function refresh(csv: string, rows: number, seed: number): void {
  writeTestCsv(csv, rows, seed);
  utimesSync(csv, new Date(), new Date(Date.now() + seed * 5000));
}

describe('ReleaseMonitor', () => {
  it('takes the export at its first look as the baseline, then reports the hold-out TEST part of each changed export once, audited with exactly what was sent', async () => {
    const t = setup(400);
    expect(await t.monitor.tick()).toEqual([]); // nothing deployed
    await deploySepsis(t);

    // The export is the one the study already evaluated: nothing sent.
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 1, outcome: 'baseline' })]);
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'unchanged' })]);
    expect(t.calls.reports).toHaveLength(0);
    expect(t.state.readAudit().filter((a) => a.event === 'release_performance_sent')).toEqual([]);

    refresh(t.csv, 400, 2);
    const first = await t.monitor.tick();
    expect(first).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 1, outcome: 'sent' })]);
    expect(t.calls.reports).toHaveLength(1);
    const report = t.calls.reports[0]! as { studyName: string; version: number; exportFingerprint: string; performance: { numExamples: number; positives: number; auc: number; calibration: unknown[] } };
    expect(report).toMatchObject({ studyName: 'sepsis', version: 1, exportFingerprint: exportFingerprint(t.csv) });
    // Exactly the test part of the hold-out (the validation part chose the round).
    const release = loadDeployedRelease(t.stateDir, 'sepsis', key.pinned.publicPem);
    const split = await new LocalData(t.data).require(release.manifest);
    const testKeys = split.holdout.keys.filter((k) => isTestPart(k, release.manifest.seed, releasePolicy(release.manifest).testFraction));
    expect(testKeys.length).toBeLessThan(split.holdout.rows - 40);
    expect(report.performance.numExamples).toBe(testKeys.length);
    expect(report.performance.auc).toBeGreaterThan(0.7);
    expect(report.performance.calibration).toHaveLength(10);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_performance_sent');
    expect(audit.map((a) => a.outcome)).toEqual(['sending', 'accepted']);
    expect(audit[1]!.sent).toEqual({ releasePerformanceReport: report });

    // The same export: nothing measured or sent again.
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'unchanged' })]);
    expect(t.calls.reports).toHaveLength(1);

    // A refreshed export: measured and reported again, with the new fingerprint.
    refresh(t.csv, 500, 3);
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'sent' })]);
    expect(t.calls.reports).toHaveLength(2);
    expect((t.calls.reports[1] as { exportFingerprint: string }).exportFingerprint).not.toBe(report.exportFingerprint);
  });

  it('sends nothing under the study\'s minimum cell count: a warning, and an audit entry with nothing sent', async () => {
    const t = setup(40);
    await deploySepsis(t);
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'baseline' })]);
    refresh(t.csv, 24, 2);
    const results = await t.monitor.tick();
    expect(results, JSON.stringify(results)).toEqual([expect.objectContaining({ outcome: 'small' })]);
    expect(t.calls.reports).toHaveLength(0);
    const warned = t.lines.filter((l) => l.event === 'release.performance_small_cells');
    expect(warned).toEqual([expect.objectContaining({ level: 40, studyName: 'sepsis', version: 1, minCellCount: 5 })]);
    const audit = t.state.readAudit().filter((a) => a.event === 'release_performance_sent');
    expect(audit).toEqual([expect.objectContaining({ outcome: 'not sent (small cells)', detail: expect.stringContaining('nothing sent') })]);
    expect(audit[0]!.sent).toBeUndefined();
    expect(audit[0]!.numExamples).toBeUndefined();
    // Measured for this export: not again until it changes.
    expect(await t.monitor.tick()).toEqual([expect.objectContaining({ outcome: 'unchanged' })]);
  });

  it('refuses, with one warning, to monitor a flat table without data.keyColumn (row numbers move)', async () => {
    const t = setup(400, { keyColumn: '' });
    await deploySepsis(t);
    for (let i = 0; i < 3; i++) {
      expect(await t.monitor.tick()).toEqual([expect.objectContaining({ studyName: 'sepsis', version: 1, outcome: 'refused' })]);
      refresh(t.csv, 400, i + 2);
    }
    expect(t.calls.reports).toHaveLength(0);
    const warned = t.lines.filter((l) => l.event === 'release.monitor_unkeyed');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, msg: expect.stringContaining('set data.keyColumn') });
  });
});
