import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, SecAggClient, SecAggServer, quantizationParams, roundRdp, type MaskedInputRequest, type StudyManifest } from '@fedlhs/core';
import type { Task__Output } from '@fedlhs/proto';
import { AgentState, type AuditEntry } from '../agent-state.js';
import { dpManifest } from '../privacy-test-support.js';
import type { TaskContext } from '../task-runner.js';
import { describePrivacy } from '../privacy-review.js';
import { whatLeaves } from '../review.js';
import { TaskRunner, type TaskRunnerOptions } from '../task-runner.js';
import { secaggTaskHandlers } from './secagg.js';
import { trainTask } from './train.js';
import { SecAggSessions, roundContext } from './secagg-sessions.js';

/*
 * The clinic's secure-aggregation stages with a fake context (the coordinator's ReportStage, the
 * model runtime) against a core SecAggServer driven here, with SecAggClients for the other clinics.
 */

const COHORT = ['clinic-a', 'clinic-b', 'clinic-c', 'clinic-d'];
const ME = 'clinic-a';
const wire = <T>(m: T): unknown => JSON.parse(JSON.stringify(m));

function manifest(over: { dp?: unknown; clipRange?: number } = {}): StudyManifest {
  return dpManifest({
    secureAggregation: { neighbours: 3, graph: 'ring', valueBits: 16, clipRange: over.clipRange ?? 2 },
    ...(over.dp === undefined ? {} : { dp: over.dp }),
  });
}

/** The agent's side: a fake task context whose model training turns `roundModel` into `roundModel + change`. */
function agent(m: StudyManifest, roundModel: Float32Array, change: Float32Array) {
  const state = new AgentState(join(mkdtempSync(join(tmpdir(), 'fedlhs-secagg-')), 'state'));
  const audits: AuditEntry[] = [];
  const record = state.audit.bind(state);
  state.audit = (e) => {
    audits.push(e as AuditEntry);
    record(e);
  };
  const reports: { taskId: string; studyId: string; round: number; body: Buffer }[] = [];
  const failures: string[] = [];
  const warnings: Record<string, unknown>[] = [];
  let weights = Float32Array.from(roundModel);
  const runtime = {
    specs: [{ name: 'w', shape: [roundModel.length] }],
    getWeights: () => Float32Array.from(weights),
    fit: async () => {
      weights = Float32Array.from(roundModel, (w, i) => w + change[i]!);
      return { loss: 0.5 };
    },
    evaluate: async () => ({ numExamples: 100, loss: 0.5, accuracy: 0.7, auc: 0.6 }),
  };
  const log = { info: () => undefined, warn: (o: Record<string, unknown>) => void warnings.push(o), error: () => undefined, debug: () => undefined };
  const ctx = {
    manifest: m, log, state,
    config: { coordinator: { address: 'coordinator:1' }, privacy: { maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false } },
    credential: { nodeId: ME, credential: 'secret' },
    clients: {
      federation: {
        ReportStage: (req: (typeof reports)[number], _md: unknown, _opts: unknown, cb: (err: null, r: unknown) => void) => {
          reports.push(req);
          cb(null, { taskId: req.taskId, duplicate: false });
        },
      },
    },
    withRetry: <T>(_what: string, call: () => Promise<T>) => call(),
    isCancelled: () => false,
    progress: () => undefined,
    loadModel: async () => {
      weights = Float32Array.from(roundModel);
      return { data: { train: { x: new Float32Array(0), y: new Float32Array(0), rows: 100 } }, runtime, sha256: Buffer.alloc(32, 7), timeoutMs: 10_000 };
    },
    fail: (why: string) => void failures.push(why),
    decline: (why: string) => void failures.push(`declined: ${why}`),
    privacyChanged: () => undefined,
  } as unknown as TaskContext;
  return { ctx, state, audits, reports, failures, warnings };
}

const task = (kind: Task__Output['kind'], payload: unknown): Task__Output =>
  ({ taskId: `t-${kind}`, kind, studyId: 'study-s', round: 3, attempt: 1, payload: Buffer.from(JSON.stringify(payload), 'utf8'), deadlineUnixMs: Date.now() + 60_000 }) as Task__Output;

interface RoundOptions {
  /** Changes the MASKED_INPUT request the agent receives. */
  tamper?: (req: MaskedInputRequest) => MaskedInputRequest;
}

/** One round: the agent's handlers for ME, SecAggClients for the others, a SecAggServer in between. */
async function runRound(m: StudyManifest, change: Float32Array, o: RoundOptions = {}) {
  const L = change.length;
  const roundModel = Float32Array.from({ length: L }, (_, i) => Math.sin(i));
  const a = agent(m, roundModel, change);
  const sessions = new SecAggSessions({ parameterCount: async () => L });
  const handlers = new Map(secaggTaskHandlers(sessions).map((h) => [h.kind, h]));
  const run = async (t: Task__Output): Promise<unknown> => {
    const before = a.reports.length;
    await handlers.get(t.kind)!.run(t, a.ctx);
    return a.reports.length > before ? JSON.parse(a.reports.at(-1)!.body.toString('utf8')) : undefined;
  };
  const header = { studyId: 'study-s', round: 3, attempt: 1 };
  const rctx = roundContext(m.privacy!.secureAggregation!, task('TASK_KIND_SECAGG_KEYS', header), L);
  const server = new SecAggServer(rctx, COHORT);
  const others = new Map(COHORT.filter((id) => id !== ME).map((id) => [id, new SecAggClient(rctx, id)]));
  const clip = rctx.clipRange;
  const inputs = new Map([...others.keys()].map((id, j) => [id, Float64Array.from({ length: L }, (_, i) => clip * Math.cos(i * (j + 2)) * 0.9)]));

  server.receiveKeys(ME, await run(task('TASK_KIND_SECAGG_KEYS', header)));
  for (const [id, c] of others) server.receiveKeys(id, wire(c.keys()));
  const req2 = server.sharesRequests();
  server.receiveShares(ME, await run(task('TASK_KIND_SECAGG_SHARES', req2.get(ME))));
  for (const [id, c] of others) server.receiveShares(id, wire(c.shares(wire(req2.get(id)))));
  const req3 = server.maskedInputRequests();
  const mine = await run(task('TASK_KIND_SECAGG_MASKED_INPUT', o.tamper ? o.tamper(structuredClone(req3.get(ME)!)) : req3.get(ME)));
  if (mine === undefined) return { ...a, sessions, run, finish: undefined, inputs, step: 0 };
  server.receiveMaskedInput(ME, mine);
  for (const [id, c] of others) server.receiveMaskedInput(id, wire(c.maskedInput(wire(req3.get(id)), inputs.get(id)!)));
  const req4 = server.unmaskRequests();
  server.receiveUnmask(ME, await run(task('TASK_KIND_SECAGG_UNMASK', req4.get(ME))));
  for (const [id, c] of others) server.receiveUnmask(id, wire(c.unmask(wire(req4.get(id)))));
  const step = quantizationParams({ clip, valueBits: rctx.valueBits, clients: COHORT.length }).step;
  return { ...a, sessions, run, finish: () => server.finish(), inputs, step };
}

/** The agent's part of the sum: the sum minus the other clinics' inputs. */
function agentsPart(r: Awaited<ReturnType<typeof runRound>>): Float64Array {
  const sum = r.finish!();
  return Float64Array.from(sum, (v, i) => v - [...r.inputs.values()].reduce((acc, x) => acc + x[i]!, 0));
}

describe('secure aggregation, clinic side', () => {
  it("a full round: the coordinator's sum includes this clinic's Δ (within quantisation), and every answer is audited", async () => {
    const change = Float32Array.from({ length: 64 }, (_, i) => 0.01 * (i - 32) + (i === 5 ? 3 : 0)); // one value beyond ±2
    const r = await runRound(manifest(), change);
    expect(r.failures).toEqual([]);
    const part = agentsPart(r);
    const expected = Float64Array.from(change, (v) => Math.max(-2, Math.min(2, v)));
    part.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual((COHORT.length * r.step) / 2 + 1e-6));
    // The clipped value is said, not silent.
    expect(r.warnings).toContainEqual({ event: 'secagg.values_clipped', clipped: 1, values: 64, clipRange: 2 });
    // One audit line per answer, before it left, with its size and digest; the masked vector is never in it.
    const sent = r.audits.filter((e) => e.event === 'secagg_stage_sent');
    expect(sent.map((e) => (e.sent!.stageReport as { stage: string }).stage)).toEqual(['keys', 'shares', 'masked_input', 'unmask']);
    sent.forEach((e, i) => {
      expect(e.bytes).toBe(r.reports[i]!.body.length);
      expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    });
    const masked = (JSON.parse(r.reports[2]!.body.toString('utf8')) as { masked: string }).masked;
    expect(JSON.stringify(r.audits)).not.toContain(masked);
    expect((sent[1]!.sent!.stageReport as { to: string[] }).to).toEqual(['clinic-b', 'clinic-c', 'clinic-d']);
    expect(sent[2]!.sent!.stageReport).toMatchObject({ values: 64, clippedValues: 1, clipRange: 2 });
    // Without DP nothing is charged.
    expect(r.state.listPrivacySpends()).toEqual([]);
    r.state.close();
  });

  it('a tampered ciphertext in the MASKED_INPUT request: FAILED naming the sender, logged, nothing sent, round discarded, nothing charged', async () => {
    let sender = '';
    const dp = { placement: 'distributed', noiseMultiplier: 1, clipping: { mode: 'fixed', norm: 1 } };
    const r = await runRound(manifest({ dp }), new Float32Array(16), {
      tamper: (req) => {
        const first = req.ciphertexts[0]!;
        sender = first.from;
        const bytes = Buffer.from(first.ciphertext, 'base64');
        bytes[20]! ^= 1;
        return { ...req, ciphertexts: [{ ...first, ciphertext: bytes.toString('base64') }, ...req.ciphertexts.slice(1)] };
      },
    });
    expect(sender).not.toBe('');
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toContain(`secure aggregation masked_input: maskedInputRequest.ciphertexts[0].ciphertext: a tampered share from ${sender}`);
    expect(r.warnings).toContainEqual(expect.objectContaining({ event: 'secagg.refused', stage: 'masked_input', reason: expect.stringContaining(`a tampered share from ${sender}`) }));
    expect(r.reports).toHaveLength(2); // keys and shares only
    expect(r.sessions.size).toBe(0);
    expect(r.state.listPrivacySpends()).toEqual([]);
    // The round is over for this clinic: a later stage is refused too.
    await r.run(task('TASK_KIND_SECAGG_UNMASK', { studyId: 'study-s', round: 3, attempt: 1, survived: [], dropped: [] }));
    expect(r.failures[1]).toMatch(/^secure aggregation unmask: no keys for round 3 attempt 1 in this process/);
    r.state.close();
  });

  it('distributed DP under secure aggregation: σ = z·C/√clients.min added here, the ledger charged for this clinic\'s own noise only (z/√clients.min)', async () => {
    const dp = { placement: 'distributed' as const, noiseMultiplier: 1, clipping: { mode: 'fixed' as const, norm: 1 } };
    const m = manifest({ dp, clipRange: 4 });
    const r = await runRound(m, new Float32Array(4000)); // Δ = 0: what reaches the sum is the noise
    expect(r.failures).toEqual([]);
    const part = agentsPart(r);
    const mean = part.reduce((a, b) => a + b, 0) / part.length;
    const std = Math.sqrt(part.reduce((a, b) => a + (b - mean) ** 2, 0) / part.length);
    expect(std).toBeGreaterThan(0.5 * 0.92);
    expect(std).toBeLessThan(0.5 * 1.08);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    const o = { clientsMin: m.clients.min, trustCoordinatorNoise: false };
    const [spend, ...more] = r.state.listPrivacySpends('study-s');
    expect(more).toEqual([]);
    // Not the full z: clinics cannot yet check the coordinator's report of who dropped (privacy-budget.ts SECURE_AGGREGATION_COUNTS).
    expect(spend!.rdp).toEqual(roundRdp(m.privacy!.dp!, { ...o, secureAggregation: false }, DEFAULT_ORDERS));
    expect(spend!.rdp[0]).toBeGreaterThan(roundRdp(m.privacy!.dp!, { ...o, secureAggregation: true }, DEFAULT_ORDERS)[0]!);
    const audit = r.audits.find((e) => e.event === 'privacy_spent')!;
    expect(audit.privacy).toMatchObject({ effectiveNoiseMultiplier: 0.5, placement: 'distributed' });
    // Charged before the masked input left.
    expect(r.audits.findIndex((e) => e.event === 'privacy_spent')).toBeLessThan(r.audits.findIndex((e) => (e.sent?.stageReport as { stage?: string } | undefined)?.stage === 'masked_input'));
    r.state.close();
  });

  it('refuses a keys request for another round, and a stage with no keys in this process', async () => {
    const m = manifest();
    const a = agent(m, new Float32Array(4), new Float32Array(4));
    const handlers = new Map(secaggTaskHandlers(new SecAggSessions({ parameterCount: async () => 4 })).map((h) => [h.kind, h]));
    await handlers.get('TASK_KIND_SECAGG_KEYS')!.run(task('TASK_KIND_SECAGG_KEYS', { studyId: 'study-s', round: 2, attempt: 1 }), a.ctx);
    expect(a.failures[0]).toContain('the keys request is for study study-s round 2 attempt 1, not this task\'s (study-s round 3 attempt 1)');
    await handlers.get('TASK_KIND_SECAGG_SHARES')!.run(task('TASK_KIND_SECAGG_SHARES', {}), a.ctx);
    expect(a.failures[1]).toMatch(/no keys for round 3 attempt 1/);
    expect(a.reports).toEqual([]);
    expect(a.audits.map((e) => e.event)).toEqual([]);
    a.state.close();
  });

  it('through the task runner: a refusal is sent as FAILED with the reason and audited task_failed', async () => {
    const m = manifest();
    const a = agent(m, new Float32Array(4), new Float32Array(4));
    const sent: unknown[] = [];
    let done!: () => void;
    const failed = new Promise<void>((resolve) => (done = resolve));
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => quiet };
    const runner = new TaskRunner({
      config: a.ctx.config, state: a.state, credential: a.ctx.credential, clients: a.ctx.clients, data: {} as never, log: quiet as never,
      studies: { get: () => ({ manifest: m, study: { manifestSha256: 'h' } }), approval: () => ({ approved: true }), privacyChanged: () => undefined } as unknown as TaskRunnerOptions['studies'],
      handlers: secaggTaskHandlers(new SecAggSessions({ parameterCount: async () => 4 })), fallback: trainTask,
      send: (msg) => {
        sent.push(msg);
        done();
      },
    });
    runner.onTask({ ...task('TASK_KIND_SECAGG_SHARES', {}), manifestSha256: 'h' });
    await failed;
    expect(sent).toEqual([{ taskUpdate: { taskId: 't-TASK_KIND_SECAGG_SHARES', state: 'TASK_STATE_FAILED', reason: expect.stringMatching(/^secure aggregation shares: no keys for round 3 attempt 1/) } }]);
    expect(a.audits).toEqual([expect.objectContaining({ event: 'task_failed', taskId: 't-TASK_KIND_SECAGG_SHARES', detail: expect.stringContaining('this clinic has dropped from the round'), sent: sent[0] })]);
    a.state.close();
  });

  it('a lost control session drops the rounds in progress', async () => {
    const sessions = new SecAggSessions({ parameterCount: async () => 4 });
    await sessions.start(task('TASK_KIND_SECAGG_KEYS', {}), manifest(), ME);
    expect(sessions.size).toBe(1);
    const warned: unknown[] = [];
    sessions.dropAll({ warn: (o: unknown) => void warned.push(o) } as never);
    expect(sessions.size).toBe(0);
    expect(warned).toEqual([{ event: 'secagg.rounds_dropped', rounds: [{ studyId: 'study-s', round: 3, attempt: 1 }] }]);
  });

  it('TRAIN is declined for a study with secure aggregation (the update would leave unmasked)', async () => {
    const a = agent(manifest(), new Float32Array(4), new Float32Array(4));
    let loaded = false;
    const ctx = { ...a.ctx, loadModel: async () => void (loaded = true) } as unknown as TaskContext;
    await trainTask.run(task('TASK_KIND_TRAIN', {}), ctx);
    expect(a.failures).toEqual(['declined: this study uses secure aggregation: this clinic sends its update only masked (secure-aggregation stages), never as a plain TRAIN upload']);
    expect(loaded).toBe(false);
    a.state.close();
  });

  it('review: what leaves a secure-aggregation study, and the privacy it gets', () => {
    const dp = { placement: 'distributed', noiseMultiplier: 1, clipping: { mode: 'fixed', norm: 1 } };
    const m = manifest({ dp });
    const leaves = whatLeaves(m).join('\n');
    expect(leaves).toContain("the coordinator learns only the sum of the round's clinics' changes, never this clinic's");
    expect(leaves).toContain('each pair encrypted for one of this clinic\'s 3 neighbouring clinics and readable only by it');
    expect(leaves).toContain('clipped to ±2 per value, quantised to 16 bits and masked');
    expect(leaves).toContain('No number of records and no training metric is sent in a training round.');
    expect(leaves).not.toContain('the trained model weights');
    expect(whatLeaves(dpManifest(undefined)).join('\n')).toContain('the trained model weights');
    const privacy = describePrivacy(m, { maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false }).join('\n');
    expect(privacy).toContain('secure aggregation (SecAgg+): each clinic shares its mask secrets with 3 neighbours (ring graph, threshold a majority)');
    expect(privacy).toContain('this clinic counts only its own noise (z/√clients.min): the protocol does not yet let clinics check the coordinator\'s report of who dropped');
    expect(privacy).toContain('effective noise multiplier for this clinic 0.5000');
  });
});
