import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  FedlhsError, combineStats, computeClinicStats, float32Bytes, histogramRanges, mulberry32, payloadDigest, validateManifest, type ClinicStats,
} from '@fedlhs/core';
import type { StatisticsReport__Output, Task, UpdateChunk__Output } from '@fedlhs/proto';
import { studyDetail } from './admin/views.js';
import { Coordinator } from './coordinator.js';
import { FakeSession, LogSink } from './test-support.js';
import type { NodeRecord, StudyRecord } from './store.js';


const dirs: string[] = [];
const coordinators: Coordinator[] = [];
afterEach(async () => {
  for (const c of coordinators.splice(0)) {
    for (const s of await c.listStudies(false)) await c.stopStudy(s.id, 'test').catch(() => undefined);
    await c.shutdown();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const FEATURES = ['age', 'bmi', 'female', 'visits'];

function manifest(data: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'stats',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 4] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 1, clients: { min: 3, max: 3, quorum: 2 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
    data: {
      featureSpec: 'cohort/v1',
      cohort: {
        index: { encounterClass: 'wellness', from: '2015-01-01', to: '2018-12-31' },
        eligibility: { minAge: 18, maxAge: 90 },
        lookbackDays: 365,
        features: [
          { name: 'age', type: 'age' },
          { name: 'bmi', type: 'latest', system: 'LOINC', codes: ['39156-5'], unit: 'kg/m2', range: [10, 80] },
          { name: 'female', type: 'sex', value: 'female' },
          { name: 'visits', type: 'count', kind: 'encounter' },
        ],
        label: { condition: { system: 'SNOMED', codes: ['44054006'] }, horizonDays: 365 },
      },
      normalization: 'federated-zscore',
      ...data,
    },
    aggregation: { strategy: 'fedavg' },
  };
}

/** A clinic's honest statistics; `bmiValues` non-missing bmi values (fewer than 10: withheld). */
function clinicStats(seed: number, bmiValues = 300, rows = 300): ClinicStats {
  const r = mulberry32(seed);
  const x = new Float32Array(rows * 4);
  for (let i = 0; i < rows; i++) x.set([20 + 60 * r(), i < bmiValues ? 18 + 20 * r() : NaN, r() < 0.5 ? 1 : 0, Math.floor(6 * r())], i * 4);
  const y = Float32Array.from({ length: rows }, () => (r() < 0.3 ? 1 : 0));
  return computeClinicStats(x, y, FEATURES, 10, histogramRanges(validateManifest(manifest())));
}

async function network(data: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-stats-phase-'));
  dirs.push(dir);
  const log = new LogSink();
  const coordinator = Coordinator.create({
    dataDir: dir, logger: pino({ level: 'info' }, log), heartbeatIntervalMs: 600_000, selectionGraceMs: 0, chunkBytes: 1 << 20, maxHeldUpdateBytes: 1 << 20,
    buildInitialModel: async () => ({ specs: [{ name: 'out/kernel', shape: [4, 1] }, { name: 'out/bias', shape: [1] }], weights: new Float32Array(5) }),
  });
  coordinators.push(coordinator);
  await coordinator.start();
  const study = await coordinator.startStudy(JSON.stringify(manifest(data)), 'test');
  const clinics: { node: NodeRecord; session: FakeSession }[] = [];
  for (const site of ['a', 'b', 'c']) {
    const { token } = await coordinator.createJoinToken(site, 600, 'test');
    const { nodeId } = await coordinator.enrol(token, site, null);
    const node = (await coordinator.store.getNode(nodeId))!;
    const session = new FakeSession(nodeId, site);
    await coordinator.openSession(session, 10);
    clinics.push({ node, session });
  }
  for (const { session } of clinics) {
    await coordinator.onAgentMessage(session, { readiness: { studyId: study.id, manifestSha256: study.manifestHash, readiness: 'READINESS_READY', detail: '', trainingRows: 1000 } } as never);
  }
  return { coordinator, study, clinics, log };
}

function report(task: Task, stats: ClinicStats): StatisticsReport__Output {
  return { taskId: task.taskId!, studyId: task.studyId!, round: task.round!, rows: stats.rows, positives: stats.positives, suppressed: stats.suppressed, features: stats.features.map((f) => ({ ...f })) };
}

async function rejection(p: Promise<unknown>): Promise<FedlhsError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a rejection');
}

const studyNow = async (c: Coordinator, s: StudyRecord): Promise<StudyRecord> => (await c.store.getStudy(s.id))!;

describe('statistics phase (coordinator in process)', () => {
  it('rejects and records an inconsistent report, and derives the normalisation from the others', async () => {
    const { coordinator, study, clinics, log } = await network();
    const [a, b, rogue] = clinics as [(typeof clinics)[0], (typeof clinics)[0], (typeof clinics)[0]];
    const honest = [clinicStats(1), clinicStats(2)];
    const bad = clinicStats(3);
    const rogueTask = await rogue.session.task('TASK_KIND_STATISTICS');
    const err = await rejection(coordinator.reportStatistics(rogue.node, report(rogueTask, { ...bad, positives: bad.rows + 5 })));
    expect([err.code, err.reason, err.message]).toEqual(['INCONSISTENT_STATISTICS', 'INCONSISTENT_STATISTICS', 'inconsistent statistics: positives 305 exceed rows 300']);
    expect((await coordinator.store.getTask(rogueTask.taskId!))?.state).toBe('REJECTED');
    expect((await coordinator.store.listContributions({ studyId: study.id })).map((c) => [c.nodeId, c.accepted, c.reasonCode])).toEqual([[rogue.node.id, false, 'INCONSISTENT_STATISTICS']]);
    expect(log.lines.find((l) => l.event === 'statistics.rejected')).toMatchObject({ level: 40, nodeId: rogue.node.id, reason: 'INCONSISTENT_STATISTICS' });
    // Sending it again does not help: the task is closed.
    const again = await rejection(coordinator.reportStatistics(rogue.node, report(rogueTask, bad)));
    expect([again.code, again.status, again.taskOpen]).toEqual(['TASK_CLOSED', 'FAILED_PRECONDITION', false]);

    for (const [i, c] of [a, b].entries()) await coordinator.reportStatistics(c.node, report(await c.session.task('TASK_KIND_STATISTICS'), honest[i]!));
    await a.session.task('TASK_KIND_TRAIN');
    // The same report again is OK (duplicate); a different one for the same task is refused and recorded.
    const aTask = await a.session.task('TASK_KIND_STATISTICS');
    await expect(coordinator.reportStatistics(a.node, report(aTask, honest[0]!))).resolves.toEqual({ taskId: aTask.taskId, duplicate: true });
    const conflict = await rejection(coordinator.reportStatistics(a.node, report(aTask, { ...honest[0]!, positives: honest[0]!.positives - 1 })));
    expect([conflict.code, conflict.status, conflict.taskOpen]).toEqual(['DUPLICATE_CONFLICT', 'ALREADY_EXISTS', false]);
    const parameters = JSON.parse((await studyNow(coordinator, study)).parameters!) as { normalization: { features: { name: string; mean: number; std: number }[] } };
    const expected = combineStats(honest).features;
    parameters.normalization.features.forEach((f, j) => {
      expect(f.mean).toBeCloseTo(expected[j]!.mean, 9);
      expect(f.std).toBeCloseTo(expected[j]!.std, 9);
    });
    const detail = await studyDetail(coordinator, (await studyNow(coordinator, study)));
    // The re-sent report was recorded too, as TASK_CLOSED.
    expect(detail.rejectionsByReason).toEqual({ INCONSISTENT_STATISTICS: 1, TASK_CLOSED: 1, DUPLICATE_CONFLICT: 1 });
    await expect(coordinator.metrics.registry.getSingleMetricAsString('fedlhs_rejected_updates_total')).resolves.toMatch(/reason="INCONSISTENT_STATISTICS"} 1/);
  });

  it('fails the study before training when a feature is withheld at every clinic, naming it', async () => {
    const { coordinator, study, clinics, log } = await network();
    for (const [i, c] of clinics.entries()) await coordinator.reportStatistics(c.node, report(await c.session.task('TASK_KIND_STATISTICS'), clinicStats(10 + i, 5)));
    await coordinator.waitForStudy(study.id);
    const ended = await studyNow(coordinator, study);
    const reason = 'federated normalisation impossible: statistics of bmi withheld at every clinic (small cells); declare data.normalizationFallback or lower data.minCellCount';
    expect([ended.state, ended.reason, ended.parameters]).toEqual(['FAILED', reason, null]);
    expect((await coordinator.store.listRounds(study.id)).filter((r) => r.round === 1).map((r) => [r.state, r.reason])).toEqual([['FAILED', reason]]);
    expect(clinics.flatMap((c) => c.session.tasks.filter((t) => t.kind === 'TASK_KIND_TRAIN'))).toEqual([]);
    expect(log.lines.find((l) => l.event === 'statistics.withheld')).toMatchObject({ features: ['bmi'], clinics: 3 });
  });

  it("applies a declared fallback, and says so in the log and the study view", async () => {
    const { coordinator, study, clinics, log } = await network({ normalizationFallback: 'range' });
    for (const [i, c] of clinics.entries()) await coordinator.reportStatistics(c.node, report(await c.session.task('TASK_KIND_STATISTICS'), clinicStats(20 + i, 5)));
    await clinics[0]!.session.task('TASK_KIND_TRAIN');
    const line = await log.waitFor((l) => l.event === 'statistics.fallback');
    expect(line).toMatchObject({ level: 40, fallback: 'range', features: [{ name: 'bmi', source: 'fallback-range', withheldAt: 3, mean: 45, std: 17.5 }] });
    const detail = await studyDetail(coordinator, await studyNow(coordinator, study));
    expect(detail.normalization).toMatchObject({
      method: 'federated-zscore', fallback: 'range', clinics: 3,
      fallbackFeatures: [{ name: 'bmi', source: 'fallback-range', withheldAt: 3 }],
    });
    expect((detail.normalization as { features: { name: string; source: string }[] }).features.map((f) => [f.name, f.source]))
      .toEqual([['age', 'federated'], ['bmi', 'fallback-range'], ['female', 'federated'], ['visits', 'federated']]);
    // The training tasks carry it to the clinics.
    const sent = JSON.parse(clinics[0]!.session.tasks.find((t) => t.kind === 'TASK_KIND_TRAIN')!.parametersJson!) as { normalization: { features: { name: string; mean: number }[] } };
    expect(sent.normalization.features[1]).toMatchObject({ name: 'bmi', mean: 45, std: 17.5, source: 'fallback-range' });
  });

  it('keeps per-site metrics of fewer than minCellCount examples only in the global value', async () => {
    const { coordinator, study, clinics } = await network({ normalization: 'none' });
    const examples = [300, 150, 4];
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_TRAIN');
      const weights = Float32Array.from([0.1, 0.2, 0.3, 0.4, i]);
      const header = {
        taskId: task.taskId!, studyId: study.id, round: 1, nodeId: c.node.id, baseModelSha256: task.modelSha256 as Buffer, numExamples: examples[i]!,
        trainMetrics: { numExamples: examples[i]!, loss: 0.5, accuracy: 0.5 + i / 10, auc: null },
        weights: { tensors: [{ name: 'out/kernel', shape: [4, 1], dtype: 'DTYPE_FLOAT32' }, { name: 'out/bias', shape: [1], dtype: 'DTYPE_FLOAT32' }], totalBytes: 20, sha256: payloadDigest(weights), chunkSize: 1 << 20 },
      };
      async function* chunks(): AsyncGenerator<UpdateChunk__Output> {
        yield { header } as unknown as UpdateChunk__Output;
        yield { data: Buffer.from(float32Bytes(weights)) } as unknown as UpdateChunk__Output;
      }
      await coordinator.receiveUpload(c.node, chunks());
    }
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_EVALUATE');
      await coordinator.reportEvaluation(c.node, { taskId: task.taskId!, studyId: study.id, round: 1, metrics: { numExamples: examples[i]!, loss: 0.4, accuracy: [0.7, 0.8, 0.25][i]!, auc: 0.75 } } as never);
    }
    await coordinator.waitForStudy(study.id);
    expect((await studyNow(coordinator, study)).state).toBe('COMPLETED');
    const stored = await coordinator.store.listMetrics(study.id);
    // The 4-example site is withheld, and so is the next smallest (else global − the rest gives it away).
    const site = (id: string): string => clinics.find((c) => c.node.id === id)!.node.siteName;
    expect(stored.map((m) => [m.phase, m.nodeId === null ? 'global' : site(m.nodeId), m.numExamples]).sort()).toEqual([
      ['evaluation', 'a', 300], ['evaluation', 'global', 454], ['training', 'a', 300], ['training', 'global', 454],
    ]);
    const global = stored.find((m) => m.phase === 'evaluation' && m.nodeId === null)!;
    expect(global.accuracy).toBeCloseTo((300 * 0.7 + 150 * 0.8 + 4 * 0.25) / 454, 12);
    const detail = await studyDetail(coordinator, await studyNow(coordinator, study));
    expect((detail.metricsWithheld as { nodeId: string }[]).map((w) => site(w.nodeId)).sort()).toEqual(['b', 'c']);
    expect((detail.contributions as { nodeId: string; numExamples: number | null }[]).map((c) => [site(c.nodeId), c.numExamples]).sort()).toEqual([['a', 300], ['b', 150], ['c', null]]);
  });
  it('refuses impossible evaluation metrics (INVALID_METRICS), records them and closes the task', async () => {
    const { coordinator, study, clinics } = await network({ normalization: 'none' });
    const examples = [300, 150, 4];
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_TRAIN');
      const weights = Float32Array.from([0.1, 0.2, 0.3, 0.4, i]);
      const header = {
        taskId: task.taskId!, studyId: study.id, round: 1, nodeId: c.node.id, baseModelSha256: task.modelSha256 as Buffer, numExamples: examples[i]!,
        trainMetrics: { numExamples: examples[i]!, loss: 0.5, accuracy: 0.5 + i / 10, auc: null },
        weights: { tensors: [{ name: 'out/kernel', shape: [4, 1], dtype: 'DTYPE_FLOAT32' }, { name: 'out/bias', shape: [1], dtype: 'DTYPE_FLOAT32' }], totalBytes: 20, sha256: payloadDigest(weights), chunkSize: 1 << 20 },
      };
      async function* chunks(): AsyncGenerator<UpdateChunk__Output> {
        yield { header } as unknown as UpdateChunk__Output;
        yield { data: Buffer.from(float32Bytes(weights)) } as unknown as UpdateChunk__Output;
      }
      await coordinator.receiveUpload(c.node, chunks());
    }
    // Impossible metrics are refused (INVALID_METRICS), recorded, and close the task.
    const cTask = await clinics[2]!.session.task('TASK_KIND_EVALUATE');
    const invalid = await rejection(coordinator.reportEvaluation(clinics[2]!.node, { taskId: cTask.taskId!, studyId: study.id, round: 1, metrics: { numExamples: 4, loss: Number.NaN, accuracy: 0.5, auc: null } } as never));
    expect([invalid.code, invalid.reason]).toEqual(['INVALID_METRICS', 'INVALID_METRICS']);
    expect((await coordinator.store.getTask(cTask.taskId!))?.state).toBe('REJECTED');
    expect((await coordinator.store.listContributions({ nodeId: clinics[2]!.node.id })).map((c) => c.reasonCode)).toContain('INVALID_METRICS');
  });
});
