import type { AgentInfo__Output, CoordinatorMessage } from '@fedlhs/proto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ControlSessions, STUDY_PROGRESS_CAPABILITY } from './control-session.js';
import { NodeDirectory } from './enrolment.js';
import { SessionRegistry, type NodeSession } from './sessions.js';
import type { CoordinatorStore, NodeRecord, StudyRecord, TaskRecord } from './store.js';
import type { WriteOp } from './store/write-ops.js';
import { CoordinatorMetrics } from './metrics.js';
import { LogSink } from './test-support.js';

let nextId = 1;

function fake(nodeId: string, capabilities: string[] = []): NodeSession & { sent: CoordinatorMessage[] } {
  return {
    id: nextId++, nodeId, siteName: nodeId, agent: { agentVersion: '1', trainingBackend: 'cpu', platform: 'x' } as AgentInfo__Output, connectedAt: 0, lastHeardAt: 7,
    readiness: new Map(), progress: new Map(), capabilities: new Set(capabilities), sent: [],
    send(m) {
      this.sent.push(m);
    },
    close() {},
  };
}

const studyRec = (id: string, over: Partial<StudyRecord> = {}): StudyRecord => ({
  id, name: id, manifestJson: `{"name":"${id}"}`, manifestHash: `hash-${id}`, state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null, parameters: null,
  createdAt: 1, endedAt: null, ...over,
});

/** The store calls control sessions make, counted; studies are edited in place as the engine would. */
function fakeStore(studies: StudyRecord[], tasks: TaskRecord[] = []) {
  const calls: Record<string, number> = {};
  const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
  const units: WriteOp[][] = [];
  const store = {
    kind: 'sqlite',
    listStudies: async () => (count('listStudies'), studies.map((s) => ({ ...s }))),
    getStudy: async (id: string) => (count('getStudy'), studies.find((s) => s.id === id) && { ...studies.find((s) => s.id === id)! }),
    openTasksForNode: async (nodeId: string) => (count('openTasksForNode'), tasks.filter((t) => t.nodeId === nodeId)),
    touchNode: async () => void count('touchNode'),
    listNodes: async () => (count('listNodes'), [] as NodeRecord[]),
    write: async (ops: readonly WriteOp[]) => (units.push([...ops]), { roundIds: [], cancelled: [] }),
  } as unknown as CoordinatorStore; // only what ControlSessions and NodeDirectory call
  return { store, calls, units };
}

function setup(studies: StudyRecord[], tasks: TaskRecord[] = []) {
  const { store, calls, units } = fakeStore(studies, tasks);
  const sessions = new SessionRegistry();
  const log = pino(new LogSink());
  const nodes = new NodeDirectory({ store, log, flushIntervalMs: 3_600_000 });
  const control = new ControlSessions({ store, sessions, log, now: () => 1000, heartbeatIntervalMs: 1000, runner: () => undefined, nodes });
  const ready = (s: NodeSession, study: StudyRecord) =>
    control.onAgentMessage(s, { readiness: { studyId: study.id, manifestSha256: study.manifestHash, readiness: 'READINESS_READY', detail: '' } } as never);
  return { control, sessions, calls, units, nodes, ready };
}

const kinds = (s: { sent: CoordinatorMessage[] }) => s.sent.map((m) => Object.keys(m)[0]);

describe('ControlSessions announcements', () => {
  it('builds each announcement once per change, not per session open or unchanged announce', async () => {
    const s1 = studyRec('s1');
    const { control, calls } = setup([s1, studyRec('old', { state: 'COMPLETED' })]);
    const clinics = Array.from({ length: 50 }, (_, i) => fake(`n${i}`));
    for (const c of clinics) await control.openSession(c, 10);
    expect(control.announcementBuilds).toBe(1); // s1, loaded once; the completed study is not announced
    expect(calls.listStudies).toBe(1);
    expect(calls.getStudy ?? 0).toBe(0);
    expect(calls.touchNode ?? 0).toBe(0); // last-seen goes write-behind
    expect(clinics.every((c) => c.sent.length === 2 && c.sent[1]?.study?.study?.studyId === 's1')).toBe(true);

    await control.announce('s1'); // nothing changed
    expect(control.announcementBuilds).toBe(1);
    expect(clinics[0]!.sent).toHaveLength(2);

    s1.lastCommittedRound = 1;
    await control.announce('s1');
    expect(control.announcementBuilds).toBe(2);
  });

  it('sends progress only to READY sessions: StudyProgress if the agent can take it, else the full announcement', async () => {
    const s1 = studyRec('s1');
    const { control, ready } = setup([s1]);
    const modern = fake('modern', [STUDY_PROGRESS_CAPABILITY]);
    const legacy = fake('legacy');
    const idle = fake('idle', [STUDY_PROGRESS_CAPABILITY]);
    for (const c of [modern, legacy, idle]) await control.openSession(c, 10);
    await ready(modern, s1);
    await ready(legacy, s1);
    const before = [modern, legacy, idle].map((c) => c.sent.length);

    s1.parameters = '{"normalization":{}}';
    await control.announce('s1');
    s1.lastCommittedRound = 1;
    await control.announce('s1');

    expect(modern.sent.slice(before[0])).toEqual([
      { progress: { studyId: 's1', state: 'STUDY_STATE_RUNNING', lastCommittedRound: 0, parametersJson: '{"normalization":{}}' } },
      // Parameters unchanged since the last message this agent got: empty.
      { progress: { studyId: 's1', state: 'STUDY_STATE_RUNNING', lastCommittedRound: 1, parametersJson: '' } },
    ]);
    expect(kinds({ sent: legacy.sent.slice(before[1]) })).toEqual(['study', 'study']);
    expect(legacy.sent.at(-1)?.study?.study).toMatchObject({ lastCommittedRound: 1, parametersJson: '{"normalization":{}}', manifestJson: s1.manifestJson });
    expect(idle.sent).toHaveLength(before[2]!); // not READY: no progress

    // A capable agent that connects now gets the parameters in its announcement, so its next
    // progress message leaves them out.
    const late = fake('late', [STUDY_PROGRESS_CAPABILITY]);
    await control.openSession(late, 10);
    expect(late.sent[1]?.study?.study?.parametersJson).toBe('{"normalization":{}}');
    await ready(late, s1);
    s1.lastCommittedRound = 2;
    await control.announce('s1');
    expect(late.sent.at(-1)).toEqual({ progress: { studyId: 's1', state: 'STUDY_STATE_RUNNING', lastCommittedRound: 2, parametersJson: '' } });
  });
});

describe('ControlSessions study start and end', () => {
  it('delivers a new study and its end in full to every session; later sessions do not hear of it', async () => {
    const studies: StudyRecord[] = [];
    const { control } = setup(studies);
    const clinics = [fake('a', [STUDY_PROGRESS_CAPABILITY]), fake('b')];
    for (const c of clinics) await control.openSession(c, 10);
    const s2 = studyRec('s2');
    studies.push(s2);
    await control.announce('s2');
    expect(clinics.map((c) => c.sent.at(-1)?.study?.study?.state)).toEqual(['STUDY_STATE_RUNNING', 'STUDY_STATE_RUNNING']);
    s2.state = 'COMPLETED';
    s2.lastCommittedRound = 3;
    await control.announce('s2');
    // Not READY, capable or not: a state change is a full announcement to everyone.
    expect(clinics.map((c) => c.sent.at(-1)?.study?.study?.state)).toEqual(['STUDY_STATE_COMPLETED', 'STUDY_STATE_COMPLETED']);
    const builds = control.announcementBuilds;
    const later = fake('c');
    await control.openSession(later, 10);
    expect(kinds(later)).toEqual(['welcome']);
    expect(control.announcementBuilds).toBe(builds);
  });

  it('merges changes that arrive while a delivery runs, so every session ends with the latest', async () => {
    const s1 = studyRec('s1');
    const { control, ready } = setup([s1]);
    const clinics = Array.from({ length: 1200 }, (_, i) => fake(`n${i}`, i % 2 === 0 ? [STUDY_PROGRESS_CAPABILITY] : []));
    for (const c of clinics) {
      await control.openSession(c, 10);
      await ready(c, s1);
    }
    const pending: Promise<void>[] = [];
    for (let round = 1; round <= 5; round++) {
      s1.lastCommittedRound = round;
      pending.push(control.announce('s1'));
      await Promise.resolve(); // let the announce read the store before the next change
      await Promise.resolve();
    }
    await Promise.all(pending);
    const last = (c: { sent: CoordinatorMessage[] }) => c.sent.at(-1)?.progress?.lastCommittedRound ?? c.sent.at(-1)?.study?.study?.lastCommittedRound;
    expect(new Set(clinics.map(last))).toEqual(new Set([5]));
    // Rounds never go backwards for any session.
    for (const c of clinics.slice(0, 20)) {
      const rounds = c.sent.slice(2).map((m) => m.progress?.lastCommittedRound ?? m.study?.study?.lastCommittedRound);
      expect([...rounds].sort()).toEqual(rounds);
    }
    // At most: the first delivery plus one merged delivery, not five.
    expect(clinics[0]!.sent.length - 2).toBeLessThanOrEqual(2);
  });
});

describe('ControlSessions session bookkeeping', () => {
  it('records last-seen write-behind on open and close, from memory; the open tasks are the one read per open', async () => {
    const s1 = studyRec('s1', { parameters: '{"p":1}' });
    const task: TaskRecord = {
      id: 't1', roundId: 1, studyId: 's1', round: 1, attempt: 1, nodeId: 'a', kind: 'TRAIN', state: 'ASSIGNED', detail: null, modelSha256: 'ab'.repeat(32), deadline: 5, createdAt: 1, endedAt: null,
    } as TaskRecord;
    const { control, calls, units, nodes } = setup([s1], [task]);
    const a = fake('a');
    await control.openSession(a, 10);
    expect(kinds(a)).toEqual(['welcome', 'study', 'task']);
    expect(a.sent[2]?.task).toMatchObject({ taskId: 't1', manifestSha256: 'hash-s1', parametersJson: '{"p":1}' });
    expect(calls).toEqual({ listStudies: 1, openTasksForNode: 1 });
    control.closeSession(a, 'agent closed the stream');
    expect(nodes.pendingCount).toBe(1);
    await nodes.close();
    expect(units).toEqual([[{ op: 'node.seen', id: 'a', at: 7, agentVersion: '1', trainingBackend: 'cpu' }]]);
  });
});

describe('ControlSessions keeps per-node state bounded (issue 11)', () => {
  function bounded(studies: StudyRecord[], tasks: TaskRecord[] = []) {
    const { store } = fakeStore(studies, tasks);
    (store as unknown as { getTask: (id: string) => Promise<TaskRecord | undefined> }).getTask = async (id) => tasks.find((t) => t.id === id);
    const sessions = new SessionRegistry();
    const sink = new LogSink();
    const log = pino(sink);
    const metrics = new CoordinatorMetrics();
    const control = new ControlSessions({ store, sessions, log, now: () => 1000, heartbeatIntervalMs: 1000, runner: () => undefined, metrics });
    const refused = async (reason: string) => (await metrics.sessionMessagesRefused.get()).values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
    return { control, sessions, sink, refused };
  }
  const readiness = (studyId: string, manifestSha256: string, readiness: string, detail = '', trainingRows = 0) =>
    ({ readiness: { studyId, manifestSha256, readiness, detail, trainingRows } }) as never;

  it('does not store readiness for a study that is not running here; counts it and logs once per session and study', async () => {
    const s1 = studyRec('s1');
    const { control, sink, refused } = bounded([s1, studyRec('old', { state: 'COMPLETED' })]);
    const n = fake('n1');
    await control.openSession(n, 10);
    for (let i = 0; i < 5; i++) await control.onAgentMessage(n, readiness('nope', 'h', 'READINESS_READY'));
    await control.onAgentMessage(n, readiness('old', 'hash-old', 'READINESS_READY'));
    for (let i = 0; i < 100; i++) await control.onAgentMessage(n, readiness(`made-up-${i}`, 'h', 'READINESS_READY'));
    expect(n.readiness.size).toBe(0);
    expect(await refused('unknown_study')).toBe(106);
    const logged = sink.lines.filter((l) => l['event'] === 'session.readiness_refused');
    expect(logged.filter((l) => l['studyId'] === 'nope')).toHaveLength(1);
    expect(logged.length).toBeLessThanOrEqual(18);
    // The running study is stored, with its detail capped and the READY training rows kept.
    await control.onAgentMessage(n, readiness('s1', 'hash-s1', 'READINESS_READY', 'd'.repeat(1000), 321));
    expect([...n.readiness.keys()]).toEqual(['s1']);
    expect(n.readiness.get('s1')!.detail.length).toBeLessThanOrEqual(240);
  });

  it('records READY training rows, forgets them and the readiness when the study ends or the node is revoked', async () => {
    const s1 = studyRec('s1');
    const { control, sessions } = bounded([s1]);
    const n = fake('n1');
    await control.openSession(n, 10);
    await control.onAgentMessage(n, readiness('s1', 'hash-s1', 'READINESS_READY', '', 321));
    expect(sessions.trainingRows('n1', 's1')).toBe(321);
    await control.onAgentMessage(n, readiness('s1', 'hash-s1', 'READINESS_WITHDRAWN', 'operator said no'));
    expect(sessions.trainingRows('n1', 's1')).toBe(321); // the latest READY's
    control.closeSession(n, 'node credential was revoked');
    expect(sessions.trainingRows('n1', 's1')).toBeUndefined();

    const m = fake('n2');
    await control.openSession(m, 10);
    await control.onAgentMessage(m, readiness('s1', 'hash-s1', 'READINESS_READY', '', 50));
    s1.state = 'COMPLETED';
    await control.announce('s1');
    expect(m.readiness.size).toBe(0);
    expect(sessions.trainingRows('n2', 's1')).toBeUndefined();
    await control.onAgentMessage(m, readiness('s1', 'hash-s1', 'READINESS_READY', '', 50));
    expect(m.readiness.size).toBe(0); // ended: refused
  });

  it('keeps progress only for the node\'s own open tasks', async () => {
    const task = (id: string, nodeId: string, state: TaskRecord['state']) => ({ id, nodeId, studyId: 's1', state }) as TaskRecord;
    const { control } = bounded([studyRec('s1')], [task('t-own', 'n1', 'ASSIGNED'), task('t-other', 'n2', 'ASSIGNED'), task('t-done', 'n1', 'ACCEPTED')]);
    const n = fake('n1');
    const update = (taskId: string) => ({ taskUpdate: { taskId, state: 'TASK_STATE_RUNNING', reason: '', phase: 'train', epoch: 1, epochs: 2, fraction: 0.5 } }) as never;
    for (const id of ['t-own', 't-other', 't-done', 'unknown']) await control.onAgentMessage(n, update(id));
    expect([...n.progress.keys()]).toEqual(['t-own']);
  });
});
