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
    expect(split).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_HEADER', errorCode: 'BAD_HEADER', taskOpen: 'true' });
    // Framing does not close the task: the same payload sent correctly passes.
    expect(await node.upload(good)).toMatchObject({ duplicate: false });
  });
});

/**
 * One bad call per reason, then the good update: accepted if the reason leaves the task open,
 * FAILED_PRECONDITION [TASK_CLOSED] afterwards if it closed the task. Every rejection carries
 * fedlhs-error-code (its reason) and fedlhs-task-open: "true" when a corrected call may pass,
 * "false" when the task is closed, not the caller's, or not named (no header first).
 */
describe('rejections: trailers, and whether the task stays open', () => {
  const cases: { name: string; bad: (u: UploadSpec, t: Task__Output) => UploadSpec; code: string; reason: string; closes: boolean; open: 'true' | 'false' }[] = [
    { name: 'framing: a data message before the header', bad: (u) => ({ ...u, dataFirst: true }), code: 'INVALID_ARGUMENT', reason: 'BAD_HEADER', closes: false, open: 'false' },
    { name: 'a wrong digest', bad: (u) => ({ ...u, sha256: Buffer.alloc(32, 7) }), code: 'DATA_LOSS', reason: 'DIGEST_MISMATCH', closes: false, open: 'true' },
    { name: 'fewer bytes than total_bytes', bad: (u) => ({ ...u, chunkSize: 1048576, chunks: [u.chunks[0]!.subarray(0, u.totalBytes - 4)] }), code: 'DATA_LOSS', reason: 'LENGTH_MISMATCH', closes: false, open: 'true' },
    { name: 'a round tag of another round', bad: (u) => ({ ...u, round: u.round + 1 }), code: 'FAILED_PRECONDITION', reason: 'STALE', closes: false, open: 'true' },
    { name: 'another base model', bad: (u) => ({ ...u, baseModelSha256: Buffer.alloc(32, 1) }), code: 'FAILED_PRECONDITION', reason: 'STALE', closes: false, open: 'true' },
    { name: 'header.node_id of another node', bad: (u) => ({ ...u, nodeId: other.nodeId }), code: 'PERMISSION_DENIED', reason: 'NOT_ASSIGNED', closes: false, open: 'true' },
    { name: 'a task id that does not exist', bad: (u) => ({ ...u, taskId: 'no-such-task' }), code: 'NOT_FOUND', reason: 'UNKNOWN_TASK', closes: false, open: 'false' },
    { name: 'a wrong tensor shape', bad: wrongShape, code: 'INVALID_ARGUMENT', reason: 'SHAPE_MISMATCH', closes: true, open: 'false' },
    { name: 'a NaN', bad: withNaN, code: 'INVALID_ARGUMENT', reason: 'NON_FINITE', closes: true, open: 'false' },
    { name: 'num_examples 0', bad: (u) => ({ ...u, numExamples: 0 }), code: 'INVALID_ARGUMENT', reason: 'BAD_EXAMPLE_COUNT', closes: true, open: 'false' },
    { name: 'impossible train_metrics', bad: (u) => ({ ...u, trainMetrics: { numExamples: 40, loss: -1, accuracy: 0.5 } }), code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS', closes: true, open: 'false' },
  ];

  it.each(cases)('$name → $code [$reason], closes the task: $closes', async ({ bad, code, reason, closes, open }) => {
    const { task, good } = await freshTask();
    expect(await failure(node.upload(bad(good, task)))).toMatchObject({ code, reason, errorCode: reason, taskOpen: open });
    if (closes) {
      expect(await failure(node.upload(good))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TASK_CLOSED', errorCode: 'TASK_CLOSED', taskOpen: 'false' });
    } else {
      expect(await node.upload(good)).toMatchObject({ taskId: task.taskId, duplicate: false });
    }
  });

  it('a call for a task of another node is NOT_ASSIGNED with fedlhs-task-open "false"', async () => {
    const { good } = await freshTask();
    expect(await failure(other.upload({ ...good, nodeId: other.nodeId }))).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NOT_ASSIGNED', taskOpen: 'false' });
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

  it.each([
    ['loss NaN', { numExamples: 10, loss: Number.NaN, accuracy: 0.5 }],
    ['accuracy 1.5', { numExamples: 10, loss: 0.5, accuracy: 1.5 }],
    ['accuracy -0.1', { numExamples: 10, loss: 0.5, accuracy: -0.1 }],
  ])('ReportEvaluation with %s is INVALID_ARGUMENT [INVALID_METRICS], which closes the task', async (_name, metrics) => {
    const { task, good } = await freshTask();
    await node.upload(good);
    const evaluate = await node.task('TASK_KIND_EVALUATE', 1, task.studyId);
    const report = { taskId: evaluate.taskId, studyId: evaluate.studyId, round: evaluate.round };
    expect(await failure(node.reportEvaluation({ ...report, metrics }))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS', taskOpen: 'false' });
    // Closed: the order of checks puts TASK_CLOSED (8) before the metrics (11).
    expect(await failure(node.reportEvaluation({ ...report, metrics: { ...metrics, loss: 0.5, accuracy: 0.5 } }))).toMatchObject({ reason: 'TASK_CLOSED' });
  });

  it('ReportEvaluation without metrics is INVALID_ARGUMENT [INVALID_METRICS], which closes the task', async () => {
    const { task, good } = await freshTask();
    await node.upload(good);
    const evaluate = await node.task('TASK_KIND_EVALUATE', 1, task.studyId);
    const report = { taskId: evaluate.taskId, studyId: evaluate.studyId, round: evaluate.round };
    expect(await failure(node.reportEvaluation(report))).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS', errorCode: 'INVALID_METRICS', taskOpen: 'false' });
    const closed = await failure(node.reportEvaluation({ ...report, metrics: { numExamples: 10, loss: 0.5, accuracy: 0.6 } }));
    expect(closed).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TASK_CLOSED', taskOpen: 'false' });
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

  it('the identical evaluation report again is OK duplicate=true; a different one is ALREADY_EXISTS [DUPLICATE_CONFLICT]', async () => {
    const { task, good } = await freshTask();
    await node.upload(good);
    const evaluate = await node.task('TASK_KIND_EVALUATE', 1, task.studyId);
    const report = { taskId: evaluate.taskId, studyId: evaluate.studyId, round: evaluate.round, metrics: { numExamples: 10, loss: 0.5, accuracy: 0.6, auc: 0.7 } };
    expect(await node.reportEvaluation(report)).toEqual({ taskId: evaluate.taskId, duplicate: false });
    expect(await node.reportEvaluation(report)).toEqual({ taskId: evaluate.taskId, duplicate: true });
    const changed = await failure(node.reportEvaluation({ ...report, metrics: { ...report.metrics, accuracy: 0.61 } }));
    expect(changed).toMatchObject({ code: 'ALREADY_EXISTS', reason: 'DUPLICATE_CONFLICT', errorCode: 'DUPLICATE_CONFLICT', taskOpen: 'false' });
    // The accepted report stands.
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

  it('num_examples above the rows this node reported is INVALID_ARGUMENT [BAD_EXAMPLE_COUNT], which closes the task', async () => {
    const study = await c.startStudy(manifest({ normalization: 'federated-zscore' }));
    const stats = (await node.next((m) => m.task?.kind === 'TASK_KIND_STATISTICS' && m.task.studyId === study.id)).task!;
    const feature = (name: string, mean: number) => ({ name, count: 120, sum: 120 * mean, sumOfSquares: 120 * (mean * mean + 1), missing: 0, suppressed: false, histogram: [], histogramMin: 0, histogramMax: 0, missingSuppressed: false });
    const report = { taskId: stats.taskId, studyId: study.id, round: stats.round, rows: 120, positives: 50, suppressed: false, features: ['x0', 'x1', 'x2', 'x3'].map((n, i) => feature(n, i)) };
    expect(await node.reportStatistics(report)).toEqual({ taskId: stats.taskId, duplicate: false });
    // A different report for the accepted task is a conflict; the accepted one stands.
    expect(await failure(node.reportStatistics({ ...report, positives: 51 }))).toMatchObject({ code: 'ALREADY_EXISTS', reason: 'DUPLICATE_CONFLICT', taskOpen: 'false' });
    const task = await node.task('TASK_KIND_TRAIN', 1, study.id);
    const model = await node.download({ taskId: task.taskId });
    const values = fromFloat32Le(model.payload).map((v) => v + 0.01);
    const over = await failure(node.upload(node.uploadOf(task, model, values, 0, 121)));
    expect(over).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_EXAMPLE_COUNT', errorCode: 'BAD_EXAMPLE_COUNT', taskOpen: 'false' });
    expect(await failure(node.upload(node.uploadOf(task, model, values, 0, 120)))).toMatchObject({ reason: 'TASK_CLOSED' });
  }, 60_000);
});
