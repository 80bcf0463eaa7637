import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest } from '@fedlhs/testing';
import { RogueNode, enrolOverProtocol, rejection, startCoordinator, startStudy, waitForStudyEnd, type CoordinatorHandle, type CoordinatorStartOptions } from '@fedlhs/tests';
import { ConformanceClient, failure } from '../src/conformance-client.js';
import { useWorkspace } from './helpers.js';

/**
 * Issue 11, "Claims are checked": what a node says about its update (num_examples, metrics)
 * is bounded, revocation ends its calls, and an upload that stops or breaks is recorded as what
 * it was. Protocol-level clients (rogue nodes written against the .proto) play the clinics.
 */
const ws = useWorkspace();

/**
 * FEDLHS_COORDINATOR_MAIN runs these tests against another coordinator build, e.g. the code
 * before issue 11, to see each of them fail there (its `serve` ignores the arguments after it).
 */
const otherMain = process.env.FEDLHS_COORDINATOR_MAIN;

async function coordinator(env: Record<string, string> = {}): Promise<CoordinatorHandle> {
  const options: CoordinatorStartOptions = { dataDir: join(ws.dir(), 'coordinator'), env, ...(otherMain === undefined ? {} : { main: otherMain }) };
  return ws.track(await startCoordinator(options));
}

async function rogue(c: CoordinatorHandle, site: string, trainingRows?: number): Promise<RogueNode> {
  const { token } = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 })).body;
  const creds = await enrolOverProtocol(c.address, token, site);
  const node = new RogueNode(c.address, creds.nodeId, creds.nodeCredential, trainingRows === undefined ? {} : { trainingRows });
  await node.connect();
  return node;
}

/** The node's TRAIN task of round 1, its model and a plausible update of it (nudged by `k`). */
async function trainOf(node: RogueNode, studyId: string, k: number) {
  const task = await node.trainTask(1, studyId);
  const model = await node.download(task.taskId);
  const weights = Float32Array.from(model.weights, (v, i) => v + (i % 2 === 0 ? 1e-3 : -1e-3) * k);
  return { taskId: task.taskId, studyId, round: 1, nodeId: node.nodeId, baseModelSha256: task.modelSha256, specs: model.specs, weights };
}

describe('claims a node makes are checked (issue 11)', () => {
  it('bounds num_examples by the training rows the clinic stated and limits.maxExamplesPerUpdate', async () => {
    const c = await coordinator({ FEDLHS_LIMITS_MAX_EXAMPLES_PER_UPDATE: '500' });
    const liar = await rogue(c, 'liar', 200);
    const silent = await rogue(c, 'silent', 0);
    const greedy = await rogue(c, 'greedy', 100_000);
    const honest = await rogue(c, 'honest', 200);
    const study = await startStudy(c, learnableManifest({ rounds: 1, min: 4, max: 4, quorum: 1 }));
    try {
      // 2^53 - 1 examples would own the weighted average: more than the 200 rows it declared.
      const owned = await rejection(liar.upload({ ...(await trainOf(liar, study.id, 1)), numExamples: Number.MAX_SAFE_INTEGER, trainMetrics: null }));
      expect(owned).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_EXAMPLE_COUNT' });
      expect(owned.details).toBe('num_examples 9007199254740991 exceeds the 200 training rows this node declared READY with (StudyReadiness.training_rows)');
      const unstated = await rejection(silent.upload({ ...(await trainOf(silent, study.id, 2)), numExamples: 50 }));
      expect(unstated).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_EXAMPLE_COUNT' });
      expect(unstated.details).toMatch(/^this node did not state its training rows for study /);
      const capped = await rejection(greedy.upload({ ...(await trainOf(greedy, study.id, 3)), numExamples: 501, trainMetrics: null }));
      expect(capped).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'BAD_EXAMPLE_COUNT', details: 'num_examples 501 exceeds limits.maxExamplesPerUpdate (500)' });
      expect((await honest.upload({ ...(await trainOf(honest, study.id, 4)), numExamples: 200 })).duplicate).toBe(false);

      const detail = await waitForStudyEnd(c, study.id);
      expect(detail.state).toBe('COMPLETED');
      const byNode = (n: RogueNode) => detail.contributions.filter((x) => x.nodeId === n.nodeId).map((x) => ({ accepted: x.accepted, reasonCode: x.reasonCode }));
      for (const n of [liar, silent, greedy]) expect(byNode(n)).toEqual([{ accepted: false, reasonCode: 'BAD_EXAMPLE_COUNT' }]);
      expect(byNode(honest)).toEqual([{ accepted: true, reasonCode: null }]);
      expect(detail.rounds.find((r) => r.round === 1 && r.state === 'COMMITTED')).toBeDefined();
    } finally {
      for (const n of [liar, silent, greedy, honest]) n.close();
    }
  });

  it('refuses implausible metrics, and the global metric stays finite', async () => {
    const c = await coordinator();
    const nodes: ConformanceClient[] = [];
    for (const site of ['a', 'b']) {
      const { token } = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 })).body;
      const creds = await enrolOverProtocol(c.address, token, site);
      const node = new ConformanceClient(c.address, creds.nodeId, creds.nodeCredential);
      await node.openSession();
      nodes.push(node);
    }
    const [a, b] = nodes as [ConformanceClient, ConformanceClient];
    try {
      const study = await startStudy(c, learnableManifest({ rounds: 1, min: 2, max: 2, quorum: 2 }));
      for (const [i, node] of nodes.entries()) {
        const task = await node.task('TASK_KIND_TRAIN', 1, study.id);
        const model = await node.download({ taskId: task.taskId });
        const values = new Float32Array(model.payload.length / 4).fill(0.01 * (i + 1));
        await node.upload(node.uploadOf(task, model, values, 0, 100));
      }
      const evaluate = (node: ConformanceClient) => node.task('TASK_KIND_EVALUATE', 1, study.id);
      const [ea, eb] = await Promise.all([evaluate(a), evaluate(b)]);
      // A finite loss, but no measurement: once it made the stored global loss Infinity.
      const huge = await failure(a.reportEvaluation({ taskId: ea.taskId, studyId: study.id, round: 1, metrics: { numExamples: 100, loss: 1.7e308, accuracy: 0.5 } }));
      expect(huge).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'INVALID_METRICS', details: 'metric loss (1.7e+308) is out of range (0 to 1000000)', taskOpen: 'false' });
      await b.reportEvaluation({ taskId: eb.taskId, studyId: study.id, round: 1, metrics: { numExamples: 100, loss: 0.5, accuracy: 0.6 } });

      const detail = await waitForStudyEnd(c, study.id);
      expect(detail.state).toBe('COMPLETED');
      const global = detail.metrics.find((m) => m.round === 1 && m.phase === 'evaluation' && m.nodeId === null);
      expect(global).toMatchObject({ numExamples: 100, loss: 0.5, accuracy: 0.6 });
    } finally {
      for (const n of nodes) n.close();
    }
  });

  it('a node revoked during its upload: the call ends UNAUTHENTICATED and what it sends later never counts', async () => {
    const c = await coordinator();
    const victim = await rogue(c, 'victim');
    const honest = await rogue(c, 'honest');
    try {
      const study = await startStudy(c, learnableManifest({ rounds: 1, min: 2, max: 2, quorum: 1 }));
      const update = { ...(await trainOf(victim, study.id, 1)), numExamples: 100 };
      // The header now (half of this small update: its one data chunk follows), the data after the revocation.
      const upload = victim.partialUpload(update, 0);
      const outcome = rejection(upload.result);
      await c.proc.waitForEvent('update.receiving', { nodeId: victim.nodeId }, 15_000);
      expect((await c.admin('POST', `/api/v1/nodes/${victim.nodeId}/revoke`)).status).toBe(200);
      await upload.rest();
      const ended = await outcome;
      expect(ended.code).toBe('UNAUTHENTICATED');
      expect(ended.details).toMatch(/^node credential was revoked on /);
      expect((await c.proc.waitForEvent('node.revoked', { nodeId: victim.nodeId })).callsEnded).toBeGreaterThanOrEqual(1);

      await honest.upload({ ...(await trainOf(honest, study.id, 2)), numExamples: 100 });
      const detail = await waitForStudyEnd(c, study.id);
      expect(detail.state).toBe('COMPLETED');
      expect(detail.contributions.filter((x) => x.nodeId === victim.nodeId && x.accepted)).toEqual([]);
      expect(detail.contributions.filter((x) => x.accepted).map((x) => x.nodeId)).toEqual([honest.nodeId]);
    } finally {
      victim.close();
      honest.close();
    }
  });

  it('records a frozen uploader as UPLOAD_STALLED and a broken stream as UPLOAD_CANCELLED, never LENGTH_MISMATCH', async () => {
    const c = await coordinator({ FEDLHS_TRANSFER_UPLOAD_IDLE_SECONDS: '1' });
    const node = await rogue(c, 'frozen');
    try {
      const study = await startStudy(c, learnableManifest({ rounds: 1, min: 1, max: 1, quorum: 1 }));
      const update = { ...(await trainOf(node, study.id, 1)), numExamples: 100 };

      // Sends its header, then nothing (as a SIGSTOPped agent): the coordinator ends it after
      // transfer.uploadIdleSeconds. The client's own deadline (10 s) only ends the test on old code.
      const stalled = await rejection(node.partialUpload(update, 0, { deadline: new Date(Date.now() + 10_000) }).result);
      expect(stalled).toMatchObject({ code: 'DEADLINE_EXCEEDED', reason: 'UPLOAD_STALLED' });
      expect(stalled.details).toMatch(/^the upload sent nothing for 1 s \(transfer.uploadIdleSeconds\)/);

      // The client's deadline passes first: timed out, recorded as such (was LENGTH_MISMATCH).
      const timedOut = node.partialUpload(update, 0, { deadline: new Date(Date.now() + 800) });
      expect((await rejection(timedOut.result)).code).toBe('DEADLINE_EXCEEDED');
      const recorded = await c.proc.waitForEvent('update.rejected', (l) => l.nodeId === node.nodeId && l.reason === 'UPLOAD_STALLED' && /client's deadline/.test(String(l.detail)), 15_000);
      expect(recorded.taskOpen).toBe(true);

      // Cancelled by the client mid-way.
      const receiving = c.proc.events('update.receiving', { nodeId: node.nodeId }).length;
      const cancelled = node.partialUpload(update, 0);
      await c.proc.waitFor((l) => l.event === 'update.receiving' && c.proc.events('update.receiving', { nodeId: node.nodeId }).length > receiving);
      cancelled.cancel();
      expect((await rejection(cancelled.result)).code).toBe('CANCELLED');
      await c.proc.waitForEvent('update.rejected', { nodeId: node.nodeId, reason: 'UPLOAD_CANCELLED' }, 15_000);

      // None of these closes the task: the whole update still passes.
      expect((await node.upload(update)).duplicate).toBe(false);
      const detail = await waitForStudyEnd(c, study.id);
      expect(detail.state).toBe('COMPLETED');
      const reasons = detail.contributions.filter((x) => !x.accepted).map((x) => x.reasonCode);
      expect(reasons).toEqual(['UPLOAD_STALLED', 'UPLOAD_STALLED', 'UPLOAD_CANCELLED']);
      expect(detail.contributions.filter((x) => x.accepted)).toHaveLength(1);
    } finally {
      node.close();
    }
  });

  it('refuses at study start a model that does not fit limits.modelMemoryBytes, and stays responsive', async () => {
    const c = await coordinator({ FEDLHS_LIMITS_MODEL_MEMORY_BYTES: String(1024 ** 3) });
    // 10 000 features → 10 000 hidden units: 100M parameters, 2.4 GB to build with fedavg.
    const big = learnableManifest({ rounds: 1, features: 10_000 }) as { model: { topology: { config: { layers: { config: Record<string, unknown> }[] } } } };
    big.model.topology.config.layers[0]!.config.units = 10_000;
    const refused = await c.admin<{ error: { code: string; message: string; details: Record<string, unknown> } }>('POST', '/api/v1/studies', { manifest: big });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RESOURCE_LIMIT');
    expect(refused.body.error.message).toContain('100020001 parameters × 4 bytes × 6 (aggregation.strategy fedavg) = 2289 MiB exceeds limits.modelMemoryBytes (1024 MiB)');
    expect(refused.body.error.details).toEqual({ limit: 'limits.modelMemoryBytes', value: 100_020_001 * 24, max: 1024 ** 3 });
    expect((await c.proc.waitForEvent('study.refused')).level).toBe(40);
    expect((await c.admin('GET', '/api/v1/status')).status).toBe(200);
    const metrics = await fetch(`http://127.0.0.1:${c.adminPort}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    expect(await metrics.text()).toMatch(/^fedlhs_studies_refused_total 1$/m);
    // A model that fits still starts.
    expect((await c.admin('POST', '/api/v1/studies', { manifest: learnableManifest({ rounds: 1 }) })).status).toBe(201);
  });
  it('bounds what a loop of bad calls records: each is answered, at most 60 a minute per node are recorded, and the rest is said once', async () => {
    const c = await coordinator();
    const node = await rogue(c, 'clinic-loop');
    try {
      const answers = new Map<string, number>();
      for (let i = 0; i < 100; i++) {
        const r = await rejection(node.reportStatistics({ taskId: `task_no_such_${i}`, studyId: 'none', round: 1, rows: 1, positives: 0, suppressed: false, features: [] }));
        answers.set(r.code, (answers.get(r.code) ?? 0) + 1);
      }
      // Every call gets its status ...
      expect(Object.fromEntries(answers)).toEqual({ NOT_FOUND: 100 });
      // ... but the store and the log hold at most the budget (60, plus what refilled meanwhile: 1 a second).
      const unrecorded = await c.proc.waitForEvent('rejection.unrecorded', { nodeId: node.nodeId });
      expect(unrecorded).toMatchObject({ level: 40, reason: 'UNKNOWN_TASK', perMinute: 60 });
      expect(c.proc.events('rejection.unrecorded', { nodeId: node.nodeId })).toHaveLength(1);
      const recorded = c.proc.events('statistics.rejected', { nodeId: node.nodeId }).length;
      expect(recorded).toBeGreaterThanOrEqual(60);
      expect(recorded).toBeLessThan(100);
      const metrics = await (await fetch(`http://127.0.0.1:${c.adminPort}/metrics`)).text();
      expect(Number(/fedlhs_rejections_unrecorded_total (\d+)/.exec(metrics)?.[1])).toBe(100 - recorded);
    } finally {
      node.close();
    }
  });
});
