import {
  CLIP_NORM_RANGE,
  FedlhsError,
  adaptiveClipNorm,
  clipNormParameter,
  noisyUnclippedFraction,
  withClipNormParameter,
  type PrivacySection,
} from '@fedlhs/core';
import type { PhaseContext } from '../phase.js';

type DpSection = NonNullable<PrivacySection['dp']>;
type Adaptive = Extract<DpSection['clipping'], { mode: 'adaptive' }>;

/** One round's outcome: the norm the clinics clipped to, the noisy fraction under it, the next norm. */
export interface ClipNormStep {
  clipNorm: number;
  unclippedFraction: number;
  nextClipNorm: number;
  updates: number;
  /** The study's parameters with the next norm, written with the round's commit. */
  parameters: string;
}

/**
 * Adaptive DP clipping at the coordinator for one round attempt (Andrew et al. 2021, Alg. 1;
 * docs/design/privacy.md "Adaptive clipping"). The round's norm C_r lives in the study's
 * parameters as {"dp": {"clipNorm": C_r}} (proto Task.parameters_json): every TRAIN task carries
 * it, and it survives a restart with the study. Each accepted update brings its clip indicator
 * (UpdateHeader.dp_clip_indicator, checked at intake); on close b̄ = (Σ indicators + N(0, σ_b²)
 * under central placement) / m and C_{r+1} = C_r·exp(−η(b̄ − γ)) (core adaptiveClipNorm, the
 * paper's sign: more clinics under C than γ shrinks it), written in one unit with the round's
 * commit only, so a failed attempt is retried at the same C_r.
 */
export class AdaptiveClipping {
  private sum = 0;
  private count = 0;
  private step: ClipNormStep | undefined;

  private constructor(
    private readonly dp: DpSection,
    private readonly adaptive: Adaptive,
    /** C_r: the norm this round's clinics clip to. */
    readonly clipNorm: number,
    /** Parameters to write before the round's tasks go out (the first round: initialNorm); undefined when already there. */
    readonly parametersToWrite: string | undefined,
    private readonly random: ((bytes: number) => Uint8Array) | undefined,
  ) {}

  /**
   * The round's adaptive clipping from the study's current parameters (or those a previous phase
   * left pending), undefined for fixed clipping. STUDY_FAILED when the stored norm is not valid
   * (the study cannot know which norm its clinics should use). `random`: a byte source for tests.
   */
  static forRound(dp: DpSection, parameters: string | null | undefined, random?: (bytes: number) => Uint8Array): AdaptiveClipping | undefined {
    if (dp.clipping.mode !== 'adaptive') return undefined;
    let stored: number | undefined;
    try {
      stored = clipNormParameter(parameters);
    } catch (err) {
      throw new FedlhsError('STUDY_FAILED', `adaptive clipping: the study's parameters hold no valid clipping norm: ${(err as Error).message}`);
    }
    const clipNorm = stored ?? dp.clipping.initialNorm;
    return new AdaptiveClipping(dp, dp.clipping, clipNorm, stored === undefined ? withClipNormParameter(parameters, clipNorm) : undefined, random);
  }

  /** An accepted update's (checked) clip indicator. */
  add(indicator: number): void {
    this.sum += indicator;
    this.count++;
  }

  /**
   * The next norm from the indicators of the `updates` updates aggregated, merged into the
   * study's `parameters`. INTERNAL when the indicators do not match the updates (each accepted
   * update brings one); STUDY_FAILED when the next norm is not a finite number > 0.
   */
  next(parameters: string | null, updates: number): ClipNormStep {
    if (this.count !== updates) throw new FedlhsError('INTERNAL', `adaptive clipping: ${this.count} clip indicator(s) for ${updates} aggregated update(s)`);
    // Central placement: the clinics sent bare bits, the coordinator adds the count's noise here.
    const centralStd = this.dp.placement === 'central' ? this.adaptive.countNoiseMultiplier : 0;
    const noisy = noisyUnclippedFraction(this.sum, updates, centralStd, this.random);
    // Clamped to [0, 1] (post-processing, privacy unchanged): one clinic's extreme but plausible
    // noisy bit must not move the norm by more than an all-in or all-out round would (review clinic2 MEDIUM 2).
    const unclippedFraction = Math.min(1, Math.max(0, noisy));
    // Kept within the range clinics accept (core CLIP_NORM_RANGE), so a drifting norm cannot stall the study.
    const nextClipNorm = Math.min(CLIP_NORM_RANGE.max, Math.max(CLIP_NORM_RANGE.min, adaptiveClipNorm(this.clipNorm, unclippedFraction, this.adaptive.targetQuantile, this.adaptive.learningRate)));
    if (!Number.isFinite(nextClipNorm) || !(nextClipNorm > 0)) {
      throw new FedlhsError('STUDY_FAILED', `adaptive clipping: the next clipping norm is ${nextClipNorm} (from ${this.clipNorm}, noisy unclipped fraction ${unclippedFraction}); it must be a finite number > 0`);
    }
    this.step = { clipNorm: this.clipNorm, unclippedFraction, nextClipNorm, updates, parameters: withClipNormParameter(parameters, nextClipNorm) };
    return this.step;
  }

  /** After the round committed: the norm change, logged once (event privacy.clip_norm). */
  logCommitted(ctx: PhaseContext): void {
    const s = this.step;
    if (s === undefined) return;
    const { round } = ctx.attempt;
    ctx.log.info(
      {
        event: 'privacy.clip_norm', round, clipNorm: s.clipNorm, nextClipNorm: s.nextClipNorm, unclippedFraction: s.unclippedFraction,
        targetQuantile: this.adaptive.targetQuantile, learningRate: this.adaptive.learningRate, updates: s.updates, placement: this.dp.placement,
      },
      `round ${round}: adaptive clipping norm ${s.clipNorm.toPrecision(4)} → ${s.nextClipNorm.toPrecision(4)} (noisy fraction of clinics under it ${s.unclippedFraction.toFixed(3)}, target ${this.adaptive.targetQuantile})`,
    );
  }
}
