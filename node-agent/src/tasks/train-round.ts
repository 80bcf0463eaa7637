import { createHash } from 'node:crypto';
import { CLIP_NORM_FIELD, FedlhsError, clipIndicatorNoiseStd, clipNormParameter, noisyClipIndicator, type EvalMetrics } from '@fedlhs/core';
import type { ModelRuntime } from '@fedlhs/model';
import type { Task__Output } from '@fedlhs/proto';
import { PrivacyBudget, fmtEpsilon, type RoundDecision } from '../privacy-budget.js';
import { roundCount } from '../privacy-counts.js';
import { applyChangeInPlace, modelChange, privatiseDelta, type DpSection, type DpUpdateInfo } from '../privacy-update.js';
import type { TaskContext } from '../task-runner.js';

/** One round of local training, ready to leave (as plain weights for TRAIN, as Δ for secure aggregation). */
export interface TrainedRound {
  runtime: ModelRuntime;
  /** SHA-256 of the round's model as downloaded. */
  sha256: Buffer;
  timeoutMs: number;
  /** What to upload as weights: the trained model, or round model + Δ under DP. */
  weights: Float32Array;
  /** Δ = what leaves minus the round model (after DP clipping and noise); only when asked for or under DP. */
  delta: Float32Array | undefined;
  trainMetrics: EvalMetrics;
  /** Training rows, rounded as the manifest's privacy.counts says. */
  numExamples: number;
  dpInfo: DpUpdateInfo | undefined;
  /**
   * Adaptive clipping only: what leaves as UpdateHeader.dp_clip_indicator (1[‖Δ‖ ≤ C] plus this
   * clinic's noise share) and the share's standard deviation (0: central, the coordinator adds it).
   */
  clipIndicator: { value: number; noiseStd: number } | undefined;
  /**
   * Records the round's privacy spend in the ledger and the audit log (a no-op without DP). Call
   * it before anything of this round leaves: an answer that fails afterwards has still been paid for.
   */
  commitSpend(): void;
}

/**
 * The clinic's budget decision for this task's round (before anything is read or trained), and
 * the decline when it does not fit: DECLINED with the reason, logged and audited. Undefined: declined.
 */
export function budgetDecision(task: Task__Output, ctx: TaskContext): Extract<RoundDecision, { ok: true }> | undefined {
  const budget = new PrivacyBudget(ctx.state, ctx.config.privacy);
  const decision = budget.decide(task.studyId, task.round, ctx.manifest);
  if (decision.ok) return decision;
  ctx.log.warn({ event: 'privacy.round_declined', epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, reason: decision.reason }, decision.reason);
  if (ctx.decline === undefined) throw new Error(decision.reason);
  ctx.decline(decision.reason);
  ctx.privacyChanged?.(true);
  return undefined;
}

/**
 * Local epochs (or steps) from this round's model, as TRAIN does them, with DP-FedAvg's clipping
 * and noise when the manifest has privacy.dp. Undefined when the round was declined on the
 * budget or the task cancelled during training (nothing to send). `wantDelta`: keep Δ even
 * without DP (secure aggregation masks Δ, not the weights).
 */
export async function trainRound(task: Task__Output, ctx: TaskContext, wantDelta = false): Promise<TrainedRound | undefined> {
  const { manifest, log } = ctx;
  const dp = manifest.privacy?.dp;
  // The round's norm is checked before anything is spent or trained: a task without it fails loudly.
  const clipNorm = dp === undefined ? undefined : roundClipNorm(dp, task.parametersJson);
  // The clinic's budget decides before anything is read or trained (proto "Privacy budgets").
  const decision = budgetDecision(task, ctx);
  if (decision === undefined) return undefined;
  const { data, runtime, sha256, timeoutMs } = await ctx.loadModel();
  // DP-FedAvg and secure aggregation need the round's model itself: Δ = trained − round model.
  const roundModel = dp === undefined && !wantDelta ? undefined : runtime.getWeights();
  const steps = manifest.training.localSteps;
  const epochs = steps === undefined ? manifest.training.localEpochs : 1;
  // FedProx: the local objective gains (mu/2)·‖w − w_global‖², anchored at this round's model.
  const mu = manifest.aggregation.strategy === 'fedprox' ? (manifest.aggregation.parameters.mu ?? 0) : 0;
  await runtime.fit(data.train.x, data.train.y, {
    epochs,
    // Reproducible local training: the shuffle depends only on the study, round, attempt and node.
    shuffleSeed: createHash('sha256').update(`${manifest.seed}/${task.round}/${task.attempt}/${ctx.credential.nodeId}`).digest().readUInt32BE(0),
    ...(steps === undefined ? {} : { steps }),
    // The round model read once: DP's copy serves as the reference too (fit does not change it).
    ...(mu > 0 ? { proximal: { mu, reference: roundModel ?? runtime.getWeights() } } : {}),
    batchSize: manifest.training.batchSize,
    onEpochEnd: (epoch, loss) => {
      log.info({ epoch: epoch + 1, epochs, loss }, `round ${task.round}: epoch ${epoch + 1}/${epochs} loss ${loss.toFixed(4)}`);
      ctx.progress('train', (epoch + 1) / epochs, epoch + 1, epochs);
    },
  });
  if (ctx.isCancelled()) {
    log.info('task cancelled during training; nothing sent');
    return undefined;
  }
  const trained = runtime.getWeights();
  const trainMetrics = await runtime.evaluate(data.train.x, data.train.y);
  // Counts that leave are rounded when the manifest says so, as the readiness's training_rows
  // were (studies.ts): an update never claims more than the readiness stated.
  const numExamples = roundCount(manifest, data.train.rows);
  trainMetrics.numExamples = roundCount(manifest, trainMetrics.numExamples);
  // Under DP the trained weights are not needed once Δ is known: Δ is written over them, and the
  // weights that leave are then rebuilt below (the same condition, so Δ never leaves as weights).
  const privatised = dp !== undefined && clipNorm !== undefined && roundModel !== undefined;
  let delta = roundModel === undefined ? undefined : modelChange(trained, roundModel, privatised ? trained : undefined);
  let weights = trained;
  let dpInfo: DpUpdateInfo | undefined;
  let clipIndicator: TrainedRound['clipIndicator'];
  if (privatised) {
    if (delta === undefined) throw new FedlhsError('INTERNAL', 'no change was computed for a DP round');
    // This round's norm as a fixed one: the clipping and the noise's scale follow it.
    const out = privatiseDelta(delta, { ...dp, clipping: { mode: 'fixed', norm: clipNorm } }, manifest.clients.min);
    delta = out.delta;
    dpInfo = out.info;
    const noiseStd = clipIndicatorNoiseStd(dp, manifest.clients.min);
    if (noiseStd !== undefined) {
      // Andrew et al. 2021: the bit 1[‖Δ‖ ≤ C] of the change before clipping, with this clinic's
      // share of the count's noise from the same CSPRNG as the update's (core gaussianNoise).
      clipIndicator = { value: noisyClipIndicator(out.info.normBefore, clipNorm, noiseStd).value, noiseStd };
    }
    // What leaves is written over the round model (not needed afterwards): no further model-sized array.
    weights = applyChangeInPlace(roundModel, delta);
  }
  let committed = false;
  const commitSpend = (): void => {
    if (dpInfo === undefined || dp === undefined || committed) return;
    committed = true;
    ctx.state.recordPrivacySpend({ studyId: task.studyId, round: task.round, taskId: task.taskId, rdp: decision.rdp, epsilonAfter: decision.epsilonStudy, at: Date.now() });
    const privacy = { epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, delta: ctx.config.privacy.delta, effectiveNoiseMultiplier: decision.noiseMultiplier, placement: dp.placement };
    const info = dpInfo;
    ctx.state.audit({
      event: 'privacy_spent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, privacy,
      detail: `round ${task.round}: ε=${fmtEpsilon(decision.epsilonStudy)} for this study, ε=${fmtEpsilon(decision.epsilonLifetime)} over this clinic's lifetime (δ=${ctx.config.privacy.delta}); update clipped to ${info.clipNorm}${info.noiseStd > 0 ? `, Gaussian noise σ=${info.noiseStd.toPrecision(4)} added here` : ', noise added by the coordinator (central)'}${clipIndicatorText(clipIndicator)}`,
    });
    log.info({ event: 'privacy.spent', ...privacy, clipNorm: info.clipNorm, normBefore: info.normBefore, clipFactor: info.clipFactor, noiseStd: info.noiseStd, ...(clipIndicator === undefined ? {} : { clipIndicatorNoiseStd: clipIndicator.noiseStd }) }, `round ${task.round}: privacy spent, study ε=${fmtEpsilon(decision.epsilonStudy)}, lifetime ε=${fmtEpsilon(decision.epsilonLifetime)}`);
  };
  return { runtime, sha256, timeoutMs, weights, delta, trainMetrics, numExamples, dpInfo, clipIndicator, commitSpend };
}

/**
 * The clipping norm of this task's round: the manifest's fixed norm, or under adaptive clipping
 * the coordinator's `dp.clipNorm` in the task's parameters (proto Task.parameters_json). Throws
 * INVALID_ARGUMENT naming the field when adaptive clipping has no valid norm (missing, not a
 * finite number > 0): the clinic never guesses a norm the coordinator did not send.
 */
export function roundClipNorm(dp: DpSection, parametersJson: string): number {
  if (dp.clipping.mode === 'fixed') return dp.clipping.norm;
  const norm = clipNormParameter(parametersJson);
  if (norm === undefined) {
    throw new FedlhsError('INVALID_ARGUMENT', `${CLIP_NORM_FIELD} is missing: the study uses adaptive clipping, and the coordinator must send each round's clipping norm`, { details: { field: CLIP_NORM_FIELD } });
  }
  return norm;
}

/** The audit's words for the clip indicator that leaves (never the bit alone when noise hides it). */
export function clipIndicatorText(c: TrainedRound['clipIndicator']): string {
  if (c === undefined) return '';
  return c.noiseStd > 0
    ? `; clip indicator (1 if not clipped) sent with Gaussian noise σ=${c.noiseStd.toPrecision(4)}`
    : '; clip indicator (1 if not clipped) sent without noise (central: the coordinator adds it)';
}
