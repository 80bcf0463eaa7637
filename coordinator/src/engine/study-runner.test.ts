import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { FedlhsError, createStrategy, strategyConfigOf, validateManifest, type StudyManifest, type Strategy, type TensorSpec } from '@fedlhs/core';
import { CheckpointStore } from '../checkpoints.js';
import type { NodeSession } from '../sessions.js';
import { SqliteStore } from '../sqlite-store.js';
import type { StudyRecord, TaskRecord } from '../store.js';
import type { WriteOp, WriteResult } from '../store/write-ops.js';
import { LogSink, ManualClock } from '../test-support.js';
import { StorageHealth } from '../storage-health.js';
import { StudyRunner, type EngineSessions, type StorageGate } from './study-runner.js';

const SPECS: TensorSpec[] = [{ name: 'out/kernel', shape: [2, 1] }, { name: 'out/bias', shape: [1] }];
const T0 = Date.parse('2026-11-02T09:00:00Z');

function manifest(clients = { min: 3, max: 3, quorum: 2 }, deadlines: Record<string, unknown> = {}, rounds = 1): StudyManifest {
  return validateManifest({
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'engine-unit',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds, clients, deadlines: { roundSeconds: 600, evaluationSeconds: 600, ...deadlines },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2'] },
    aggregation: { strategy: 'fedavg' },
  });
}

/** Sessions in process: nodes go online/offline and declare READY; typed notifications as the ready index gives them. */
class FakeSessions extends EventEmitter implements EngineSessions {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly ready = new Set<string>();
  private readonly onlineL = new Set<(id: string) => void>();
  private readonly offlineL = new Set<(id: string) => void>();
  private readonly readyL = new Set<() => void>();
  connect(nodeId: string, ready = true): void {
    this.sessions.set(nodeId, { nodeId, siteName: `site-${nodeId}` } as NodeSession);
    if (ready) this.ready.add(nodeId);
    for (const l of this.onlineL) l(nodeId);
    for (const l of this.readyL) l();
  }
  disconnect(nodeId: string): void {
    this.sessions.delete(nodeId);
    this.ready.delete(nodeId);
    for (const l of this.offlineL) l(nodeId);
    for (const l of this.readyL) l();
  }
  isOnline(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }
  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }
  online(): NodeSession[] {
    return [...this.sessions.values()];
  }
  readyFor(): NodeSession[] {
    return [...this.ready].map((id) => this.sessions.get(id)!);
  }
  onOnline(l: (id: string) => void): () => void {
    this.onlineL.add(l);
    return () => this.onlineL.delete(l);
  }
  onOffline(l: (id: string) => void): () => void {
    this.offlineL.add(l);
    return () => this.offlineL.delete(l);
  }
  onReady(_studyId: string, l: () => void): () => void {
    this.readyL.add(l);
    return () => this.readyL.delete(l);
  }
}

/** A store whose `write` can be watched and made to fail. */
class WatchedStore extends SqliteStore {
  readonly units: { label: string; ops: readonly WriteOp[] }[] = [];
  failNext: ((label: string) => boolean) | undefined;
  override async write(ops: readonly WriteOp[], label: string): Promise<WriteResult> {
    this.units.push({ label, ops });
    if (this.failNext?.(label) === true) {
      this.failNext = undefined;
      throw new FedlhsError('STORE_UNAVAILABLE', 'disk full (test)', { details: { why: 'disk_full' } } as never);
    }
    return super.write(ops, label);
  }
}

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function engine(m: StudyManifest, nodes: string[], opts: { strategy?: Strategy; sendSlice?: number; storage?: (clock: ManualClock, log: LogSink) => StorageGate } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-engine-unit-'));
  dirs.push(dir);
  const store = new WatchedStore(join(dir, 'c.db'));
  const checkpoints = new CheckpointStore(dir);
  const clock = new ManualClock(T0);
  const log = new LogSink();
  const sessions = new FakeSessions();
  await store.write(nodes.map((id) => ({
    op: 'node.insert' as const, n: { id, siteName: `site-${id}`, credentialHash: id, createdAt: T0, revokedAt: null, lastSeenAt: null, agentVersion: 't', trainingBackend: 'cpu' },
  })), 'nodes');
  const study: StudyRecord = {
    id: 'study-1', name: m.name, manifestJson: JSON.stringify(m), manifestHash: 'h', state: 'RUNNING', reason: null, lastCommittedRound: 0, strategyState: null,
    parameters: null, createdAt: T0, endedAt: null,
  };
  checkpoints.saveSpecs(study.id, SPECS);
  const initial = checkpoints.promote(study.id, 0, await checkpoints.writeCandidate(study.id, 0, 1, [new Float32Array([0, 0, 0])]));
  const [r0] = (await store.write([{ op: 'study.insert', s: study }, {
    op: 'round.insert', r: { studyId: study.id, round: 0, attempt: 1, state: 'WAITING_FOR_NODES', reason: null, startedAt: T0, endedAt: null, participants: 0, checkpointPath: null, checkpointSha256: null },
  }], 'study')).roundIds;
  await store.write([{ op: 'round.commit', id: r0!, checkpoint: { path: initial.path, sha256: initial.sha256 }, metrics: [], strategyState: null, at: T0 }], 'round0');
  store.units.length = 0;

  const sent: TaskRecord[] = [];
  const cancelled: string[] = [];
  const waiters: { match: (t: TaskRecord) => boolean; resolve: (t: TaskRecord) => void }[] = [];
  let onSend: ((n: number) => void) | undefined;
  const storage = opts.storage?.(clock, log);
  const runner = new StudyRunner(study, m, SPECS, {
    store, checkpoints, sessions, logger: pino({ level: 'debug' }, log), selectionGraceMs: 0, clock,
    ...(storage === undefined ? {} : { storage }),
    ...(opts.sendSlice === undefined ? {} : { sendSlice: opts.sendSlice }),
    ...(opts.strategy === undefined ? {} : { strategy: opts.strategy }),
    dispatch: {
      task: (r) => {
        sent.push(r);
        onSend?.(sent.length);
        for (const w of waiters.splice(0)) if (w.match(r)) w.resolve(r); else waiters.push(w);
        return true;
      },
      cancel: (_nodeId, taskId) => void cancelled.push(taskId),
    },
  });
  const done = runner.run();
  cleanups.push(async () => {
    runner.halt();
    await done;
    await store.close();
  });
  const task = (nodeId: string, kind: TaskRecord['kind'], attempt = 1): Promise<TaskRecord> => {
    const match = (t: TaskRecord) => t.nodeId === nodeId && t.kind === kind && t.attempt === attempt;
    const seen = sent.find(match);
    return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
  };
  const update = async (nodeId: string, values: number[]) => {
    const t = await task(nodeId, 'TRAIN');
    const spoolPath = join(dir, `${t.id}.f32`);
    writeFileSync(spoolPath, Buffer.from(Float32Array.from(values).buffer));
    await runner.submit(t, { kind: 'update', spoolPath, numExamples: 10, digest: `d-${t.id}`, bytes: 12, deltaNorm: 1, trainMetrics: undefined });
  };
  const evaluate = async (nodeId: string) => {
    const t = await task(nodeId, 'EVALUATE');
    await runner.submit(t, { kind: 'evaluation', metrics: { numExamples: 50, loss: 0.5, accuracy: 0.7 }, digest: 'e'.repeat(64) });
  };
  const state = () => runner.current?.state;
  const phase = (s: string) => log.waitFor((l) => l.event === 'round.phase' && l.state === s);
  const rounds = () => store.listRounds(study.id);
  return { store, checkpoints, clock, log, sessions, runner, done, sent, cancelled, task, update, evaluate, state, phase, rounds, study, setOnSend: (f: (n: number) => void) => (onSend = f) };
}

const three = ['n1', 'n2', 'n3'];

function floats(path: string): number[] {
  const b = readFileSync(path);
  return [...new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)];
}

describe('study runner: a phase closes', () => {
  it('on quorum once nobody online is still working (an offline clinic does not hold it)', async () => {
    const e = await engine(manifest(), three);
    for (const n of three) e.sessions.connect(n);
    await e.update('n1', [1, 1, 1]);
    await e.update('n2', [3, 3, 3]);
    expect(e.state()).toBe('TRAINING');
    expect(e.runner.counters).toMatchObject({ assigned: 3, accepted: 2, openOnline: 1, openOffline: 0 });
    e.sessions.disconnect('n3');
    await e.phase('EVALUATING');
    // Two units entered the phases and one moved to AGGREGATING; the open TRAIN task of n3 was cancelled with it.
    expect(e.store.units.map((u) => u.label).filter((l) => !l.startsWith('accept.'))).toEqual(['round.insert', 'phase.training', 'round.aggregating', 'phase.evaluation']);
    expect(e.cancelled).toEqual([(await e.task('n3', 'TRAIN')).id]);
  });

  it('on its deadline; an evaluation nobody answered commits loudly ("0 of N sites evaluated")', async () => {
    const e = await engine(manifest(), three);
    for (const n of three) e.sessions.connect(n);
    await e.update('n1', [1, 1, 1]);
    await e.update('n2', [3, 3, 3]);
    e.clock.advance(599_000);
    expect(e.state()).toBe('TRAINING');
    e.clock.advance(1_000);
    await e.phase('EVALUATING');
    e.clock.advance(600_000);
    await e.done;
    const line = await e.log.waitFor((l) => l.event === 'round.unevaluated');
    expect(line).toMatchObject({ level: 40, round: 1, evaluatedSites: 0, askedSites: 3 });
    const r1 = (await e.rounds()).find((r) => r.round === 1)!;
    expect([r1.state, r1.reason]).toEqual(['COMMITTED', 'committed unevaluated: 0 of 3 site(s) evaluated the new model by the deadline']);
    expect(e.log.lines.find((l) => l.event === 'round.committed')).toMatchObject({ level: 40, evaluatedSites: 0, askedSites: 3 });
    // FedAvg of 1 and 3 with equal weights.
    expect(floats(r1.checkpointPath!)).toEqual([2, 2, 2]);
  });

  it('evaluation with nothing in yet waits for an evaluator that dropped off, instead of committing unevaluated at once', async () => {
    const e = await engine(manifest(), three);
    for (const n of three) e.sessions.connect(n);
    for (const n of three) await e.update(n, [1, 2, 3]);
    await e.phase('EVALUATING');
    await e.runner.endTask(await e.task('n1', 'EVALUATE'), 'DECLINED', 'busy');
    await e.runner.endTask(await e.task('n2', 'EVALUATE'), 'DECLINED', 'busy');
    e.sessions.disconnect('n3');
    await new Promise((resolve) => setImmediate(resolve));
    expect([e.state(), e.runner.counters?.openOffline]).toEqual(['EVALUATING', 1]);
    e.sessions.connect('n3');
    await e.evaluate('n3');
    await e.done;
    expect(e.log.lines.find((l) => l.event === 'round.committed')).toMatchObject({ evaluatedSites: 1, askedSites: 3 });
  });

  it('commits quietly when clinics evaluated', async () => {
    const e = await engine(manifest(), three);
    for (const n of three) e.sessions.connect(n);
    for (const n of three) await e.update(n, [1, 2, 3]);
    for (const n of three) await e.evaluate(n);
    await e.done;
    const r1 = (await e.rounds()).find((r) => r.round === 1)!;
    expect([r1.state, r1.reason]).toEqual(['COMMITTED', null]);
    expect(e.log.lines.some((l) => l.event === 'round.unevaluated')).toBe(false);
    expect(e.log.lines.find((l) => l.event === 'round.committed')).toMatchObject({ level: 30, evaluatedSites: 3, updates: 3 });
  });

  it('when nobody is left: every clinic declined, the attempt fails at once with the causes grouped', async () => {
    const e = await engine(manifest({ min: 3, max: 3, quorum: 1 }), three);
    for (const n of three) e.sessions.connect(n);
    for (const [i, n] of three.entries()) await e.runner.endTask(await e.task(n, 'TRAIN'), 'DECLINED', i === 0 ? 'not approved' : 'busy');
    const failed = await e.log.waitFor((l) => l.event === 'round.failed');
    expect(failed.reason).toBe('quorum 1 not reached: 2 declined (site-n2, site-n3): busy; 1 declined (site-n1): not approved');
    expect(e.clock.now()).toBe(T0); // not the deadline: at once
    await e.task('n1', 'TRAIN', 2);
  });
});

describe('study runner: counters', () => {
  it('stay exact under concurrent accepts: a second accept of one task is refused, never counted', async () => {
    const e = await engine(manifest({ min: 2, max: 2, quorum: 1 }), ['n1', 'n2']);
    e.sessions.connect('n1');
    e.sessions.connect('n2');
    await e.update('n1', [1, 1, 1]);
    await e.update('n2', [1, 1, 1]);
    const t = await e.task('n1', 'EVALUATE');
    const result = { kind: 'evaluation' as const, metrics: { numExamples: 50, loss: 0.5, accuracy: 0.7 }, digest: 'e'.repeat(64) };
    const outcomes = await Promise.allSettled([e.runner.submit(t, result), e.runner.submit(t, result)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(e.runner.counters).toMatchObject({ assigned: 2, accepted: 1, openOnline: 1, inflight: 0 });
    // The store's guard: a task ended behind the engine's back cannot be accepted (TASK_CLOSED), and is not counted.
    const t2 = await e.task('n2', 'EVALUATE');
    await e.store.write([{ op: 'task.end', id: t2.id, to: 'FAILED', detail: 'ended elsewhere', at: T0 }], 'test');
    const err = await e.runner.submit(t2, result).catch((x: unknown) => x as FedlhsError);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('TASK_CLOSED');
    expect(e.runner.counters).toMatchObject({ accepted: 1, openOnline: 1, inflight: 0 });
  });
});

describe('study runner: assignment', () => {
  it('assigns 5 000 tasks in one task.insert unit and sends them in slices, yielding between', async () => {
    const nodes = Array.from({ length: 5000 }, (_, i) => `n${i}`);
    const e = await engine(manifest({ min: 1, max: 5000, quorum: 1 }), nodes, { sendSlice: 500 });
    let sentWhenLoopRan = -1;
    e.setOnSend((n) => {
      if (n === 1) setImmediate(() => (sentWhenLoopRan = e.sent.length));
    });
    for (const n of nodes) e.sessions.connect(n);
    await e.log.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('TRAIN tasks sent to 5000'));
    const inserts = e.store.units.filter((u) => u.ops.some((o) => o.op === 'task.insert'));
    expect(inserts).toHaveLength(1);
    expect(inserts[0]!.ops.map((o) => o.op)).toEqual(['round.state', 'task.insert']);
    const [state, insert] = inserts[0]!.ops;
    expect(insert?.op === 'task.insert' ? insert.tasks.length : 0).toBe(5000);
    expect(state?.op === 'round.state' ? state.participants : 0).toBe(5000);
    // The event loop ran after the first slice of 500, before the rest went out.
    expect(sentWhenLoopRan).toBe(500);
    expect(e.sent).toHaveLength(5000);
  });
});

describe('study runner: aggregation through the strategy', () => {
  it("runs a wrapping strategy's stepSlice (no FedAvg shortcut)", async () => {
    const inner = createStrategy(strategyConfigOf(manifest()));
    let slices = 0;
    const wrapper: Strategy = Object.assign(Object.create(inner) as Strategy, {
      name: 'fedavg+one',
      stepSlice(offset: number, global: Float32Array, mean: Float32Array, round: number): Float32Array {
        slices++;
        return inner.stepSlice!(offset, global, mean, round).map((v) => v + 1);
      },
    });
    const e = await engine(manifest({ min: 2, max: 2, quorum: 2 }), ['n1', 'n2'], { strategy: wrapper });
    e.sessions.connect('n1');
    e.sessions.connect('n2');
    await e.update('n1', [1, 1, 1]);
    await e.update('n2', [3, 3, 3]);
    await e.evaluate('n1');
    await e.evaluate('n2');
    await e.done;
    expect(slices).toBeGreaterThan(0);
    const r1 = (await e.rounds()).find((r) => r.round === 1)!;
    expect(floats(r1.checkpointPath!)).toEqual([3, 3, 3]);
  });
});

describe('study runner: failures', () => {
  it('groups a deterministic failure from failuresByDetail and fails the study at once', async () => {
    const e = await engine(manifest(), three);
    for (const n of three) e.sessions.connect(n);
    for (const n of three) await e.runner.endTask(await e.task(n, 'TRAIN'), 'FAILED', 'fit: bad shape');
    await e.done;
    expect(e.log.lines.find((l) => l.event === 'study.failed')?.reason).toBe(
      'round 1: 3 of 3 clinic(s) (site-n1, site-n2, site-n3) failed training: fit: bad shape — every clinic failed the same way, so the round was not retried',
    );
  });

});

describe('study runner: storage faults (issue 11)', () => {
  /** A StorageHealth on the engine's clock whose one probe fails while `down`. */
  function gate(): { storage: (clock: ManualClock, log: LogSink) => StorageGate; health: () => StorageHealth; setDown: (down: boolean) => void } {
    let down = false;
    let health: StorageHealth | undefined;
    return {
      storage: (clock, log) => {
        health = new StorageHealth({
          log: pino({ level: 'debug' }, log), now: () => clock.now(), setTimer: (ms, fn) => clock.setTimer(ms, fn), faultIntervalMs: 1000, intervalMs: 0,
          probes: [{ name: 'test disk', run: async () => {
            if (down) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          } }],
        });
        health.start();
        return health;
      },
      health: () => health!,
      setDown: (d) => {
        down = d;
      },
    };
  }

  it('a store write failure fails the attempt with a storage reason, does not count against maxRoundAttempts, and the round is retried once storage recovers', async () => {
    const g = gate();
    // One attempt allowed: a storage fault that counted would fail the study.
    const e = await engine(manifest({ min: 3, max: 3, quorum: 2 }, { maxRoundAttempts: 1 }), three, { storage: g.storage });
    g.setDown(true);
    e.store.failNext = (label) => label === 'phase.training';
    for (const n of three) e.sessions.connect(n);
    const failed = await e.log.waitFor((l) => l.event === 'round.failed');
    expect(failed).toMatchObject({ storageFault: 'disk_full', attempt: 1 });
    expect(failed.reason).toMatchInlineSnapshot(`"storage fault: disk full at the data directory: could not run round 1 (disk full (test)) (kind disk_full); the round will be retried when storage recovers"`);
    await e.log.waitFor((l) => l.event === 'study.waiting_for_storage');
    expect(g.health().health()).toMatchObject({ status: 'degraded', storage: { healthy: false, kind: 'disk_full', since: T0 } });
    // While the probe fails, time passes and no attempt starts.
    e.clock.advance(5_000);
    await new Promise((r) => setImmediate(r));
    expect(e.sent.filter((t) => t.attempt === 2)).toEqual([]);
    g.setDown(false);
    e.clock.advance(1_000);
    await e.log.waitFor((l) => l.event === 'storage.recovered');
    for (const n of three) {
      const t = await e.task(n, 'TRAIN', 2);
      const spoolPath = join(e.checkpoints.spoolPath(`${t.id}.f32`));
      writeFileSync(spoolPath, Buffer.from(Float32Array.from([1, 2, 3]).buffer));
      await e.runner.submit(t, { kind: 'update', spoolPath, numExamples: 10, digest: `d-${t.id}`, bytes: 12, deltaNorm: 1, trainMetrics: undefined });
    }
    for (const n of three) {
      await e.runner.submit(await e.task(n, 'EVALUATE', 2), { kind: 'evaluation', metrics: { numExamples: 50, loss: 0.5, accuracy: 0.7 }, digest: 'e'.repeat(64) });
    }
    await e.done;
    expect(e.log.lines.find((l) => l.event === 'study.completed')).toBeDefined();
    const r = (await e.rounds()).filter((x) => x.round === 1).map((x) => [x.attempt, x.state, x.reason?.startsWith('storage fault: ') ?? null]);
    expect(r).toEqual([[1, 'FAILED', true], [2, 'COMMITTED', null]]);
    expect(g.health().healthy).toBe(true);
  });

  it('a fault that storage health sees mid-phase ends the attempt at once with a storage reason (not at its deadline with a wrong one)', async () => {
    const g = gate();
    const e = await engine(manifest({ min: 3, max: 3, quorum: 2 }, { maxRoundAttempts: 1 }), three, { storage: g.storage });
    for (const n of three) e.sessions.connect(n);
    await e.update('n1', [1, 1, 1]);
    g.setDown(true);
    g.health().report(Object.assign(new Error('EROFS: read-only file system, open spool/x.part'), { code: 'EROFS' }), 'spool an upload', '/data/spool');
    const failed = await e.log.waitFor((l) => l.event === 'round.failed');
    expect(failed).toMatchObject({ storageFault: 'read_only' });
    expect(String(failed.reason)).toMatch(/^storage fault: read-only storage at \/data\/spool: could not spool an upload .*\(kind read_only\)/);
    g.setDown(false);
    e.clock.advance(1_000);
    await e.task('n1', 'TRAIN', 2);
    expect(e.log.lines.filter((l) => l.event === 'study.failed')).toEqual([]);
  });

  it('without storage health a storage fault is retried after a backoff', async () => {
    const e = await engine(manifest({ min: 3, max: 3, quorum: 2 }, { maxRoundAttempts: 1 }), three);
    e.store.failNext = (label) => label === 'round.insert';
    for (const n of three) e.sessions.connect(n);
    await e.log.waitFor((l) => l.event === 'study.waiting_for_storage');
    expect(e.sent).toEqual([]);
    e.clock.advance(1_000);
    await e.task('n1', 'TRAIN', 1);
    // The failed insert wrote nothing: attempt 1 is the first on record.
    expect((await e.rounds()).filter((x) => x.round === 1).map((x) => [x.attempt, x.state])).toEqual([[1, 'TRAINING']]);
  });
});
