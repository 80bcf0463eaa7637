import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { FedlhsError, SecAggServer, bundleLength, concatTensors, isFedlhsError, splitTensors, type CloseDecision, type RoundContext } from '@fedlhs/core';
import type { StoredModel } from '../../checkpoints.js';
import type { Accepted, LiveTask, Phase, PhaseContext, PhaseCounters, PhaseOutput, PhasePlan, PhaseResult, StudyView, TaskKind } from '../phase.js';

/**
 * Secure aggregation (issue 14, proto "Secure aggregation"): the training phase replaced by five
 * stages over the cohort (keys, shares, masked input, consistency, unmask), each a phase whose
 * per-clinic task payload is the SecAggServer's request and whose answers (ReportStage) go
 * straight into it. The coordinator holds only what the SecAggServer holds: public and identity
 * keys, sealed shares it cannot open, the running sum of masked inputs and the clinics'
 * signatures of the survivor set; no update is spooled, and the unmasked sum exists only after
 * the last stage. The consistency stage (Bonawitz et al. 2017) has every survivor sign the set
 * of clinics whose masked input went into the sum: a clinic unmasks only inside a set its
 * neighbours signed too, so a coordinator that lies about who dropped cannot unmask one clinic.
 *
 * Deadlines: the round's deadlines.roundSeconds is split across the stages from the moment the
 * keys stage starts: keys 10 %, shares 10 %, masked input (the clinics train) 65 %, consistency
 * 5 %, unmask 10 %. Each stage's deadline is the start plus its cumulative share, so time a
 * stage did not use (it closes early once every clinic asked has answered or gone offline)
 * passes to the next ones.
 */
const STAGE_SHARE = { keys: 0.1, shares: 0.1, masked: 0.65, consistency: 0.05, unmask: 0.1 } as const;
type StageName = keyof typeof STAGE_SHARE;
/** gRPC's default receive limit (4 MiB, which the coordinator keeps) less room for the rest of a StageReport. */
export const MAX_STAGE_VECTOR_BYTES = 4 * 1024 * 1024 - 64 * 1024;
const ORDER: readonly StageName[] = ['keys', 'shares', 'masked', 'consistency', 'unmask'];

interface StageSpec {
  readonly phase: string;
  readonly kind: TaskKind;
  readonly label: string;
  /** Hands one clinic's answer (and, for the masked input, its packed vector) to the server. */
  receive(server: SecAggServer, nodeId: string, body: unknown, vector: Uint8Array): void;
}

const STAGES: Record<StageName, StageSpec> = {
  keys: { phase: 'secagg.keys', kind: 'SECAGG_KEYS', label: 'keys', receive: (s, id, b) => s.receiveKeys(id, b) },
  shares: { phase: 'secagg.shares', kind: 'SECAGG_SHARES', label: 'shares', receive: (s, id, b) => s.receiveShares(id, b) },
  masked: { phase: 'secagg.masked-input', kind: 'SECAGG_MASKED_INPUT', label: 'masked-input', receive: (s, id, b, v) => s.receiveMaskedInput(id, b, v) },
  consistency: { phase: 'secagg.consistency', kind: 'SECAGG_CONSISTENCY', label: 'consistency', receive: (s, id, b) => s.receiveConsistency(id, b) },
  unmask: { phase: 'secagg.unmask', kind: 'SECAGG_UNMASK', label: 'unmask', receive: (s, id, b) => s.receiveUnmask(id, b) },
};

/** The prefix of an ACCEPTED stage task's detail; the rest is the answer's digest (`stageAnswerDigest`). */
export const STAGE_DETAIL_PREFIX = 'answer sha256 ';

/**
 * The digest of a stage answer, kept with its ACCEPTED task so that a re-sent answer is a
 * duplicate exactly when both body and vector are the same. Without a vector (every stage but
 * the masked input) it is the SHA-256 of the body, as before the vector existed; with one, the
 * SHA-256 of the body's length (8 bytes, big-endian), the body and the vector, so that no other
 * split of the same bytes between body and vector has the same digest.
 */
export function stageAnswerDigest(body: Uint8Array, vector: Uint8Array): string {
  const hash = createHash('sha256');
  if (vector.length > 0) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(body.length));
    hash.update(length);
  }
  return hash.update(body).update(vector).digest('hex');
}

/** The digest of the answer an ACCEPTED stage task stored in its detail, if any. */
export function stageDigest(detail: string | null): string | undefined {
  return detail !== null && /^answer sha256 [0-9a-f]{64}$/.test(detail) ? detail.slice(STAGE_DETAIL_PREFIX.length) : undefined;
}

/** The state the five stages of one attempt share (a new one per attempt: pipelineFor). */
class SecAggRound {
  server: SecAggServer | undefined;
  /** The current stage's requests by node, as JSON (Task.payload). */
  requests = new Map<string, string>();
  /** When the keys stage started (the stage deadlines count from here). */
  start = 0;
  /** A configuration that cannot run (found when the keys stage plans): the attempt fails with it. */
  failure: string | undefined;
  candidate: StoredModel | undefined;
}

/** The round context of a study's attempt (the clinics derive the same from the manifest and the keys payload). */
export function roundContext(study: StudyView, round: number, attempt: number): RoundContext {
  const sa = study.manifest.privacy!.secureAggregation!;
  return {
    studyId: study.id, round, attempt, k: sa.neighbours, graph: sa.graph, valueBits: sa.valueBits, clipRange: sa.clipRange,
    vectorLength: bundleLength(study.specs), ...(sa.threshold === undefined ? {} : { threshold: sa.threshold }),
  };
}

/** One stage of a secure-aggregation round. */
export class SecAggStagePhase implements Phase {
  readonly name: string;
  readonly roundState = 'TRAINING' as const;
  readonly taskKinds: readonly TaskKind[];
  readonly failurePrefix = '';
  readonly overCohort = true;
  private readonly spec: StageSpec;
  private readonly answered = new Set<string>();
  private asked: string[] = [];

  constructor(
    private readonly stage: StageName,
    private readonly round: SecAggRound,
  ) {
    this.spec = STAGES[stage];
    this.name = this.spec.phase;
    this.taskKinds = [this.spec.kind];
  }

  plan(ctx: PhaseContext): PhasePlan {
    const { study, attempt } = ctx;
    const r = this.round;
    if (this.stage === 'keys') {
      r.start = ctx.now();
      let cohort = attempt.cohort.active();
      const k = study.manifest.privacy!.secureAggregation!.neighbours;
      if (k % 2 === 1 && cohort.length % 2 === 1) {
        // No k-regular graph has an odd number of odd-degree nodes: one clinic sits this round out (loudly).
        const out = cohort[cohort.length - 1]!;
        const reason = `left out of secure aggregation: an odd neighbours (${k}) needs an even number of clinics, and ${cohort.length} were selected`;
        attempt.cohort.drop(out, this.name, reason);
        ctx.log.warn({ event: 'secagg.stage_closed', round: attempt.round, attempt: attempt.attempt, stage: 'select', asked: cohort.length, answered: cohort.length, next: cohort.length - 1, dropped: [{ nodeId: out, reason }] }, reason);
        cohort = cohort.slice(0, -1);
      }
      try {
        // With distributed DP each clinic adds only z·C/√clients.min of noise: a sum of fewer
        // than clients.min clinics would carry less than the clinics accounted for, so the round
        // needs that many survivors; otherwise the study's training quorum.
        const m = study.manifest;
        const minSurvivors = Math.max(2, m.privacy?.dp?.placement === 'distributed' ? m.clients.min : m.clients.quorum);
        const server = new SecAggServer(roundContext(study, attempt.round, attempt.attempt), cohort, { minSurvivors });
        if (server.vectorBytes > MAX_STAGE_VECTOR_BYTES) {
          throw new FedlhsError('INVALID_ARGUMENT', `the masked model change would be ${server.vectorBytes} bytes (${bundleLength(study.specs)} values), above the ${MAX_STAGE_VECTOR_BYTES}-byte limit of one ReportStage message: the model is too large for secure aggregation in this version`);
        }
        r.server = server;
        r.requests = new Map(cohort.map((id) => [id, JSON.stringify({ studyId: study.id, round: attempt.round, attempt: attempt.attempt })]));
      } catch (err) {
        if (!isFedlhsError(err)) throw err;
        r.failure = `secure aggregation cannot run with ${cohort.length} clinic(s): ${err.message}`;
        r.requests = new Map();
      }
    }
    const cumulative = ORDER.slice(0, ORDER.indexOf(this.stage) + 1).reduce((s, n) => s + STAGE_SHARE[n], 0);
    const deadline = Math.max(ctx.now(), Math.round(r.start + cumulative * study.manifest.deadlines.roundSeconds * 1000));
    const model = this.stage === 'masked' ? attempt.base : undefined;
    this.asked = [...r.requests.keys()];
    return {
      tasks: [...r.requests].map(([nodeId, payload]) => ({ nodeId, kind: this.spec.kind, model, payload })),
      deadline,
      quorum: 'none',
    };
  }

  /**
   * Closes when every clinic asked has answered or ended, or only offline ones are left (a
   * stage task is not re-sent after a reconnection: a lost session is a dropout), or at the
   * stage's deadline.
   */
  decide(_ctx: PhaseContext, c: PhaseCounters, deadlinePassed: boolean): CloseDecision {
    if (deadlinePassed || (c.openOnline === 0 && c.inflight === 0)) return { action: 'close' };
    return { action: 'wait' };
  }

  async accept(ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted> {
    if (result.kind !== 'stage') throw new FedlhsError('INTERNAL', `${this.name} phase got a ${result.kind} result`);
    const server = this.round.server;
    if (server === undefined) throw new FedlhsError('STALE', `task ${task.id}: the secure-aggregation round did not start`);
    // Checked and added at once (a masked input only to the running sum): nothing of it is kept here.
    this.spec.receive(server, task.nodeId, result.body, result.vector);
    this.answered.add(task.nodeId);
    const { study, attempt } = ctx;
    return {
      detail: `${STAGE_DETAIL_PREFIX}${result.digest}`,
      ops: this.stage !== 'masked' ? [] : [{
        op: 'contribution.insert',
        c: {
          taskId: task.id, studyId: study.id, round: attempt.round, attempt: attempt.attempt, nodeId: task.nodeId, numExamples: 0, sha256: '', bytes: 0,
          accepted: true, reasonCode: null, deltaNorm: null, receivedAt: ctx.now(),
          reason: 'secure aggregation: masked update added to the round sum; the coordinator never sees this update, so it has no norm, digest or example count of it',
        },
      }],
    };
  }

  async complete(ctx: PhaseContext): Promise<PhaseOutput> {
    const r = this.round;
    const { attempt } = ctx;
    if (r.failure !== undefined) return this.fail(ctx, r.failure);
    const server = r.server!;
    if (this.stage === 'unmask') return this.finish(ctx, server);
    let next: Map<string, unknown>;
    try {
      next = this.nextRequests(server);
    } catch (err) {
      if (!isFedlhsError(err)) throw err;
      return this.fail(ctx, err.message, this.unanswered());
    }
    r.requests = new Map([...next].map(([id, req]) => [id, JSON.stringify(req)]));
    // After the masked inputs, a clinic that does not sign the survivor set or answer the unmask
    // stage is still in the sum (its neighbours unmask it): its reason says so.
    const inSum = this.stage === 'consistency' ? '; its masked input stays in the round sum (its neighbours unmask it)' : '';
    const drop = this.asked.filter((id) => !next.has(id)).map((nodeId) => ({
      nodeId,
      reason: this.answered.has(nodeId)
        ? this.stage === 'consistency'
          ? `secure aggregation consistency stage: too few of its neighbours signed the survivor set for it to unmask (threshold)${inSum}`
          : `secure aggregation ${this.spec.label} stage: too few of its neighbours answered for its secrets to be shared (threshold)`
        : `did not answer the secure-aggregation ${this.spec.label} stage before it closed${inSum}`,
    }));
    ctx.log[drop.length === 0 ? 'info' : 'warn'](
      { event: 'secagg.stage_closed', round: attempt.round, attempt: attempt.attempt, stage: this.spec.label, asked: this.asked.length, answered: this.answered.size, next: next.size, dropped: drop },
      `secure-aggregation ${this.spec.label} stage closed: ${this.answered.size} of ${this.asked.length} answered, ${next.size} go on`,
    );
    return { drop };
  }

  /** Closes this stage at the server and returns the next stage's requests by clinic. */
  private nextRequests(server: SecAggServer): Map<string, unknown> {
    switch (this.stage) {
      case 'keys': return server.sharesRequests();
      case 'shares': return server.maskedInputRequests();
      case 'masked': return server.consistencyRequests();
      case 'consistency': return server.unmaskRequests();
      case 'unmask': throw new FedlhsError('INTERNAL', 'secure aggregation: the unmask stage has no next stage');
    }
  }

  private unanswered(): { nodeId: string; reason: string }[] {
    return this.asked.filter((id) => !this.answered.has(id)).map((nodeId) => ({ nodeId, reason: `did not answer the secure-aggregation ${this.spec.label} stage before it closed` }));
  }

  private fail(ctx: PhaseContext, reason: string, drop: { nodeId: string; reason: string }[] = []): PhaseOutput {
    ctx.log.warn({ event: 'secagg.round_failed', round: ctx.attempt.round, attempt: ctx.attempt.attempt, stage: this.spec.label, reason }, `secure aggregation failed at the ${this.spec.label} stage: ${reason}`);
    return { failure: reason, drop };
  }

  /** The unmasked sum → the survivors' mean change → the candidate, through the study's strategy. */
  private async finish(ctx: PhaseContext, server: SecAggServer): Promise<PhaseOutput> {
    const { study, attempt } = ctx;
    let sum: Float64Array;
    try {
      sum = server.finish();
    } catch (err) {
      if (!isFedlhsError(err)) throw err;
      return this.fail(ctx, err.message);
    }
    for (const b of server.blame) {
      // An unmask share that disagreed with the others (its holder or its dealer is faulty): the
      // secret was rebuilt without it; operators see both names.
      ctx.log.warn({ event: 'secagg.share_blamed', round: attempt.round, attempt: attempt.attempt, sender: b.sender, owner: b.owner, secret: b.secret }, `secure aggregation: ${b.message}`);
    }
    const survivors = server.included.length;
    await ctx.enterState('AGGREGATING');
    const base = await ctx.checkpoints.readAll(attempt.base.path);
    if (base.length !== sum.length) throw new FedlhsError('INTERNAL', `secure aggregation: the sum has ${sum.length} values, the model ${base.length}`);
    const model = new Float32Array(base.length);
    for (let i = 0; i < base.length; i++) model[i] = base[i]! + sum[i]! / survivors;
    sum.fill(0);
    // fedavg (the manifest enforces it): the step is the mean model; a wrapper strategy still applies.
    const next = concatTensors(study.strategy.aggregate(splitTensors(study.specs, base), [{ weights: splitTensors(study.specs, model), numExamples: survivors }], attempt.round));
    this.round.candidate = await ctx.checkpoints.writeCandidate(study.id, attempt.round, attempt.attempt, [next]);
    ctx.log.info(
      { event: 'secagg.aggregated', round: attempt.round, attempt: attempt.attempt, survivors, unmaskAnswers: this.answered.size, sha256: this.round.candidate.sha256 },
      `secure aggregation: the mean of ${survivors} masked update(s) applied to the round model`,
    );
    return {
      candidate: { model: this.round.candidate, strategyState: undefined },
      fields: { updates: survivors, secureAggregation: true },
    };
  }

  async dispose(_ctx: PhaseContext, committed: boolean): Promise<void> {
    if (this.stage !== 'unmask') return;
    if (!committed && this.round.candidate !== undefined) await rm(this.round.candidate.path, { force: true });
    this.round.server = undefined;
    this.round.requests.clear();
  }
}

/** The five stages of one attempt, sharing their round state. */
export function secAggPhases(): Phase[] {
  const round = new SecAggRound();
  return ORDER.map((stage) => new SecAggStagePhase(stage, round));
}
