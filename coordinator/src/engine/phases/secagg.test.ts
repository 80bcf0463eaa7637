import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { FedlhsError, SecAggClient, SecAggServer, createSecAggIdentity, fromBase64, packedLength, quantizationParams, quantize, sumWords, toBase64, type RoundContext, type SecAggIdentity } from '@fedlhs/core';
import type { Task } from '@fedlhs/proto';
import { Coordinator } from '../../coordinator.js';
import type { NodeRecord } from '../../store.js';
import { FakeSession, LogSink, ManualClock } from '../../test-support.js';

const dirs: string[] = [];
const coordinators: Coordinator[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of coordinators.splice(0)) {
    for (const s of await c.listStudies(false)) await c.stopStudy(s.id, 'test').catch(() => undefined);
    await c.shutdown();
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const SA = { neighbours: 8, graph: 'ring', valueBits: 16, clipRange: 1 } as const;

function manifest(n: number, maxRoundAttempts = 3): Record<string, unknown> {
  return {
    apiVersion: 'fedlhs.v1', kind: 'Study', name: 'secagg',
    model: { format: 'tfjs-layers', topology: { class_name: 'Sequential', config: { name: 'm', layers: [{ class_name: 'Dense', config: { name: 'out', units: 1, activation: 'sigmoid', batch_input_shape: [null, 2] } }] } } },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, localEpochs: 1, batchSize: 32 },
    rounds: 1, clients: { min: n, max: n, quorum: 2 }, deadlines: { roundSeconds: 600, evaluationSeconds: 600, maxRoundAttempts },
    data: { featureSpec: 'flat-table/v1', features: ['x1', 'x2'] },
    aggregation: { strategy: 'fedavg' },
    privacy: { secureAggregation: SA },
  };
}

const BASE = Float32Array.from([0.5, -0.25, 0.125]);
type Stage = 'KEYS' | 'SHARES' | 'MASKED_INPUT' | 'CONSISTENCY' | 'UNMASK';
const ALL: readonly Stage[] = ['KEYS', 'SHARES', 'MASKED_INPUT', 'CONSISTENCY', 'UNMASK'];
/** Where each stage's deadline falls after the keys stage starts: 10 %, 20 %, 85 %, 90 %, 100 % of roundSeconds. */
const STAGE_END = { KEYS: 60_000, SHARES: 120_000, MASKED_INPUT: 510_000, CONSISTENCY: 540_000, UNMASK: 600_000 };

interface Clinic {
  node: NodeRecord;
  session: FakeSession;
  input: Float64Array;
  /** The clinic's long-lived Ed25519 identity (the agent's identity-key.pem), pinning its peers in memory. */
  identity: SecAggIdentity;
  client?: SecAggClient;
}

/** A Coordinator in process with n clinics that play their part with SecAggClient over FakeSession. */
async function network(n: number, maxRoundAttempts = 3, kernelValues = 2) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-secagg-'));
  dirs.push(dir);
  const log = new LogSink();
  const clock = new ManualClock(Date.parse('2026-11-02T09:00:00Z'));
  const coordinator = Coordinator.create({
    dataDir: dir, logger: pino({ level: 'info' }, log), heartbeatIntervalMs: 600_000, selectionGraceMs: 0, chunkBytes: 1 << 20, maxHeldUpdateBytes: 1 << 20,
    buildInitialModel: async () =>
      kernelValues === 2
        ? { specs: [{ name: 'out/kernel', shape: [2, 1] }, { name: 'out/bias', shape: [1] }], weights: BASE }
        : { specs: [{ name: 'out/kernel', shape: [kernelValues, 1] }, { name: 'out/bias', shape: [1] }], weights: new Float32Array(kernelValues + 1) },
    clock,
  });
  coordinators.push(coordinator);
  await coordinator.start();
  const clinics: Clinic[] = [];
  for (let i = 0; i < n; i++) {
    const site = `clinic-${String(i).padStart(2, '0')}`;
    const { token } = await coordinator.createJoinToken(site, 600, 'test');
    const { nodeId } = await coordinator.enrol(token, site, null);
    const input = Float64Array.from([0.1 * ((i % 7) - 3), 0.05 * (i % 5), -0.02 * i]);
    clinics.push({ node: (await coordinator.store.getNode(nodeId))!, session: new FakeSession(nodeId, site), input, identity: createSecAggIdentity() });
  }
  const study = await coordinator.startStudy(JSON.stringify(manifest(n, maxRoundAttempts)), 'test');
  for (const c of clinics) {
    await coordinator.openSession(c.session, 10);
    await coordinator.onAgentMessage(c.session, { readiness: { studyId: study.id, manifestSha256: study.manifestHash, readiness: 'READINESS_READY', detail: '' } } as never);
  }
  const start = clock.now(); // the clock moves only when a test advances it
  const task = (c: Clinic, stage: Stage, attempt = 1): Promise<Task> => c.session.waitForTask((t) => t.kind === `TASK_KIND_SECAGG_${stage}` && t.attempt === attempt);
  const payload = (t: Task): unknown => JSON.parse(Buffer.from(t.payload as Uint8Array).toString('utf8'));
  const report = (c: Clinic, t: Task, body: unknown, vector: Uint8Array = new Uint8Array(0)) =>
    coordinator.reportStage(c.node, { taskId: t.taskId!, studyId: t.studyId!, round: t.round!, body: Buffer.from(JSON.stringify(body)), vector: Buffer.from(vector) });
  /** One clinic's answer to its task of a stage. */
  const answer = async (c: Clinic, stage: Stage, attempt = 1) => {
    const t = await task(c, stage, attempt);
    const req = payload(t);
    if (stage === 'KEYS') {
      const h = req as { studyId: string; round: number; attempt: number };
      const ctx: RoundContext = { ...h, k: SA.neighbours, graph: SA.graph, valueBits: SA.valueBits, clipRange: SA.clipRange, vectorLength: 3 };
      c.client = new SecAggClient(ctx, c.node.id, c.identity);
      return report(c, t, c.client.keys());
    }
    if (stage === 'SHARES') return report(c, t, c.client!.shares(req));
    if (stage === 'MASKED_INPUT') {
      const { message, vector } = c.client!.maskedInput(req, c.input);
      return report(c, t, message, vector);
    }
    if (stage === 'CONSISTENCY') return report(c, t, c.client!.consistency(req));
    return report(c, t, c.client!.unmask(req));
  };
  /** Runs a stage: `answering` answer; the stage closes when all asked answered, else at its deadline. */
  const stage = async (name: Stage, answering: readonly Clinic[], silent = false, attempt = 1) => {
    for (const c of answering) await answer(c, name, attempt);
    if (silent) {
      // The others never answer: the stage closes at its deadline (its share of roundSeconds).
      const deadline = Number((await task(answering[0]!, name, attempt)).deadlineUnixMs);
      // Stages split roundSeconds cumulatively from the keys stage's start: never past the round's end.
      expect(deadline - start).toBe(STAGE_END[name]);
      clock.advance(deadline - clock.now() + 1);
    }
  };
  return { coordinator, study, clinics, log, clock, task, payload, report, answer, stage, dir };
}

const mean = (cs: readonly Clinic[]): number[] => [0, 1, 2].map((i) => cs.reduce((s, c) => s + c.input[i]!, 0) / cs.length);

async function committedModel(net: Awaited<ReturnType<typeof network>>): Promise<Float32Array> {
  // Evaluation: nobody evaluates in these tests; its deadline passes once it has started.
  await net.log.waitFor((l) => l.event === 'round.phase' && l.state === 'EVALUATING');
  net.clock.advance(600_001);
  await net.coordinator.waitForStudy(net.study.id);
  expect((await net.coordinator.store.getStudy(net.study.id))!.state).toBe('COMPLETED');
  const r = (await net.coordinator.store.getCommittedRound(net.study.id, 1))!;
  return net.coordinator.checkpoints.readAll(r.checkpointPath!);
}

function expectModel(model: Float32Array, survivors: readonly Clinic[]): void {
  const m = mean(survivors);
  // Quantisation: within half a step per value and survivor (step 2/2^16), well below 1e-4.
  for (let i = 0; i < 3; i++) expect(Math.abs(model[i]! - (BASE[i]! + m[i]!))).toBeLessThan(1e-4);
}

describe('secure aggregation in the coordinator (issue 14)', () => {
  it('commits the round model plus the mean of the clinics\' updates', async () => {
    const net = await network(10);
    for (const s of ALL) await net.stage(s, net.clinics);
    expectModel(await committedModel(net), net.clinics);
    // One contribution per survivor, without a digest or norm of its update, and saying so.
    const contributions = (await net.coordinator.store.listContributions({ studyId: net.study.id })).filter((c) => c.accepted);
    expect(contributions).toHaveLength(10);
    for (const c of contributions) expect(c).toMatchObject({ sha256: '', numExamples: 0, reason: expect.stringMatching(/never sees this update/) });
    expect(net.log.lines.find((l) => l.event === 'secagg.aggregated')).toMatchObject({ survivors: 10 });
    // The masked-input task hands out the round model (DownloadModel as for TRAIN).
    const masked = await net.task(net.clinics[0]!, 'MASKED_INPUT');
    expect(Buffer.from(masked.modelSha256 as Uint8Array).toString('hex')).toMatch(/^[0-9a-f]{64}$/);
    // Every clinic was asked to sign the same survivor set: all ten, sorted.
    const ids = net.clinics.map((c) => c.node.id).sort();
    for (const c of net.clinics) expect(net.payload(await net.task(c, 'CONSISTENCY'))).toMatchObject({ survivors: ids });
    expect(net.log.lines.filter((l) => l.event === 'secagg.stage_closed').map((l) => l.stage)).toEqual(['keys', 'shares', 'masked-input', 'consistency']);
  });

  for (const [stage, inSum] of [['KEYS', 7], ['SHARES', 7], ['MASKED_INPUT', 7], ['CONSISTENCY', 10], ['UNMASK', 10]] as const) {
    it(`commits when 30 % of the clinics never answer the ${stage} stage`, async () => {
      const net = await network(10);
      const silent = net.clinics.slice(0, 3);
      let alive = net.clinics;
      for (const s of ALL) {
        if (s === stage) alive = net.clinics.slice(3);
        await net.stage(s, alive, s === stage);
      }
      const survivors = inSum === 10 ? net.clinics : net.clinics.slice(3);
      expectModel(await committedModel(net), survivors);
      expect(net.log.lines.find((l) => l.event === 'secagg.aggregated')).toMatchObject({ survivors: inSum });
      if (stage !== 'UNMASK') {
        const closed = net.log.lines.find((l) => l.event === 'secagg.stage_closed' && (l.dropped as unknown[]).length > 0)!;
        expect((closed.dropped as { nodeId: string }[]).map((d) => d.nodeId).sort()).toEqual(silent.map((c) => c.node.id).sort());
      }
    });
  }

  it('drops a clinic that does not sign the survivor set from the unmask stage, and still sums its masked input', async () => {
    const net = await network(10);
    for (const s of ['KEYS', 'SHARES', 'MASKED_INPUT'] as const) await net.stage(s, net.clinics);
    const silent = net.clinics[4]!;
    const signers = net.clinics.filter((c) => c !== silent);
    await net.stage('CONSISTENCY', signers, true);
    const closed = await net.log.waitFor((l) => l.event === 'secagg.stage_closed' && l.stage === 'consistency');
    expect(closed).toMatchObject({ asked: 10, answered: 9, next: 9 });
    expect(closed.dropped).toEqual([{ nodeId: silent.node.id, reason: expect.stringMatching(/did not answer the secure-aggregation consistency stage before it closed; its masked input stays in the round sum/) }]);
    // Only the signers are asked to unmask, each shown the same survivor set (all ten) and signatures only of signers.
    const ids = net.clinics.map((c) => c.node.id).sort();
    for (const c of signers) {
      const req = net.payload(await net.task(c, 'UNMASK')) as { survivors: string[]; signatures: { id: string }[] };
      expect(req.survivors).toEqual(ids);
      expect(req.signatures.map((x) => x.id)).not.toContain(silent.node.id);
    }
    await net.stage('UNMASK', signers);
    expect(silent.session.tasks.filter((t) => t.kind === 'TASK_KIND_SECAGG_UNMASK')).toEqual([]);
    expectModel(await committedModel(net), net.clinics);
    expect(net.log.lines.find((l) => l.event === 'secagg.aggregated')).toMatchObject({ survivors: 10 });
  });

  it('refuses a consistency answer whose signature is not the clinic\'s on the survivor set (INVALID_ARGUMENT), then takes the right one', async () => {
    const net = await network(10);
    for (const s of ['KEYS', 'SHARES', 'MASKED_INPUT'] as const) await net.stage(s, net.clinics);
    const c = net.clinics[0]!;
    const t = await net.task(c, 'CONSISTENCY');
    const good = c.client!.consistency(net.payload(t)) as { signature: string };
    const flipped = Buffer.from(fromBase64(good.signature));
    flipped[0]! ^= 1;
    // Another clinic's signature of the same set is not this clinic's.
    const other = net.clinics[1]!;
    const theirs = other.client!.consistency(net.payload(await net.task(other, 'CONSISTENCY'))) as { signature: string };
    for (const bad of [{ ...good, signature: toBase64(flipped) }, { ...good, signature: theirs.signature }, { ...good, extra: 1 }]) {
      await expect(net.report(c, t, bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await net.report(c, t, good)).toEqual({ taskId: t.taskId, duplicate: false });
    for (const x of net.clinics.slice(1)) await net.answer(x, 'CONSISTENCY');
    await net.stage('UNMASK', net.clinics);
    expectModel(await committedModel(net), net.clinics);
  });

  it('does not re-send a stage task after a reconnection: the lost session is a dropout, and the stage closes without waiting for it', async () => {
    const net = await network(10);
    const lost = net.clinics[9]!;
    await net.task(lost, 'KEYS');
    net.coordinator.closeSession(lost.session, 'test');
    await net.stage('KEYS', net.clinics.slice(0, 9));
    // Closed once the online clinics answered, before its deadline (the clock has not moved).
    await net.task(net.clinics[0]!, 'SHARES');
    const again = new FakeSession(lost.node.id, lost.session.siteName);
    await net.coordinator.openSession(again, 10);
    expect(again.tasks.filter((t) => String(t.kind).startsWith('TASK_KIND_SECAGG_'))).toEqual([]);
    lost.session = again;
    for (const s of ['SHARES', 'MASKED_INPUT', 'CONSISTENCY', 'UNMASK'] as const) await net.stage(s, net.clinics.slice(0, 9));
    expectModel(await committedModel(net), net.clinics.slice(0, 9));
    expect(again.tasks.filter((t) => String(t.kind).startsWith('TASK_KIND_SECAGG_'))).toEqual([]);
  });

  it('refuses a masked vector of the wrong length or with padding bits set, or none, and a body that is not the header (INVALID_ARGUMENT), then takes the right one', async () => {
    const net = await network(10);
    for (const s of ['KEYS', 'SHARES'] as const) await net.stage(s, net.clinics);
    const c = net.clinics[0]!;
    const t = await net.task(c, 'MASKED_INPUT');
    const { message, vector } = c.client!.maskedInput(net.payload(t), c.input);
    // The round's word width: valueBits + ceil(log2(10)); the vector is exactly its packed length.
    const bits = quantizationParams({ clip: SA.clipRange, valueBits: SA.valueBits, clients: 10 }).bits;
    expect(vector.length).toBe(packedLength(3, bits));
    const padding = vector.length * 8 - 3 * bits;
    expect(padding).toBeGreaterThan(0);
    const padded = Buffer.from(vector);
    padded[padded.length - 1]! |= 0x80;
    const badVectors = [vector.subarray(0, vector.length - 1), Buffer.concat([vector, Buffer.alloc(1)]), padded];
    for (const bad of badVectors) {
      await expect(net.report(c, t, message, bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/vector/) });
    }
    await expect(net.report(c, t, message)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^StageReport\.vector: .*empty/) });
    // The body is the header only: no extra field, and no longer the masked words as base64.
    for (const bad of [{ ...message, extra: 1 }, { ...message, masked: toBase64(vector) }]) {
      await expect(net.report(c, t, bad, vector)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(net.coordinator.reportStage(c.node, { taskId: t.taskId!, studyId: t.studyId!, round: t.round!, body: Buffer.from('{not json'), vector: Buffer.from(vector) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await net.report(c, t, message, vector)).toEqual({ taskId: t.taskId, duplicate: false });
    // The same body and vector again is a duplicate; another vector, or another body, a conflict.
    expect(await net.report(c, t, message, vector)).toEqual({ taskId: t.taskId, duplicate: true });
    const other = Buffer.from(vector);
    other[0]! ^= 1;
    await expect(net.report(c, t, message, other)).rejects.toMatchObject({ code: 'DUPLICATE_CONFLICT' });
    await expect(net.coordinator.reportStage(c.node, { taskId: t.taskId!, studyId: t.studyId!, round: t.round!, body: Buffer.from(JSON.stringify(message, null, 1)), vector: Buffer.from(vector) }))
      .rejects.toMatchObject({ code: 'DUPLICATE_CONFLICT' });
    // A vector on an accepted masked task is still checked first: an empty one is refused, not a duplicate.
    await expect(net.report(c, t, message)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    for (const x of net.clinics.slice(1)) await net.answer(x, 'MASKED_INPUT');
    for (const s of ['CONSISTENCY', 'UNMASK'] as const) await net.stage(s, net.clinics);
    expectModel(await committedModel(net), net.clinics);
  });

  it('refuses a vector with any stage but the masked input (INVALID_ARGUMENT), also as a re-sent answer, and leaves the task open', async () => {
    const net = await network(10);
    const c = net.clinics[0]!;
    const keys = await net.task(c, 'KEYS');
    const h = net.payload(keys) as { studyId: string; round: number; attempt: number };
    c.client = new SecAggClient({ ...h, k: SA.neighbours, graph: SA.graph, valueBits: SA.valueBits, clipRange: SA.clipRange, vectorLength: 3 }, c.node.id, c.identity);
    const answer = c.client.keys();
    const only = /^StageReport\.vector: only the masked-input stage carries a vector/;
    await expect(net.report(c, keys, answer, Uint8Array.of(1))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(only) });
    expect(await net.report(c, keys, answer)).toEqual({ taskId: keys.taskId, duplicate: false });
    await expect(net.report(c, keys, answer, Uint8Array.of(1))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(only) });
    expect(await net.report(c, keys, answer)).toEqual({ taskId: keys.taskId, duplicate: true });
    for (const x of net.clinics.slice(1)) await net.answer(x, 'KEYS');
    for (const s of ['SHARES', 'MASKED_INPUT'] as const) await net.stage(s, net.clinics);
    for (const stage of ['CONSISTENCY', 'UNMASK'] as const) {
      const t = await net.task(c, stage);
      const req = net.payload(t);
      const body = stage === 'CONSISTENCY' ? c.client.consistency(req) : c.client.unmask(req);
      await expect(net.report(c, t, body, Uint8Array.of(0))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(only) });
      expect((await net.coordinator.store.getTask(t.taskId!))?.state).toBe('ASSIGNED');
      expect(await net.report(c, t, body)).toEqual({ taskId: t.taskId, duplicate: false });
      for (const x of net.clinics.slice(1)) await net.answer(x, stage);
    }
    expectModel(await committedModel(net), net.clinics);
  });

  it('answers a late stage answer STALE, and a task of another kind STALE', async () => {
    const net = await network(10);
    const late = net.clinics[9]!;
    await net.stage('KEYS', net.clinics.slice(0, 9), true);
    const keys = await net.task(late, 'KEYS');
    await net.task(net.clinics[0]!, 'SHARES'); // the keys stage has closed
    const client = new SecAggClient({ ...(net.payload(keys) as { studyId: string; round: number; attempt: number }), k: 8, graph: 'ring', valueBits: 16, clipRange: 1, vectorLength: 3 }, late.node.id, late.identity);
    const err = await net.report(late, keys, client.keys()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect(err).toMatchObject({ code: 'STALE', message: expect.stringMatching(/stage has closed/) });
    const statistics = await net.report(net.clinics[0]!, keys, {}).catch((e: unknown) => e);
    expect(statistics).toMatchObject({ code: 'NOT_ASSIGNED' });
    expect(net.log.lines.some((l) => l.event === 'stage.rejected' && l.reason === 'STALE')).toBe(true);
  });

  it('fails the attempt naming the survivor when too many neighbours drop before unmasking', async () => {
    const net = await network(10, 1);
    for (const s of ['KEYS', 'SHARES'] as const) await net.stage(s, net.clinics);
    // Half the clinics never send a masked input: each survivor keeps at most 4 live neighbours, t = 5.
    await net.stage('MASKED_INPUT', net.clinics.slice(5), true);
    await net.coordinator.waitForStudy(net.study.id);
    const failed = net.log.lines.find((l) => l.event === 'round.failed')!;
    expect(failed.reason).toMatch(/^secure aggregation: survivor \S+ has \d live neighbours?\b.*fewer than t = 5/);
    expect(net.log.lines.find((l) => l.event === 'secagg.round_failed')).toMatchObject({ stage: 'masked-input' });
    // Nobody was asked to sign a survivor set, let alone to unmask.
    for (const c of net.clinics) expect(c.session.tasks.filter((t) => t.kind === 'TASK_KIND_SECAGG_CONSISTENCY' || t.kind === 'TASK_KIND_SECAGG_UNMASK')).toEqual([]);
    const study = (await net.coordinator.store.getStudy(net.study.id))!;
    expect(study.state).toBe('FAILED');
    expect(study.reason).toContain('survivor');
    expect(await net.coordinator.store.getCommittedRound(net.study.id, 1)).toBeUndefined();
  });

  it('fails the round naming the cause when the masked vector would not fit one ReportStage message', async () => {
    // 1.7M values at 16 + 4 bits (10 clinics) pack to 4.25 MB, above gRPC's 4 MiB receive limit less headroom.
    const net = await network(10, 1, 1_700_000);
    await net.coordinator.waitForStudy(net.study.id);
    const study = (await net.coordinator.store.getStudy(net.study.id))!;
    expect(study.state).toBe('FAILED');
    expect(study.reason).toMatch(/masked model change would be 4250003 bytes \(1700001 values\).*too large for secure aggregation/);
    for (const c of net.clinics) expect(c.session.tasks).toEqual([]);
  });

  it('retries a failed attempt with new keys, and the retry commits', async () => {
    const net = await network(10, 2);
    for (const s of ['KEYS', 'SHARES'] as const) await net.stage(s, net.clinics);
    await net.stage('MASKED_INPUT', net.clinics.slice(5), true);
    await net.log.waitFor((l) => l.event === 'round.failed');
    for (const s of ALL) await net.stage(s, net.clinics, false, 2);
    const keys2 = net.payload(await net.task(net.clinics[0]!, 'KEYS', 2));
    expect(keys2).toEqual({ studyId: net.study.id, round: 1, attempt: 2 });
    expectModel(await committedModel(net), net.clinics);
    const rounds = (await net.coordinator.store.listRounds(net.study.id)).filter((r) => r.round === 1);
    expect(rounds.map((r) => [r.attempt, r.state])).toEqual([[1, 'FAILED'], [2, 'COMMITTED']]);
  });

  it('holds nothing but masked vectors and the final sum, and writes no update to disk', async () => {
    const held: number[] = [];
    const receive = SecAggServer.prototype.receiveMaskedInput;
    const inputsSeen: (number | bigint)[][][] = [];
    vi.spyOn(SecAggServer.prototype, 'receiveMaskedInput').mockImplementation(function (this: SecAggServer, id: string, message: unknown, vector: Uint8Array) {
      receive.call(this, id, message, vector);
      const vectors = this.heldVectors();
      held.push(vectors.length);
      inputsSeen.push(vectors.map((v) => [...v]));
    });
    const net = await network(10);
    const files = (): string[] => {
      const out: string[] = [];
      const walk = (d: string, inWork: boolean): void => {
        if (!existsSync(d)) return;
        for (const name of readdirSync(d)) {
          const p = join(d, name);
          const work = inWork || name === 'spool' || name === 'held';
          if (statSync(p).isDirectory()) walk(p, work);
          else if (work) out.push(p);
        }
      };
      walk(net.dir, false);
      return out;
    };
    for (const s of ['KEYS', 'SHARES'] as const) await net.stage(s, net.clinics);
    await net.stage('MASKED_INPUT', net.clinics);
    // One vector at a time: the running masked sum; never a clinic's input, masked or not, beside it.
    expect(held).toEqual(Array(10).fill(1));
    // The running sum after each input is masked: it is not the sum of the quantised inputs so far
    // (with one input, not that clinic's own quantised update).
    const spec = { clip: SA.clipRange, valueBits: SA.valueBits, clients: 10 };
    const bits = quantizationParams(spec).bits;
    for (let i = 0; i < 10; i++) {
      const plain = sumWords(net.clinics.slice(0, i + 1).map((c) => quantize(c.input, spec)), 3, bits);
      expect(inputsSeen[i]![0]!.map(Number)).not.toEqual([...plain].map(Number));
    }
    expect(files()).toEqual([]);
    // Signing the survivor set adds no vector: still only the running masked sum.
    let consistency: SecAggServer | undefined;
    const receiveConsistency = SecAggServer.prototype.receiveConsistency;
    const heldAtConsistency: number[] = [];
    vi.spyOn(SecAggServer.prototype, 'receiveConsistency').mockImplementation(function (this: SecAggServer, id: string, message: unknown) {
      receiveConsistency.call(this, id, message);
      consistency = this;
      heldAtConsistency.push(this.heldVectors().length);
    });
    await net.stage('CONSISTENCY', net.clinics);
    expect(consistency).toBeDefined();
    expect(heldAtConsistency).toEqual(Array(10).fill(1));
    expect(files()).toEqual([]);
    let server: SecAggServer | undefined;
    const finish = SecAggServer.prototype.finish;
    vi.spyOn(SecAggServer.prototype, 'finish').mockImplementation(function (this: SecAggServer) {
      server = this;
      return finish.call(this);
    });
    await net.stage('UNMASK', net.clinics);
    expectModel(await committedModel(net), net.clinics);
    expect(server).toBe(consistency);
    // After the round: the server (dropped by the phase) held only the final float sum.
    const after = server!.heldVectors();
    expect(after).toHaveLength(1);
    expect(after[0]).toBeInstanceOf(Float64Array);
    expect(files()).toEqual([]);
  });
});
