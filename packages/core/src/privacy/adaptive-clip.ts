/**
 * Adaptive clipping's exchange (Andrew et al. 2021, Alg. 1) between the coordinator and the
 * clinics (docs/design/privacy.md "Adaptive clipping", proto Task.parameters_json and
 * UpdateHeader.dp_clip_indicator): the round's norm C travels in the study parameters as
 * {"dp": {"clipNorm": C}}; each clinic answers with its bit 1[‖Δ‖ ≤ C] plus its share of the
 * count's noise; the coordinator turns the sum into the noisy unclipped fraction b̄ and the
 * next norm (mechanism.ts adaptiveClipNorm).
 */
import { FedlhsError } from '../errors.js';
import type { PrivacySection } from '../manifest.js';
import { gaussianNoise } from './mechanism.js';

type DpSection = NonNullable<PrivacySection['dp']>;

/** The field a clinic reads its round's norm from (named in every error about it). */
export const CLIP_NORM_FIELD = 'Task.parameters_json dp.clipNorm';

function invalid(message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', message, { details: { field: CLIP_NORM_FIELD } });
}

/** The study parameters as an object ({} for none); INVALID_ARGUMENT when they are not a JSON object. */
function parseParameters(parameters: string | null | undefined): Record<string, unknown> {
  if (parameters === null || parameters === undefined || parameters === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(parameters);
  } catch (err) {
    throw invalid(`study parameters are not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('study parameters are not a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * The clipping norms a clinic accepts from the coordinator: far outside any model's update norm,
 * and within what float32 clipping handles exactly (review clinic2 LOW 3: a subnormal norm left
 * the clipped change above the norm the accountant assumed).
 */
export const CLIP_NORM_RANGE = { min: 1e-6, max: 1e6 } as const;

/**
 * The clipping norm in study parameters (`{"dp": {"clipNorm": C}}`), or undefined when they carry
 * none. INVALID_ARGUMENT naming the field when the parameters are not a JSON object, `dp` is not
 * an object, or `clipNorm` is present but not a finite number within CLIP_NORM_RANGE.
 */
export function clipNormParameter(parameters: string | null | undefined): number | undefined {
  const dp = parseParameters(parameters)['dp'];
  if (dp === undefined) return undefined;
  if (typeof dp !== 'object' || dp === null || Array.isArray(dp)) throw invalid(`${CLIP_NORM_FIELD}: "dp" must be an object (got ${JSON.stringify(dp)})`);
  const c = (dp as Record<string, unknown>)['clipNorm'];
  if (c === undefined) return undefined;
  if (typeof c !== 'number' || !Number.isFinite(c) || !(c > 0)) throw invalid(`${CLIP_NORM_FIELD} must be a finite number > 0 (got ${JSON.stringify(c)})`);
  if (c < CLIP_NORM_RANGE.min || c > CLIP_NORM_RANGE.max) throw invalid(`${CLIP_NORM_FIELD} must be from ${CLIP_NORM_RANGE.min} to ${CLIP_NORM_RANGE.max} (got ${c})`);
  return c;
}

/** The study parameters with `dp.clipNorm` set to `clipNorm` (every other key kept), as JSON. */
export function withClipNormParameter(parameters: string | null | undefined, clipNorm: number): string {
  if (!Number.isFinite(clipNorm) || !(clipNorm > 0)) throw invalid(`${CLIP_NORM_FIELD} must be a finite number > 0 (got ${clipNorm})`);
  const p = parseParameters(parameters);
  const dp = p['dp'];
  const rest = typeof dp === 'object' && dp !== null && !Array.isArray(dp) ? dp : {};
  return JSON.stringify({ ...p, dp: { ...rest, clipNorm } });
}

/**
 * The standard deviation of the noise one clinic adds to its clipped-fraction bit, placed like the
 * update's noise (σ_b = countNoiseMultiplier): `local` σ_b, `distributed` σ_b/√clients.min (the
 * sum of clients.min shares carries σ_b), `central` 0 (the coordinator adds σ_b to the sum).
 * Undefined without adaptive clipping (no bit is sent).
 */
export function clipIndicatorNoiseStd(dp: DpSection, clientsMin: number): number | undefined {
  if (dp.clipping.mode !== 'adaptive') return undefined;
  if (!Number.isSafeInteger(clientsMin) || clientsMin < 1) throw new FedlhsError('INVALID_ARGUMENT', `clients.min must be a positive integer (got ${clientsMin})`);
  const sigma = dp.clipping.countNoiseMultiplier;
  if (dp.placement === 'local') return sigma;
  if (dp.placement === 'distributed') return sigma / Math.sqrt(clientsMin);
  return 0;
}

/**
 * A clinic's clip indicator as it leaves: 1 when its model change's norm was at most the round's
 * norm (not clipped), else 0, plus one sample of its noise share (clipIndicatorNoiseStd) from the
 * CSPRNG `random` (Node crypto unless injected), so the bit is never sent bare when the clinic adds noise.
 */
export function noisyClipIndicator(normBefore: number, clipNorm: number, noiseStd: number, random?: (bytes: number) => Uint8Array): { bit: 0 | 1; value: number } {
  const bit = normBefore <= clipNorm ? 1 : 0;
  const noise = noiseStd > 0 ? (random === undefined ? gaussianNoise(1, noiseStd) : gaussianNoise(1, noiseStd, random))[0]! : 0;
  return { bit, value: bit + noise };
}

/**
 * The coordinator's noisy unclipped fraction b̄ = (Σ indicators + N(0, σ²)) / m over the m updates
 * of a round, with σ = `centralNoiseStd` (countNoiseMultiplier under central placement, 0 when the
 * clinics added their shares). INVALID_ARGUMENT for m < 1 or a sum that is not finite.
 */
export function noisyUnclippedFraction(indicatorSum: number, updates: number, centralNoiseStd: number, random?: (bytes: number) => Uint8Array): number {
  if (!Number.isSafeInteger(updates) || updates < 1) throw new FedlhsError('INVALID_ARGUMENT', `the unclipped fraction needs at least one update (got ${updates})`);
  if (!Number.isFinite(indicatorSum)) throw new FedlhsError('INVALID_ARGUMENT', `the sum of clip indicators must be finite (got ${indicatorSum})`);
  const noise = centralNoiseStd > 0 ? (random === undefined ? gaussianNoise(1, centralNoiseStd) : gaussianNoise(1, centralNoiseStd, random))[0]! : 0;
  return (indicatorSum + noise) / updates;
}
