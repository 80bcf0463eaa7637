import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalManifestJson, isFedlhsError, manifestHash, parseManifest, type StudyManifest } from '@fedlhs/core';
import { seriesList } from '../admin/series-views.js';
import type { Coordinator } from '../coordinator.js';
import { SqliteStore } from '../sqlite-store.js';
import type { StudyRecord } from '../store.js';
import type { WriteOp } from '../store/write-ops.js';
import { LogSink, ManualClock } from '../test-support.js';
import { validateAgentMessage } from '../grpc/validate.js';
import { runTemplateSha256 } from './data-trigger.js';
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
  apiVersion: 'fedlhs.v1', kind: 'Study', description: 'data series test',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 1, max: 3, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
  data: { featureSpec: 'flat-table/v1', features: ['x0', 'x1'], label: 'y', minCellCount: 5 },
  aggregation: { strategy: 'fedavg' },
};

const template = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 'sepsis', schedule: { type: 'data', newLabelled: 100 }, start: 'scratch', study: STUDY, ...over,
});

const T0 = Date.UTC(2026, 0, 15);

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-data-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'coordinator.db'));
  const clock = new ManualClock(T0);
  const sink = new LogSink();
  const log = pino({ level: 'debug' }, sink);
  const events = new EventEmitter();
  const started: { manifest: StudyManifest; study: StudyRecord }[] = [];
  let next = 1;
  const startStudy = async (text: string, _by: string, extras: { ops?: (s: StudyRecord) => WriteOp[]; recorded?: (s: StudyRecord) => void }) => {
    const m = parseManifest(text);
    const study: StudyRecord = {
      id: `${m.name}-${next++}`, name: m.name, manifestJson: canonicalManifestJson(m), manifestHash: manifestHash(m), state: 'RUNNING', reason: null, lastCommittedRound: 0,
      strategyState: null, parameters: null, createdAt: clock.now(), endedAt: null, modelSpec: null,
    };
    await store.write([{ op: 'study.insert', s: study }, ...(extras.ops?.(study) ?? [])], 'study.start');
    extras.recorded?.(study);
    started.push({ manifest: m, study });
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
  const runStarted = (run: number) =>
    new Promise<void>((resolve) => {
      const on = (e: { kind?: string; run?: number }) => {
        if (e.kind === 'series' && e.run === run) {
          events.off('change', on);
          resolve();
        }
      };
      events.on('change', on);
    });
  /** Marks a node as having taken part in a study (its approval, as a READY records it). */
  const tookPart = (nodeId: string, study: StudyRecord) => store.write([{ op: 'approval.record', studyId: study.id, nodeId, manifestSha256: study.manifestHash, at: clock.now() }], 'test');
  const lastRun = async () => (await store.listSeriesRuns('sepsis')).at(-1)!;
  /** A report from `nodeId` after the last run (overrides in `over`), then the scheduler's pass. */
  const report = async (nodeId: string, newLabelled: number, over: Partial<{ seriesName: string; templateSha256: string; afterRun: number; suppressed: boolean }> = {}) => {
    const last = await lastRun();
    await service.data.receive(nodeId, { seriesName: 'sepsis', templateSha256: runTemplateSha256(last), afterRun: last.run, newLabelled, suppressed: false, ...over });
    await scheduler.idle();
  };
  return { store, clock, sink, events, service, scheduler, started, runStarted, tookPart, report, lastRun };
}

describe('data-triggered series', () => {
  it('run 1 starts at creation; run 2 once the reports since run 1 reach newLabelled, only after run 1 ended and was decided', async () => {
    const { service, scheduler, started, runStarted, tookPart, report, store, sink, lastRun, clock } = await setup();
    await scheduler.start();
    const first = runStarted(1);
    await service.create(template(), 'alice');
    await first;
    await scheduler.idle();
    expect(await store.listSeriesRuns('sepsis')).toMatchObject([{ run: 1, trigger: 'data', scheduledAt: T0 }]);
    const run1 = started[0]!.study;
    await tookPart('n1', run1);
    await tookPart('n2', run1);

    // Reports during run 1 are kept, but nothing starts while it runs, even past N.
    await report('n1', 60);
    await report('n2', 50);
    expect(started).toHaveLength(1);
    expect(service.data.progress('sepsis', await lastRun(), 100)).toEqual({ afterRun: 1, reported: 110, needed: 100, clinics: 2, suppressed: 0 });

    // Run 1 ends (stopped: no release, nothing to decide), then run 2 starts.
    const second = runStarted(2);
    await store.setStudyState(run1.id, 'STOPPED', null, clock.now());
    scheduler.studyEnded(run1.id);
    await second;
    expect((await store.listSeriesRuns('sepsis')).map((r) => [r.run, r.trigger])).toEqual([[1, 'data'], [2, 'data']]);
    expect(sink.lines.find((l) => l.event === 'series.data_triggered')).toMatchObject({ seriesName: 'sepsis', afterRun: 1, reported: 110, needed: 100, clinics: 2 });

    // Reports reset per run: the old ones (after run 1) no longer count for run 3.
    const run2 = started[1]!.study;
    await store.setStudyState(run2.id, 'STOPPED', null, clock.now());
    scheduler.studyEnded(run2.id);
    await scheduler.idle();
    expect(service.data.progress('sepsis', await lastRun(), 100)).toMatchObject({ afterRun: 2, reported: 0, clinics: 0 });
    // Below N: nothing. A suppressed report counts 0. The report that brings the sum to N starts run 3.
    await report('n1', 40);
    await report('n2', 0, { suppressed: true });
    expect(started).toHaveLength(2);
    expect(service.data.progress('sepsis', await lastRun(), 100)).toEqual({ afterRun: 2, reported: 40, needed: 100, clinics: 2, suppressed: 1 });
    // The views show the progress in place of the next run time.
    const ctx = { coordinator: { store, nodes: { list: () => store.listNodes() }, series: service } as unknown as Coordinator };
    expect((await seriesList(ctx)).series[0]).toMatchObject({ schedule: 'data: 100 newly labelled patients', nextRunAt: null, nextRunNote: '40 of 100 newly labelled reported by 2 clinic(s) (1 suppressed)' });
    await report('n2', 59);
    expect(started).toHaveLength(2);
    const third = runStarted(3);
    await report('n2', 60);
    await third;
    expect(started).toHaveLength(3);
    expect(sink.lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('does not start the next run while the last release is undecided', async () => {
    const { service, scheduler, started, runStarted, tookPart, report, store, clock } = await setup();
    await scheduler.start();
    const first = runStarted(1);
    await service.create(template(), 'alice');
    await first;
    const run1 = started[0]!.study;
    await tookPart('n1', run1);
    await store.setStudyState(run1.id, 'COMPLETED', null, clock.now());
    // A release exists but its decision fails: the scheduler holds run 2 back and retries later.
    await store.write([{ op: 'release.insert', r: {
      studyName: 'sepsis', version: 1, studyId: run1.id, round: 1, manifestSha256: run1.manifestHash, envelope: '{}', createdAt: clock.now(), parentVersion: null,
      files: [{ name: 'weights.bin', sha256: '1'.repeat(64), size: 12 }],
    } }], 'test');
    const listPromotions = store.listPromotions.bind(store);
    let fail = true;
    store.listPromotions = async (name) => {
      if (fail) throw new Error('store unavailable');
      return listPromotions(name);
    };
    await report('n1', 500);
    expect(started).toHaveLength(1);
    fail = false;
    const second = runStarted(2);
    clock.advance(60_000);
    await second;
    expect(started).toHaveLength(2);
    expect((await store.listSeriesRuns('sepsis'))[1]).toMatchObject({ run: 2, trigger: 'data', championVersion: 1 });
  });

  it('ignores reports for unknown series, another template, another run, and from nodes that took no part', async () => {
    const { service, scheduler, started, runStarted, tookPart, report, store, sink, lastRun, clock } = await setup();
    await scheduler.start();
    const first = runStarted(1);
    await service.create(template(), 'alice');
    await first;
    const run1 = started[0]!.study;
    await tookPart('n1', run1);
    await store.setStudyState(run1.id, 'STOPPED', null, clock.now());
    scheduler.studyEnded(run1.id);
    await scheduler.idle();

    await report('n1', 500, { seriesName: 'other' });
    await report('n1', 500, { templateSha256: 'a'.repeat(64) });
    await report('n1', 500, { afterRun: 2 });
    await report('n3', 500); // n3 never took part in a run of the series
    expect(started).toHaveLength(1);
    expect(service.data.progress('sepsis', await lastRun(), 100)).toMatchObject({ reported: 0, clinics: 0 });
    const ignored = sink.lines.filter((l) => l.event === 'series.data_ignored').map((l) => [l.nodeId, l.reason, l.level]);
    expect(ignored).toEqual([['n1', 'unknown_series', 30], ['n1', 'other_template', 20], ['n1', 'other_run', 20], ['n3', 'not_a_participant', 30]]);
    // A cron series is not data-triggered: its reports are ignored too.
    await service.create({ ...template({ name: 'monthly', schedule: { type: 'cron', expression: '0 0 1 * *' } }) }, 'alice');
    await service.data.receive('n1', { seriesName: 'monthly', templateSha256: 'b'.repeat(64), afterRun: 1, newLabelled: 5, suppressed: false });
    expect(sink.lines.filter((l) => l.event === 'series.data_ignored').at(-1)).toMatchObject({ seriesName: 'monthly', reason: 'not_data_triggered' });
    // The participant's valid report does start run 2.
    const second = runStarted(2);
    await report('n1', 100);
    await second;
  });

  it('refuses malformed reports at the edge (INVALID_ARGUMENT naming the field)', () => {
    const ok = { seriesName: 'sepsis', templateSha256: 'a'.repeat(64), afterRun: 1, newLabelled: 10, suppressed: false };
    expect(() => validateAgentMessage({ seriesData: ok } as never)).not.toThrow();
    const fieldOf = (over: Record<string, unknown>): unknown => {
      try {
        validateAgentMessage({ seriesData: { ...ok, ...over } } as never);
        return undefined;
      } catch (err) {
        return isFedlhsError(err, 'INVALID_ARGUMENT') ? err.details?.field : err;
      }
    };
    expect(fieldOf({ seriesName: 'Not A Name!' })).toBe('SeriesDataReport.series_name');
    expect(fieldOf({ seriesName: '' })).toBe('SeriesDataReport.series_name');
    expect(fieldOf({ templateSha256: 'A'.repeat(64) })).toBe('SeriesDataReport.template_sha256');
    expect(fieldOf({ templateSha256: 'a'.repeat(63) })).toBe('SeriesDataReport.template_sha256');
    expect(fieldOf({ afterRun: 0 })).toBe('SeriesDataReport.after_run');
    expect(fieldOf({ newLabelled: 1_000_000_001 })).toBe('SeriesDataReport.new_labelled');
    expect(fieldOf({ newLabelled: 3, suppressed: true })).toBe('SeriesDataReport.new_labelled');
    expect(fieldOf({ newLabelled: 1_000_000_000 })).toBeUndefined();
  });
});
