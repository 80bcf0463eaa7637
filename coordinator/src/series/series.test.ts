import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalManifestJson, isFedlhsError, manifestHash, parseManifest, type Performance, type StudyManifest } from '@fedlhs/core';
import { SqliteStore } from '../sqlite-store.js';
import type { MetricRecord, StudyRecord, TaskRecord } from '../store.js';
import { LogSink, ManualClock } from '../test-support.js';
import { toWireStudy } from '../wire.js';
import { SeriesDecider } from './decide.js';
import { SeriesScheduler } from './scheduler.js';
import { SeriesService } from './service.js';

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const STUDY = {
  apiVersion: 'fedlhs.v1', kind: 'Study', description: 'series test',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 1, max: 3, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
  data: { featureSpec: 'flat-table/v1', features: ['x0', 'x1'], label: 'y', minCellCount: 5 },
  aggregation: { strategy: 'fedavg' },
};

/** Monthly on the 1st, 00:00 UTC. */
const template = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 'sepsis', schedule: { type: 'cron', expression: '0 0 1 * *' }, start: 'champion',
  promotion: { rule: 'auto', minDelta: 0, maxSiteLoss: 0.05, minSites: 1 }, study: STUDY, ...over,
});

const T0 = Date.UTC(2026, 0, 15);
const at = (month: number, day = 1): number => Date.UTC(2026, month, day);
const DAY = 86_400_000;
/** A time for store writes in tests that do not care which. */
const clock0 = (): number => T0;

const perf = (auc: number): Performance => ({ numExamples: 200, positives: 80, auc, brier: 0.2, calibration: [] });

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'coordinator.db'));
  const clock = new ManualClock(T0);
  const sink = new LogSink();
  const log = pino(sink);
  const events = new EventEmitter();
  const started: { manifest: StudyManifest; by: string; study: StudyRecord }[] = [];
  let next = 1;
  // The study start as studies.ts does it, minus the model: the study and the extras' ops in one unit.
  const startStudy = async (text: string, by: string, extras: { ops?: (s: StudyRecord) => import('../store/write-ops.js').WriteOp[]; recorded?: (s: StudyRecord) => void }) => {
    const m = parseManifest(text);
    const study: StudyRecord = {
      id: `${m.name}-${next++}`, name: m.name, manifestJson: canonicalManifestJson(m), manifestHash: manifestHash(m), state: 'RUNNING', reason: null, lastCommittedRound: 0,
      strategyState: null, parameters: null, createdAt: clock.now(), endedAt: null, modelSpec: null,
    };
    await store.write([{ op: 'study.insert', s: study }, ...(extras.ops?.(study) ?? [])], 'study.start');
    extras.recorded?.(study);
    started.push({ manifest: m, by, study });
    return study;
  };
  const service = new SeriesService({ store, log, now: () => clock.now(), events, startStudy });
  const decider = new SeriesDecider({ store, log, now: () => clock.now(), events, lock: (name, fn) => service.locked(name, fn) });
  const scheduler = new SeriesScheduler({ store, service, decider, clock, log, events });
  for (const [id, siteName] of [['n1', 'site-a'], ['n2', 'site-b'], ['n3', 'site-c']] as const) {
    await store.write([{ op: 'node.insert', n: { id, siteName, credentialHash: `h-${id}`, createdAt: 1, revokedAt: null, lastSeenAt: null, agentVersion: 'a', trainingBackend: 'cpu' } }], 'test');
  }
  closers.push(async () => {
    await scheduler.stop();
    service.stop();
    await store.close();
  });

  /** Resolves when run `run` of `name` has started (the service's 'change' event). */
  const runStarted = (run: number, name = 'sepsis') =>
    new Promise<void>((resolve) => {
      const on = (e: { kind?: string; seriesName?: string; run?: number }) => {
        if (e.kind === 'series' && e.seriesName === name && e.run === run) {
          events.off('change', on);
          resolve();
        }
      };
      events.on('change', on);
    });
  /** Moves the clock and waits for the scheduler's pass it triggered. */
  const advanceTo = async (t: number) => {
    clock.advance(t - clock.now());
    await scheduler.idle();
  };
  /** Ends a run's study (as the runner would) and tells the scheduler, as the coordinator does after release and decision. */
  const end = async (study: StudyRecord, state: 'COMPLETED' | 'FAILED' = 'COMPLETED') => {
    await store.setStudyState(study.id, state, null, clock.now());
  };
  /**
   * Releases a COMPLETED run as version `version`: round 1 committed, EVALUATE accepted at n1-n3,
   * test rows and the given comparison rows (with the champion `champion`).
   */
  const release = async (study: StudyRecord, version: number, comparisons: { nodeId: string; difference: number; standardError: number; cases?: number }[], champion?: number) => {
    await end(study);
    const roundId = await store.insertRound({ studyId: study.id, round: 1, attempt: 1, state: 'COMMITTED', reason: null, startedAt: 1, endedAt: 2, participants: 3, checkpointPath: 'x', checkpointSha256: 'c'.repeat(64) });
    const tasks: TaskRecord[] = ['n1', 'n2', 'n3'].map((nodeId) => ({ id: `${study.id}-e-${nodeId}`, roundId, studyId: study.id, round: 1, attempt: 1, nodeId, kind: 'EVALUATE', state: 'ASSIGNED', detail: null, modelSha256: 'c'.repeat(64), deadline: 9, createdAt: 1, endedAt: null }));
    const rows: MetricRecord[] = [
      ...['n1', 'n2', 'n3'].map((nodeId): MetricRecord => ({ roundId, nodeId, phase: 'test', numExamples: 200, loss: 0.5, accuracy: 0.7, auc: 0.8, performance: JSON.stringify(perf(0.8)) })),
      ...comparisons.map((c): MetricRecord => ({
        roundId, nodeId: c.nodeId, phase: 'comparison', numExamples: 200, loss: 0, accuracy: 0, auc: undefined,
        performance: JSON.stringify({ studyName: 'sepsis', version: champion ?? 1, n: 200, cases: c.cases ?? 80, difference: c.difference, standardError: c.standardError, champion: perf(0.75) }),
      })),
    ];
    await store.write([{ op: 'task.insert', tasks }, ...tasks.map((x) => ({ op: 'task.end' as const, id: x.id, to: 'ACCEPTED' as const, detail: null, at: 2 })), { op: 'metrics.insert', metrics: rows }], 'test');
    await store.write([{ op: 'release.insert', r: {
      studyName: 'sepsis', version, studyId: study.id, round: 1, manifestSha256: study.manifestHash, envelope: '{}', createdAt: clock.now(), parentVersion: version > 1 ? version - 1 : null,
      files: [{ name: 'weights.bin', sha256: String(version).repeat(64).slice(0, 64), size: 12 }],
    } }], 'test');
  };
  return { store, clock, sink, events, service, decider, scheduler, started, runStarted, advanceTo, end, release };
}

const codeOf = (p: Promise<unknown>): Promise<string | undefined> => p.then(() => undefined, (err: unknown) => (isFedlhsError(err) ? err.code : String(err)));

describe('SeriesService.create', () => {
  it('validates, stores with its hash and audits; refuses bad templates loudly', async () => {
    const { service, store, events } = await setup();
    const changes: unknown[] = [];
    events.on('change', (e) => changes.push(e));
    const s = await service.create(template(), 'alice');
    expect(s).toMatchObject({ name: 'sepsis', state: 'active', createdBy: 'alice', createdAt: T0 });
    expect(s.templateSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.getSeries('sepsis')).toMatchObject({ templateSha256: s.templateSha256, template: s.template });
    expect((await store.listAdminActions(10)).find((a) => a.action === 'series.create')).toMatchObject({ operator: 'alice', target: 'sepsis' });
    expect(changes).toEqual([{ kind: 'series', seriesName: 'sepsis' }]);
    expect(await codeOf(service.create(template(), 'alice'))).toBe('SERIES_EXISTS');

    const bad = await service.create(template({ name: 'bad', schedule: { type: 'cron', expression: 'every tuesday' } }), 'alice').catch((e: unknown) => e as Error & { code: string });
    expect(bad).toMatchObject({ code: 'MANIFEST_INVALID' });
    expect((bad as Error).message).toContain('schedule.expression');
    expect(await store.listSeries()).toHaveLength(1);
  });
});

describe('SeriesScheduler', () => {
  it('starts run 1 at the cron time, and run 2 only once run 1 ended and the clock reached the next time', async () => {
    const { service, scheduler, started, runStarted, advanceTo, end, store, sink } = await setup();
    await service.create(template(), 'alice');
    await scheduler.start();
    await advanceTo(at(1) - 1);
    expect(started).toHaveLength(0);
    const first = runStarted(1);
    await advanceTo(at(1));
    await first;
    expect(started).toHaveLength(1);
    expect(started[0]!.manifest.series).toMatchObject({ name: 'sepsis', run: 1 });
    expect(started[0]!.manifest.series!.champion).toBeUndefined();
    expect(started[0]!.by).toBe('series sepsis');
    expect(await store.listSeriesRuns('sepsis')).toMatchObject([{ run: 1, scheduledAt: at(1), trigger: 'schedule', championVersion: null, studyId: started[0]!.study.id }]);
    // Announced with the run's template.
    const series = (await store.getSeries('sepsis'))!;
    expect(toWireStudy(started[0]!.study)).toMatchObject({ seriesTemplateJson: series.template, seriesTemplateSha256: series.templateSha256 });

    // The next time comes while run 1 still runs: nothing starts.
    await advanceTo(at(2) + DAY);
    // Another study's end wakes the scheduler too: it still waits.
    scheduler.studyEnded('another-study');
    await scheduler.idle();
    expect(started).toHaveLength(1);
    // Run 1 ends after the time: run 2 starts at once, for that time, without a missed warning.
    const second = runStarted(2);
    await end(started[0]!.study, 'FAILED');
    scheduler.studyEnded(started[0]!.study.id);
    await second;
    expect((await store.listSeriesRuns('sepsis')).map((r) => [r.run, r.scheduledAt])).toEqual([[1, at(1)], [2, at(2)]]);

    // Run 2 ends before the next time: run 3 waits for the clock.
    await end(started[1]!.study, 'FAILED');
    scheduler.studyEnded(started[1]!.study.id);
    await scheduler.idle();
    expect(started).toHaveLength(2);
    const third = runStarted(3);
    await advanceTo(at(3));
    await third;
    expect(started).toHaveLength(3);
    // The scheduler itself waited for each run's end (the service's refusal was never needed).
    expect(sink.lines.filter((l) => l.level as number >= 40)).toEqual([]);
  });

  it('waits for a completed run\'s release and its decision before the next run (and run-now refuses meanwhile)', async () => {
    const { service, scheduler, started, runStarted, advanceTo, end, release, store, sink } = await setup();
    await service.create(template(), 'alice');
    await scheduler.start();
    const first = runStarted(1);
    await advanceTo(at(1));
    await first;
    // Run 1 completes, but its release is not built yet (a build failing and retried).
    await end(started[0]!.study);
    scheduler.studyEnded(started[0]!.study.id);
    await advanceTo(at(2) + DAY);
    expect(started).toHaveLength(1);
    expect(sink.lines.filter((l) => l.event === 'series.waiting_for_release')).toHaveLength(1);
    expect(await codeOf(service.runNow('sepsis', 'bob'))).toBe('SERIES_BUSY');
    // The release arrives and is decided (the first: champion); then run 2 starts, compared with it.
    await store.setStudyState(started[0]!.study.id, 'RUNNING', null, clock0());
    const second = runStarted(2);
    await release(started[0]!.study, 1, []);
    scheduler.studyEnded(started[0]!.study.id);
    await second;
    expect(started[1]!.manifest.series!.champion?.version).toBe(1);
  });

  it('starts one run for the latest of several missed times and warns series.missed', async () => {
    const { service, scheduler, started, runStarted, advanceTo, sink, store } = await setup();
    await service.create(template(), 'alice');
    // The coordinator was down from before Feb 1 until mid-April.
    const run = runStarted(1);
    await advanceTo(at(3, 15));
    await scheduler.start();
    await run;
    expect(started).toHaveLength(1);
    expect((await store.listSeriesRuns('sepsis'))[0]!.scheduledAt).toBe(at(3));
    expect(sink.lines.find((l) => l.event === 'series.missed')).toMatchObject({ level: 40, seriesName: 'sepsis', skipped: 2, runAt: new Date(at(3)).toISOString() });
  });

  it('does not run paused series, and a storage fault does not stop it', async () => {
    const { service, scheduler, started, runStarted, advanceTo, store, sink } = await setup();
    await service.create(template(), 'alice');
    await service.setState('sepsis', 'paused', 'bob');
    await scheduler.start();
    await advanceTo(at(2));
    expect(started).toHaveLength(0);
    // A storage fault on the next look: logged, retried a minute later.
    const listSeries = store.listSeries.bind(store);
    let fail = true;
    store.listSeries = async () => {
      if (fail) {
        fail = false;
        throw new Error('disk on fire');
      }
      return listSeries();
    };
    await service.setState('sepsis', 'active', 'bob');
    await scheduler.idle();
    expect(sink.lines.find((l) => l.event === 'series.scheduler_failed')).toMatchObject({ level: 40 });
    expect(started).toHaveLength(0);
    // Resumed after the February time: that time passed while paused, so it is not a missed run;
    // the next run is the next time after the resume.
    await advanceTo(at(2) + 60_000);
    expect(started).toHaveLength(0);
    const run = runStarted(1);
    await advanceTo(at(3));
    await run;
    expect((await store.listSeriesRuns('sepsis'))[0]!.scheduledAt).toBe(at(3));
    expect(sink.lines.filter((l) => l.event === 'series.missed')).toEqual([]);
  });
});

describe('SeriesService runs and champions', () => {
  it('runNow refuses while a run is in progress, and derives with the champion (series.champion, initial weights)', async () => {
    const { service, started, store, release, decider } = await setup();
    await service.create(template(), 'alice');
    const r1 = await service.runNow('sepsis', 'bob');
    expect(r1).toMatchObject({ run: 1, trigger: 'operator:bob', championVersion: null });
    expect(started[0]!.by).toBe('bob');
    expect((await store.listAdminActions(10)).find((a) => a.action === 'series.run-now')).toMatchObject({ operator: 'bob', target: 'sepsis' });
    const refused = await service.runNow('sepsis', 'bob').catch((e: unknown) => e as Error & { code: string });
    expect(refused).toMatchObject({ code: 'SERIES_BUSY' });
    expect((refused as Error).message).toContain('still running');

    // The first release becomes champion; run 2 is compared with it and starts from it.
    await release(started[0]!.study, 1, []);
    expect(await decider.decide(started[0]!.study.id)).toBe(true);
    const r2 = await service.runNow('sepsis', 'bob');
    expect(r2.championVersion).toBe(1);
    const m = started[1]!.manifest;
    const weights = '1'.repeat(64);
    expect(m.series).toMatchObject({ run: 2, champion: { version: 1, weightsSha256: weights } });
    expect(m.model.initialWeights).toEqual({ release: { studyName: 'sepsis', version: 1, weightsSha256: weights } });
    expect(await codeOf(service.runNow('nope', 'bob'))).toBe('NOT_FOUND');
  });

  it('promotes the first release, then promotes or keeps by the rule from the stored comparisons', async () => {
    const { service, started, store, release, decider, sink } = await setup();
    await service.create(template(), 'alice');
    await service.runNow('sepsis', 'op');
    await release(started[0]!.study, 1, []);
    await decider.decide(started[0]!.study.id);
    let promotions = await store.listPromotions('sepsis');
    expect(promotions).toMatchObject([{ run: 1, fromVersion: null, toVersion: 1, action: 'promote', decidedBy: 'rule' }]);
    expect(JSON.parse(promotions[0]!.evidence).reasons[0]).toContain('first release of the series');
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version).toBe(1);

    // Run 2: better at both sites that compared; site-c evaluated but sent no comparison.
    await service.runNow('sepsis', 'op');
    await release(started[1]!.study, 2, [{ nodeId: 'n1', difference: 0.05, standardError: 0.01 }, { nodeId: 'n2', difference: 0.04, standardError: 0.015 }], 1);
    await decider.decide(started[1]!.study.id);
    await decider.decide(started[1]!.study.id); // idempotent
    promotions = await store.listPromotions('sepsis');
    expect(promotions).toHaveLength(2);
    expect(promotions[1]).toMatchObject({ run: 2, fromVersion: 1, toVersion: 2, action: 'promote' });
    const evidence = JSON.parse(promotions[1]!.evidence);
    expect(evidence).toMatchObject({ promote: true, champion: 1, challenger: 2, missing: ['site-c'] });
    expect(evidence.sites.map((s: { siteName: string; challengerAuc: number; championAuc: number }) => [s.siteName, s.challengerAuc, s.championAuc])).toEqual([['site-a', 0.8, 0.75], ['site-b', 0.8, 0.75]]);
    expect(evidence.reasons).toContain('no comparison from: site-c');
    expect(sink.lines.find((l) => l.event === 'series.promoted' && l.run === 2)).toMatchObject({ version: 2 });

    // Run 3: no clear gain, one site worse beyond maxSiteLoss: kept.
    await service.runNow('sepsis', 'op');
    await release(started[2]!.study, 3, [{ nodeId: 'n1', difference: 0.02, standardError: 0.02 }, { nodeId: 'n2', difference: -0.08, standardError: 0.03 }, { nodeId: 'n3', difference: 0.01, standardError: 0.02 }], 2);
    await decider.decide(started[2]!.study.id);
    promotions = await store.listPromotions('sepsis');
    expect(promotions[2]).toMatchObject({ run: 3, fromVersion: 2, toVersion: 3, action: 'keep' });
    expect(JSON.parse(promotions[2]!.evidence)).toMatchObject({ promote: false, worse: ['site-b'], missing: [] });
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version).toBe(2);
    expect(sink.lines.find((l) => l.event === 'series.kept')).toMatchObject({ run: 3, version: 3, champion: 2 });
    expect((await store.listAdminActions(20)).filter((a) => a.operator === 'rule').map((a) => a.action).sort()).toEqual(['series.keep', 'series.promote', 'series.promote']);
    const views = await service.runViews('sepsis');
    expect(views.map((v) => [v.run, v.studyState, v.releasedVersion, v.decision?.action])).toEqual([[1, 'COMPLETED', 1, 'promote'], [2, 'COMPLETED', 2, 'promote'], [3, 'COMPLETED', 3, 'keep']]);

    // An operator promotes the kept release: recorded with the run's evidence.
    const p = await service.promote('sepsis', 3, 'carol');
    expect(p).toMatchObject({ run: 3, fromVersion: 2, toVersion: 3, action: 'promote', decidedBy: 'operator:carol' });
    const pe = JSON.parse(p.evidence);
    expect(pe.reasons[0]).toBe('promoted by operator carol');
    expect(pe).toMatchObject({ worse: ['site-b'], earlierAction: 'keep' });
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')).toMatchObject({ version: 3, setBy: 'carol' });
    expect(await codeOf(service.promote('sepsis', 3, 'carol'))).toBe('CHAMPION_UNCHANGED');
    expect(await codeOf(service.promote('sepsis', 9, 'carol'))).toBe('NOT_FOUND');

    // Rollback: back to v2, then to v1, then nothing earlier.
    expect(await service.rollback('sepsis', 'dave')).toMatchObject({ action: 'rollback', fromVersion: 3, toVersion: 2, decidedBy: 'operator:dave' });
    expect(await service.rollback('sepsis', 'dave')).toMatchObject({ fromVersion: 2, toVersion: 1 });
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version).toBe(1);
    expect(await codeOf(service.rollback('sepsis', 'dave'))).toBe('CHAMPION_UNCHANGED');
    expect((await store.listAdminActions(50)).filter((a) => a.action === 'series.rollback').map((a) => a.detail)).toEqual(expect.arrayContaining(['champion v2 (was v3)', 'champion v1 (was v2)']));
    // The alias moved outside the series (`release alias`): rollback goes to the series' own last
    // champion, saying so, never "from v3 to v3".
    await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 3, setBy: 'erin', at: 9_999 }], 'release.alias');
    const back = await service.rollback('sepsis', 'dave');
    expect(back).toMatchObject({ fromVersion: 3, toVersion: 1 });
    expect(JSON.parse(back.evidence).reasons[0]).toMatch(/from v3 to v1, the champion before it \(v3 was made champion outside the series' decisions\)/);
  });

  it('keeps under the operator rule, and names unreadable comparisons', async () => {
    const { service, started, store, release, decider } = await setup();
    await service.create(template({ promotion: { rule: 'operator' } }), 'alice');
    await service.runNow('sepsis', 'op');
    await release(started[0]!.study, 1, []);
    await decider.decide(started[0]!.study.id);
    await service.runNow('sepsis', 'op');
    // n2 compared another champion (version 7): named, not used.
    await release(started[1]!.study, 2, [{ nodeId: 'n1', difference: 0.05, standardError: 0.01 }, { nodeId: 'n3', difference: 0.05, standardError: 0.01 }], 1);
    await store.write([{ op: 'metrics.insert', metrics: [{ roundId: (await store.listRounds(started[1]!.study.id))[0]!.id, nodeId: 'n2', phase: 'comparison', numExamples: 1, loss: 0, accuracy: 0, performance: '{"version":7}' }] }], 'test');
    await decider.decide(started[1]!.study.id);
    const last = (await store.listPromotions('sepsis')).at(-1)!;
    expect(last).toMatchObject({ action: 'keep', toVersion: 2 });
    const evidence = JSON.parse(last.evidence);
    expect(evidence.unreadable).toEqual(['site-b']);
    expect(evidence.reasons).toContain('the template leaves promotion to an operator');
  });

  it('never interleaves the rule\'s decision with an operator\'s rollback: each sees the champion the other left', async () => {
    const { service, decider, started, store, release } = await setup();
    await service.create(template(), 'alice');
    for (const [run, version] of [[1, 1], [2, 2]] as const) {
      await service.runNow('sepsis', 'bob');
      await release(started[run - 1]!.study, version, run === 1 ? [] : [{ nodeId: 'n1', difference: 0.1, standardError: 0.01 }, { nodeId: 'n2', difference: 0.1, standardError: 0.01 }], 1);
      await decider.decide(started[run - 1]!.study.id);
    }
    expect((await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version).toBe(2);
    // Run 3 (compared with v2) is better; its decision and a rollback to v1 race.
    await service.runNow('sepsis', 'bob');
    await release(started[2]!.study, 3, [{ nodeId: 'n1', difference: 0.1, standardError: 0.01 }, { nodeId: 'n2', difference: 0.1, standardError: 0.01 }], 2);
    await Promise.all([service.rollback('sepsis', 'dave'), decider.decide(started[2]!.study.id)]);
    const history = await store.listPromotions('sepsis');
    // Whichever went first, the other saw its result: the rollback recorded v2 → v1, and the
    // decision knew the champion had changed during the run (no silent undo of the rollback).
    expect(history.find((p) => p.action === 'rollback')).toMatchObject({ fromVersion: 2, toVersion: 1 });
    const decision = history.find((p) => p.run === 3)!;
    const champion = (await store.listReleaseAliases('sepsis')).find((a) => a.alias === 'champion')?.version;
    if (decision.id < history.find((p) => p.action === 'rollback')!.id) {
      expect(decision).toMatchObject({ action: 'promote', fromVersion: 2 });
      expect(champion).toBe(1);
    } else {
      expect(decision).toMatchObject({ action: 'keep', fromVersion: 1 });
      expect(JSON.parse(decision.evidence).reasons.join(' ')).toMatch(/the champion changed from v2 to v1 during the run/);
      expect(champion).toBe(1);
    }
  });

  it('a failed decision is loud, holds the next run back, and is made at the next start', async () => {
    const { service, started, store, release, decider, scheduler, sink, runStarted, advanceTo } = await setup();
    await service.create(template(), 'alice');
    await service.runNow('sepsis', 'op');
    await release(started[0]!.study, 1, []);
    const listPromotions = store.listPromotions.bind(store);
    let fail = true;
    store.listPromotions = async (name) => {
      if (fail) throw new Error('store unavailable');
      return listPromotions(name);
    };
    expect(await decider.decide(started[0]!.study.id)).toBe(false);
    expect(sink.lines.find((l) => l.event === 'series.decision_failed')).toMatchObject({ level: 40, studyId: started[0]!.study.id });
    // The scheduler does not start run 2 on an undecided release, even when it is due.
    await scheduler.start();
    await advanceTo(at(1));
    expect(started).toHaveLength(1);
    fail = false;
    const run2 = runStarted(2);
    await advanceTo(at(1) + 60_000);
    await run2;
    expect(await store.listPromotions('sepsis')).toMatchObject([{ run: 1, action: 'promote', toVersion: 1 }]);
    expect((await store.listSeriesRuns('sepsis'))[1]).toMatchObject({ run: 2, championVersion: 1 });
  });
});
