/**
 * Conformance: uploads and reports — chunk_size 0, rejection trailers per reason and whether the
 * task stays open, the order of checks, duplicates (federation.proto "Errors and rejected
 * contributions", "Order of checks", RejectionReason).
 *
 * Each case gets a study of its own (one round, one clinic), so a closing rejection in one case
 * cannot affect another; all cases share one coordinator and one enrolled node.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Task__Output } from '@fedlhs/proto';
import { failure, float32Le, fromFloat32Le, sha256, type ConformanceClient, type Download, type UploadSpec } from '../src/conformance-client.js';
import { manifest, startTestCoordinator, type TestCoordinator } from './harness.js';

let c: TestCoordinator;
let node: ConformanceClient;
let other: ConformanceClient;

beforeAll(async () => {
  c = await startTestCoordinator({ perFile: true });
  node = await c.node('site-a');
  other = await c.node('site-b');
  await node.openSession();
});

/** A fresh study's TRAIN task for `node`, its model, and a good update for it (sent in one chunk, chunk_size 0). */
async function freshTask(options: { hidden?: number } = {}): Promise<{ task: Task__Output; model: Download; good: UploadSpec }> {
  const layers = [
    { class_name: 'Dense', config: { name: 'hidden', units: options.hidden ?? 3, activation: 'relu', batch_input_shape: [null, 4] } },
    { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
  ];
  const study = await c.startStudy(manifest({ layers }));
  const task = await node.task('TASK_KIND_TRAIN', 1, study.id);
  const model = await node.download({ taskId: task.taskId });
  const values = fromFloat32Le(model.payload).map((v, i) => v + (i % 2 === 0 ? 0.01 : -0.01));
  return { task, model, good: node.uploadOf(task, model, values, 0, 40) };
}

/** `u` with its payload replaced by `values` (header digest and length kept truthful unless told). */
function withValues(u: UploadSpec, values: Float32Array): UploadSpec {
  const payload = float32Le(values);
  return { ...u, chunks: [payload], totalBytes: payload.length, sha256: sha256(payload) };
}

const withNaN = (u: UploadSpec): UploadSpec => {
  const v = fromFloat32Le(Buffer.concat(u.chunks));
  v[1] = Number.NaN;
  return withValues(u, v);
};
const wrongShape = (u: UploadSpec): UploadSpec => {
  const tensors = u.tensors.map((t, i) => (i === 1 ? { ...t, shape: [t.shape[0]! + 1] } : t));
  const n = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  return { ...withValues(u, new Float32Array(n).fill(0.5)), tensors };
};

describe('chunk_size 0 (the whole payload as one data chunk)', () => {
  // A 48 KB model: 4·2000 + 2000 + 2000 + 1 float32 values.
  it('accepts an update of over 40 KB sent as one chunk with chunk_size 0', async () => {
    const { good } = await freshTask({ hidden: 2000 });
    expect(good.totalBytes).toBeGreaterThan(40_000);
    expect([good.chunkSize, good.chunks.length]).toEqual([0, 1]);
    const receipt = await node.upload(good);
    expect(receipt).toMatchObject({ taskId: good.taskId, duplicate: false, receivedBytes: good.totalBytes });
    expect(receipt.sha256.equals(good.sha256)).toBe(true);
  });

  it('rejects the same payload in two chunks with chunk_size 0 as INVALID_ARGUMENT [BAD_HEADER]', async () => {
    const { good } = await freshTask({ hidden: 2000 });
    const payload = good.chunks[0]!;
    const split = await failure(node.upload({ ...good, chunks: [payload.subarray(0, 20_000), payload.subarray(20_000)] }));
    expect(split).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_HEADER' });
  });
});

/**
 * One bad call per reason, then the good update: accepted if the reason leaves the task open,
 * FAILED_PRECONDITION afterwards if it closed the task.
 */
describe('rejections: trailers, and whether the task stays open', () => {
  const cases: { name: string; bad: (u: UploadSpec, t: Task__Output) => UploadSpec; code: string; reason: string; closes: boolean }[] = [
    { name: 'framing: a data message before the header', bad: (u) => ({ ...u, dataFirst: true }), code: 'INVALID_ARGUMENT', reason: 'BAD_HEADER', closes: false },
    { name: 'a wrong digest', bad: (u) => ({ ...u, sha256: Buffer.alloc(32, 7) }), code: 'DATA_LOSS', reason: 'DIGEST_MISMATCH', closes: false },
    { name: 'fewer bytes than total_bytes', bad: (u) => ({ ...u, chunkSize: 1048576, chunks: [u.chunks[0]!.subarray(0, u.totalBytes - 4)] }), code: 'DATA_LOSS', reason: 'LENGTH_MISMATCH', closes: false },
    { name: 'a round tag of another round', bad: (u) => ({ ...u, round: u.round + 1 }), code: 'FAILED_PRECONDITION', reason: 'STALE', closes: false },
    { name: 'another base model', bad: (u) => ({ ...u, baseModelSha256: Buffer.alloc(32, 1) }), code: 'FAILED_PRECONDITION', reason: 'STALE', closes: false },
    { name: 'header.node_id of another node', bad: (u) => ({ ...u, nodeId: other.nodeId }), code: 'PERMISSION_DENIED', reason: 'NOT_ASSIGNED', closes: false },
    { name: 'a task id that does not exist', bad: (u) => ({ ...u, taskId: 'no-such-task' }), code: 'NOT_FOUND', reason: 'UNKNOWN_TASK', closes: false },
    { name: 'a wrong tensor shape', bad: wrongShape, code: 'INVALID_ARGUMENT', reason: 'SHAPE_MISMATCH', closes: true },
    { name: 'a NaN', bad: withNaN, code: 'INVALID_ARGUMENT', reason: 'NON_FINITE', closes: true },
  ];

  it.each(cases)('$name → $code [$reason], closes the task: $closes', async ({ bad, code, reason, closes }) => {
    const { task, good } = await freshTask();
    expect(await failure(node.upload(bad(good, task)))).toMatchObject({ code, reason });
    if (closes) {
      expect(await failure(node.upload(good))).toMatchObject({ code: 'FAILED_PRECONDITION' });
    } else {
      expect(await node.upload(good)).toMatchObject({ taskId: task.taskId, duplicate: false });
    }
  });
});

describe('order of checks: the earlier check wins', () => {
  const cases: { name: string; bad: (u: UploadSpec) => UploadSpec; reason: string }[] = [
    { name: 'unknown task + NaN', bad: (u) => withNaN({ ...u, taskId: 'no-such-task' }), reason: 'UNKNOWN_TASK' },
    { name: 'foreign node_id + stale round tag', bad: (u) => ({ ...u, nodeId: other.nodeId, round: u.round + 1 }), reason: 'NOT_ASSIGNED' },
    { name: 'stale round tag + wrong shape', bad: (u) => ({ ...wrongShape(u), round: u.round + 1 }), reason: 'STALE' },
    { name: 'wrong shape + NaN', bad: (u) => withNaN(wrongShape(u)), reason: 'SHAPE_MISMATCH' },
    { name: 'wrong shape + other base model', bad: (u) => ({ ...wrongShape(u), baseModelSha256: Buffer.alloc(32, 1) }), reason: 'SHAPE_MISMATCH' },
    { name: 'NaN + wrong digest', bad: (u) => ({ ...withNaN(u), sha256: Buffer.alloc(32, 7) }), reason: 'NON_FINITE' },
  ];
  it.each(cases)('$name → $reason', async ({ bad, reason }) => {
    const { good } = await freshTask();
    expect((await failure(node.upload(bad(good)))).reason).toBe(reason);
  });
});

describe('metrics', () => {
  it('impossible train_metrics are INVALID_ARGUMENT [INVALID_METRICS]', async () => {
    const { good } = await freshTask();
    const f = await failure(node.upload({ ...good, trainMetrics: { numExamples: 40, loss: Number.NaN, accuracy: 0.5 } }));
    expect(f).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS', errorCode: 'INVALID_METRICS' });
  });

  it('ReportEvaluation with loss NaN or accuracy out of [0, 1] is INVALID_ARGUMENT [INVALID_METRICS]', async () => {
    const { task, good } = await freshTask();
    await node.upload(good);
    const evaluate = await node.task('TASK_KIND_EVALUATE', 1, task.studyId);
    const report = { taskId: evaluate.taskId, studyId: evaluate.studyId, round: evaluate.round };
    const nan = await failure(node.reportEvaluation({ ...report, metrics: { numExamples: 10, loss: Number.NaN, accuracy: 0.5 } }));
    expect(nan).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS' });
    for (const accuracy of [1.5, -0.1]) {
      expect(await failure(node.reportEvaluation({ ...report, metrics: { numExamples: 10, loss: 0.5, accuracy } }))).toMatchObject({ reason: 'INVALID_METRICS' });
    }
  });
});

describe('duplicates', () => {
  it('the identical update again is OK duplicate=true; a different one is ALREADY_EXISTS [DUPLICATE_CONFLICT]', async () => {
    const { good } = await freshTask();
    const first = await node.upload(good);
    const again = await node.upload(good);
    expect(again).toMatchObject({ duplicate: true, receivedBytes: good.totalBytes });
    expect(again.sha256.equals(first.sha256)).toBe(true);
    const changed = withValues(good, fromFloat32Le(good.chunks[0]!).map((v) => v * 2));
    expect(await failure(node.upload(changed))).toMatchObject({ code: 'ALREADY_EXISTS', reason: 'DUPLICATE_CONFLICT' });
  });

  it('the identical evaluation report again is OK duplicate=true', async () => {
    const { task, good } = await freshTask();
    await node.upload(good);
    const evaluate = await node.task('TASK_KIND_EVALUATE', 1, task.studyId);
    const report = { taskId: evaluate.taskId, studyId: evaluate.studyId, round: evaluate.round, metrics: { numExamples: 10, loss: 0.5, accuracy: 0.6, auc: 0.7 } };
    expect(await node.reportEvaluation(report)).toEqual({ taskId: evaluate.taskId, duplicate: false });
    expect(await node.reportEvaluation(report)).toEqual({ taskId: evaluate.taskId, duplicate: true });
  });
});

describe('statistics', () => {
  it('rows is the training split: statistics with rows 120, then an update with num_examples 120, are accepted', async () => {
    const study = await c.startStudy(manifest({ normalization: 'federated-zscore' }));
    const stats = (await node.next((m) => m.task?.kind === 'TASK_KIND_STATISTICS' && m.task.studyId === study.id)).task!;
    const feature = (name: string, mean: number) => ({ name, count: 120, sum: 120 * mean, sumOfSquares: 120 * (mean * mean + 1), missing: 0, suppressed: false, histogram: [], histogramMin: 0, histogramMax: 0, missingSuppressed: false });
    const report = { taskId: stats.taskId, studyId: study.id, round: stats.round, rows: 120, positives: 50, suppressed: false, features: ['x0', 'x1', 'x2', 'x3'].map((n, i) => feature(n, i)) };
    expect(await node.reportStatistics(report)).toEqual({ taskId: stats.taskId, duplicate: false });
    expect(await node.reportStatistics(report)).toEqual({ taskId: stats.taskId, duplicate: true });
    const task = await node.task('TASK_KIND_TRAIN', 1, study.id);
    expect(JSON.parse(task.parametersJson)).toMatchObject({ normalization: { method: 'zscore' } });
    const model = await node.download({ taskId: task.taskId });
    const values = fromFloat32Le(model.payload).map((v) => v + 0.01);
    expect(await node.upload(node.uploadOf(task, model, values, 0, 120))).toMatchObject({ duplicate: false });
  }, 60_000);
});
