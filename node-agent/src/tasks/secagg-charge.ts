import type { Task__Output } from '@fedlhs/proto';
import { PrivacyBudget, fmtEpsilon, ownShareOnly } from '../privacy-budget.js';
import type { TaskContext } from '../task-runner.js';
import type { TrainedRound } from './train-round.js';

/*
 * What a secure-aggregation round costs this clinic, decided after its change was clipped to
 * ±clipRange and before anything is masked, spent or sent (review of issue 14, MEDIUM 2). The
 * budget check at KEYS and in trainRound counts distributed noise at the full z (the clinic only
 * unmasks inside a signed survivor set of at least clients.min: privacy-budget.ts
 * SECURE_AGGREGATION_COUNTS). That holds only while the sum carries Gaussian noise z·C: when any
 * noised value was clipped to ±clipRange the noise in the sum is smaller, so the round is charged
 * at the clinic's own share (z/√clients.min) instead, and declined, nothing sent, if that does not fit.
 */

/** How the round is charged: 'none' (no DP), 'mechanism' (as the budget check decided), 'ownShare' (review MEDIUM 2). */
export type ChargeBasis = 'none' | 'mechanism' | 'ownShare';

/** The decided charge: `commit` records it (ledger, audit) and must run before the masked input leaves. */
export interface MaskedInputCharge {
  basis: ChargeBasis;
  commit(): void;
}

/**
 * The charge of this round given `clipped` of `values` values clipped to ±clipRange; undefined
 * when the round was declined (DECLINED "privacy budget: …", logged, nothing to send).
 */
export function chargeMaskedInput(task: Task__Output, ctx: TaskContext, round: TrainedRound, clipped: number, values: number): MaskedInputCharge | undefined {
  const { manifest, log } = ctx;
  const dp = manifest.privacy?.dp;
  const info = round.dpInfo;
  if (dp === undefined || info === undefined) return { basis: 'none', commit: round.commitSpend };
  if (!ownShareOnly(manifest, clipped)) return { basis: 'mechanism', commit: round.commitSpend };
  const m = manifest.clients.min;
  const why = `${clipped} of ${values} noised values of this clinic's change were clipped to ±${manifest.privacy!.secureAggregation!.clipRange}, so the sum no longer carries the Gaussian noise z·C the full accounting assumes: this round is charged at this clinic's own noise share z/√${m}`;
  const decision = new PrivacyBudget(ctx.state, ctx.config.privacy).decide(task.studyId, task.round, manifest, true);
  if (!decision.ok) {
    const reason = `${decision.reason}; ${why}`;
    log.warn({ event: 'privacy.round_declined', epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, reason }, reason);
    if (ctx.decline === undefined) throw new Error(reason);
    ctx.decline(reason);
    ctx.privacyChanged?.(true);
    return undefined;
  }
  log.warn({ event: 'secagg.charged_own_share', clipped, values, effectiveNoiseMultiplier: decision.noiseMultiplier, epsilonStudy: decision.epsilonStudy }, `round ${task.round}: ${why} (ε=${fmtEpsilon(decision.epsilonStudy)} for this study after it); a larger privacy.secureAggregation.clipRange avoids this`);
  let committed = false;
  return {
    basis: 'ownShare',
    commit: () => {
      if (committed) return;
      committed = true;
      ctx.state.recordPrivacySpend({ studyId: task.studyId, round: task.round, taskId: task.taskId, rdp: decision.rdp, epsilonAfter: decision.epsilonStudy, at: Date.now() });
      const privacy = { epsilonStudy: decision.epsilonStudy, epsilonLifetime: decision.epsilonLifetime, delta: ctx.config.privacy.delta, effectiveNoiseMultiplier: decision.noiseMultiplier, placement: dp.placement };
      ctx.state.audit({
        event: 'privacy_spent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, privacy,
        detail: `round ${task.round}: ε=${fmtEpsilon(decision.epsilonStudy)} for this study, ε=${fmtEpsilon(decision.epsilonLifetime)} over this clinic's lifetime (δ=${ctx.config.privacy.delta}); update clipped to ${info.clipNorm}, Gaussian noise σ=${info.noiseStd.toPrecision(4)} added here; ${why}`,
      });
      log.info({ event: 'privacy.spent', ...privacy, clipNorm: info.clipNorm, normBefore: info.normBefore, clipFactor: info.clipFactor, noiseStd: info.noiseStd }, `round ${task.round}: privacy spent (own noise share: values clipped), study ε=${fmtEpsilon(decision.epsilonStudy)}, lifetime ε=${fmtEpsilon(decision.epsilonLifetime)}`);
    },
  };
}
