import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTestPart, pairedAucDifference, releasePolicy, sha256Hex, validateManifest, computePerformance, type Normalization, type StudyManifest } from '@fedlhs/core';
import { createModelRuntime, initBackend } from '@fedlhs/model';
import type { Task__Output } from '@fedlhs/proto';
import { readFlatTable } from '@fedlhs/ehr';
import { AgentState } from '../agent-state.js';
import { LocalData } from '../local-data.js';
import { ReleaseFetcher } from '../releases/fetch.js';
import { buildRelease, fakeClient, listed, releaseKeyPair, testManifest, writeKept, writeTestCsv, type TestRelease } from '../releases/test-support.js';
import type { TaskContext } from '../task-runner.js';
import { championMismatch, type ReleaseAccess } from './champion.js';
import { evaluateTask } from './evaluate.js';

/*
 * The evaluate task of a series run with a champion, with real TF.js models, a real CSV export
 * and a real signed release: the champion is scored with its own normalisation on the very test
 * patients the task's model was scored on, and the comparison is pairedAucDifference of the two
 * models' scores. A champion that is missing or whose weights do not match gives no comparison
 * and a warning, and the evaluation is still sent.
 */

const CHAMPION_WEIGHTS = [1.2, -0.8, 0.5, -0.2];
const TASK_WEIGHTS = [0.9, -0.3, 0.05, 0.1];
/** The run's federated normalisation (the champion's release.json has mean 0, std 1). */
const RUN_NORMALIZATION: Normalization = { method: 'zscore', features: ['x1', 'x2', 'x3'].map((name) => ({ name, mean: 0.5, std: 2, impute: 0.5 })) };

let root: string;
let csv: string;
let keys: ReturnType<typeof releaseKeyPair>;
let champion: TestRelease;

beforeAll(async () => {
  await initBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'fedlhs-eval-champion-'));
  csv = join(root, 'export.csv');
  writeTestCsv(csv, 600, 3);
  keys = releaseKeyPair();
  champion = buildRelease({ studyName: 'lhs', version: 1, privateKey: keys.privateKey, weights: CHAMPION_WEIGHTS });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function runManifest(weightsSha256: string): StudyManifest {
  return validateManifest({ ...testManifest('lhs'), series: { name: 'lhs', run: 2, templateSha256: 'a'.repeat(64), champion: { version: 1, weightsSha256 } } });
}

let dirs = 0;
/** A context with real data, a real runtime holding TASK_WEIGHTS, and a release fetcher over a fake coordinator. */
async function context(m: StudyManifest, o: { kept: boolean; listed: boolean }) {
  const stateDir = join(root, `state-${dirs++}`);
  const state = new AgentState(stateDir);
  if (o.kept) writeKept(stateDir, champion);
  const data = new LocalData({ format: 'flat-table', path: csv, keyColumn: 'record_id', minCohort: 1 });
  const runtime = await createModelRuntime({ topology: m.model.topology, loss: m.training.loss, optimizer: m.training.optimizer });
  runtime.setWeights(Float32Array.from(TASK_WEIGHTS));
  const { client, calls } = fakeClient({ releases: () => (o.listed ? [listed(champion, ['champion'])] : []), served: (_n, _v, file) => Buffer.from(champion.files[file as keyof typeof champion.files]) });
  const log = { info: () => undefined, warn: (x: unknown) => void warnings.push(x), error: () => undefined, debug: () => undefined, child: () => log };
  const warnings: unknown[] = [];
  const fetcher = new ReleaseFetcher({ stateDir, state, client, credential: 'secret', releaseKey: keys.pinned, coordinator: 'coordinator:1', log: log as never });
  const releases: ReleaseAccess = { pinnedPem: keys.pinned.publicPem, fetchRelease: (n, v) => fetcher.fetchRelease(n, v) };
  const requests: Record<string, unknown>[] = [];
  const ctx = {
    manifest: m, log, config: { stateDir, coordinator: { address: 'coordinator:1' } }, state, credential: { credential: 'secret' }, data, releases,
    clients: { federation: { ReportEvaluation: (req: Record<string, unknown>, _md: unknown, _opts: unknown, cb: (err: null, r: unknown) => void) => { requests.push(req); cb(null, { duplicate: false }); } } },
    withRetry: <T>(_what: string, call: () => Promise<T>) => call(),
    loadModel: async () => ({ data: await data.prepared(m, RUN_NORMALIZATION), runtime }),
  } as unknown as TaskContext;
  return { ctx, state, requests, warnings, calls, runtime };
}

/** The export's hold-out test part (as the agent splits it), and both models' scores on it computed here in float64. */
async function expectedScores(m: StudyManifest) {
  const table = await readFlatTable(csv, { features: ['x1', 'x2', 'x3'], label: 'label', keyColumn: 'record_id' });
  const { testFraction } = releasePolicy(m);
  const { isHoldout } = await import('@fedlhs/core');
  const rows = table.keys.flatMap((k, i) => (isHoldout(k, m.seed, m.data.holdoutFraction) && isTestPart(k, m.seed, testFraction) ? [i] : []));
  const score = (w: number[], scale: (v: number) => number) => Float64Array.from(rows, (i) => {
    let z = w[3]!;
    for (let j = 0; j < 3; j++) z += w[j]! * scale(table.x[i * 3 + j]!);
    return 1 / (1 + Math.exp(-z));
  });
  return {
    labels: Float64Array.from(rows, (i) => table.y[i]!),
    task: score(TASK_WEIGHTS, (v) => (v - 0.5) / 2),
    champion: score(CHAMPION_WEIGHTS, (v) => v),
  };
}

const task = (round: number) => ({ taskId: `t-${round}`, studyId: 'st-lhs-2', round }) as Task__Output;

describe('evaluate task with a series champion', () => {
  it('scores a kept champion on the same test patients and reports the paired comparison', async () => {
    const m = runManifest(sha256Hex(champion.files['weights.bin']));
    const { ctx, requests, warnings, state, calls, runtime } = await context(m, { kept: true, listed: false });
    await evaluateTask.run(task(1), ctx);
    runtime.dispose();
    expect(warnings).toEqual([]);
    expect(calls.list).toBe(0);
    const request = requests[0] as { test: { numExamples: number }; comparisons: { studyName: string; version: number; test: { numExamples: number; auc: number; brier: number }; aucDifference: number; aucDifferenceStandardError: number }[] };
    expect(request.comparisons).toHaveLength(1);
    const c = request.comparisons[0]!;
    const expected = await expectedScores(m);
    expect(expected.labels.length).toBeGreaterThan(100);
    expect(c.studyName).toBe('lhs');
    expect(c.version).toBe(1);
    expect(c.test.numExamples).toBe(request.test.numExamples);
    expect(c.test.numExamples).toBe(expected.labels.length);
    const paired = pairedAucDifference(expected.task, expected.champion, expected.labels);
    expect(paired.difference).toBeDefined();
    expect(Math.abs(paired.difference!)).toBeGreaterThan(0.001);
    expect(c.aucDifference).toBeCloseTo(paired.difference!, 6);
    expect(c.aucDifferenceStandardError).toBeCloseTo(paired.standardError!, 6);
    // The champion's own normalisation: its Brier score (not only its ranking) is that of its scores.
    const championFigures = computePerformance(expected.champion, expected.labels);
    expect(c.test.auc).toBeCloseTo(championFigures.auc!, 6);
    expect(c.test.brier).toBeCloseTo(championFigures.brier, 5);
    // What left is in the audit log, and it is aggregates only.
    const sent = state.readAudit().filter((a) => a.event === 'evaluation_sent');
    expect(sent.map((a) => a.sent)).toEqual([{ evaluationReport: request }, { evaluationReport: request }]);
    expect(JSON.stringify(request)).not.toMatch(/p3-/);
  });

  it('rounds the champion\'s counts as the manifest rounds every count that leaves (privacy.counts)', async () => {
    const exact = runManifest(sha256Hex(champion.files['weights.bin']));
    const m = validateManifest({ ...exact, data: { ...exact.data, normalization: 'local-zscore' }, privacy: { counts: { disclosure: 'rounded', roundTo: 7 } } });
    const { ctx, requests, runtime } = await context(m, { kept: true, listed: false });
    await evaluateTask.run(task(1), ctx);
    runtime.dispose();
    const request = requests[0] as { test: { numExamples: number; positives: number }; comparisons: { test: { numExamples: number; positives: number; calibration: unknown[] } }[] };
    const expected = await expectedScores(m);
    const c = request.comparisons[0]!;
    expect(expected.labels.length % 7).not.toBe(0);
    expect(c.test.numExamples % 7).toBe(0);
    expect(c.test.positives % 7).toBe(0);
    expect(c.test.numExamples).toBe(request.test.numExamples);
    expect(c.test.positives).toBe(request.test.positives);
    expect(c.test.calibration).toEqual([]);
  });

  it('fetches and verifies a champion that is not kept yet', async () => {
    const m = runManifest(sha256Hex(champion.files['weights.bin']));
    const { ctx, requests, warnings, calls, runtime } = await context(m, { kept: false, listed: true });
    await evaluateTask.run(task(1), ctx);
    runtime.dispose();
    expect(warnings).toEqual([]);
    expect(calls.download).toHaveLength(5);
    expect((requests[0] as { comparisons: unknown[] }).comparisons).toHaveLength(1);
  });

  it('sends no comparison, and warns naming the mismatch, when the champion\'s weights are not the manifest\'s', async () => {
    const m = runManifest('b'.repeat(64));
    const { ctx, requests, warnings, runtime, state } = await context(m, { kept: true, listed: false });
    await evaluateTask.run(task(1), ctx);
    runtime.dispose();
    expect(requests).toHaveLength(1);
    expect(requests[0]).not.toHaveProperty('comparisons');
    expect(requests[0]).toHaveProperty('test');
    expect(warnings).toEqual([{ event: 'evaluation.champion_unavailable', champion: 'lhs v1', reason: expect.stringContaining(`names champion weights ${'b'.repeat(64)}`) }]);
    // A champion that does not verify is in the clinic's audit log, not only a log line.
    expect(state.readAudit().filter((e) => e.event === 'champion_unavailable')).toEqual([
      expect.objectContaining({ round: 1, outcome: expect.stringMatching(/^lhs v1: .*names champion weights b{64}/) }),
    ]);
  });

  it('sends no comparison, and warns, when the champion cannot be obtained', async () => {
    const m = runManifest(sha256Hex(champion.files['weights.bin']));
    const { ctx, requests, warnings, runtime } = await context(m, { kept: false, listed: false });
    await evaluateTask.run(task(1), ctx);
    runtime.dispose();
    expect(requests).toHaveLength(1);
    expect(requests[0]).not.toHaveProperty('comparisons');
    expect(warnings).toEqual([{ event: 'evaluation.champion_unavailable', champion: 'lhs v1', reason: expect.stringContaining('does not list release lhs v1') }]);
  });

  it('refuses to compare with a champion whose released round may have been chosen on this run\'s test patients (another test fraction)', () => {
    const run = runManifest('c'.repeat(64));
    const champion = validateManifest({ ...testManifest('lhs'), release: { testFraction: 0.3 } });
    expect(championMismatch(run, champion)).toMatch(/its test fraction \(0\.3\) is not this run's \(0\.5\)/);
    expect(championMismatch(run, validateManifest(testManifest('lhs')))).toBeUndefined();
  });
});
