import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ORDERS, SecAggClient, SecAggServer, createSecAggIdentity, quantizationParams, rawEd25519PublicKey, roundRdp,
  type ConsistencyRequest, type MaskedInputRequest, type StudyManifest, type UnmaskRequest,
} from '@fedlhs/core';
import type { Task__Output } from '@fedlhs/proto';
import { AgentState, type AuditEntry } from '../agent-state.js';
import { identityFingerprint, identityKeyPath } from '../identity-key.js';
import { NO_BUDGET, type BudgetConfig } from '../privacy-budget.js';
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
const DISTRIBUTED = { placement: 'distributed' as const, noiseMultiplier: 1, clipping: { mode: 'fixed' as const, norm: 1 } };

function manifest(over: { dp?: unknown; clipRange?: number } = {}): StudyManifest {
  return dpManifest({
    secureAggregation: { neighbours: 3, graph: 'ring', valueBits: 16, clipRange: over.clipRange ?? 2 },
    ...(over.dp === undefined ? {} : { dp: over.dp }),
  });
}

type Report = { taskId: string; studyId: string; round: number; body: Buffer; vector: Buffer };

/** The agent's side: a fake task context whose model training turns `roundModel` into `roundModel + change`. */
function agent(m: StudyManifest, roundModel: Float32Array, change: Float32Array, privacy: BudgetConfig = NO_BUDGET, dir = join(mkdtempSync(join(tmpdir(), 'fedlhs-secagg-')), 'state')) {
  const state = new AgentState(dir);
  const audits: AuditEntry[] = [];
  const record = state.audit.bind(state);
  state.audit = (e) => {
    audits.push(e as AuditEntry);
    record(e);
  };
  const reports: Report[] = [];
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
    config: { coordinator: { address: 'coordinator:1' }, privacy },
    credential: { nodeId: ME, credential: 'secret' },
    clients: {
      federation: {
        ReportStage: (req: Report, _md: unknown, _opts: unknown, cb: (err: null, r: unknown) => void) => {
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
  /** Clinics (not ME) whose masked input never reaches the server: they dropped after sharing. */
  drop?: readonly string[];
  /** Changes the CONSISTENCY request the agent receives. */
  tamperConsistency?: (req: ConsistencyRequest) => ConsistencyRequest;
  /** Changes the UNMASK request the agent receives. */
  tamperUnmask?: (req: UnmaskRequest) => UnmaskRequest;
  /** The clinic's budget settings (agent config `privacy`). */
  privacy?: BudgetConfig;
  /** Runs on the agent's state before the round (e.g. a pin). */
  before?: (state: AgentState) => void;
}

/** One round: the agent's handlers for ME, SecAggClients for the others, a SecAggServer in between. */
async function runRound(m: StudyManifest, change: Float32Array, o: RoundOptions = {}) {
  const L = change.length;
  const roundModel = Float32Array.from({ length: L }, (_, i) => Math.sin(i));
  const a = agent(m, roundModel, change, o.privacy);
  o.before?.(a.state);
  const sessions = new SecAggSessions({ parameterCount: async () => L });
  const handlers = new Map(secaggTaskHandlers(sessions).map((h) => [h.kind, h]));
  const sent = async (t: Task__Output): Promise<Report | undefined> => {
    const before = a.reports.length;
    await handlers.get(t.kind)!.run(t, a.ctx);
    return a.reports.length > before ? a.reports.at(-1)! : undefined;
  };
  const run = async (t: Task__Output): Promise<unknown> => {
    const r = await sent(t);
    return r === undefined ? undefined : JSON.parse(r.body.toString('utf8'));
  };
  const header = { studyId: 'study-s', round: 3, attempt: 1 };
  const rctx = roundContext(m.privacy!.secureAggregation!, task('TASK_KIND_SECAGG_KEYS', header), L);
  const server = new SecAggServer(rctx, COHORT);
  const others = new Map(COHORT.filter((id) => id !== ME).map((id) => [id, new SecAggClient(rctx, id, createSecAggIdentity())]));
  const clip = rctx.clipRange;
  const inputs = new Map([...others.keys()].map((id, j) => [id, Float64Array.from({ length: L }, (_, i) => clip * Math.cos(i * (j + 2)) * 0.9)]));
  const step = quantizationParams({ clip, valueBits: rctx.valueBits, clients: COHORT.length }).step;
  const partial = { ...a, sessions, run, sent, others, finish: undefined as undefined | (() => Float64Array), inputs, step };

  server.receiveKeys(ME, await run(task('TASK_KIND_SECAGG_KEYS', header)));
  for (const [id, c] of others) server.receiveKeys(id, wire(c.keys()));
  const req2 = server.sharesRequests();
  const shares = await run(task('TASK_KIND_SECAGG_SHARES', req2.get(ME)));
  if (shares === undefined) return partial;
  server.receiveShares(ME, shares);
  for (const [id, c] of others) server.receiveShares(id, wire(c.shares(wire(req2.get(id)))));
  const req3 = server.maskedInputRequests();
  const mine = await sent(task('TASK_KIND_SECAGG_MASKED_INPUT', o.tamper ? o.tamper(structuredClone(req3.get(ME)!)) : req3.get(ME)));
  if (mine === undefined) return partial;
  server.receiveMaskedInput(ME, JSON.parse(mine.body.toString('utf8')), mine.vector);
  const live = [...others].filter(([id]) => !(o.drop ?? []).includes(id));
  for (const [id, c] of live) {
    const { message, vector } = c.maskedInput(wire(req3.get(id)), inputs.get(id)!);
    server.receiveMaskedInput(id, wire(message), vector);
  }
  const req4 = server.consistencyRequests();
  const signed = await run(task('TASK_KIND_SECAGG_CONSISTENCY', o.tamperConsistency ? o.tamperConsistency(structuredClone(req4.get(ME)!)) : req4.get(ME)));
  if (signed === undefined) return partial;
  server.receiveConsistency(ME, signed);
  for (const [id, c] of live) server.receiveConsistency(id, wire(c.consistency(wire(req4.get(id)))));
  const req5 = server.unmaskRequests();
  const unmask = await run(task('TASK_KIND_SECAGG_UNMASK', o.tamperUnmask ? o.tamperUnmask(structuredClone(req5.get(ME)!)) : req5.get(ME)));
  if (unmask === undefined) return partial;
  server.receiveUnmask(ME, unmask);
  for (const [id, c] of live) if (req5.has(id)) server.receiveUnmask(id, wire(c.unmask(wire(req5.get(id)))));
  for (const id of o.drop ?? []) inputs.delete(id);
  return { ...partial, finish: () => server.finish() };
}

/** The agent's part of the sum: the sum minus the other clinics' inputs. */
function agentsPart(r: Awaited<ReturnType<typeof runRound>>): Float64Array {
  const sum = r.finish!();
  return Float64Array.from(sum, (v, i) => v - [...r.inputs.values()].reduce((acc, x) => acc + x[i]!, 0));
}

const stages = (audits: readonly AuditEntry[]): string[] => audits.filter((e) => e.event === 'secagg_stage_sent').map((e) => (e.sent!.stageReport as { stage: string }).stage);

describe('secure aggregation, clinic side', () => {
  it("a full round: the coordinator's sum includes this clinic's Δ (within quantisation), the masked input goes as StageReport.vector, and every answer is audited", async () => {
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
    expect(stages(r.audits)).toEqual(['keys', 'shares', 'masked_input', 'consistency', 'unmask']);
    sent.forEach((e, i) => {
      expect(e.bytes).toBe(r.reports[i]!.body.length + r.reports[i]!.vector.length);
      expect(e.sha256).toBe(createHashHex(r.reports[i]!.body));
    });
    // Masked input: the body is the header only, the words are packed in the vector; only the other stages have empty vectors.
    const masked = r.reports[2]!;
    expect(JSON.parse(masked.body.toString('utf8'))).toEqual({ studyId: 'study-s', round: 3, attempt: 1 });
    expect(masked.vector.length).toBeGreaterThan(0);
    expect(r.reports.filter((x, i) => i !== 2).every((x) => x.vector.length === 0)).toBe(true);
    expect(sent[2]!.sent!.stageReport).toMatchObject({ vectorBytes: masked.vector.length, vectorSha256: createHashHex(masked.vector) });
    // What was masked is described in words (local facts, not on the wire).
    expect(sent[2]!.detail).toMatch(/64 values, clipped to ±2: 1 values clipped/);
    expect(JSON.stringify(r.audits)).not.toContain(masked.vector.toString('base64').slice(0, 40));
    expect((sent[1]!.sent!.stageReport as { to: string[] }).to).toEqual(['clinic-b', 'clinic-c', 'clinic-d']);
    expect(sent[3]!.sent!.stageReport).toMatchObject({ survivors: COHORT });
    expect(sent[4]!.sent!.stageReport).toMatchObject({ survivors: 4, signers: ['clinic-b', 'clinic-c', 'clinic-d'] });
    // Identity: created at first need (0600), its fingerprint audited; every neighbour pinned at first sight, audited.
    const keyFile = identityKeyPath(r.state.dir);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const keys = JSON.parse(r.reports[0]!.body.toString('utf8')) as { identityKey: string };
    const created = r.audits.find((e) => e.event === 'secagg_identity_created')!;
    expect(created.peer).toEqual({ nodeId: ME, fingerprint: identityFingerprint(Buffer.from(keys.identityKey, 'base64')) });
    const pinned = r.audits.filter((e) => e.event === 'secagg_peer_pinned');
    expect(pinned.map((e) => e.peer!.nodeId)).toEqual(['clinic-b', 'clinic-c', 'clinic-d']);
    expect(r.state.listPeerPins().map((p) => p.nodeId)).toEqual(['clinic-b', 'clinic-c', 'clinic-d']);
    // Pinned before the shares left.
    expect(r.audits.findIndex((e) => e.event === 'secagg_peer_pinned')).toBeLessThan(r.audits.findIndex((e) => e === sent[1]));
    // Without DP nothing is charged.
    expect(r.state.listPrivacySpends()).toEqual([]);
    r.state.close();
  });

  it('a stage task re-sent after a transient failure is answered with the same body and vector', async () => {
    const r = await runRound(manifest(), new Float32Array(8));
    expect(r.failures).toEqual([]);
    const first = r.reports[2]!;
    const again = await r.sent(task('TASK_KIND_SECAGG_MASKED_INPUT', {}));
    expect(again!.body.equals(first.body)).toBe(true);
    expect(again!.vector.equals(first.vector)).toBe(true);
    expect(r.audits.at(-1)!.sent!.stageReport).toMatchObject({ stage: 'masked_input', resent: true, vectorBytes: first.vector.length });
    r.state.close();
  });

  it('a neighbour whose identity key changed: SHARES refused naming it and both fingerprints, audited, nothing sent', async () => {
    const other = rawEd25519PublicKey(generateKeyPairSync('ed25519').privateKey);
    const r = await runRound(manifest(), new Float32Array(8), { before: (s) => void s.pinPeer({ nodeId: 'clinic-c', identityKey: other, firstSeenAt: 1, studyId: 'study-old', round: 1 }) });
    expect(r.failures).toHaveLength(1);
    const offered = r.audits.find((e) => e.event === 'secagg_peer_refused')!;
    expect(offered.peer).toMatchObject({ nodeId: 'clinic-c', pinnedFingerprint: identityFingerprint(other) });
    expect(offered.peer!.fingerprint).not.toBe(identityFingerprint(other));
    expect(r.failures[0]).toMatch(/^secure aggregation shares: .*clinic-c's identity key changed: pinned [0-9a-f]{64} \(first seen in study study-old round 1\), offered [0-9a-f]{64}/);
    expect(r.failures[0]).toContain(identityFingerprint(other));
    expect(r.failures[0]).toContain(offered.peer!.fingerprint);
    expect(r.warnings).toContainEqual(expect.objectContaining({ event: 'secagg.peer_refused', peer: 'clinic-c' }));
    expect(stages(r.audits)).toEqual(['keys']);
    expect(r.sessions.size).toBe(0);
    // The pin is unchanged: a changed key is never pinned over the old one.
    expect(identityFingerprint(r.state.getPeerPin('clinic-c')!.identityKey)).toBe(identityFingerprint(other));
    r.state.close();
  });

  it('a tampered ciphertext in the MASKED_INPUT request: FAILED naming the sender, logged, nothing sent, round discarded, nothing charged', async () => {
    let sender = '';
    const r = await runRound(manifest({ dp: DISTRIBUTED }), new Float32Array(16), {
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
    await r.run(task('TASK_KIND_SECAGG_CONSISTENCY', { studyId: 'study-s', round: 3, attempt: 1, survivors: COHORT }));
    expect(r.failures[1]).toMatch(/^secure aggregation consistency: no keys for round 3 attempt 1 in this process/);
    r.state.close();
  });

  it('consistency: a survivor set without this clinic is refused (FAILED), nothing signed', async () => {
    const r = await runRound(manifest(), new Float32Array(8), { tamperConsistency: (req) => ({ ...req, survivors: req.survivors.filter((id) => id !== ME) }) });
    expect(r.failures).toEqual([expect.stringMatching(/^secure aggregation consistency: .*this clinic's masked input is not in the set \(clinic-a is missing\)/)]);
    expect(stages(r.audits)).toEqual(['keys', 'shares', 'masked_input']);
    expect(r.sessions.size).toBe(0);
    r.state.close();
  });

  it('consistency with distributed DP: fewer survivors than clients.min is refused naming both numbers; without DP 2 suffice', async () => {
    const dp = await runRound(manifest({ dp: DISTRIBUTED, clipRange: 8 }), new Float32Array(8), { drop: ['clinic-d'] });
    expect(dp.failures).toEqual([expect.stringMatching(/^secure aggregation consistency: .*3 clinics in the sum, fewer than the 4 this clinic requires/)]);
    expect(stages(dp.audits)).toEqual(['keys', 'shares', 'masked_input']);
    dp.state.close();
    const plain = await runRound(manifest(), Float32Array.from({ length: 8 }, (_, i) => 0.1 * i), { drop: ['clinic-d'] });
    expect(plain.failures).toEqual([]);
    expect(stages(plain.audits)).toEqual(['keys', 'shares', 'masked_input', 'consistency', 'unmask']);
    agentsPart(plain).forEach((v, i) => expect(Math.abs(v - 0.1 * i)).toBeLessThanOrEqual((COHORT.length * plain.step) / 2 + 1e-6));
    plain.state.close();
  });

  it('unmask: a survivor set other than the one signed is refused (FAILED), no share revealed', async () => {
    const r = await runRound(manifest(), new Float32Array(8), { tamperUnmask: (req) => ({ ...req, survivors: req.survivors.filter((id) => id !== 'clinic-b') }) });
    expect(r.failures).toEqual([expect.stringMatching(/^secure aggregation unmask: unmaskRequest\.survivors: is not the survivor set this clinic signed/)]);
    expect(stages(r.audits)).toEqual(['keys', 'shares', 'masked_input', 'consistency']);
    r.state.close();
  });

  it('distributed DP under secure aggregation, nothing clipped: σ = z·C/√clients.min added here, charged at that own share (the survivor set is the coordinator\'s word)', async () => {
    const m = manifest({ dp: DISTRIBUTED, clipRange: 4 });
    const r = await runRound(m, new Float32Array(4000)); // Δ = 0: what reaches the sum is the noise
    expect(r.failures).toEqual([]);
    expect(r.warnings.filter((w) => w.event === 'secagg.values_clipped')).toEqual([]);
    const part = agentsPart(r);
    const mean = part.reduce((a, b) => a + b, 0) / part.length;
    const std = Math.sqrt(part.reduce((a, b) => a + (b - mean) ** 2, 0) / part.length);
    expect(std).toBeGreaterThan(0.5 * 0.92);
    expect(std).toBeLessThan(0.5 * 1.08);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    const o = { clientsMin: m.clients.min, trustCoordinatorNoise: false };
    const [spend, ...more] = r.state.listPrivacySpends('study-s');
    expect(more).toEqual([]);
    expect(spend!.rdp).toEqual(roundRdp(m.privacy!.dp!, { ...o, secureAggregation: false }, DEFAULT_ORDERS));
    const audit = r.audits.find((e) => e.event === 'privacy_spent')!;
    expect(audit.privacy).toMatchObject({ effectiveNoiseMultiplier: 0.5, placement: 'distributed' });
    // What the audit lists as sent is what went on the wire: the header body and the packed vector (sizes, digests).
    expect(Object.keys(r.audits.find((e) => (e.sent?.stageReport as { stage?: string } | undefined)?.stage === 'masked_input')!.sent!.stageReport as object).sort()).toEqual(
      ['attempt', 'bodyBytes', 'bodySha256', 'round', 'stage', 'studyId', 'taskId', 'vectorBytes', 'vectorSha256'],
    );
    // Charged before the masked input left.
    expect(r.audits.findIndex((e) => e.event === 'privacy_spent')).toBeLessThan(r.audits.findIndex((e) => (e.sent?.stageReport as { stage?: string } | undefined)?.stage === 'masked_input'));
    r.state.close();
  });

  it('distributed DP with values clipped to ±clipRange: charged exactly as without clipping, and nothing about the clipping is sent (review clinic2 HIGH 1)', async () => {
    const m = manifest({ dp: DISTRIBUTED, clipRange: 0.5 }); // σ = 0.5: about a third of the values are clipped
    const r = await runRound(m, new Float32Array(400));
    expect(r.failures).toEqual([]);
    expect(r.warnings).toContainEqual(expect.objectContaining({ event: 'secagg.values_clipped' }));
    const o = { clientsMin: m.clients.min, trustCoordinatorNoise: false };
    const [spend, ...more] = r.state.listPrivacySpends('study-s');
    expect(more).toEqual([]);
    expect(spend!.rdp).toEqual(roundRdp(m.privacy!.dp!, { ...o, secureAggregation: false }, DEFAULT_ORDERS));
    const sent = r.audits.find((e) => (e.sent?.stageReport as { stage?: string } | undefined)?.stage === 'masked_input')!;
    expect(JSON.stringify(sent.sent)).not.toMatch(/clipped/i);
    expect(stages(r.audits)).toEqual(['keys', 'shares', 'masked_input', 'consistency', 'unmask']);
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
    await handlers.get('TASK_KIND_SECAGG_CONSISTENCY')!.run(task('TASK_KIND_SECAGG_CONSISTENCY', {}), a.ctx);
    expect(a.failures[2]).toMatch(/^secure aggregation consistency: no keys for round 3 attempt 1/);
    expect(a.reports).toEqual([]);
    expect(a.audits.filter((e) => e.event === 'secagg_stage_sent')).toEqual([]);
    a.state.close();
  });

  it('a stage is refused (task fails) when the identity key file is not Ed25519; the file is left as it was', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'fedlhs-secagg-')), 'state');
    const a = agent(manifest(), new Float32Array(4), new Float32Array(4), NO_BUDGET, dir);
    const { writeFileSync, readFileSync } = await import('node:fs');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(identityKeyPath(dir), rsa, { mode: 0o600 });
    const handlers = new Map(secaggTaskHandlers(new SecAggSessions({ parameterCount: async () => 4 })).map((h) => [h.kind, h]));
    await expect(handlers.get('TASK_KIND_SECAGG_KEYS')!.run(task('TASK_KIND_SECAGG_KEYS', { studyId: 'study-s', round: 3, attempt: 1 }), a.ctx)).rejects.toThrow(/identity-key\.pem: an rsa key, not Ed25519/);
    expect(readFileSync(identityKeyPath(dir), 'utf8')).toBe(rsa);
    expect(a.reports).toEqual([]);
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
    const a = agent(manifest(), new Float32Array(4), new Float32Array(4));
    await sessions.start(task('TASK_KIND_SECAGG_KEYS', {}), a.ctx);
    expect(sessions.size).toBe(1);
    const warned: unknown[] = [];
    sessions.dropAll({ warn: (o: unknown) => void warned.push(o) } as never);
    expect(sessions.size).toBe(0);
    expect(warned).toEqual([{ event: 'secagg.rounds_dropped', rounds: [{ studyId: 'study-s', round: 3, attempt: 1 }] }]);
    a.state.close();
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
    const m = manifest({ dp: DISTRIBUTED });
    const leaves = whatLeaves(m).join('\n');
    expect(leaves).toContain("the coordinator learns only the sum of the round's clinics' changes, never this clinic's");
    expect(leaves).toContain('each pair encrypted for one of this clinic\'s 3 neighbouring clinics and readable only by it');
    expect(leaves).toContain('clipped to ±2 per value, quantised to 16 bits and masked');
    expect(leaves).toContain('No number of records and no training metric is sent in a training round.');
    expect(leaves).not.toContain('the trained model weights');
    expect(whatLeaves(dpManifest(undefined)).join('\n')).toContain('the trained model weights');
    const privacy = describePrivacy(m, NO_BUDGET).join('\n');
    expect(privacy).toContain('secure aggregation (SecAgg+): each clinic shares its mask secrets with 3 neighbours (ring graph, threshold a majority)');
    // Counted at the clinic's own share (privacy-budget.ts SECURE_AGGREGATION_COUNTS).
    expect(privacy).toContain('effective noise multiplier for this clinic 0.5000');
    expect(privacy).toContain('this clinic unmasks only inside a survivor set of at least 4 clinics that it and its neighbours signed');
    expect(privacy).toContain('this clinic counts its own share z/√4: who is in that set is vouched for by the coordinator alone');
  });
});

const createHashHex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
