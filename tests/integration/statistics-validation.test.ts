import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EnrolResponse__Output, FeatureStatistics } from '@fedlhs/proto';
import { learnableFeatures, learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { RogueNode, coordinatorMain, enrolOverProtocol, enrolAgent, rejection, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

async function enrolRogue(c: CoordinatorHandle): Promise<EnrolResponse__Output> {
  const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'rogue', ttlSeconds: 600 })).body.token;
  return enrolOverProtocol(c.address, token, 'rogue');
}

interface Normalization {
  clinics?: number;
  features: { name: string; mean: number; std: number; source?: string }[];
}

describe('statistics reports are validated (protocol-level rogue client)', () => {
  it('rejects sum = sum of squares = 1e300 with INCONSISTENT_STATISTICS, records it, and trains on the honest clinics', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    for (const [i, name] of ['h1', 'h2', 'h3'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 90 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      ws.track(startAgent(o));
    }
    const creds = await enrolRogue(c);
    const rogue = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
    await rogue.connect();

    const base = learnableManifest({ name: 'stats-check', rounds: 1, min: 4, max: 4, quorum: 3 });
    const study = await startStudy(c, { ...base, data: { ...(base.data as Record<string, unknown>), normalization: 'federated-zscore' } });
    const task = await rogue.statisticsTask(1, study.id);
    // Plausible everywhere except x1, whose sums no 150 float32 values can produce.
    const features: FeatureStatistics[] = learnableFeatures().map((name) => ({
      name, count: 150, sum: name === 'x1' ? 1e300 : 0, sumOfSquares: name === 'x1' ? 1e300 : 150, missing: 0, suppressed: false, missingSuppressed: false, histogram: [], histogramMin: 0, histogramMax: 0,
    }));
    const refused = await rejection(rogue.reportStatistics({ taskId: task.taskId, studyId: study.id, round: 1, rows: 150, positives: 50, suppressed: false, features }));
    expect(refused.code).toBe('INVALID_ARGUMENT');
    expect(refused.reason).toBe('INCONSISTENT_STATISTICS');
    expect(refused.details).toBe('inconsistent statistics: feature x1: sum 1e+300 or sum of squares 1e+300 is beyond what 150 float32 values can produce');

    // The rogue's training task: it declines, so the round need not wait for its deadline.
    rogue.decline((await rogue.trainTask(1, study.id)).taskId);
    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state, JSON.stringify(detail.rounds)).toBe('COMPLETED');
    expect(detail.lastCommittedRound).toBe(1);
    const global = detail.metrics.find((m) => m.round === 1 && m.phase === 'evaluation' && m.nodeId === null)!;
    expect(Number.isFinite(global.loss)).toBe(true);

    const view = (await c.admin<{ rejectionsByReason: Record<string, number>; parameters: { normalization: Normalization }; normalization: { clinics: number; fallbackFeatures: unknown[] } }>('GET', `/api/v1/studies/${study.id}`)).body;
    expect(view.rejectionsByReason).toEqual({ INCONSISTENT_STATISTICS: 1 });
    // The normalisation comes from the three honest clinics (standard normal features).
    expect(view.normalization).toMatchObject({ clinics: 3, fallbackFeatures: [] });
    for (const f of view.parameters.normalization.features) {
      expect(Math.abs(f.mean), f.name).toBeLessThan(0.3);
      expect(f.std, f.name).toBeGreaterThan(0.8);
      expect(f.std, f.name).toBeLessThan(1.2);
    }
    const history = (await c.admin<{ contributions: { reasonCode: string | null; reason: string | null }[] }>('GET', `/api/v1/nodes/${creds.nodeId}`)).body;
    expect(history.contributions.map((x) => x.reasonCode)).toEqual(['INCONSISTENT_STATISTICS']);
    expect(history.contributions[0]!.reason).toMatch(/feature x1/);
    const logged = await c.proc.waitFor((l) => l.event === 'statistics.rejected', undefined, 'statistics.rejected log line');
    expect(logged).toMatchObject({ nodeId: creds.nodeId, reason: 'INCONSISTENT_STATISTICS' });
    rogue.close();

    // What left an honest clinic is in its audit log with the exact values sent, label counts included.
    const audit = readFileSync(join(ws.dir(), 'h1', 'state', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; outcome?: string; sent?: Record<string, unknown> });
    // Every entry that sent something holds it; outcome entries (abandoned, rejected) refer to an earlier one.
    for (const entry of audit.filter((e) => !/^(abandoned|rejected)/.test(e.outcome ?? ''))) expect(entry.sent, JSON.stringify(entry)).toBeDefined();
    const stats = audit.find((e) => e.event === 'statistics_sent' && e.outcome === 'accepted')!.sent!.statisticsReport as { rows: number; positives: number; features: { name: string; count: number; sum: number }[] };
    expect(stats.rows).toBeGreaterThan(100);
    expect(stats.positives).toBeGreaterThan(10);
    expect(stats.features.map((f) => f.name)).toEqual(learnableFeatures());
    const update = audit.find((e) => e.event === 'update_sent' && e.outcome === 'accepted')!.sent!.updateHeader as { numExamples: number; weights: { totalBytes: number; sha256: string } };
    expect(update.numExamples).toBe(stats.rows);
    expect(update.weights.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("excludes a feature withheld at every clinic when the manifest says so, and study show says so", async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    for (const [i, name] of ['s1', 's2', 's3'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      const csv = join(dir, 'data.csv');
      writeLearnableCsv(csv, { rows: 200, seed: 95 + i });
      // x6 is recorded for 5 patients per clinic only: every clinic withholds its statistics.
      const [header, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
      writeFileSync(csv, `${[header, ...lines.map((l, r) => (r < 5 ? l : l.split(',').map((v, col) => (col === 6 ? '' : v)).join(',')))].join('\n')}\n`);
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: csv, coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      ws.track(startAgent(o));
    }
    const base = learnableManifest({ name: 'stats-fallback', rounds: 1, min: 3, max: 3, quorum: 3 });
    const study = await startStudy(c, { ...base, data: { ...(base.data as Record<string, unknown>), normalization: 'federated-zscore', normalizationFallback: 'exclude' } });
    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state, JSON.stringify(detail.rounds)).toBe('COMPLETED');
    const fallback = await c.proc.waitFor((l) => l.event === 'statistics.fallback', undefined, 'statistics.fallback log line');
    expect(fallback).toMatchObject({ level: 40, fallback: 'exclude', features: [{ name: 'x6', source: 'excluded', withheldAt: 3 }] });
    const view = (await c.admin<{ normalization: { fallback: string; fallbackFeatures: unknown[] } }>('GET', `/api/v1/studies/${study.id}`)).body;
    expect(view.normalization).toMatchObject({ fallback: 'exclude', fallbackFeatures: [{ name: 'x6', source: 'excluded', withheldAt: 3 }] });
    const shown = await runCli(coordinatorMain, ['study', 'show', study.id], { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('normalisation fallback (data.normalizationFallback exclude): statistics withheld at every clinic (small cells) for\n  x6: excluded (constant 0 in the model)');
  });
});

