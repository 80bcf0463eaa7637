import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { FedlhsError, binaryAccuracy, computePerformance, float32Bytes, mulberry32, pairedAucDifference, payloadDigest, pooledDifference, pooledPerformance, type Performance } from '@fedlhs/core';
import type { EvaluationReport__Output, UpdateChunk__Output } from '@fedlhs/proto';
import { studyDetail } from './admin/views.js';
import { withheldByCounts } from './disclosure.js';
import { withPerformance } from './engine/phases/evaluation.js';
import type { MetricRecord } from './store.js';
import { Coordinator } from './coordinator.js';
import { validateEvaluationReport } from './grpc/validate.js';
import { FakeSession, LogSink } from './test-support.js';
import type { NodeRecord } from './store.js';

/*
 * Issue 12: EvaluationReport.validation/test through the coordinator in process: checked at the
 * edge, counted in the report's digest, stored as performance JSON on the 'evaluation' rows and
 * as 'test' rows (per site and pooled) under the small-cell rule, and kept out of the study view.
 */

const dirs: string[] = [];
const coordinators: Coordinator[] = [];
afterEach(async () => {
  for (const c of coordinators.splice(0)) {
    for (const s of await c.listStudies(false)) await c.stopStudy(s.id, 'test').catch(() => undefined);
    await c.shutdown();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const MANIFEST = {
  apiVersion: 'fedlhs.v1', kind: 'Study', name: 'figures',
  model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 4] } }] } } },
  training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
  rounds: 1, clients: { min: 3, max: 3, quorum: 2 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
  data: { featureSpec: 'flat-table/v1', features: ['a', 'b', 'c', 'd'], normalization: 'none' },
  aggregation: { strategy: 'fedavg' },
};

/** Three clinics past training (examples 300, 150, 4), each with its EVALUATE task waiting. */
async function evaluating(manifest: Record<string, unknown> = MANIFEST) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-eval-figures-'));
  dirs.push(dir);
  const log = new LogSink();
  const coordinator = Coordinator.create({
    dataDir: dir, logger: pino({ level: 'info' }, log), heartbeatIntervalMs: 600_000, selectionGraceMs: 0, chunkBytes: 1 << 20, maxHeldUpdateBytes: 1 << 20,
    buildInitialModel: async () => ({ specs: [{ name: 'out/kernel', shape: [4, 1] }, { name: 'out/bias', shape: [1] }], weights: new Float32Array(5) }),
  });
  coordinators.push(coordinator);
  await coordinator.start();
  const study = await coordinator.startStudy(JSON.stringify(manifest), 'test');
  const clinics: { node: NodeRecord; session: FakeSession; examples: number }[] = [];
  for (const [site, examples] of [['a', 300], ['b', 150], ['c', 4]] as const) {
    const { token } = await coordinator.createJoinToken(site, 600, 'test');
    const { nodeId } = await coordinator.enrol(token, site, null);
    const session = new FakeSession(nodeId, site);
    await coordinator.openSession(session, 10);
    clinics.push({ node: (await coordinator.store.getNode(nodeId))!, session, examples });
  }
  for (const { session } of clinics) {
    await coordinator.onAgentMessage(session, { readiness: { studyId: study.id, manifestSha256: study.manifestHash, readiness: 'READINESS_READY', detail: '', trainingRows: 1000 } } as never);
  }
  for (const [i, c] of clinics.entries()) {
    const task = await c.session.task('TASK_KIND_TRAIN');
    const weights = Float32Array.from([0.1, 0.2, 0.3, 0.4, i]);
    const header = {
      taskId: task.taskId!, studyId: study.id, round: 1, nodeId: c.node.id, baseModelSha256: task.modelSha256 as Buffer, numExamples: c.examples,
      trainMetrics: { numExamples: c.examples, loss: 0.5, accuracy: 0.6, auc: null },
      weights: { tensors: [{ name: 'out/kernel', shape: [4, 1], dtype: 'DTYPE_FLOAT32' }, { name: 'out/bias', shape: [1], dtype: 'DTYPE_FLOAT32' }], totalBytes: 20, sha256: payloadDigest(weights), chunkSize: 1 << 20 },
    };
    async function* chunks(): AsyncGenerator<UpdateChunk__Output> {
      yield { header } as unknown as UpdateChunk__Output;
      yield { data: Buffer.from(float32Bytes(weights)) } as unknown as UpdateChunk__Output;
    }
    await coordinator.receiveUpload(c.node, chunks());
  }
  return { coordinator, study, clinics, log };
}

/** Risks and outcomes of n patients (seeded; both classes present), with their figures. */
function part(seed: number, n: number): { scores: number[]; labels: number[]; performance: Performance } {
  const r = mulberry32(seed);
  const scores = Array.from({ length: n }, () => Math.fround(r()));
  const labels = scores.map((p, i) => (i < 2 ? i : r() < p ? 1 : 0));
  return { scores, labels, performance: computePerformance(scores, labels) };
}

function report(task: { taskId?: string; round?: number }, studyId: string, validation: Performance, test: Performance | undefined): EvaluationReport__Output {
  const m = { numExamples: validation.numExamples, loss: 0.5, accuracy: 0.7, auc: validation.auc ?? null };
  return { taskId: task.taskId!, studyId, round: task.round!, metrics: m, validation, test: test ?? null } as unknown as EvaluationReport__Output;
}

describe('evaluation figures (coordinator in process)', () => {
  it('stores validation figures on the evaluation rows and test rows per site and pooled, small cells withheld', async () => {
    const { coordinator, study, clinics } = await evaluating();
    const parts = clinics.map((c, i) => ({ validation: part(10 + i, c.examples), test: part(20 + i, c.examples) }));
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_EVALUATE');
      const r = report(task, study.id, parts[i]!.validation.performance, parts[i]!.test.performance);
      validateEvaluationReport(r);
      await coordinator.reportEvaluation(c.node, r);
      if (i === 0) {
        // The same report again is a duplicate; other test figures for the same task conflict.
        await expect(coordinator.reportEvaluation(c.node, r)).resolves.toMatchObject({ duplicate: true });
        const other = report(task, study.id, parts[0]!.validation.performance, parts[1]!.test.performance);
        await expect(coordinator.reportEvaluation(c.node, other)).rejects.toMatchObject({ code: 'DUPLICATE_CONFLICT' });
      }
    }
    await coordinator.waitForStudy(study.id);
    const stored = await coordinator.store.listMetrics(study.id);
    const site = (id: string | null): string => (id === null ? 'pooled' : clinics.find((c) => c.node.id === id)!.node.siteName);
    // As for the metrics: the 4-patient site is withheld, and the next smallest with it.
    expect(stored.filter((m) => m.phase !== 'training').map((m) => [m.phase, site(m.nodeId), m.numExamples]).sort()).toEqual([
      ['evaluation', 'a', 300], ['evaluation', 'pooled', 454], ['test', 'a', 300], ['test', 'pooled', 454],
    ]);
    const row = (phase: string, who: string) => stored.find((m) => m.phase === phase && site(m.nodeId) === who)!;
    expect(JSON.parse(row('evaluation', 'a').performance!)).toEqual(JSON.parse(JSON.stringify(parts[0]!.validation.performance)));
    const pooledTest = pooledPerformance(parts.map((p) => p.test.performance))!;
    expect(JSON.parse(row('test', 'pooled').performance!)).toEqual(JSON.parse(JSON.stringify(pooledTest)));
    expect(JSON.parse(row('evaluation', 'pooled').performance!).numExamples).toBe(454);
    // A 'test' row: loss is the Brier score, accuracy read from the reliability table.
    const a = row('test', 'a');
    expect(a.loss).toBeCloseTo(parts[0]!.test.performance.brier, 12);
    expect(a.accuracy).toBeCloseTo(binaryAccuracy(parts[0]!.test.scores, parts[0]!.test.labels), 12);
    expect(a.auc).toBeCloseTo(parts[0]!.test.performance.auc!, 12);
    expect(row('test', 'pooled').loss).toBeCloseTo(pooledTest.brier, 12);
    // The study view keeps to the validation and training figures.
    const detail = await studyDetail(coordinator, (await coordinator.store.getStudy(study.id))!);
    expect((detail.metrics as { phase: string }[]).some((m) => m.phase === 'test')).toBe(false);
  });

  it('stores no test rows and no figures for nodes that sent none', async () => {
    const { coordinator, study, clinics } = await evaluating();
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_EVALUATE');
      const validation = part(30 + i, c.examples).performance;
      const r = report(task, study.id, validation, undefined);
      await coordinator.reportEvaluation(c.node, i === 0 ? r : ({ ...r, validation: null } as EvaluationReport__Output));
    }
    await coordinator.waitForStudy(study.id);
    const stored = await coordinator.store.listMetrics(study.id);
    expect(stored.filter((m) => m.phase === 'test')).toEqual([]);
    // Only site a sent figures: its own are shown (300 ≥ minCellCount), the pooled ones are its own too.
    const evaluation = stored.filter((m) => m.phase === 'evaluation');
    expect(evaluation.map((m) => m.performance == null ? 'none' : JSON.parse(m.performance).numExamples).sort()).toEqual([300, 300]);
  });

  it('refuses validation figures over other patients than the metrics (INVALID_METRICS, task closed)', async () => {
    const { coordinator, study, clinics } = await evaluating();
    const c = clinics[0]!;
    const task = await c.session.task('TASK_KIND_EVALUATE');
    const r = report(task, study.id, part(40, 300).performance, undefined);
    const err = await coordinator.reportEvaluation(c.node, { ...r, metrics: { ...r.metrics!, numExamples: 299 } }).catch((e: unknown) => e as FedlhsError);
    expect(err).toMatchObject({ code: 'INVALID_METRICS', message: 'validation.num_examples (300) differs from metrics.num_examples (299): both are of the validation part' });
    expect((await coordinator.store.getTask(task.taskId!))?.state).toBe('REJECTED');
  });

  it('refuses impossible figures as INVALID_METRICS naming the field, and closes the task', async () => {
    const { coordinator, study, clinics } = await evaluating();
    const good = part(1, 50).performance;
    const cases: [Partial<EvaluationReport__Output>, string][] = [
      [{ test: { ...good, brier: 2 } as never }, 'EvaluationReport.test.brier'],
      [{ validation: { ...good, positives: 51 } as never }, 'EvaluationReport.validation.positives'],
      [{ test: { ...good, calibration: good.calibration.slice(0, 9) } as never }, 'EvaluationReport.test.calibration'],
    ];
    for (const [i, [bad, field]] of cases.entries()) {
      const c = clinics[i]!;
      const task = await c.session.task('TASK_KIND_EVALUATE');
      const r = { ...report(task, study.id, part(2 + i, c.examples).performance, good), ...bad };
      const err = await coordinator.reportEvaluation(c.node, r as EvaluationReport__Output).catch((e: unknown) => e as FedlhsError);
      expect(err).toMatchObject({ code: 'INVALID_METRICS' });
      expect((err as Error).message).toContain(field);
      expect((await coordinator.store.getTask(task.taskId!))?.state).toBe('REJECTED');
    }
    // The edge checks only the ids: the domain records the refusal.
    expect(() => validateEvaluationReport(report({ taskId: 'task_1', round: 1 }, 'study_1', { ...good, brier: 2 }, good))).not.toThrow();
  });
});

/** A series run's manifest (issue 13) naming champion version 2 of its series. */
const SERIES_MANIFEST = { ...MANIFEST, series: { name: 'figures', run: 3, templateSha256: 'a'.repeat(64), champion: { version: 2, weightsSha256: 'b'.repeat(64) } } };

/** A clinic's paired comparison on the same test patients: the champion scores a little worse. */
function comparison(test: { scores: number[]; labels: number[] }, seed: number, over: Record<string, unknown> = {}) {
  const r = mulberry32(seed);
  const champion = test.scores.map((s) => Math.fround(Math.min(1, Math.max(0, s * 0.5 + r() * 0.5))));
  const d = pairedAucDifference(test.scores, champion, test.labels);
  return { studyName: 'figures', version: 2, test: computePerformance(champion, test.labels), aucDifference: d.difference ?? null, aucDifferenceStandardError: d.standardError ?? null, ...over };
}

describe('champion comparisons (issue 13, coordinator in process)', () => {
  it('stores a comparison row per shown site and the pooled difference over every site, withheld ones included', async () => {
    const { coordinator, study, clinics } = await evaluating(SERIES_MANIFEST);
    const tests = clinics.map((c, i) => part(50 + i, c.examples));
    const sent = clinics.map((_, i) => comparison(tests[i]!, 60 + i));
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_EVALUATE');
      const r = { ...report(task, study.id, part(70 + i, c.examples).performance, tests[i]!.performance), comparisons: [sent[i]] } as unknown as EvaluationReport__Output;
      await coordinator.reportEvaluation(c.node, r);
      if (i === 0) {
        // The comparison counts in the digest: the same report is a duplicate, another comparison conflicts.
        await expect(coordinator.reportEvaluation(c.node, r)).resolves.toMatchObject({ duplicate: true });
        const other = { ...r, comparisons: [comparison(tests[0]!, 99)] } as unknown as EvaluationReport__Output;
        await expect(coordinator.reportEvaluation(c.node, other)).rejects.toMatchObject({ code: 'DUPLICATE_CONFLICT' });
      }
    }
    await coordinator.waitForStudy(study.id);
    const rows = (await coordinator.store.listMetrics(study.id)).filter((m) => m.phase === 'comparison');
    const siteRows = rows.filter((m) => m.nodeId !== null);
    // As for the test rows: the 4-patient site is withheld, and the next smallest with it.
    expect(siteRows.map((m) => m.nodeId)).toEqual([clinics[0]!.node.id]);
    const figures = JSON.parse(siteRows[0]!.performance!);
    expect(figures).toMatchObject({ studyName: 'figures', version: 2, n: 300, difference: sent[0]!.aucDifference, standardError: sent[0]!.aucDifferenceStandardError });
    expect(siteRows[0]!.auc).toBeCloseTo(sent[0]!.test.auc!, 12);
    const pooled = JSON.parse(rows.find((m) => m.nodeId === null)!.performance!);
    const want = pooledDifference(sent.map((c, i) => ({ n: clinics[i]!.examples, cases: 0, difference: c.aucDifference ?? undefined, standardError: c.aucDifferenceStandardError ?? undefined })))!;
    expect(pooled).toMatchObject({ studyName: 'figures', version: 2, reported: 3, withheld: 2 });
    expect(pooled.pooled.difference).toBeCloseTo(want.difference, 12);
    expect(pooled.pooled.sites).toBe(want.sites);
  });

  it('withholds comparisons as a group: a small site that compared alone is never isolated by the pooled value, and a site that sent none is named', async () => {
    const { coordinator, study, clinics } = await evaluating(SERIES_MANIFEST);
    const tests = clinics.map((c, i) => part(150 + i, c.examples));
    for (const [i, c] of clinics.entries()) {
      const task = await c.session.task('TASK_KIND_EVALUATE');
      // b (150 patients, withheld from the test rows with c) sends no comparison.
      const comparisons = i === 1 ? [] : [comparison(tests[i]!, 160 + i)];
      await coordinator.reportEvaluation(c.node, { ...report(task, study.id, part(170 + i, c.examples).performance, tests[i]!.performance), comparisons } as unknown as EvaluationReport__Output);
    }
    await coordinator.waitForStudy(study.id);
    const rows = (await coordinator.store.listMetrics(study.id)).filter((m) => m.phase === 'comparison');
    // c compared alone among the withheld: a is withheld with it, so pooled minus shown gives nothing away.
    expect(rows.filter((m) => m.nodeId !== null)).toEqual([]);
    const pooled = JSON.parse(rows.find((m) => m.nodeId === null)!.performance!);
    expect(pooled).toMatchObject({ reported: 2, withheld: 2, missing: [clinics[1]!.node.id] });
  });

  it('refuses a comparison with another release, over other patients, or in a study without a champion (INVALID_METRICS, task closed)', async () => {
    const { coordinator, study, clinics } = await evaluating(SERIES_MANIFEST);
    const test = part(80, 50);
    const cases: [Record<string, unknown>, RegExp][] = [
      [comparison(test, 1, { version: 1 }), /compares figures version 1, but the champion is figures version 2/],
      [comparison(test, 2, { test: computePerformance(test.scores.slice(1), test.labels.slice(1)) }), /comparisons\[0\]\.test: 49 patients .* a comparison is on the same patients/],
      [comparison(test, 3, { aucDifference: 1.5 }), /comparisons\[0\]\.auc_difference: must be a number in \[-1, 1\]/],
    ];
    for (const [i, [bad, message]] of cases.entries()) {
      const c = clinics[i]!;
      const task = await c.session.task('TASK_KIND_EVALUATE');
      const r = { ...report(task, study.id, part(90 + i, c.examples).performance, test.performance), comparisons: [bad] } as unknown as EvaluationReport__Output;
      const err = await coordinator.reportEvaluation(c.node, r).catch((e: unknown) => e as FedlhsError);
      expect(err).toMatchObject({ code: 'INVALID_METRICS' });
      expect((err as Error).message).toMatch(message);
      expect((await coordinator.store.getTask(task.taskId!))?.state).toBe('REJECTED');
    }
  });

  it('refuses a difference that is not the difference of the two AUCs (a clinic swaying the pool)', async () => {
    const { coordinator, study, clinics } = await evaluating(SERIES_MANIFEST);
    const c = clinics[0]!;
    const test = part(83, 50);
    const task = await c.session.task('TASK_KIND_EVALUATE');
    const bad = comparison(test, 5, { aucDifference: 0.9, aucDifferenceStandardError: 1e-7 });
    const r = { ...report(task, study.id, part(84, c.examples).performance, test.performance), comparisons: [bad] } as unknown as EvaluationReport__Output;
    await expect(coordinator.reportEvaluation(c.node, r)).rejects.toMatchObject({ code: 'INVALID_METRICS', message: expect.stringMatching(/comparisons\[0\]\.auc_difference: 0\.9 is not EvaluationReport\.test\.auc − /) });
  });

  it('refuses a comparison in a study that names no champion', async () => {
    const { coordinator, study, clinics } = await evaluating();
    const c = clinics[0]!;
    const test = part(81, 50);
    const task = await c.session.task('TASK_KIND_EVALUATE');
    const r = { ...report(task, study.id, part(82, c.examples).performance, test.performance), comparisons: [comparison(test, 4)] } as unknown as EvaluationReport__Output;
    await expect(coordinator.reportEvaluation(c.node, r)).rejects.toMatchObject({ code: 'INVALID_METRICS', message: expect.stringMatching(/names no champion/) });
  });
});

describe('complementary suppression of site figures (review hospital HIGH 1)', () => {
  const K = 10;
  it('withholds a site short of patients, cases or non-cases, then the next smallest until the group holds k of each', () => {
    const site = (nodeId: string, n: number, pos: number) => ({ nodeId, counts: [n, pos, n - pos] });
    // a has 3 cases: withheld; alone the group holds 3 cases, so b (the next smallest) joins it.
    expect([...withheldByCounts([site('a', 100, 3), site('b', 100, 30), site('c', 500, 100)], K)].sort()).toEqual(['a', 'b']);
    // Non-cases count too: 95 of 100 are cases.
    expect([...withheldByCounts([site('a', 100, 95), site('b', 200, 30), site('c', 500, 100)], K)].sort()).toEqual(['a', 'b']);
    // Nobody small: nothing withheld; never reaching k: all withheld.
    expect(withheldByCounts([site('a', 100, 30), site('b', 100, 30)], K).size).toBe(0);
    expect(withheldByCounts([site('a', 100, 3), site('b', 100, 4)], K).size).toBe(2);
    // One count alone is the examples rule.
    expect([...withheldByCounts([{ nodeId: 'a', counts: [4] }, { nodeId: 'b', counts: [20] }, { nodeId: 'c', counts: [30] }], K)]).toEqual(['a', 'b']);
  });

  it('publishes no figure of a site with few cases, and pooled minus the shown sites gives no small group away', () => {
    const perf = (seed: number, n: number, pos: number): Performance => {
      const r = mulberry32(seed);
      const labels = Array.from({ length: n }, (_, i) => (i < pos ? 1 : 0));
      return computePerformance(labels.map((l) => Math.fround(l === 1 ? 0.5 + r() / 2 : r() / 2)), labels);
    };
    const row = (nodeId: string | null, n: number): MetricRecord => ({ roundId: 1, nodeId, phase: 'evaluation', numExamples: n, loss: 0.4, accuracy: 0.8, auc: 0.9 });
    // The reviewer's leak.mjs: A 100 patients and 3 cases, B 100 and 30. Both are withheld.
    const two = new Map([['A', perf(1, 100, 3)], ['B', perf(2, 100, 30)]]);
    const out = withPerformance([row('A', 100), row('B', 100), row(null, 200)], two, K);
    expect(out.map((r) => r.nodeId)).toEqual([null]);
    expect(JSON.parse(out[0]!.performance!)).toMatchObject({ numExamples: 200, positives: 33 });
    // With a large third site: A and B are withheld together (33 cases), C is shown.
    const three = new Map([...two, ['C', perf(3, 400, 80)]]);
    const shown = withPerformance([row('A', 100), row('B', 100), row('C', 400), row(null, 600)], three, K);
    expect(shown.map((r) => r.nodeId)).toEqual(['C', null]);
    const pooled = JSON.parse(shown[1]!.performance!) as Performance;
    const c = JSON.parse(shown[0]!.performance!) as Performance;
    expect(pooled.positives - c.positives).toBeGreaterThanOrEqual(K);
    expect(pooled.numExamples - pooled.positives - (c.numExamples - c.positives)).toBeGreaterThanOrEqual(K);
    // A site that sent no figures keeps its metrics row (the release names it among those without figures).
    expect(withPerformance([row('C', 400), row('D', 50), row(null, 450)], new Map([['C', perf(3, 400, 80)]]), K).map((r) => [r.nodeId, r.performance === undefined])).toEqual([['C', false], ['D', true], [null, false]]);
  });
});
