/**
 * Conformance: the Session stream (Hello, Welcome, announcements, StudyProgress) and the model
 * layout of DownloadModel's header (common.proto TensorSpec).
 */
import { describe, expect, it } from 'vitest';
import type { ConformanceClient } from '../src/conformance-client.js';
import { fromFloat32Le, sha256 } from '../src/conformance-client.js';
import { manifest, startTestCoordinator } from './harness.js';

/** Trains every TRAIN task of `studyId` by nudging the model (distinct per node and round) and declines evaluation. */
function participate(node: ConformanceClient, studyId: string, rounds: number, salt: number): Promise<void> {
  return (async () => {
    for (let round = 1; round <= rounds; round++) {
      const task = await node.task('TASK_KIND_TRAIN', round, studyId);
      const model = await node.download({ taskId: task.taskId });
      const values = fromFloat32Le(model.payload).map((v, i) => v + (i % 3 === 0 ? 0.001 * (salt + round) : 0));
      await node.upload(node.uploadOf(task, model, values, 0, 40));
      const evaluate = await node.task('TASK_KIND_EVALUATE', round, studyId);
      node.send({ taskUpdate: { taskId: evaluate.taskId, state: 'TASK_STATE_DECLINED', reason: 'conformance client does not evaluate' } });
    }
  })();
}

describe('Session', () => {
  it('answers Hello with Welcome naming the node, then announces running studies with their manifest hash', async () => {
    const c = await startTestCoordinator();
    const node = await c.node('site-a');
    const study = await c.startStudy(manifest({ rounds: 1 }));
    const welcome = (await node.openSession()).welcome!;
    expect(welcome.nodeId).toBe(node.nodeId);
    expect(welcome.siteName).toBe('site-a');
    expect(welcome.heartbeatIntervalMs).toBe(1000);
    expect(welcome.coordinatorVersion).toMatch(/^fedlhs-coordinator\//);
    const announced = (await node.next((m) => m.study?.study?.studyId === study.id)).study!.study!;
    expect(announced.manifestSha256).toBe(study.manifestSha256);
    expect(announced.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(announced.state).toBe('STUDY_STATE_RUNNING');
    expect(announced.lastCommittedRound).toBe(0);
    expect(node.received.findIndex((m) => m.welcome != null)).toBe(0);
  });

  it('sends StudyProgress per commit to agents with "study-progress", full announcements to the others', async () => {
    const c = await startTestCoordinator();
    const modern = await c.node('modern');
    const legacy = await c.node('legacy');
    await modern.openSession({ capabilities: ['study-progress'] });
    await legacy.openSession();
    const rounds = 2;
    const study = await c.startStudy(manifest({ rounds, clients: 2 }));
    const ended = (n: ConformanceClient) => n.next((m) => m.study?.study?.studyId === study.id && m.study.study.state === 'STUDY_STATE_COMPLETED');
    await Promise.all([participate(modern, study.id, rounds, 1), participate(legacy, study.id, rounds, 2)]);
    await Promise.all([ended(modern), ended(legacy)]);

    const progress = (n: ConformanceClient) => n.received.filter((m) => m.progress?.studyId === study.id).map((m) => m.progress!);
    const announcements = (n: ConformanceClient) => n.received.filter((m) => m.study?.study?.studyId === study.id).map((m) => m.study!.study!);
    // With the capability: one StudyProgress per commit, full announcements only at start and end.
    expect(progress(modern).map((p) => p.lastCommittedRound)).toEqual([1, 2].slice(0, progress(modern).length));
    expect(progress(modern).filter((p) => p.lastCommittedRound === 1)).toHaveLength(1);
    expect(announcements(modern).filter((s) => s.state === 'STUDY_STATE_RUNNING').map((s) => s.lastCommittedRound)).toEqual([0]);
    expect(announcements(modern).at(-1)).toMatchObject({ state: 'STUDY_STATE_COMPLETED', lastCommittedRound: rounds });
    expect(modern.studies.get(study.id)).toMatchObject({ state: 'STUDY_STATE_COMPLETED', lastCommittedRound: rounds, manifestSha256: study.manifestSha256 });
    // Without it: no StudyProgress, the whole study again after each commit.
    expect(progress(legacy)).toEqual([]);
    expect(announcements(legacy).filter((s) => s.lastCommittedRound === 1)).toHaveLength(1);
    expect(announcements(legacy).map((s) => s.manifestSha256).every((h) => h === study.manifestSha256)).toBe(true);
  });
});

describe('DownloadModel header: tensor names, order and shapes', () => {
  it('names unnamed layers by the documented rule, trainable weights first', async () => {
    const c = await startTestCoordinator();
    const node = await c.node('site-a');
    const layers = [
      { class_name: 'Dense', config: { units: 6, activation: 'relu', batch_input_shape: [null, 4] } },
      { class_name: 'BatchNormalization', config: {} },
      { class_name: 'Reshape', config: { target_shape: [3, 2] } },
      { class_name: 'Conv1D', config: { filters: 2, kernel_size: 2 } },
      { class_name: 'Flatten', config: {} },
      { class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid' } },
    ];
    const study = await c.startStudy(manifest({ layers }));
    // Committed models go to the nodes that took part in the study (DownloadModel): this one
    // declares READY on its session, and its first task shows the coordinator counts it in.
    await node.openSession();
    await node.next((m) => m.task?.studyId === study.id);
    const model = await node.download({ committed: { studyId: study.id, round: 0 } });

    // The documented rule, implemented from federation/common.proto text alone.
    const layerName = (l: { class_name: string; config: { name?: string } }, i: number): string =>
      l.config.name !== undefined && l.config.name !== '' ? l.config.name : `${l.class_name.replace(/([a-z0-9])([A-Z][a-z])/g, '$1_$2').toLowerCase()}_${i}`;
    const trainable: Record<string, string[]> = { Dense: ['kernel', 'bias'], Conv1D: ['kernel', 'bias'], BatchNormalization: ['gamma', 'beta'] };
    const frozen: Record<string, string[]> = { BatchNormalization: ['moving_mean', 'moving_variance'] };
    const names = (table: Record<string, string[]>): string[] => layers.flatMap((l, i) => (table[l.class_name] ?? []).map((w) => `${layerName(l, i)}/${w}`));
    expect(model.header.tensors.map((t) => t.name)).toEqual([...names(trainable), ...names(frozen)]);
    expect(model.header.tensors.map((t) => t.shape)).toEqual([[4, 6], [6], [6], [6], [2, 2, 2], [2], [4, 1], [1], [6], [6]]);
    expect(model.header.tensors.every((t) => t.dtype === 'DTYPE_FLOAT32')).toBe(true);
    // The payload is what the header says.
    expect(model.header.totalBytes).toBe(model.header.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 4, 0));
    expect(model.payload.length).toBe(model.header.totalBytes);
    expect(sha256(model.payload).equals(model.header.sha256)).toBe(true);
    expect(model.header.chunkSize).toBe(1048576);
    expect(model.chunkLengths).toEqual([model.header.totalBytes]);
  });

  it('ends a silent agent\'s session after three heartbeat intervals, and keeps one that sends heartbeats', async () => {
    const c = await startTestCoordinator({ heartbeatIntervalMs: 1000 });
    const silent = await c.node('silent');
    const talking = await c.node('talking');
    await silent.openSession({ heartbeats: false });
    await talking.openSession();
    const ended = await silent.sessionEnd();
    expect(ended.code).toBe(14); // UNAVAILABLE
    expect(ended.details).toContain('no message from the agent for 3000 ms');
    // The agent that keeps talking outlives several more of the coordinator's heartbeats.
    const heartbeats = (): number => talking.received.filter((m) => m.heartbeat != null).length;
    const seen = heartbeats();
    await talking.upcoming(() => heartbeats() >= seen + 4);
    expect(talking.sessionError).toBeUndefined();
  });
});
