import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { EnrolResponse__Output } from '@fedlhs/proto';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { RogueNode, enrolAgent, enrolOverProtocol, readCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

async function enrolRogue(c: CoordinatorHandle): Promise<EnrolResponse__Output> {
  const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'poisoner', ttlSeconds: 600 })).body.token;
  return enrolOverProtocol(c.address, token, 'poisoner');
}

const maxAbs = (values: Float32Array): number => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('a poisoned clinic (update scaled by −1000) in an end-to-end round', () => {
  it('passes through FedAvg but is stopped by Krum, the coordinate-wise median and a norm bound', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    for (const [i, name] of ['h1', 'h2', 'h3', 'h4'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 80 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      ws.track(startAgent(o));
    }
    const creds = await enrolRogue(c);
    const rogue = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
    await rogue.connect();

    const runOne = async (name: string, aggregation: Record<string, unknown>, updateValidation?: Record<string, unknown>, quorum = 4) => {
      const manifest = { ...learnableManifest({ name, rounds: 1, min: 5, max: 5, quorum }), aggregation, ...(updateValidation === undefined ? {} : { updateValidation }) };
      const study = await startStudy(c, manifest);
      const task = await rogue.trainTask(1, study.id);
      const global = await rogue.download(task.taskId);
      const poisoned = Float32Array.from(global.weights, (v) => -1000 * v);
      const upload = rogue.upload({ taskId: task.taskId, studyId: study.id, round: 1, nodeId: creds.nodeId, baseModelSha256: task.modelSha256, numExamples: 150, specs: global.specs, weights: poisoned });
      const outcome = await upload.then(() => 'accepted', (err: grpc.ServiceError) => err);
      const detail = await waitForStudyEnd(c, study.id);
      expect(detail.state, `${name}: ${JSON.stringify(detail.rounds.map((r) => [r.round, r.attempt, r.state, r.reason]))}`).toBe('COMPLETED');
      const model = readCommittedModel(c, study.id, 1);
      return { outcome, initialMax: maxAbs(global.weights), finalMax: maxAbs(model), detail };
    };

    const fedavg = await runOne('poison-fedavg', { strategy: 'fedavg' });
    expect(fedavg.outcome).toBe('accepted');
    expect(fedavg.finalMax).toBeGreaterThan(20 * fedavg.initialMax);

    // Krum with f = 1 needs n ≥ 2f + 3 = 5 updates, so this round waits for all five.
    const krum = await runOne('poison-krum', { strategy: 'krum', parameters: { byzantine: 1 } }, undefined, 5);
    expect(krum.outcome).toBe('accepted');
    expect(krum.finalMax).toBeLessThan(3 * krum.initialMax);

    const median = await runOne('poison-median', { strategy: 'fedmedian' });
    expect(median.outcome).toBe('accepted');
    expect(median.finalMax).toBeLessThan(3 * median.initialMax);

    const bounded = await runOne('poison-bound', { strategy: 'fedavg' }, { normBound: { type: 'fixed', value: 10 }, onExceed: 'reject' });
    expect(bounded.outcome).toBeInstanceOf(Error);
    const err = bounded.outcome as grpc.ServiceError;
    expect(grpc.status[err.code]).toBe('INVALID_ARGUMENT');
    expect(err.metadata.get('fedlhs-rejection-reason')[0]).toBe('NORM_BOUND');
    expect(err.details).toMatch(/exceeds the study's bound 10\.00/);
    expect(bounded.finalMax).toBeLessThan(3 * bounded.initialMax);
    expect(bounded.detail.contributions.filter((x) => x.accepted)).toHaveLength(4);
    const statusBody = (await c.admin<{ rejectionsByReason: Record<string, number> }>('GET', `/api/v1/studies/${bounded.detail.id}`)).body;
    expect(statusBody.rejectionsByReason).toEqual({ NORM_BOUND: 1 });
    const history = (await c.admin<{ contributions: { reasonCode: string | null }[] }>('GET', `/api/v1/nodes/${creds.nodeId}`)).body;
    expect(history.contributions.map((x) => x.reasonCode)).toContain('NORM_BOUND');
    rogue.close();
  });
});
