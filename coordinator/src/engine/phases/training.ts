import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FedlhsError, concatTensors, type EvalMetrics, type Tensor } from '@fedlhs/core';
import { RoundAggregator } from '../../aggregation.js';
import type { StoredModel } from '../../checkpoints.js';
import { checkDpClipIndicator } from '../../grpc/validate.js';
import { AdaptiveClipping } from './adaptive-clipping.js';
import { storedMetrics } from './evaluation.js';
import type { Accepted, LiveTask, Phase, PhaseContext, PhaseOutput, PhasePlan, PhaseResult } from '../phase.js';

/**
 * Training: the cohort trains from the base model; each accepted update is admitted against the
 * norm bound and added to the round's aggregator as it arrives (O(model) memory whatever the
 * number of clinics). On close the round moves to AGGREGATING and the candidate comes from the
 * strategy (RoundAggregator.finish → stepSlice per slice; never a shortcut by strategy name).
 */
export class TrainingPhase implements Phase {
  readonly name = 'training';
  readonly roundState = 'TRAINING' as const;
  readonly taskKinds = ['TRAIN'] as const;
  readonly overCohort = true;
  readonly failurePrefix = '';
  private aggregator: RoundAggregator | undefined;
  private readonly trainingMetrics: (EvalMetrics & { nodeId: string })[] = [];
  /** Server-side strategy state before this attempt's aggregation, restored if it does not commit. */
  private stateBefore: Tensor[] | undefined;
  private candidate: StoredModel | undefined;
  private stateCandidate: StoredModel | undefined;
  /** Adaptive DP clipping: this round's norm and the accepted updates' indicators; undefined otherwise. */
  private clipping: AdaptiveClipping | undefined;
  /** The DP clipping norm of this round (fixed, or adaptive C_r); undefined without DP. */
  private clipNorm: number | undefined;

  /** `random`: a byte source for the count's central noise, for tests (Node crypto otherwise). */
  constructor(private readonly random?: (bytes: number) => Uint8Array) {}

  plan(ctx: PhaseContext): PhasePlan {
    const { study, attempt } = ctx;
    const dp = study.manifest.privacy?.dp;
    if (dp !== undefined && study.strategy.name !== 'fedavg') {
      // DP-FedAvg's guarantee is for the (clipped, equally weighted) average: another server step
      // (momentum, adaptive optimizers, order statistics) is not what the clinics accounted for.
      const reason = `differential privacy (privacy.dp) is only supported with aggregation.strategy fedavg; this study uses ${study.strategy.name}`;
      ctx.log.error({ event: 'privacy.strategy_refused', strategy: study.strategy.name }, reason);
      throw new FedlhsError('STUDY_FAILED', reason);
    }
    // Adaptive clipping (Andrew et al. 2021): this round's norm C_r is in the study's parameters
    // (written with the previous commit; the first round writes initialNorm) and every TRAIN task carries it.
    this.clipping = dp === undefined ? undefined : AdaptiveClipping.forRound(dp, attempt.parametersPending ?? study.record.parameters, this.random);
    this.clipNorm = dp === undefined ? undefined : (this.clipping?.clipNorm ?? (dp.clipping.mode === 'fixed' ? dp.clipping.norm : dp.clipping.initialNorm));
    this.aggregator = new RoundAggregator(
      study.strategy, study.specs, attempt.base, ctx.checkpoints,
      join(ctx.checkpoints.studyDir(study.id), 'held', `round-${attempt.round}-attempt-${attempt.attempt}`),
      study.manifest.updateValidation, study.manifest.aggregation.maxUpdatesHeld,
      dp === undefined || this.clipNorm === undefined ? {} : { dp: dp.placement === 'central' ? { central: { clipNorm: this.clipNorm, noiseMultiplier: dp.noiseMultiplier } } : {} },
    );
    const parameters = this.clipping?.parametersToWrite;
    return {
      tasks: attempt.cohort.active().map((nodeId) => ({ nodeId, kind: 'TRAIN', model: attempt.base })),
      deadline: ctx.now() + study.manifest.deadlines.roundSeconds * 1000,
      quorum: study.manifest.clients.quorum,
      ...(parameters === undefined ? {} : { parameters }),
    };
  }

  async accept(ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted> {
    if (result.kind !== 'update') throw new FedlhsError('INTERNAL', `training phase got a ${result.kind} result`);
    const aggregator = this.aggregator!;
    const { study, attempt } = ctx;
    // Before the update joins the sum: required with adaptive clipping, refused without it (INVALID_ARGUMENT).
    const indicator = checkDpClipIndicator(result.dpClipIndicator, study.manifest.privacy?.dp, study.manifest.clients.min);
    const scale = aggregator.admit(result.deltaNorm, study.normHistory);
    await aggregator.add(result.spoolPath, result.numExamples, scale, task.id);
    const clipped = scale < 1;
    return {
      detail: clipped ? `clipped to ${(scale * 100).toFixed(1)}% of its delta` : null,
      ops: [
        {
          op: 'contribution.insert',
          c: {
            taskId: task.id, studyId: study.id, round: attempt.round, attempt: attempt.attempt, nodeId: task.nodeId, numExamples: result.numExamples, sha256: result.digest,
            bytes: result.bytes, accepted: true, reasonCode: clipped ? 'CLIPPED' : null,
            reason: clipped ? `delta norm ${result.deltaNorm.toPrecision(4)} clipped by ${scale.toPrecision(4)}` : null, receivedAt: ctx.now(), deltaNorm: result.deltaNorm,
          },
        },
      ],
      apply: () => {
        if (indicator !== undefined) this.clipping?.add(indicator);
        study.normHistory.push(result.deltaNorm);
        if (result.trainMetrics !== undefined) this.trainingMetrics.push({ ...result.trainMetrics, nodeId: task.nodeId });
      },
    };
  }

  async complete(ctx: PhaseContext): Promise<PhaseOutput> {
    const { study, attempt } = ctx;
    const aggregator = this.aggregator!;
    await ctx.enterState('AGGREGATING');
    this.stateBefore = study.strategy.exportState().map((t) => ({ shape: [...t.shape], data: Float32Array.from(t.data) }));
    this.candidate = await ctx.checkpoints.writeCandidate(study.id, attempt.round, attempt.attempt, await aggregator.finish(attempt.round));
    const state = study.strategy.exportState();
    if (state.length > 0) this.stateCandidate = await ctx.checkpoints.writeCandidate(study.id, attempt.round, attempt.attempt, [concatTensors(state)], 'state');
    const dp = study.manifest.privacy?.dp;
    if (dp?.placement === 'central') {
      ctx.log.info({ event: 'privacy.central_noise', round: attempt.round, updates: aggregator.count, noiseMultiplier: dp.noiseMultiplier, clipNorm: this.clipNorm }, `round ${attempt.round}: central DP noise added to the sum of ${aggregator.count} clipped update(s)`);
    }
    // The next round's norm from this round's noisy unclipped fraction, persisted only if the round commits.
    const next = this.clipping?.next(study.record.parameters, aggregator.count);
    ctx.log.info(
      { event: 'round.aggregated', round: attempt.round, strategy: study.strategy.name, updates: aggregator.count, examples: aggregator.totalExamples, sha256: this.candidate.sha256 },
      `aggregated ${aggregator.count} update(s) with ${study.strategy.name}`,
    );
    return {
      candidate: { model: this.candidate, strategyState: this.stateCandidate },
      metrics: storedMetrics(ctx, 'training', this.trainingMetrics),
      fields: { updates: aggregator.count, examples: aggregator.totalExamples, ...(next === undefined ? {} : { clipNorm: next.clipNorm, nextClipNorm: next.nextClipNorm }) },
      ...(next === undefined ? {} : { commitParameters: next.parameters }),
    };
  }

  async dispose(ctx: PhaseContext, committed: boolean): Promise<void> {
    if (committed) this.clipping?.logCommitted(ctx);
    if (!committed) {
      // The files were promoted by a commit; otherwise they are left-overs of this attempt.
      if (this.candidate !== undefined) await rm(this.candidate.path, { force: true });
      if (this.stateCandidate !== undefined) await rm(this.stateCandidate.path, { force: true });
      // The strategy stepped its server state for a model that was never committed: undo it.
      if (this.stateBefore !== undefined) ctx.study.strategy.importState(this.stateBefore);
    }
    this.aggregator?.dispose();
  }
}
