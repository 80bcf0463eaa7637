import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import { CheckpointStore } from '../checkpoints.js';
import { CoordinatorMetrics } from '../metrics.js';
import { SessionRegistry } from '../sessions.js';
import { SqliteStore } from '../sqlite-store.js';
import { Studies, type InitialModelBuilder } from '../studies.js';
import { LogSink } from '../test-support.js';
import { toWireStudy } from '../wire.js';
import { SeriesService } from './service.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const STUDY = {
  apiVersion: 'fedlhs.v1', kind: 'Study',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'dense', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 8 },
  rounds: 1, clients: { min: 2, max: 2, quorum: 2 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
  data: { featureSpec: 'flat-table/v1', features: ['x0', 'x1'], label: 'y' },
  aggregation: { strategy: 'fedavg' },
};
const TEMPLATE = { apiVersion: 'fedlhs.v1', kind: 'StudySeries', name: 'sepsis', schedule: { type: 'cron', expression: '0 0 1 1 *' }, start: 'champion', study: STUDY };

/** Real Studies (the operators' start path) under the series service; the model is 3 zeros. */
function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-start-'));
  const store = new SqliteStore(join(dir, 'coordinator.db'));
  const checkpoints = new CheckpointStore(dir);
  const logger = pino(new LogSink());
  const events = new EventEmitter();
  const announced: ReturnType<typeof toWireStudy>[] = [];
  const buildInitialModel: InitialModelBuilder = async () => ({ specs: [{ name: 'dense/kernel', shape: [2, 1] }, { name: 'dense/bias', shape: [1] }], weights: new Float32Array(3) });
  const studies: Studies = new Studies({
    store, checkpoints, sessions: new SessionRegistry(), logger, log: logger, now: Date.now, metrics: new CoordinatorMetrics(), events,
    selectionGraceMs: 0, maxHeldUpdateBytes: 1 << 30, buildInitialModel,
    // What an announcement would carry, at the moment it is made.
    announce: async (id) => void announced.push(toWireStudy((await store.getStudy(id))!)),
  });
  const hooks: { beforeStart?: () => Promise<void> } = {};
  const service = new SeriesService({
    store, log: logger, now: Date.now, events,
    startStudy: async (text, by, extras) => {
      await hooks.beforeStart?.();
      return studies.startStudy(text, by, extras);
    },
  });
  cleanups.push(async () => {
    for (const s of await studies.listStudies(false)) await studies.stopStudy(s.id, 'test').catch(() => undefined);
    service.stop();
    await checkpoints.blobs.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, checkpoints, studies, service, announced, hooks };
}

describe('series runs through the operators\' study start (studies.ts)', () => {
  it('records the run in the study\'s unit, announces its template, and warm-starts from the champion', async () => {
    const { store, checkpoints, studies, service, announced } = setup();
    const series = await service.create(TEMPLATE, 'alice');
    const r1 = await service.runNow('sepsis', 'bob');
    expect(await store.seriesRunOfStudy(r1.studyId)).toMatchObject({ run: 1, championVersion: null, template: series.template });
    expect(announced.at(-1)).toMatchObject({ studyId: r1.studyId, seriesTemplateJson: series.template, seriesTemplateSha256: series.templateSha256 });
    expect(createHash('sha256').update(series.template).digest('hex')).toBe(series.templateSha256);
    await studies.stopStudy(r1.studyId, 'test');

    // A champion release of the series: run 2's round 0 is its weights.
    const weights = Buffer.from(new Float32Array([0.5, -0.25, 2]).buffer);
    const sha = createHash('sha256').update(weights).digest('hex');
    await checkpoints.blobs.put([weights], { kind: 'release', expectedSha256: sha });
    await store.write([{ op: 'release.insert', r: { studyName: 'sepsis', version: 1, studyId: r1.studyId, round: 0, manifestSha256: 'a'.repeat(64), envelope: '{}', createdAt: 1, parentVersion: null, files: [{ name: 'weights.bin', sha256: sha, size: 12 }] } }], 'test');
    await store.write([{ op: 'release.alias', studyName: 'sepsis', alias: 'champion', version: 1, setBy: 'test', at: 1 }], 'test');
    const r2 = await service.runNow('sepsis', 'bob');
    expect(r2.championVersion).toBe(1);
    const round0 = (await store.listRounds(r2.studyId)).find((r) => r.round === 0)!;
    expect(round0.reason).toContain('release sepsis v1 (warm start)');
    expect(round0.checkpointSha256).toBe(sha);
    const study = (await store.getStudy(r2.studyId))!;
    expect(JSON.parse(study.manifestJson).series).toEqual({ name: 'sepsis', run: 2, templateSha256: series.templateSha256, champion: { version: 1, weightsSha256: sha } });
  });

  it('a run number already taken fails the whole start: no study without its run record', async () => {
    const { store, service, hooks } = setup();
    await service.create(TEMPLATE, 'alice');
    const studiesBefore = (await store.listStudies()).length;
    // Another coordinator recorded run 1 first (the store's guard, STALE).
    await store.write([{ op: 'study.insert', s: { id: 'sepsis-other', name: 'sepsis', manifestJson: '{}', manifestHash: 'b'.repeat(64), state: 'FAILED', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null, createdAt: 1, endedAt: 1, modelSpec: null } }], 'test');
    // It records run 1 after this service read the runs and before its study is written.
    hooks.beforeStart = () => store.write([{ op: 'series.run', r: { seriesName: 'sepsis', run: 1, studyId: 'sepsis-other', scheduledAt: 1, startedAt: 1, trigger: 'schedule', championVersion: null, template: '{}' } }], 'test').then(() => undefined);
    const err = await service.startRun('sepsis', Date.now(), 'schedule').then(() => undefined, (e: unknown) => e);
    expect(isFedlhsError(err) ? err.code : err).toBe('STALE');
    expect((await store.listStudies()).length).toBe(studiesBefore + 1);
    expect((await store.listSeriesRuns('sepsis')).map((r) => r.studyId)).toEqual(['sepsis-other']);
  });
});
