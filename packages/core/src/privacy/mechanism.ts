/**
 * The DP-FedAvg mechanism as a clinic runs and accounts it (issue 14, docs/design/privacy.md):
 * clipping to an L2 norm, Gaussian noise from a cryptographically secure source, the noise
 * multiplier a clinic can count on under each placement, one round's Rényi-DP, and the adaptive
 * clipping norm of Andrew et al. McMahan et al., "Learning Differentially Private Recurrent
 * Language Models" (ICLR 2018) for DP-FedAvg with a whole client as the protected unit; Andrew,
 * Thakkar, McMahan & Ramaswamy, "Differentially Private Learning with Adaptive Clipping"
 * (NeurIPS 2021) for the clipping norm.
 */
import { randomBytes } from 'node:crypto';
import { FedlhsError } from '../errors.js';
import type { PrivacySection } from '../manifest.js';
import { computeRdp, DEFAULT_ORDERS } from './rdp.js';

/** The `privacy.dp` section of a manifest. */
type DpSection = NonNullable<PrivacySection['dp']>;

/** What a clinic knows about the round besides the manifest's mechanism. */
export interface MechanismContext {
  /** The study's `clients.min`: the fewest clinics whose noise shares a distributed sum carries. */
  clientsMin: number;
  /** Whether the round runs under secure aggregation (the coordinator sees only the sum). */
  secureAggregation: boolean;
  /** The clinic's own configuration: whether it counts noise the coordinator says it adds. */
  trustCoordinatorNoise: boolean;
}

function invalid(message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', message);
}

/** The multiplier protecting one clinic's contribution, given the multiplier the mechanism intends. */
function protectedMultiplier(z: number, placement: DpSection['placement'], o: MechanismContext): number {
  if (!Number.isSafeInteger(o.clientsMin) || o.clientsMin < 1) throw invalid(`clients.min must be a positive integer (got ${o.clientsMin})`);
  switch (placement) {
    case 'local':
      return z;
    case 'distributed':
      // Each clinic adds z·C/√m. The coordinator sees the sum (z·C in all) under secure
      // aggregation, but each clinic's own update, with only its share, without it.
      return o.secureAggregation ? z : z / Math.sqrt(o.clientsMin);
    case 'central':
      // The clinic cannot verify noise the coordinator adds; without trust, nothing protects it.
      return o.trustCoordinatorNoise ? z : 0;
  }
}

/**
 * The noise multiplier (noise std / clipping norm) that protects one clinic's update from whoever
 * sees it, as the clinic can account it: `local` z; `distributed` z under secure aggregation, else
 * z/√clients.min (the coordinator sees the clinic's update with only its own share of the noise);
 * `central` z if the clinic trusts the coordinator's noise, else 0, meaning no protection.
 */
export function effectiveNoiseMultiplier(dp: DpSection, o: MechanismContext): number {
  return protectedMultiplier(dp.noiseMultiplier, dp.placement, o);
}

/**
 * For adaptive clipping, the same for the count of clinics under the norm (sensitivity one clinic's
 * bit, noise `countNoiseMultiplier`, placed like the update's noise); undefined for fixed clipping.
 * 0 means the clinic's bit is disclosed unprotected.
 */
export function effectiveCountNoiseMultiplier(dp: DpSection, o: MechanismContext): number | undefined {
  if (dp.clipping.mode !== 'adaptive') return undefined;
  return protectedMultiplier(dp.clipping.countNoiseMultiplier, dp.placement, o);
}

/**
 * The Rényi-DP one round spends for one clinic, at each order: the Gaussian mechanism at sampling
 * rate 1 (the clinic knows it takes part) with the effective multiplier, plus, under adaptive
 * clipping, the noisy count of clinics under the norm (Andrew et al. 2021, §3: both releases are
 * Gaussian mechanisms, so their RDP adds). Infinity at every order when anything the clinic
 * releases is unprotected (an effective multiplier of 0).
 */
export function roundRdp(dp: DpSection, o: MechanismContext, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  const z = effectiveNoiseMultiplier(dp, o);
  const zCount = effectiveCountNoiseMultiplier(dp, o);
  if (z === 0 || zCount === 0) return orders.map(() => Infinity);
  const update = computeRdp(1, z, 1, orders);
  if (zCount === undefined) return update;
  const count = computeRdp(1, zCount, 1, orders);
  return update.map((r, k) => r + count[k]!);
}

/** The L2 norm in double precision. */
function l2(v: Float32Array): number {
  let sum = 0;
  for (const x of v) sum += x * x;
  return Math.sqrt(sum);
}

/**
 * Clips an update to L2 norm at most `norm`: Δ·min(1, C/‖Δ‖₂) (a new array; the input is left
 * alone). Returns the clipped update, the original norm and the factor applied (1 when already
 * within). The factor is nudged down if float32 rounding would leave the clipped norm above C, so
 * the sensitivity the accountant assumes holds exactly. Throws INVALID_ARGUMENT for a norm that is
 * not finite and positive, or an update with a NaN or infinite element (naming its index).
 */
export function clipL2(delta: Float32Array, norm: number): { clipped: Float32Array; norm: number; factor: number } {
  if (!(norm > 0) || !Number.isFinite(norm)) throw invalid(`clipping norm must be finite and > 0 (got ${norm})`);
  const bad = delta.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw invalid(`update element ${bad} is not finite (${delta[bad]}); refusing to clip it`);
  const original = l2(delta);
  if (original <= norm) return { clipped: Float32Array.from(delta), norm: original, factor: 1 };
  let factor = norm / original;
  let clipped = delta.map((x) => x * factor);
  for (let i = 0; i < 8 && l2(clipped) > norm; i++) {
    factor *= 1 - 2 ** -22;
    clipped = delta.map((x) => x * factor);
  }
  return { clipped, norm: original, factor };
}

/** Random bytes drawn per call to the source, so a large model never needs one huge buffer. */
const CHUNK_PAIRS = 4096;
const TWO_POW_53 = 2 ** 53;

/**
 * `n` independent samples of N(0, std²) by the Box–Muller transform over 53-bit uniforms built
 * from a cryptographically secure byte source (Node's `randomBytes` unless one is injected;
 * never Math.random). Note: like every floating-point Gaussian sampler it is not immune to the
 * precision attacks of Mironov (CCS 2012); the secure source keeps the noise unpredictable.
 * Throws INVALID_ARGUMENT for n not a non-negative integer, std not finite and >= 0, or a source
 * that returns the wrong number of bytes.
 */
export function gaussianNoise(n: number, std: number, random: (bytes: number) => Uint8Array = randomBytes): Float64Array {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`noise length must be a non-negative integer (got ${n})`);
  if (!(std >= 0) || !Number.isFinite(std)) throw invalid(`noise standard deviation must be finite and >= 0 (got ${std})`);
  const out = new Float64Array(n);
  if (std === 0) return out;
  let filled = 0;
  while (filled < n) {
    const pairs = Math.min(CHUNK_PAIRS, Math.ceil((n - filled) / 2));
    const bytes = random(16 * pairs);
    if (bytes.length !== 16 * pairs) throw invalid(`random source returned ${bytes.length} bytes, ${16 * pairs} asked`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let p = 0; p < pairs && filled < n; p++) {
      const u1 = 1 - uniform53(view, 16 * p); // (0, 1]: log never sees 0
      const u2 = uniform53(view, 16 * p + 8);
      const r = std * Math.sqrt(-2 * Math.log(u1));
      out[filled++] = r * Math.cos(2 * Math.PI * u2);
      if (filled < n) out[filled++] = r * Math.sin(2 * Math.PI * u2);
    }
  }
  return out;
}

/** A uniform on [0, 1) with 53 random bits from 8 bytes. */
function uniform53(view: DataView, offset: number): number {
  const hi = view.getUint32(offset) >>> 5; // 27 bits
  const lo = view.getUint32(offset + 4) >>> 6; // 26 bits
  return (hi * 2 ** 26 + lo) / TWO_POW_53;
}

/**
 * The next clipping norm by the geometric quantile update of Andrew et al. 2021 (Alg. 1):
 * C ← C·exp(−η(b̄ − γ)), with b̄ the (noisy) fraction of clinics whose update norm was AT MOST C —
 * i.e. NOT clipped — γ the target quantile and η the learning rate. More clinics under C than γ
 * (b̄ > γ) shrinks C; fewer grows it. (One widely used implementation has this sign inverted.)
 * b̄ may fall outside [0, 1] because of its noise. Throws INVALID_ARGUMENT for a norm not finite
 * and > 0, b̄ not finite, γ outside [0, 1], or η not finite and >= 0.
 */
export function adaptiveClipNorm(current: number, unclippedFraction: number, targetQuantile: number, learningRate: number): number {
  if (!(current > 0) || !Number.isFinite(current)) throw invalid(`clipping norm must be finite and > 0 (got ${current})`);
  if (!Number.isFinite(unclippedFraction)) throw invalid(`fraction of clinics under the clipping norm must be finite (got ${unclippedFraction})`);
  if (!(targetQuantile >= 0 && targetQuantile <= 1)) throw invalid(`target quantile must be in [0, 1] (got ${targetQuantile})`);
  if (!(learningRate >= 0) || !Number.isFinite(learningRate)) throw invalid(`clipping learning rate must be finite and >= 0 (got ${learningRate})`);
  return current * Math.exp(-learningRate * (unclippedFraction - targetQuantile));
}
