import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { FedlhsError, validateManifest, type StudyManifest, type TensorSpec } from '@fedlhs/core';
import { CheckpointStore } from '../../checkpoints.js';
import type { NodeSession } from '../../sessions.js';
import { SqliteStore } from '../../sqlite-store.js';
import type { StudyRecord, TaskRecord } from '../../store.js';
import { LogSink, ManualClock } from '../../test-support.js';
import { StudyRunner, type EngineSessions } from '../study-runner.js';
import { AdaptiveClipping } from './adaptive-clipping.js';
import { EvaluationPhase } from './evaluation.js';
import { TrainingPhase } from './training.js';
import { checkDpClipIndicator, validateUploadHeader } from '../../grpc/validate.js';

/*
 * Adaptive DP clipping at the coordinator (issue 14, Andrew et al. 2021): the round's norm goes
 * out in Task.parameters_json, the clinics' indicators come back, and C ← C·exp(−η(b̄ − γ)) is
 * written with the commit, so a restart continues with it.
 */

const SPECS: TensorSpec[] = [{ name: 'out/kernel', shape: [2, 1] }, { name: 'out/bias', shape: [1] }];
const T0 = Date.parse('2026-11-30T09:00:00Z');
const NODES = ['n1', 'n2', 'n3'];

function manifest(placement: 'central' | 'local' | 'distributed', countNoiseMultiplier: number, rounds = 2): StudyManifest {
  return validateManifest({
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'adaptive-clip',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds, clients: { min: 3, max: 3, quorum: 3 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600 },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2'] },
    aggregation: { strategy: 'fedavg' },
    privacy: { dp: { placement, noiseMultiplier: 1, clipping: { mode: 'adaptive', initialNorm: 2, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier } } },
  });
}

/** In-process sessions: every node online and READY. */
class Sessions extends EventEmitter implements EngineSessions {
  private readonly sessions = new Map(NODES.map((id) => [id, { nodeId: id, siteName: `site-${id}` } as NodeSession]));
  isOnline(id: string): boolean {
    return this.sessions.has(id);
  }
  get(id: string): NodeSession | undefined {
    return this.sessions.get(id);
  }
  online(): NodeSession[] {
    return [...this.sessions.values()];
  }
  readyFor(): NodeSession[] {
    return this.online();
  }
}

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh store and data directory with the study's round 0. */
async function setup(m: StudyManifest) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-adaptive-clip-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'c.db'));
  const checkpoints = new CheckpointStore(dir);
  await store.write(NODES.map((id) => ({
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
  return { dir, store, checkpoints };
}

/** A runner over the stored study (as a coordinator builds one at start), recording what each task carried. */
async function start(m: StudyManifest, env: Awaited<ReturnType<typeof setup>>, random?: (bytes: number) => Uint8Array) {
  const record = (await env.store.getStudy('study-1'))!;
  const log = new LogSink();
  const sent: { task: TaskRecord; parameters: string | null }[] = [];
  const waiters: (() => void)[] = [];
  const runner = new StudyRunner(record, m, SPECS, {
    store: env.store, checkpoints: env.checkpoints, sessions: new Sessions(), logger: pino({ level: 'debug' }, log), selectionGraceMs: 0, clock: new ManualClock(T0),
    pipeline: [{ name: 'training', create: () => new TrainingPhase(random) }, { name: 'evaluation', create: () => new EvaluationPhase() }],
    dispatch: {
      task: (task, parameters) => {
        sent.push({ task, parameters });
        for (const w of waiters.splice(0)) w();
        return true;
      },
      cancel: () => undefined,
    },
  });
  const done = runner.run();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    runner.halt();
    await done.catch(() => undefined);
  };
  cleanups.push(stop);
  const taskOf = async (nodeId: string, round: number, kind: TaskRecord['kind'] = 'TRAIN'): Promise<{ task: TaskRecord; parameters: string | null }> => {
    for (;;) {
      const found = sent.find((s) => s.task.nodeId === nodeId && s.task.round === round && s.task.kind === kind);
      if (found !== undefined) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  /** Each node's update for the round with its indicator (undefined: none sent). */
  const round = async (r: number, indicators: (number | undefined)[]): Promise<number> => {
    let clipNorm = 0;
    for (const [i, nodeId] of NODES.entries()) {
      const { task, parameters } = await taskOf(nodeId, r);
      clipNorm = (JSON.parse(parameters ?? '{}') as { dp: { clipNorm: number } }).dp.clipNorm;
      const spoolPath = join(env.dir, `${task.id}.f32`);
      writeFileSync(spoolPath, Buffer.from(Float32Array.from([0.1, 0.1, 0.1]).buffer));
      await runner.submit(task, { kind: 'update', spoolPath, numExamples: 10, digest: `d-${task.id}`, bytes: 12, deltaNorm: 0.17, trainMetrics: undefined, dpClipIndicator: indicators[i] });
    }
    for (const nodeId of NODES) {
      const { task } = await taskOf(nodeId, r, 'EVALUATE');
      await runner.submit(task, { kind: 'evaluation', metrics: { numExamples: 50, loss: 0.5, accuracy: 0.7 }, digest: 'e'.repeat(64) });
    }
    return clipNorm;
  };
  return { runner, done, log, sent, stop, round, trainTask: (nodeId: string, r: number) => taskOf(nodeId, r) };
}

const storedClipNorm = async (store: SqliteStore): Promise<number | undefined> =>
  (JSON.parse((await store.getStudy('study-1'))?.parameters ?? '{}') as { dp?: { clipNorm: number } }).dp?.clipNorm;

describe('adaptive clipping over rounds (the paper\'s direction)', () => {
  it('sends initialNorm first, shrinks the norm when every clinic is under it and grows it when none is', async () => {
    const m = manifest('central', 0);
    const env = await setup(m);
    const e = await start(m, env);
    expect(await e.round(1, [1, 1, 1])).toBe(2); // round 1 carries initialNorm
    // b̄ = 1 > γ = 0.5: C shrinks (Andrew et al. 2021; the inverted implementation would grow it).
    const c2 = 2 * Math.exp(-0.2 * 0.5);
    expect(await e.round(2, [0, 0, 0])).toBeCloseTo(c2, 12);
    await e.done;
    // b̄ = 0 < γ: C grows back.
    expect(await storedClipNorm(env.store)).toBeCloseTo(c2 * Math.exp(0.2 * 0.5), 12);
    const lines = e.log.lines.filter((l) => l.event === 'privacy.clip_norm');
    expect(lines.map((l) => [l.round, l.unclippedFraction])).toEqual([[1, 1], [2, 0]]);
    expect(lines[0]!.nextClipNorm).toBeLessThan(lines[0]!.clipNorm as number);
    expect(lines[1]!.nextClipNorm).toBeGreaterThan(lines[1]!.clipNorm as number);
    expect(e.log.lines.find((l) => l.event === 'round.committed' && l.round === 1)).toMatchObject({ clipNorm: 2, nextClipNorm: c2 });
  });

  it('adds the count noise itself under central placement (the clinics sent bare bits)', async () => {
    const m = manifest('central', 3, 1);
    const env = await setup(m);
    const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 91 + 5) % 256);
    const e = await start(m, env, bytes);
    await e.round(1, [1, 0, 1]);
    await e.done;
    const line = e.log.lines.find((l) => l.event === 'privacy.clip_norm')!;
    expect(line.unclippedFraction).not.toBeCloseTo(2 / 3, 6);
    expect(await storedClipNorm(env.store)).toBeCloseTo(2 * Math.exp(-0.2 * ((line.unclippedFraction as number) - 0.5)), 12);
  });

  it('keeps the norm of the last commit across a restart (and a failed attempt does not move it)', async () => {
    const m = manifest('local', 1, 3);
    const env = await setup(m);
    const first = await start(m, env);
    await first.round(1, [1.2, 0.6, 1.4]); // noisy bits of local placement; b̄ = 3.2/3
    const c2 = 2 * Math.exp(-0.2 * (1 - 0.5)); // b̄ clamped to 1 (review clinic2 MEDIUM 2); unclamped it would be exp(-0.2 · (3.2/3 - 0.5))
    expect(c2).not.toBeCloseTo(2 * Math.exp(-0.2 * (3.2 / 3 - 0.5)), 3);
    await first.trainTask('n1', 2); // round 2 is under way…
    await first.stop(); // …when the coordinator stops
    expect(await storedClipNorm(env.store)).toBeCloseTo(c2, 12);
    const second = await start(m, env);
    // Round 2 is run again at C_2, not initialNorm, and nothing rewrote the norm before it.
    expect(await second.round(2, [0, 0, 0])).toBeCloseTo(c2, 12);
    expect(await second.round(3, [1, 1, 1])).toBeCloseTo(c2 * Math.exp(0.2 * 0.5), 12);
    await second.done;
  });

  it('refuses an update without its indicator, or with one it should not have', async () => {
    const m = manifest('central', 0, 1);
    const env = await setup(m);
    const e = await start(m, env);
    const { task } = await e.trainTask('n1', 1);
    const spoolPath = join(env.dir, `${task.id}.f32`);
    writeFileSync(spoolPath, Buffer.from(Float32Array.from([0.1, 0.1, 0.1]).buffer));
    const submit = (dpClipIndicator: number | undefined) =>
      e.runner.submit(task, { kind: 'update', spoolPath, numExamples: 10, digest: `d-${task.id}`, bytes: 12, deltaNorm: 0.17, trainMetrics: undefined, dpClipIndicator });
    await expect(submit(undefined)).rejects.toThrow(/UpdateHeader\.dp_clip_indicator: required: this study uses adaptive clipping/);
    await expect(submit(0.5)).rejects.toThrow(/UpdateHeader\.dp_clip_indicator: must be 0 or 1 when the clinic adds no noise/);
    expect(e.runner.counters).toMatchObject({ accepted: 0 });
  });
});

describe('checkDpClipIndicator', () => {
  const dp = (placement: 'central' | 'local' | 'distributed', countNoiseMultiplier = 2) => manifest(placement, countNoiseMultiplier).privacy!.dp!;
  const fixed = { placement: 'local' as const, noiseMultiplier: 1, clipping: { mode: 'fixed' as const, norm: 1 } };
  const field = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(FedlhsError);
      expect((err as FedlhsError).code).toBe('INVALID_ARGUMENT');
      return (err as Error).message;
    }
  };
  it('takes a bit under central placement, a noisy one under local or distributed', () => {
    expect(checkDpClipIndicator(1, dp('central'), 3)).toBe(1);
    expect(checkDpClipIndicator(-3.7, dp('local'), 3)).toBe(-3.7);
    expect(checkDpClipIndicator(undefined, undefined, 3)).toBeUndefined();
    expect(checkDpClipIndicator(undefined, fixed, 3)).toBeUndefined();
  });
  it('refuses a missing, unwanted, non-finite or implausible indicator, naming the field', () => {
    expect(field(() => checkDpClipIndicator(undefined, dp('local'), 3))).toMatch(/^field UpdateHeader\.dp_clip_indicator: required/);
    expect(field(() => checkDpClipIndicator(1, fixed, 3))).toMatch(/dp_clip_indicator: sent \(1\), but this study does not use adaptive clipping/);
    expect(field(() => checkDpClipIndicator(Number.NaN, dp('local'), 3))).toMatch(/dp_clip_indicator: not a finite number/);
    expect(field(() => checkDpClipIndicator(0.3, dp('central'), 3))).toMatch(/must be 0 or 1/);
    // local σ_b = 2: beyond 0.5 ± (0.5 + 40)
    expect(field(() => checkDpClipIndicator(41.2, dp('local'), 3))).toMatch(/more than 20 standard deviations/);
    // distributed share 2/√3 ≈ 1.155: 30 is beyond 20 of them
    expect(field(() => checkDpClipIndicator(30, dp('distributed'), 3))).toMatch(/σ=1\.155/);
    expect(checkDpClipIndicator(30, dp('local'), 3)).toBe(30);
  });
  it('is refused at the upload header when not finite, whatever the study', () => {
    const header = (dpClipIndicator?: number) => ({ taskId: 't', studyId: 's', nodeId: 'n', baseModelSha256: Buffer.alloc(32), weights: null, ...(dpClipIndicator === undefined ? {} : { dpClipIndicator }) }) as never;
    expect(() => validateUploadHeader(header(Number.POSITIVE_INFINITY))).toThrow(/^field UpdateHeader\.dp_clip_indicator: not a finite number/);
    expect(() => validateUploadHeader(header(Number.NaN))).toThrow(/dp_clip_indicator/);
    expect(() => validateUploadHeader(header(0.3))).not.toThrow();
    expect(() => validateUploadHeader(header())).not.toThrow();
  });
});

describe('AdaptiveClipping', () => {
  const dp = manifest('central', 0).privacy!.dp!;
  it('starts at initialNorm and writes it into the parameters it finds (normalisation kept)', () => {
    const c = AdaptiveClipping.forRound(dp, '{"normalization":{"method":"zscore","features":[]}}')!;
    expect(c.clipNorm).toBe(2);
    expect(JSON.parse(c.parametersToWrite!)).toEqual({ normalization: { method: 'zscore', features: [] }, dp: { clipNorm: 2 } });
    expect(AdaptiveClipping.forRound(dp, '{"dp":{"clipNorm":1.5}}')).toMatchObject({ clipNorm: 1.5, parametersToWrite: undefined });
    expect(AdaptiveClipping.forRound({ ...dp, clipping: { mode: 'fixed', norm: 1 } }, null)).toBeUndefined();
  });
  it('fails the study on a stored norm it cannot use, and checks one indicator per update', () => {
    expect(() => AdaptiveClipping.forRound(dp, '{"dp":{"clipNorm":-1}}')).toThrow(/adaptive clipping: the study's parameters hold no valid clipping norm/);
    const c = AdaptiveClipping.forRound(dp, null)!;
    c.add(1);
    expect(() => c.next(null, 2)).toThrow(/1 clip indicator\(s\) for 2 aggregated update\(s\)/);
  });
});
