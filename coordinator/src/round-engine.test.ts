import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { nodeFailures, nodeViews, studyDetail, studyReadiness } from './admin/views.js';
import { Coordinator } from './coordinator.js';
import { FakeSession, LogSink, ManualClock } from './test-support.js';
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

function manifest(deadlines: Record<string, unknown> = {}, clients = { min: 3, max: 3, quorum: 2 }): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'engine',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 2, clients, deadlines: { roundSeconds: 600, evaluationSeconds: 600, ...deadlines },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2'] },
    aggregation: { strategy: 'fedavg' },
  };
}

interface Clinic {
  node: NodeRecord;
  session: FakeSession;
}

/**
 * A real Coordinator (SQLite, round engine) with in-process sessions and a clock the test
 * moves: deadlines pass when the test says so, then a session change wakes the engine.
 */
async function network(m: Record<string, unknown>, sites = ['clinic-a', 'clinic-b', 'clinic-c']) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-engine-'));
  dirs.push(dir);
  const log = new LogSink();
  const clock = new ManualClock(Date.parse('2026-11-02T09:00:00Z'));
  const coordinator = Coordinator.create({
    dataDir: dir, logger: pino({ level: 'info' }, log), heartbeatIntervalMs: 600_000, selectionGraceMs: 0, chunkBytes: 1 << 20, maxHeldUpdateBytes: 1 << 20,
    buildInitialModel: async () => ({ specs: [{ name: 'out/kernel', shape: [2, 1] }, { name: 'out/bias', shape: [1] }], weights: new Float32Array(3) }),
    clock,
  });
  coordinators.push(coordinator);
  await coordinator.start();
  const clinics: Clinic[] = [];
  for (const site of sites) {
    const { token } = await coordinator.createJoinToken(site, 600, 'test');
    const { nodeId } = await coordinator.enrol(token, site, null);
    clinics.push({ node: (await coordinator.store.getNode(nodeId))!, session: new FakeSession(nodeId, site) });
  }
  const study = await coordinator.startStudy(JSON.stringify(m), 'test');
  const connect = (c: Clinic) => coordinator.openSession(c.session, 10);
  const declare = (c: Clinic, readiness: string, detail = '') =>
    coordinator.onAgentMessage(c.session, { readiness: { studyId: study.id, manifestSha256: study.manifestHash, readiness, detail } } as never);
  const fail = async (c: Clinic, reason: string, state: 'TASK_STATE_FAILED' | 'TASK_STATE_DECLINED' = 'TASK_STATE_FAILED', attempt = 1) => {
    const task = await c.session.trainTask(attempt);
    await coordinator.onAgentMessage(c.session, { taskUpdate: { taskId: task.taskId, state, reason } } as never);
  };
  /** Moves the clock: the round engine's deadline timers fire. */
  const advance = (ms: number) => clock.advance(ms);
  const now = async (): Promise<StudyRecord> => (await coordinator.store.getStudy(study.id))!;
  return { coordinator, study, clinics, log, connect, declare, fail, advance, now };
}

const FIT_ERROR = 'fit: x has 2410 values, expected 241 rows x 9 features';

describe('round engine: why a round or study failed (coordinator in process)', () => {
  it('fails the study at once when every clinic fails training the same way, naming the reason and the sites', async () => {
    const net = await network(manifest());
    const [a, b, c] = net.clinics as [Clinic, Clinic, Clinic];
    for (const x of net.clinics) {
      await net.connect(x);
      await net.declare(x, 'READINESS_READY');
    }
    await net.fail(a, FIT_ERROR);
    await net.fail(b, FIT_ERROR);
    // Quorum is out of reach now, but clinic-c is still training: the round waits for it to
    // tell a deterministic failure from a chance one.
    const awaiting = await net.log.waitFor((l) => l.event === 'round.awaiting-alike');
    expect(awaiting).toMatchObject({ round: 1, attempt: 1, kind: 'TRAIN', failed: ['clinic-a', 'clinic-b'], open: 1 });
    expect(net.log.lines.some((l) => l.event === 'round.failed')).toBe(false);
    await net.fail(c, FIT_ERROR);
    await net.coordinator.waitForStudy(net.study.id);

    const ended = await net.now();
    const attemptReason = `3 of 3 clinic(s) (clinic-a, clinic-b, clinic-c) failed training: ${FIT_ERROR}`;
    expect(ended.state).toBe('FAILED');
    expect(ended.reason).toBe(`round 1: ${attemptReason} — every clinic failed the same way, so the round was not retried`);
    const rounds = (await net.coordinator.store.listRounds(net.study.id)).filter((r) => r.round === 1);
    expect(rounds.map((r) => [r.attempt, r.state, r.reason])).toEqual([[1, 'FAILED', attemptReason]]);
    const tasks = await net.coordinator.store.listTasks(rounds[0]!.id);
    expect(tasks.map((t) => [t.state, t.detail, t.endedAt !== null])).toEqual([['FAILED', FIT_ERROR, true], ['FAILED', FIT_ERROR, true], ['FAILED', FIT_ERROR, true]]);

    expect(net.log.lines.filter((l) => l.event === 'task.failed').map((l) => l.siteName).sort()).toEqual(['clinic-a', 'clinic-b', 'clinic-c']);
    expect(net.log.lines.find((l) => l.event === 'round.failed')).toMatchObject({ level: 40, round: 1, attempt: 1, reason: attemptReason });
    expect(net.log.lines.find((l) => l.event === 'study.failed')).toMatchObject({ level: 40, msg: 'study failed', reason: ended.reason });

    // The study view lists the failures per site in the timeline; the node view names the last error.
    const detail = await studyDetail(net.coordinator, ended);
    const row = (detail.timeline as { round: number; failures: { siteName: string; kind: string; state: string; reason: string; at: string }[] }[])[0]!;
    expect(row.failures.map((f) => [f.siteName, f.kind, f.state, f.reason]).sort()).toEqual([
      ['clinic-a', 'TRAIN', 'FAILED', FIT_ERROR], ['clinic-b', 'TRAIN', 'FAILED', FIT_ERROR], ['clinic-c', 'TRAIN', 'FAILED', FIT_ERROR],
    ]);
    expect(row.failures[0]!.at).toBe('2026-11-02T09:00:00.000Z');
    expect(detail.readiness).toBeNull();
    const failure = { studyId: net.study.id, round: 1, attempt: 1, kind: 'TRAIN', state: 'FAILED', reason: FIT_ERROR, at: '2026-11-02T09:00:00.000Z' };
    expect((await nodeViews(net.coordinator)).find((n) => n.id === a.node.id)!.lastError).toEqual(failure);
    expect(await nodeFailures(net.coordinator, a.node.id)).toEqual([failure]);
  });

  it('retries a round whose clinics failed in different ways, its reason grouping the causes', async () => {
    const net = await network(manifest());
    const [a, b, c] = net.clinics as [Clinic, Clinic, Clinic];
    for (const x of net.clinics) {
      await net.connect(x);
      await net.declare(x, 'READINESS_READY');
    }
    await net.fail(a, FIT_ERROR);
    await net.fail(b, FIT_ERROR);
    await net.fail(c, 'the manifest is not approved by this clinic\'s operator', 'TASK_STATE_DECLINED');
    const failed = await net.log.waitFor((l) => l.event === 'round.failed');
    expect(failed.reason).toBe(`quorum 2 not reached: 2 failed training (clinic-a, clinic-b): ${FIT_ERROR}; 1 declined (clinic-c): the manifest is not approved by this clinic's operator`);
    expect(failed.failures).toHaveLength(3);
    // Not deterministic: the round is tried again.
    await a.session.trainTask(2);
    expect((await net.now()).state).toBe('RUNNING');
    expect(net.log.lines.some((l) => l.event === 'task.declined' && l.siteName === 'clinic-c')).toBe(true);
  });

  it('names the clinics that did not report when the deadline passes, and the last attempt in the study reason', async () => {
    const net = await network(manifest({ maxRoundAttempts: 1 }));
    const [a] = net.clinics as [Clinic, Clinic, Clinic];
    for (const x of net.clinics) {
      await net.connect(x);
      await net.declare(x, 'READINESS_READY');
    }
    await net.fail(a, FIT_ERROR);
    await net.log.waitFor((l) => l.event === 'task.failed');
    net.advance(601_000);
    await net.coordinator.waitForStudy(net.study.id);
    const ended = await net.now();
    const attemptReason = `quorum 2 not reached by the deadline: 1 failed training (clinic-a): ${FIT_ERROR}; 2 did not report (clinic-b, clinic-c)`;
    expect([ended.state, ended.reason]).toEqual(['FAILED', `round 1 failed 1 time(s); last attempt: ${attemptReason}`]);
  });

  it('one clinic failing alone is not evidence of a deterministic failure: the round is retried', async () => {
    const net = await network(manifest({}, { min: 1, max: 1, quorum: 1 }), ['solo']);
    const [solo] = net.clinics as [Clinic];
    await net.connect(solo);
    await net.declare(solo, 'READINESS_READY');
    await net.fail(solo, 'out of memory');
    expect((await net.log.waitFor((l) => l.event === 'round.failed')).reason).toBe('1 of 1 clinic(s) (solo) failed training: out of memory');
    await solo.session.trainTask(2);
    expect((await net.now()).state).toBe('RUNNING');
  });
});

describe('round engine: readiness deadline', () => {
  it('fails the study with every site\'s readiness and reason when clients.min are not READY in time', async () => {
    const net = await network(manifest({ readinessSeconds: 60 }), ['clinic-a', 'clinic-b', 'clinic-c', 'clinic-d']);
    const [a, b, , d] = net.clinics as [Clinic, Clinic, Clinic, Clinic];
    await net.connect(a);
    await net.declare(a, 'READINESS_COHORT_TOO_SMALL', 'fewer than 10 cases in the hold-out split (minCellCount 10)');
    await net.connect(b);
    await net.declare(b, 'READINESS_NOT_APPROVED', "the manifest is not approved by this clinic's operator");
    await net.connect(d);
    await net.declare(d, 'READINESS_READY');
    // clinic-c never connects.
    await net.log.waitFor((l) => l.event === 'round.started');

    const waiting = (await studyReadiness(net.coordinator, await net.now()))!;
    expect(waiting).toMatchObject({ needed: 3, ready: 1, deadline: '2026-11-02T09:01:00.000Z' });
    expect(waiting.sites.map((s) => [s.siteName, s.online, s.readiness, s.detail])).toEqual([
      ['clinic-a', true, 'COHORT_TOO_SMALL', 'fewer than 10 cases in the hold-out split (minCellCount 10)'],
      ['clinic-b', true, 'NOT_APPROVED', "the manifest is not approved by this clinic's operator"],
      ['clinic-c', false, 'OFFLINE', 'never connected'],
      ['clinic-d', true, 'READY', ''],
    ]);
    net.advance(59_000);
    expect((await net.now()).state).toBe('RUNNING');
    net.advance(1_000);
    await net.coordinator.waitForStudy(net.study.id);

    const ended = await net.now();
    const reason =
      'readiness deadline passed (deadlines.readinessSeconds 60) before round 1 could start: 1 of 3 READY clinic(s) needed — ' +
      'clinic-a: COHORT_TOO_SMALL (fewer than 10 cases in the hold-out split (minCellCount 10)); ' +
      "clinic-b: NOT_APPROVED (the manifest is not approved by this clinic's operator); clinic-c: offline (never connected); READY: clinic-d";
    expect([ended.state, ended.reason]).toEqual(['FAILED', reason]);
    expect((await net.coordinator.store.listRounds(net.study.id)).filter((r) => r.round === 1).map((r) => [r.state, r.reason])).toEqual([['FAILED', reason]]);
    expect(net.log.lines.find((l) => l.event === 'readiness.deadline')).toMatchObject({ level: 40, ready: 1, min: 3 });
    expect(net.log.lines.find((l) => l.event === 'study.failed')).toMatchObject({ reason });
  });

  it('shows an offline site with the last time it was heard from, not when its loss was noticed', async () => {
    const net = await network(manifest());
    const [a] = net.clinics as [Clinic, Clinic, Clinic];
    await net.connect(a);
    await net.coordinator.onAgentMessage(a.session, { heartbeat: { sentUnixMs: 0 } } as never);
    expect(a.session.lastHeardAt).toBe(Date.parse('2026-11-02T09:00:00Z'));
    net.advance(90_000);
    net.coordinator.closeSession(a.session, 'heartbeat timeout');
    const sites = (await studyReadiness(net.coordinator, await net.now()))!.sites;
    expect(sites.find((x) => x.siteName === 'clinic-a')).toMatchObject({ online: false, readiness: 'OFFLINE', detail: 'offline since 2026-11-02T09:00:00.000Z', lastHeartbeatAt: '2026-11-02T09:00:00.000Z' });
    expect((await nodeViews(net.coordinator)).find((n) => n.id === a.node.id)).toMatchObject({ online: false, lastHeartbeatAt: '2026-11-02T09:00:00.000Z' });
  });

  it('without readinessSeconds a study keeps waiting', async () => {
    const net = await network(manifest());
    const [a] = net.clinics as [Clinic, Clinic, Clinic];
    await net.connect(a);
    await net.declare(a, 'READINESS_READY');
    await net.log.waitFor((l) => l.msg === 'waiting for clinics: 1 READY of 3 needed');
    net.advance(30 * 86400_000);
    await net.connect(net.clinics[1]!);
    await net.declare(net.clinics[1]!, 'READINESS_READY');
    // The engine has woken since the clock moved, and still waits.
    await net.log.waitFor((l) => l.msg === 'waiting for clinics: 2 READY of 3 needed');
    expect((await net.now()).state).toBe('RUNNING');
    expect((await studyReadiness(net.coordinator, await net.now()))?.deadline).toBeNull();
  });
});
