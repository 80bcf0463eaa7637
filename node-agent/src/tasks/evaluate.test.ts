import { describe, expect, it } from 'vitest';
import { loadFedlhsProto } from '@fedlhs/proto';
import { checkPerformance, computePerformance, isTestPart, releasePolicy, rocAuc, validateManifest, type StudyManifest } from '@fedlhs/core';
import type { Task__Output } from '@fedlhs/proto';
import type { AuditEntry } from '../agent-state.js';
import type { TaskContext } from '../task-runner.js';
import { evaluateTask } from './evaluate.js';

/*
 * The evaluate task in process with a fake context and runtime: the hold-out split is divided by
 * isTestPart, the metrics come from the validation part only, both parts' figures are sent,
 * and the audit entry's `sent` is exactly the request.
 */

function manifest(testFraction?: number): StudyManifest {
  return validateManifest({
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'eval-split', seed: 42,
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 1] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 1, clients: { min: 1, max: 1, quorum: 1 }, deadlines: { roundSeconds: 60, evaluationSeconds: 30 },
    data: { featureSpec: 'flat-table/v1', features: ['x'], label: 'y' }, aggregation: { strategy: 'fedavg' },
    ...(testFraction === undefined ? {} : { release: { testFraction } }),
  });
}

/** A hold-out split of n rows whose single feature is the risk the fake model returns. */
function holdout(n: number) {
  const x = Float32Array.from({ length: n }, (_, i) => Math.fround(((i * 37) % 100) / 100));
  const y = Float32Array.from(x, (p, i) => (i % 3 === 0 ? 1 - Math.round(p) : Math.round(p)));
  return { x, y, rows: n, keys: Array.from({ length: n }, (_, i) => `patient-${i}`) };
}

function context(m: StudyManifest, data: ReturnType<typeof holdout>) {
  const audits: AuditEntry[] = [];
  const requests: unknown[] = [];
  const warnings: unknown[] = [];
  const evaluated: Float32Array[] = [];
  const runtime = {
    evaluate: async (x: Float32Array, y: Float32Array) => {
      evaluated.push(x);
      return { numExamples: y.length, loss: 0.5, accuracy: 0.6, auc: rocAuc(x, y) };
    },
    predict: async (x: Float32Array) => Float32Array.from(x),
  };
  const log = { info: () => undefined, warn: (o: unknown) => void warnings.push(o), error: () => undefined, debug: () => undefined };
  const ctx = {
    manifest: m, log, config: { coordinator: { address: 'coordinator:1' } },
    state: { audit: (e: AuditEntry) => void audits.push(e) },
    credential: { credential: 'secret' },
    clients: { federation: { ReportEvaluation: (req: unknown, _md: unknown, _opts: unknown, cb: (err: null, r: unknown) => void) => { requests.push(req); cb(null, { duplicate: false }); } } },
    withRetry: <T>(_what: string, call: () => Promise<T>) => call(),
    loadModel: async () => ({ data: { train: { x: new Float32Array(0), y: new Float32Array(0), rows: 0 }, holdout: data }, runtime }),
  } as unknown as TaskContext;
  return { ctx, audits, requests, warnings, evaluated };
}

const task = (studyId: string, round: number) => ({ taskId: `t-${studyId}-${round}`, studyId, round }) as Task__Output;

describe('evaluate task', () => {
  it('reports metrics on the validation part and figures on both parts, exactly as audited', async () => {
    const m = manifest();
    const data = holdout(400);
    const { ctx, audits, requests, evaluated } = context(m, data);
    await evaluateTask.run(task('s1', 1), ctx);
    const inTest = data.keys.map((k) => isTestPart(k, m.seed, releasePolicy(m).testFraction));
    const pick = (test: boolean) => ({ x: data.x.filter((_, i) => inTest[i] === test), y: data.y.filter((_, i) => inTest[i] === test) });
    const validation = pick(false);
    const test = pick(true);
    expect(validation.y.length).toBeGreaterThan(150);
    expect(test.y.length).toBeGreaterThan(150);
    expect(evaluated).toEqual([validation.x]);
    const request = requests[0] as { metrics: { numExamples: number }; validation: unknown; test: unknown };
    expect(request.metrics.numExamples).toBe(validation.y.length);
    const wire = (p: ReturnType<typeof computePerformance>) => JSON.parse(JSON.stringify(p));
    expect(request.validation).toEqual(wire(computePerformance(validation.x, validation.y)));
    expect(request.test).toEqual(wire(computePerformance(test.x, test.y)));
    expect(audits.map((a) => a.outcome)).toEqual(['sending', 'accepted']);
    for (const a of audits) expect(a.sent).toEqual({ evaluationReport: request });
    // No key leaves: the request holds aggregates only.
    expect(JSON.stringify(request)).not.toContain('patient-');
    // Through the wire encoding, the figures pass the coordinator's check unchanged.
    const rpc = loadFedlhsProto().fedlhs.v1.Federation.service.ReportEvaluation;
    const decoded = rpc.requestDeserialize(rpc.requestSerialize(request as never)) as unknown as { validation: never; test: never };
    expect(checkPerformance(decoded.test, 'test')).toEqual(computePerformance(test.x, test.y));
    expect(checkPerformance(decoded.validation, 'validation')).toEqual(computePerformance(validation.x, validation.y));
  });

  it('sends no test figures for an empty test part, and says why once per study', async () => {
    // One hold-out record, in the validation part: the test part is empty.
    const m = manifest(0.01);
    const data = holdout(200);
    const keep = data.keys.map((k) => !isTestPart(k, m.seed, 0.01));
    const only = { x: data.x.filter((_, i) => keep[i]), y: data.y.filter((_, i) => keep[i]), keys: data.keys.filter((_, i) => keep[i]), rows: keep.filter(Boolean).length };
    const { ctx, requests, warnings, audits } = context(m, only);
    await evaluateTask.run(task('s2', 1), ctx);
    await evaluateTask.run(task('s2', 2), ctx);
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(r).not.toHaveProperty('test');
    expect(requests[0]).toHaveProperty('validation');
    expect(warnings).toEqual([{ event: 'evaluation.part_without_figures', part: 'test' }]);
    expect(audits[0]!.sent).toEqual({ evaluationReport: requests[0] });
  });

  it('refuses to report metrics on an empty validation part (never on the test part)', async () => {
    const m = manifest(0.99);
    const data = holdout(200);
    const inTest = data.keys.map((k) => isTestPart(k, m.seed, 0.99));
    const only = { x: data.x.filter((_, i) => inTest[i]), y: data.y.filter((_, i) => inTest[i]), keys: data.keys.filter((_, i) => inTest[i]), rows: inTest.filter(Boolean).length };
    const { ctx, requests } = context(m, only);
    await expect(evaluateTask.run(task('s3', 1), ctx)).rejects.toMatchObject({ code: 'DATA_NOT_READY', message: expect.stringContaining('validation part of the hold-out split is empty') });
    expect(requests).toEqual([]);
  });
});
