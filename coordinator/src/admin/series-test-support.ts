import { canonicalManifestJson, deriveSeriesRun, manifestHash, seriesTemplateHash, validateSeriesTemplate, type Performance } from '@fedlhs/core';
import { learnableManifest } from '@fedlhs/testing';
import type { CoordinatorStore, MetricRecord, ReleaseRecord, StudyRecord } from '../store.js';

/**
 * Test fixtures of the series views and routes (not used by the coordinator): a valid series
 * template, and a store filled with a series, its runs, releases, champion decisions and the
 * metrics rows of each released round.
 */

/** A valid template of series `name` (a flat-table study, yearly on 1 January). */
export function seriesTemplateFixture(name = 'sepsis', over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'StudySeries', name, description: 'yearly retraining',
    schedule: { type: 'cron', expression: '0 3 1 1 *' }, start: 'champion',
    promotion: { rule: 'auto', minDelta: 0.01, maxSiteLoss: 0.05, minSites: 2 },
    // A run's study: a manifest without its name, small cells under 10.
    study: (({ name: _, ...rest }) => ({ ...rest, data: { ...(rest['data'] as object), minCellCount: 10 } }))(learnableManifest({ rounds: 2, min: 2, max: 4, quorum: 2 })),
    ...over,
  };
}

const H = (c: string): string => c.repeat(64);
export const SITES = ['north', 'south', 'east', 'tiny', 'west'] as const;
const JAN = (year: number): number => Date.UTC(year, 0, 1, 3);

const perf = (n: number, cases: number, auc: number): Performance => ({ numExamples: n, positives: cases, auc, aucStandardError: 0.02, brier: 0.1, calibration: [] });
const comparison = (n: number, cases: number, difference: number, championAuc: number): string =>
  JSON.stringify({ studyName: 'sepsis', version: 1, n, cases, difference, standardError: 0.01, champion: perf(n, cases, championAuc) });

/**
 * Series "sepsis" (k = 10) with three runs: run 1 released v1 (first release, promoted by the
 * rule), run 2 released v2 compared with v1 (kept by the rule, then promoted by operator
 * olivia), run 3 still running. The released rounds hold test rows of north (400 patients, 80
 * cases), south (300/60), east (200/40) and tiny (30/3; stored as if before the small-cell rule
 * dropped such rows), and in run 2 comparison rows of all four and of west (which has no test row).
 * `running: false` ends run 3 (FAILED, without a release): a coordinator can then start on the store.
 * Run n is due on 1 January of `firstYear` + n − 1 (default 2026).
 */
export async function fillSeries(store: CoordinatorStore, options: { running?: boolean; firstYear?: number } = {}): Promise<void> {
  const running = options.running ?? true;
  const base = options.firstYear ?? 2026;
  await store.write(SITES.map((site) => ({
    op: 'node.insert' as const, n: { id: `node_${site}`, siteName: site, credentialHash: 'x', createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' },
  })), 'test.nodes');
  const t = validateSeriesTemplate(seriesTemplateFixture());
  const templateJson = JSON.stringify(t);
  await store.write([{ op: 'series.insert', s: { name: 'sepsis', template: templateJson, templateSha256: seriesTemplateHash(t), state: 'active', createdBy: 'olivia', createdAt: JAN(base) - 86_400_000, updatedAt: JAN(base) - 86_400_000 } }], 'test.series');
  for (const run of [1, 2, 3]) {
    const studyId = `sepsis-run${run}`;
    const manifest = deriveSeriesRun(t, run, JAN(base + run - 1), run === 1 ? undefined : { version: run - 1, weightsSha256: H(String(run + 3)) });
    const ended = run !== 3 || !running;
    const study: StudyRecord = {
      id: studyId, name: 'sepsis', manifestJson: canonicalManifestJson(manifest), manifestHash: manifestHash(manifest), state: run !== 3 ? 'COMPLETED' : running ? 'RUNNING' : 'FAILED',
      reason: ended && run === 3 ? 'no clinic was ready' : null, lastCommittedRound: run === 3 ? 0 : 2,
      strategyState: null, parameters: null, createdAt: JAN(base + run - 1), endedAt: ended ? JAN(base + run - 1) + 3_600_000 : null,
    };
    await store.write([
      { op: 'study.insert', s: study },
      { op: 'series.run', r: { seriesName: 'sepsis', run, studyId, scheduledAt: JAN(base + run - 1), startedAt: JAN(base + run - 1) + 1000, trigger: run === 2 ? 'operator:olivia' : 'schedule', championVersion: run === 1 ? null : run - 1, template: templateJson } },
    ], 'test.run');
    if (run === 3) continue;
    const roundId = await store.insertRound({ studyId, round: 2, attempt: 1, state: 'EVALUATING', reason: null, startedAt: JAN(base + run - 1), endedAt: null, participants: 4, checkpointPath: null, checkpointSha256: null });
    const auc = run === 1 ? 0.8 : 0.82;
    const row = (nodeId: string | null, phase: MetricRecord['phase'], numExamples: number, performance: string): MetricRecord => ({ roundId, nodeId, phase, numExamples, loss: 0.1, accuracy: 0.8, auc, performance });
    const metrics: MetricRecord[] = [
      row('node_north', 'test', 400, JSON.stringify(perf(400, 80, auc))),
      row('node_south', 'test', 300, JSON.stringify(perf(300, 60, auc - 0.02))),
      row('node_east', 'test', 200, JSON.stringify(perf(200, 40, auc + 0.01))),
      row('node_tiny', 'test', 30, JSON.stringify(perf(30, 3, 0.5))),
      row(null, 'test', 930, JSON.stringify(perf(930, 183, auc))),
    ];
    if (run === 2) {
      metrics.push(
        row('node_north', 'comparison', 400, comparison(400, 80, 0.03, 0.79)),
        row('node_south', 'comparison', 300, comparison(300, 60, -0.01, 0.81)),
        row('node_east', 'comparison', 200, comparison(200, 40, 0.02, 0.81)),
        row('node_tiny', 'comparison', 30, comparison(30, 3, -0.2, 0.7)),
        row('node_west', 'comparison', 50, comparison(50, 20, 0.1, 0.6)),
      );
    }
    await store.write([{ op: 'round.commit', id: roundId, checkpoint: { path: `blob:sha256:${H(String(run))}`, sha256: H(String(run)) }, strategyState: null, at: JAN(base + run - 1) + 2000, metrics }], 'test.commit');
    const release: ReleaseRecord = {
      studyName: 'sepsis', version: run, studyId, round: 2, manifestSha256: H('m'), envelope: '{}',
      files: [{ name: 'weights.bin', sha256: H(String(run + 4)), size: 10 }], createdAt: JAN(base + run - 1) + 3000, parentVersion: run === 1 ? null : run - 1,
    };
    await store.write([{ op: 'release.insert', r: release }], 'test.release');
  }
  const decision = (promote: boolean, reasons: string[]): string => JSON.stringify({ promote, reasons, tooSmall: ['tiny'], worse: [] });
  await store.write([
    { op: 'promotion.insert', p: { seriesName: 'sepsis', run: 1, fromVersion: null, toVersion: 1, action: 'promote', decidedBy: 'rule', evidence: decision(true, ['first release']), at: JAN(base) + 4000 } },
    { op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 1, setBy: 'rule', at: JAN(base) + 4000 },
  ], 'test.promote');
  await store.write([
    { op: 'promotion.insert', p: { seriesName: 'sepsis', run: 2, fromVersion: 1, toVersion: 2, action: 'keep', decidedBy: 'rule', evidence: decision(false, ['pooled AUC difference +0.020', 'its 95 % interval does not lie above 0']), at: JAN(base + 1) + 4000 } },
  ], 'test.keep');
  await store.write([
    { op: 'promotion.insert', p: { seriesName: 'sepsis', run: 2, fromVersion: 1, toVersion: 2, action: 'promote', decidedBy: 'operator:olivia', evidence: decision(false, ['pooled AUC difference +0.020']), at: JAN(base + 1) + 9000 } },
    { op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 2, setBy: 'olivia', at: JAN(base + 1) + 9000 },
  ], 'test.operator-promote');
}
