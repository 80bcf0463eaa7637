import { clipL2, gaussianNoise, type StudyManifest } from '@fedlhs/core';

/** The DP section of a manifest (privacy.dp), when there is one. */
export type DpSection = NonNullable<NonNullable<StudyManifest['privacy']>['dp']>;

/** What was done to an update before it left (audited and logged; never the values). */
export interface DpUpdateInfo {
  placement: DpSection['placement'];
  /** The clipping norm C used this round. */
  clipNorm: number;
  /** ‖Δ‖₂ before clipping, and the factor Δ was scaled by (1: within C). */
  normBefore: number;
  clipFactor: number;
  /** Standard deviation of the Gaussian noise this clinic added per coordinate (0: central, the coordinator adds it). */
  noiseStd: number;
}

/**
 * The clipping norm for this round. Adaptive clipping (Andrew et al. 2021) moves C by the
 * coordinator's noisy fraction of clinics under it, which this agent does not receive yet: until
 * it does, the agent clips at the manifest's initialNorm every round (a fixed norm in effect).
 */
export function clipNormOf(dp: DpSection): number {
  return dp.clipping.mode === 'fixed' ? dp.clipping.norm : dp.clipping.initialNorm;
}

/** The noise this clinic adds per coordinate: z·C (local), z·C/√clients.min (distributed), none (central). */
export function clinicNoiseStd(dp: DpSection, clientsMin: number, clipNorm: number): number {
  if (dp.placement === 'local') return dp.noiseMultiplier * clipNorm;
  if (dp.placement === 'distributed') return (dp.noiseMultiplier * clipNorm) / Math.sqrt(clientsMin);
  return 0;
}

/**
 * DP-FedAvg's clinic step on a model change Δ (docs/design/privacy.md): Δ clipped to L2 norm C,
 * plus Gaussian noise from a CSPRNG (core gaussianNoise) as the placement says. Secure
 * aggregation masks this Δ; plain FedAvg uploads round model + Δ (privatiseUpdate).
 */
export function privatiseDelta(
  delta: Float32Array, dp: DpSection, clientsMin: number, random?: (bytes: number) => Uint8Array,
): { delta: Float32Array; info: DpUpdateInfo } {
  const clipNorm = clipNormOf(dp);
  const { clipped, norm, factor } = clipL2(delta, clipNorm);
  const noiseStd = clinicNoiseStd(dp, clientsMin, clipNorm);
  if (noiseStd > 0) addNoise(clipped, noiseStd, random);
  return { delta: clipped, info: { placement: dp.placement, clipNorm, normBefore: norm, clipFactor: factor, noiseStd } };
}

/**
 * Noise values drawn per gaussianNoise call: a multiple of the 2 × 4096 values it draws per
 * read of the byte source, so the blocks read the source in exactly the sizes and order one
 * call over the whole update would, and add the same values (float64 noise, one per
 * coordinate, 8 bytes each: one call would need twice the model's size).
 */
const NOISE_BLOCK = 1 << 20;

/** Adds N(0, std²) noise to every value of `values`, in place, block by block (core gaussianNoise). */
function addNoise(values: Float32Array, std: number, random: ((bytes: number) => Uint8Array) | undefined): void {
  for (let start = 0; start < values.length; start += NOISE_BLOCK) {
    const n = Math.min(NOISE_BLOCK, values.length - start);
    const noise = random === undefined ? gaussianNoise(n, std) : gaussianNoise(n, std, random);
    for (let i = 0; i < n; i++) values[start + i] = values[start + i]! + noise[i]!;
  }
}

/**
 * Δ = trained − round model, in float32 (both have one value per model parameter). `into`:
 * where to write Δ (`trained` itself when the trained weights are not needed afterwards: no
 * third model-sized array); a new array if absent.
 */
export function modelChange(trained: Float32Array, roundModel: Float32Array, into?: Float32Array): Float32Array {
  if (trained.length !== roundModel.length) throw new Error(`DP update: the trained model has ${trained.length} values, the round's model ${roundModel.length}`);
  const delta = into ?? new Float32Array(trained.length);
  if (delta.length !== trained.length) throw new Error(`DP update: Δ needs ${trained.length} values, its array has ${delta.length}`);
  for (let i = 0; i < delta.length; i++) delta[i] = trained[i]! - roundModel[i]!;
  return delta;
}

/** round model + Δ in float32, written over `roundModel` (what leaves; the round model is not needed afterwards). */
export function applyChangeInPlace(roundModel: Float32Array, delta: Float32Array): Float32Array {
  if (delta.length !== roundModel.length) throw new Error(`DP update: Δ has ${delta.length} values, the round's model ${roundModel.length}`);
  for (let i = 0; i < roundModel.length; i++) roundModel[i] = roundModel[i]! + delta[i]!;
  return roundModel;
}

/**
 * DP-FedAvg at the clinic (docs/design/privacy.md): Δ = trained − round model, clipped to L2 norm
 * C, plus Gaussian noise from a CSPRNG (core gaussianNoise) as the placement says; returns the
 * weights to upload, round model + Δ, as float32. `random` (a byte source) is for tests only (Node crypto otherwise).
 */
export function privatiseUpdate(
  trained: Float32Array, roundModel: Float32Array, dp: DpSection, clientsMin: number, random?: (bytes: number) => Uint8Array,
): { weights: Float32Array; info: DpUpdateInfo } {
  const { delta, info } = privatiseDelta(modelChange(trained, roundModel), dp, clientsMin, random);
  // Δ is this call's own array: the weights are written over it.
  for (let i = 0; i < delta.length; i++) delta[i] = roundModel[i]! + delta[i]!;
  return { weights: delta, info };
}
