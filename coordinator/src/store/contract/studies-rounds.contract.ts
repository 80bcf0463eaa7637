import { expect, it } from 'vitest';
import { describeStores } from './describe-stores.js';
import { codeOf, enrol, FOREIGN_KEY_VIOLATION, roundRec, studyRec, taskRec, UNIQUE_VIOLATION } from './fixtures.js';

describeStores('store contract: studies and rounds', (ctx) => {
  it('creates a study and its committed round 0 in one unit, or neither', async () => {
    const { store } = ctx;
    const round0 = { ...roundRec('s1', 0, 0, 'COMMITTED'), checkpointPath: '/cp/0', checkpointSha256: '0'.repeat(64), endedAt: 500 };
    const { roundIds } = await store.write([{ op: 'study.insert', s: studyRec('s1') }, { op: 'round.insert', r: round0 }], 'study.start');
    expect(roundIds).toHaveLength(1);
    expect(await store.getStudy('s1')).toEqual(studyRec('s1'));
    expect(await store.getCommittedRound('s1', 0)).toEqual({ ...round0, id: roundIds[0] });

    // The same again for s2, but its round 0 collides with itself: nothing of s2 remains.
    const r0 = { ...round0, studyId: 's2' };
    await expect(store.write([{ op: 'study.insert', s: studyRec('s2') }, { op: 'round.insert', r: r0 }, { op: 'round.insert', r: r0 }], 'study.start')).rejects.toThrow(UNIQUE_VIOLATION);
    expect(await store.getStudy('s2')).toBeUndefined();
    expect(await store.listRounds('s2')).toEqual([]);
    expect((await store.listStudies()).map((s) => s.id)).toEqual(['s1']);
  });

  it("keeps the model's tensor list with the study, and null where none was given", async () => {
    const { store } = ctx;
    const spec = JSON.stringify([{ name: 'dense/kernel', shape: [4, 2] }, { name: 'dense/bias', shape: [2] }]);
    await store.write([{ op: 'study.insert', s: studyRec('s1', { modelSpec: spec }) }], 'study.start');
    await store.insertStudy(studyRec('s2'));
    const { modelSpec: _omitted, ...withoutSpec } = studyRec('s3');
    await store.insertStudy(withoutSpec);
    expect(await store.getStudy('s1')).toEqual(studyRec('s1', { modelSpec: spec }));
    expect((await store.listStudies()).map((s) => [s.id, s.modelSpec])).toEqual([['s1', spec], ['s2', null], ['s3', null]]);
    // Later study writes leave it alone.
    await store.setStudyState('s1', 'COMPLETED', null, 900);
    await store.setStudyParameters('s1', '{}');
    expect((await store.getStudy('s1'))?.modelSpec).toBe(spec);
  });

  it('lists every blob a row references: checkpoints, strategy states and the models of open tasks', async () => {
    const { store } = ctx;
    const d = (c: string): string => c.repeat(64);
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    await store.insertStudy(studyRec('s2', { strategyState: JSON.stringify({ path: 'blob:sha256:' + d('e'), sha256: d('e'), round: 0 }) }));
    expect(await store.referencedBlobs()).toEqual(new Set([d('e')]));
    const r0 = await store.insertRound({ ...roundRec('s1', 0, 1, 'COMMITTED'), checkpointPath: '/cp/0', checkpointSha256: d('0') });
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await store.commitRound(r1, { path: 'blob:sha256:' + d('1'), sha256: d('1') }, [], JSON.stringify({ path: 'blob:sha256:' + d('5'), sha256: d('5'), round: 1 }), 800);
    const failed = await store.insertRound(roundRec('s1', 2, 1, 'FAILED'));
    const open = await store.insertRound(roundRec('s1', 2, 2, 'EVALUATING'));
    await store.write([{ op: 'task.insert', tasks: [
      { ...taskRec('t-open', open, 'n1', 'ASSIGNED', 1, 'EVALUATE'), modelSha256: d('a') },
      { ...taskRec('t-done', open, 'n1', 'ACCEPTED', 2), modelSha256: d('b') },
      { ...taskRec('t-failed-round', failed, 'n1', 'ASSIGNED', 3), modelSha256: d('c') },
      { ...taskRec('t-committed-round', r0, 'n1', 'ASSIGNED', 4), modelSha256: d('d') },
    ] }], 'test');
    expect(await store.referencedBlobs()).toEqual(new Set([d('0'), d('1'), d('5'), d('e'), d('a')]));
    // The references move with the rows: the task ends, the round and study move on.
    await store.write([{ op: 'task.end', id: 't-open', to: 'CANCELLED', detail: null, at: 900 }], 'test');
    expect((await store.referencedBlobs()).has(d('a'))).toBe(false);
  });

  it('refuses to list blob references it cannot read (a strategy_state without a digest)', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1', { strategyState: '{"m":1}' }));
    expect(await codeOf(store.referencedBlobs())).toBe('DATA_LOSS');
  });

  it('records study state, reason, end time and parameters', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    await store.setStudyParameters('s1', '{"normalization":1}');
    await store.write([{ op: 'study.state', id: 's1', state: 'FAILED', reason: 'no quorum', at: 900 }], 'test');
    expect(await store.getStudy('s1')).toMatchObject({ state: 'FAILED', reason: 'no quorum', endedAt: 900, parameters: '{"normalization":1}' });
    await store.setStudyState('s1', 'STOPPED', null, null);
    expect(await store.getStudy('s1')).toMatchObject({ state: 'STOPPED', reason: null, endedAt: null });
  });

  it('moves a round through its states, keeping reason and end time unless given', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 1, 1, 'WAITING_FOR_NODES'));
    await store.write([{ op: 'round.state', id: r, state: 'TRAINING', reason: null, at: null, participants: 7 }], 'test');
    expect((await store.listRounds('s1'))[0]).toMatchObject({ state: 'TRAINING', participants: 7, reason: null, endedAt: null });
    await store.setRoundParticipants(r, 5);
    await store.setRoundState(r, 'FAILED', 'deadline passed', 800);
    await store.setRoundState(r, 'FAILED', null, null);
    expect((await store.listRounds('s1'))[0]).toMatchObject({ state: 'FAILED', participants: 5, reason: 'deadline passed', endedAt: 800 });
  });

  it('commits a round: state, checkpoint, study progress and metrics together', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await store.commitRound(
      r1,
      { path: '/cp/round-000001.f32', sha256: 'c'.repeat(64) },
      [
        { roundId: r1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.8 },
        { roundId: r1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9 },
      ],
      '{"m":1}',
      8000,
    );
    const [round] = await store.listRounds('s1');
    expect(round).toEqual({ ...roundRec('s1', 1, 1, 'COMMITTED'), id: r1, endedAt: 8000, checkpointPath: '/cp/round-000001.f32', checkpointSha256: 'c'.repeat(64) });
    expect(await store.getCommittedRound('s1', 1)).toEqual(round);
    expect(await store.getStudy('s1')).toMatchObject({ lastCommittedRound: 1, strategyState: '{"m":1}' });
    expect(await store.listMetrics('s1')).toEqual([
      { roundId: r1, round: 1, nodeId: null, phase: 'evaluation', numExamples: 40, loss: 0.5, accuracy: 0.75, auc: 0.8 },
      { roundId: r1, round: 1, nodeId: 'n1', phase: 'training', numExamples: 30, loss: 0.25, accuracy: 0.9, auc: undefined },
    ]);
  });

  it('rolls the whole commit back when a metric cannot be stored', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const r1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const good = { roundId: r1, nodeId: null, phase: 'evaluation' as const, numExamples: 40, loss: 0.5, accuracy: 0.75 };
    // round_id 999 violates the metrics → rounds foreign key, after the round and study updates ran.
    await expect(store.commitRound(r1, { path: '/cp', sha256: 'c'.repeat(64) }, [good, { ...good, roundId: 999 }], 'x', 8000)).rejects.toThrow(FOREIGN_KEY_VIOLATION);
    expect((await store.listRounds('s1'))[0]).toMatchObject({ state: 'EVALUATING', endedAt: null, checkpointPath: null });
    expect(await store.getStudy('s1')).toMatchObject({ lastCommittedRound: 0, strategyState: null });
    expect(await store.listMetrics('s1')).toEqual([]);
    expect(await store.getCommittedRound('s1', 1)).toBeUndefined();
  });

  it('round.commit guards: unknown round NOT_FOUND, a final round STALE', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    const commit = (id: number) => store.write([{ op: 'round.commit', id, checkpoint: { path: '/cp', sha256: 'c' }, metrics: [], strategyState: null, at: 1 }], 'test');
    expect(await codeOf(commit(424242))).toBe('NOT_FOUND');
    const r = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await commit(r);
    expect(await codeOf(commit(r))).toBe('STALE');
    const failed = await store.insertRound(roundRec('s1', 2, 1, 'FAILED'));
    expect(await codeOf(commit(failed))).toBe('STALE');
    expect(await store.getStudy('s1')).toMatchObject({ lastCommittedRound: 1 });
  });

  it('forbids two COMMITTED rows for the same study and round', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    await store.insertStudy(studyRec('s2'));
    const a1 = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    const a2 = await store.insertRound(roundRec('s1', 1, 2, 'EVALUATING'));
    const other = await store.insertRound(roundRec('s2', 1, 1, 'EVALUATING'));
    await store.commitRound(a1, { path: '/a1', sha256: '1'.repeat(64) }, [], null, 100);
    await expect(store.commitRound(a2, { path: '/a2', sha256: '2'.repeat(64) }, [], null, 200)).rejects.toThrow(UNIQUE_VIOLATION);
    await expect(store.setRoundState(a2, 'COMMITTED', null, 200)).rejects.toThrow(UNIQUE_VIOLATION);
    expect(await store.getCommittedRound('s1', 1)).toMatchObject({ id: a1, checkpointPath: '/a1' });
    expect((await store.listRounds('s1')).map((r) => r.state)).toEqual(['COMMITTED', 'EVALUATING']);
    await store.commitRound(other, { path: '/s2', sha256: '3'.repeat(64) }, [], null, 300);
    await store.setRoundState(a2, 'FAILED', 'superseded', 300);
    await store.insertRound(roundRec('s1', 1, 3, 'FAILED'));
    expect((await store.listRounds('s1')).map((r) => `${r.attempt}:${r.state}`)).toEqual(['1:COMMITTED', '2:FAILED', '3:FAILED']);
  });

  it('forbids a second row for the same (study, round, attempt)', async () => {
    const { store } = ctx;
    await store.insertStudy(studyRec('s1'));
    await store.insertRound(roundRec('s1', 1, 1, 'TRAINING'));
    await expect(store.insertRound(roundRec('s1', 1, 1, 'TRAINING'))).rejects.toThrow(UNIQUE_VIOLATION);
  });

  it('fails open rounds and cancels their ASSIGNED tasks, leaving final rounds and other studies alone', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    await store.insertStudy(studyRec('s2'));
    const committed = await store.insertRound(roundRec('s1', 1, 1, 'EVALUATING'));
    await store.commitRound(committed, { path: '/cp', sha256: 'c'.repeat(64) }, [], null, 600);
    const failed = await store.insertRound(roundRec('s1', 2, 1, 'TRAINING'));
    await store.setRoundState(failed, 'FAILED', 'deadline passed', 650);
    const training = await store.insertRound(roundRec('s1', 2, 2, 'TRAINING'));
    const evaluating = await store.insertRound(roundRec('s1', 3, 1, 'EVALUATING'));
    const elsewhere = await store.insertRound(roundRec('s2', 1, 1, 'TRAINING'));
    await store.write([{ op: 'task.insert', tasks: [
      taskRec('t-committed', committed, 'n1', 'ASSIGNED', 1),
      taskRec('t-failed', failed, 'n1', 'ASSIGNED', 2),
      taskRec('t-open', training, 'n1', 'ASSIGNED', 3),
      taskRec('t-done', training, 'n1', 'ACCEPTED', 4),
      taskRec('t-eval', evaluating, 'n1', 'ASSIGNED', 5, 'EVALUATE'),
      taskRec('t-elsewhere', elsewhere, 'n1', 'ASSIGNED', 6),
    ] }], 'test');

    expect(await store.failOpenRounds('s1', 'coordinator restarted', 9000)).toBe(2);

    expect((await store.listRounds('s1')).map((r) => [r.round, r.attempt, r.state, r.reason, r.endedAt])).toEqual([
      [1, 1, 'COMMITTED', null, 600],
      [2, 1, 'FAILED', 'deadline passed', 650],
      [2, 2, 'FAILED', 'coordinator restarted', 9000],
      [3, 1, 'FAILED', 'coordinator restarted', 9000],
    ]);
    const state = async (id: string): Promise<[string, string | null, number | null] | undefined> => {
      const t = await store.getTask(id);
      return t === undefined ? undefined : [t.state, t.detail, t.endedAt];
    };
    expect(await state('t-open')).toEqual(['CANCELLED', 'coordinator restarted', 9000]);
    expect(await state('t-eval')).toEqual(['CANCELLED', 'coordinator restarted', 9000]);
    expect(await state('t-done')).toEqual(['ACCEPTED', null, null]);
    expect(await state('t-committed')).toEqual(['ASSIGNED', null, null]);
    expect(await state('t-failed')).toEqual(['ASSIGNED', null, null]);
    expect(await state('t-elsewhere')).toEqual(['ASSIGNED', null, null]);
    expect((await store.listRounds('s2'))[0]?.state).toBe('TRAINING');
    expect(await store.failOpenRounds('s1', 'again', 9500)).toBe(0);
  });

  it('stores statistics reports once per task and lists them per study', async () => {
    const { store } = ctx;
    await enrol(store, 'n1');
    await store.insertStudy(studyRec('s1'));
    const r = await store.insertRound(roundRec('s1', 0, 1, 'STATISTICS'));
    await store.insertTask(taskRec('st1', r, 'n1', 'ASSIGNED', 1, 'STATISTICS'));
    await store.write([
      { op: 'task.end', id: 'st1', to: 'ACCEPTED', detail: null, at: 5 },
      { op: 'statistics.insert', s: { studyId: 's1', taskId: 'st1', nodeId: 'n1', report: '{"rows":40}', receivedAt: 5 } },
    ], 'statistics');
    expect(await store.listStatistics('s1')).toEqual([{ studyId: 's1', taskId: 'st1', nodeId: 'n1', report: '{"rows":40}', receivedAt: 5 }]);
    await expect(store.insertStatistics({ studyId: 's1', taskId: 'st1', nodeId: 'n1', report: '{}', receivedAt: 6 })).rejects.toThrow(UNIQUE_VIOLATION);
    expect(await store.listStatistics('s2')).toEqual([]);
  });
});
