/**
 * Issue 13, done-when: a study series over two real agent processes, with the coordinator in
 * this process so that its series clock can be moved (a ShiftedClock: real time plus an offset;
 * no sleeps). The clinics' data is rewritten between runs so that each run's outcome is known:
 * - run 1 trains on labels that are noise: its release is the series' first, and becomes
 *   champion (nothing to compare it with);
 * - run 2 warm-starts from that champion and trains on the true labels: a better challenger,
 *   promoted on the clinics' paired comparison;
 * - run 3 comes from an updated template (a non-varying field changed), so the clinics that
 *   approved the series are asked again and nothing is trained until they approve; it trains on
 *   labels inverted in the training split only (a clinic's coding error), a worse challenger,
 *   which is kept out; the champion stays.
 * Between runs 1 and 2 nobody approves anything: the series approval covers run 2.
 * Rollback is one call, recorded.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isHoldout, mulberry32 } from '@fedlhs/core';
import type { CoordinatorApp } from '@fedlhs/coordinator';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentCli, enrolAgent, startAgent, type AgentOptions } from '@fedlhs/tests';
import { afterAll, describe, expect, it } from 'vitest';
import { useWorkspace } from './helpers.js';
import { startInProcessCoordinator } from './in-process-coordinator.js';

const ws = useWorkspace();
const SEED = 7;
const HOLDOUT = 0.4;

type Labels = 'noise' | 'true' | 'inverted-training';

/** Writes a clinic's CSV: the learnable task, with its labels as `labels` says (the hold-out split keeps true labels unless all are noise). */
function writeClinic(path: string, seed: number, labels: Labels): void {
  writeLearnableCsv(path, { rows: 600, seed, features: 6 });
  if (labels === 'true') return;
  const noise = mulberry32(seed * 31 + 1);
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  const out = lines.map((line, i) => {
    if (i === 0) return line;
    const cells = line.split(',');
    const key = cells[0]!;
    const y = Number(cells[cells.length - 1]);
    const next = labels === 'noise' ? (noise() < 0.5 ? 1 : 0) : isHoldout(key, SEED, HOLDOUT) ? y : 1 - y;
    cells[cells.length - 1] = String(next);
    return cells.join(',');
  });
  writeFileSync(path, `${out.join('\n')}\n`);
}

function template(localEpochs: number): Record<string, unknown> {
  const study = learnableManifest({ rounds: 2, min: 2, max: 2, quorum: 2, roundSeconds: 300, evaluationSeconds: 300 }) as Record<string, unknown> & { training: Record<string, unknown>; data: Record<string, unknown> };
  delete study['name'];
  study.training = { ...study.training, optimizer: { name: 'adam', learningRate: 0.02 }, localEpochs };
  study.data = { ...study.data, holdoutFraction: HOLDOUT };
  study['seed'] = SEED;
  return {
    apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 'monthly-risk',
    schedule: { type: 'cron', expression: '0 0 1 * *', timezone: 'UTC' },
    start: 'champion',
    promotion: { rule: 'auto', minDelta: 0, maxSiteLoss: 0.05, minSites: 1 },
    study,
  };
}

/** The first instant of the next month after `ms` (UTC): when the monthly cron is next due. */
function nextMonth(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

let app: CoordinatorApp | undefined;
afterAll(async () => {
  await app?.shutdown();
});

describe('a study series runs on its schedule, warm-starts from its champion and promotes only a better challenger', () => {
  it('run 1 → champion; run 2 (no new approval, warm start) → promoted; run 3 (changed field) waits for approval, is worse and kept; rollback', async () => {
    const root = ws.dir();
    const c = await startInProcessCoordinator(root);
    app = c.app;
    const { clock, admin, handle, event, seen } = c;
    const coordinator = app.coordinator;

    /** What the coordinator knows of the series and its studies: printed when a wait runs out (a CI failure says where it stood). */
    const state = async (): Promise<string> => {
      const runs = await coordinator.store.listSeriesRuns('monthly-risk');
      const studies = await Promise.all(runs.map(async (r) => {
        const st = await coordinator.store.getStudy(r.studyId);
        const rounds = (await coordinator.store.listRounds(r.studyId)).map((x) => `${x.round}.${x.attempt}:${x.state}${x.reason === null ? '' : ` (${x.reason})`}`);
        return `run ${r.run} ${r.studyId} ${st?.state ?? '?'}${st?.reason == null ? '' : ` (${st.reason})`} rounds [${rounds.join(', ')}]`;
      }));
      const promotions = (await coordinator.store.listPromotions('monthly-risk')).map((p) => `${p.run}:${p.action} v${p.toVersion}`);
      return `${studies.join('; ')}; decisions [${promotions.join(', ')}]; series clock ${new Date(clock.now()).toISOString()}`;
    };
    /** `p`, or a failure naming `what` and the coordinator's state after `ms` (never a silent hang). */
    const within = async <T,>(what: string, p: Promise<T>, ms = 240_000): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => void state().then((s) => reject(new Error(`${what}: nothing after ${ms / 1000} s; ${s}`)), reject), ms);
      });
      try {
        return await Promise.race([p, expired]);
      } finally {
        clearTimeout(timer);
      }
    };
    const runStarted = async (run: number): Promise<{ studyId: string; manifest: Record<string, unknown> & { series: Record<string, unknown>; model: Record<string, unknown> } }> => {
      await within(`run ${run} to start`, event((e) => e.kind === 'series' && e.seriesName === 'monthly-risk' && e.run === run));
      const runs = (await coordinator.store.listSeriesRuns('monthly-risk')).filter((r) => r.run === run);
      expect(runs).toHaveLength(1);
      const study = (await coordinator.store.getStudy(runs[0]!.studyId))!;
      return { studyId: study.id, manifest: JSON.parse(study.manifestJson) };
    };
    const decided = async (run: number) => {
      for (;;) {
        // Events from now on: a decision emits one after it is recorded.
        const before = seen.length;
        const d = (await coordinator.store.listPromotions('monthly-risk')).find((p) => p.run === run);
        if (d !== undefined) return { ...d, evidence: JSON.parse(d.evidence) as { reasons: string[]; pooled?: { difference: number; interval: [number, number] } } };
        await within(`the decision on run ${run}`, event((e) => e.kind === 'series' && e.seriesName === 'monthly-risk' && seen.indexOf(e) >= before));
      }
    };
    const champion = async (): Promise<number | undefined> => (await coordinator.store.listReleaseAliases('monthly-risk')).find((a) => a.alias === 'champion')?.version;
    const trainTasks = async (studyId: string): Promise<number> => {
      let n = 0;
      for (const r of await coordinator.store.listRounds(studyId)) n += (await coordinator.store.listTasks(r.id)).filter((t) => t.kind === 'TRAIN').length;
      return n;
    };

    // Two clinics; their operators review before anything is trained (no auto-approve).
    const clinics = [['north', 1301], ['south', 1302]] as const;
    const agents = [];
    const options: AgentOptions[] = [];
    for (const [name, seed] of clinics) {
      mkdirSync(join(root, name), { recursive: true });
      writeClinic(join(root, name, 'data.csv'), seed, 'noise');
      const o: AgentOptions = { name, stateDir: join(root, `${name}-state`), dataPath: join(root, name, 'data.csv'), coordinator: `127.0.0.1:${app.grpcPort}`, autoApprove: false, env: { FEDLHS_BACKEND: 'cpu' } };
      await enrolAgent(handle, o);
      options.push(o);
      agents.push(ws.track(startAgent(o)));
    }

    // The series is created; nothing runs until the schedule says so.
    const created = await admin<{ name: string; templateSha256: string }>('POST', '/api/v1/series', template(2));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const t1 = created.body.templateSha256;
    expect((await coordinator.store.listSeriesRuns('monthly-risk'))).toEqual([]);

    // ---- run 1: due at the next month; the clinics approve the series once ----
    clock.advanceTo(nextMonth(clock.now()));
    const run1 = await runStarted(1);
    expect(run1.manifest.series).toMatchObject({ name: 'monthly-risk', run: 1, templateSha256: t1 });
    expect(run1.manifest.series['champion']).toBeUndefined();
    for (const a of agents) await a.waitForEvent('study.awaiting_approval', { studyId: run1.studyId }, 60_000);
    expect(await trainTasks(run1.studyId)).toBe(0);
    for (const o of options) {
      const approved = await agentCli(o, ['approve', t1]);
      expect(approved.stdout).toMatch(/^approved: series template of monthly-risk/);
    }
    await within('run 1 to end', coordinator.waitForStudy(run1.studyId));
    expect((await coordinator.store.getStudy(run1.studyId))?.state, await state()).toBe('COMPLETED');
    const d1 = await decided(1);
    expect(d1).toMatchObject({ action: 'promote', toVersion: 1, fromVersion: null, decidedBy: 'rule' });
    expect(await champion()).toBe(1);

    // ---- run 2: a month later, true labels; covered by the series approval; warm start ----
    for (const [name, seed] of clinics) writeClinic(join(root, name, 'data.csv'), seed, 'true');
    clock.advanceTo(nextMonth(clock.now()));
    const run2 = await runStarted(2);
    const v1 = (await coordinator.store.getRelease('monthly-risk', 1))!;
    const v1Weights = v1.files.find((f) => f.name === 'weights.bin')!.sha256;
    expect(run2.manifest.series['champion']).toEqual({ version: 1, weightsSha256: v1Weights });
    expect(run2.manifest.model['initialWeights']).toEqual({ release: { studyName: 'monthly-risk', version: 1, weightsSha256: v1Weights } });
    await within('run 2 to end', coordinator.waitForStudy(run2.studyId));
    expect((await coordinator.store.getStudy(run2.studyId))?.state, await state()).toBe('COMPLETED');
    // Nobody was asked again: no clinic waited for approval of run 2.
    for (const a of agents) expect(a.events('study.awaiting_approval', { studyId: run2.studyId })).toEqual([]);
    // Round 0 of run 2 is the champion's weights.
    const round0 = (await coordinator.store.listRounds(run2.studyId)).find((r) => r.round === 0);
    expect(round0?.reason ?? '').toBe('initial model: release monthly-risk v1 (warm start)');
    const d2 = await decided(2);
    expect(d2, JSON.stringify(d2.evidence)).toMatchObject({ action: 'promote', fromVersion: 1, toVersion: 2, decidedBy: 'rule' });
    expect(d2.evidence.pooled!.interval[0]).toBeGreaterThan(0);
    expect(await champion()).toBe(2);

    // ---- run 3: a changed template (localEpochs) → asked again; a worse challenger → kept ----
    for (const [name, seed] of clinics) writeClinic(join(root, name, 'data.csv'), seed, 'inverted-training');
    const updated = await admin<{ templateSha256: string }>('PUT', '/api/v1/series/monthly-risk', template(3));
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    const t2 = updated.body.templateSha256;
    expect(t2).not.toBe(t1);
    clock.advanceTo(nextMonth(clock.now()));
    const run3 = await runStarted(3);
    expect(run3.manifest.series).toMatchObject({ run: 3, templateSha256: t2, champion: { version: 2 } });
    for (const a of agents) {
      const waiting = await a.waitForEvent('study.awaiting_approval', { studyId: run3.studyId }, 60_000);
      expect(JSON.stringify(waiting)).toMatch(/localEpochs|template/);
    }
    expect(await trainTasks(run3.studyId)).toBe(0);
    for (const o of options) expect((await agentCli(o, ['approve', t2])).stdout).toMatch(/^approved: series template of monthly-risk/);
    await within('run 3 to end', coordinator.waitForStudy(run3.studyId));
    expect((await coordinator.store.getStudy(run3.studyId))?.state, await state()).toBe('COMPLETED');
    const d3 = await decided(3);
    expect(d3, JSON.stringify(d3.evidence)).toMatchObject({ action: 'keep', fromVersion: 2, toVersion: 3 });
    expect(d3.evidence.pooled!.difference).toBeLessThan(0);
    expect(await champion()).toBe(2);

    // ---- rollback is one call, recorded ----
    const rolled = await admin('POST', '/api/v1/series/monthly-risk/rollback');
    expect(rolled.status, JSON.stringify(rolled.body)).toBe(200);
    expect(await champion()).toBe(1);
    expect((await coordinator.store.listPromotions('monthly-risk')).at(-1)).toMatchObject({ action: 'rollback', fromVersion: 2, toVersion: 1 });
  }, 600_000);
});
