import { DEFAULT_ORDERS, FedlhsError, computeRdp, effectiveNoiseMultiplier, rdpToEpsilon, roundRdp, type PrivacySection } from '@fedlhs/core';

/**
 * The accountant run backwards, for `fedlhs-simulate dp-utility` (issue 14): the noise a study
 * needs for a target epsilon, and the manifest privacy section that carries it. Pure: the unit
 * tests (dp-accounting.test.ts) check it against core's accountant.
 */

/** The `privacy.dp` section of a manifest. */
export type DpSection = NonNullable<PrivacySection['dp']>;
export type Placement = DpSection['placement'];

/** The manifest's ceiling on the noise multiplier (privacySectionSchema). */
export const MAX_NOISE_MULTIPLIER = 1000;
/** The delta the clinics account at (the agent's default privacy.delta). */
export const DP_DELTA = 1e-6;
/**
 * The clipping norm used when none is given and the run without DP exposes no update norms: the
 * median ‖Δ‖ of one local epoch of the t2d study's 15-16-1 network was 0.57 in the default
 * simulation without DP (seed 1; 30 updates from 0.41 to 2.3), rounded down.
 */
export const FALLBACK_CLIP_NORM = 0.5;

function invalid(message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', message);
}

/** Epsilon at `delta` of `rounds` unsampled Gaussian rounds (sampling rate 1) at noise multiplier `z`. */
export function epsilonFor(z: number, rounds: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  return rdpToEpsilon(orders, computeRdp(1, z, rounds, orders), delta).epsilon;
}

/**
 * The smallest noise multiplier z (to 1e-9 relative) whose `rounds` composed Gaussian rounds at
 * sampling rate 1 (a clinic knows it takes part) spend at most `targetEpsilon` at `delta`, by
 * bisection on the accountant (epsilon falls as z grows). Throws INVALID_ARGUMENT for a target
 * that is not finite and > 0, rounds not a positive integer, delta outside (0, 1), or a target
 * that needs more noise than a manifest may carry ({@link MAX_NOISE_MULTIPLIER}).
 */
export function noiseForEpsilon(targetEpsilon: number, rounds: number, delta: number, orders: readonly number[] = DEFAULT_ORDERS): number {
  if (!(targetEpsilon > 0) || !Number.isFinite(targetEpsilon)) throw invalid(`target epsilon must be finite and > 0 (got ${targetEpsilon})`);
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw invalid(`rounds must be a positive integer (got ${rounds})`);
  if (!(delta > 0 && delta < 1)) throw invalid(`delta must be in (0, 1) (got ${delta})`);
  const eps = (z: number): number => epsilonFor(z, rounds, delta, orders);
  let hi = 1;
  while (eps(hi) > targetEpsilon) {
    hi *= 2;
    if (hi > MAX_NOISE_MULTIPLIER * 2) throw invalid(`epsilon ${targetEpsilon} over ${rounds} rounds at delta ${delta} needs a noise multiplier above ${MAX_NOISE_MULTIPLIER}, the most a manifest may carry`);
  }
  let lo = hi / 2;
  while (eps(lo) <= targetEpsilon) {
    hi = lo;
    lo /= 2;
    if (lo < 1e-6) return hi; // any noise at all meets so lax a target
  }
  // Invariant: eps(lo) > target >= eps(hi).
  while (hi - lo > 1e-9 * hi) {
    const mid = (lo + hi) / 2;
    if (eps(mid) <= targetEpsilon) hi = mid;
    else lo = mid;
  }
  if (hi > MAX_NOISE_MULTIPLIER) throw invalid(`epsilon ${targetEpsilon} over ${rounds} rounds at delta ${delta} needs noise multiplier ${hi.toPrecision(6)}, above the ${MAX_NOISE_MULTIPLIER} a manifest may carry`);
  return hi;
}

/** How a clinic counts the study's noise in this benchmark (no secure aggregation yet). */
export interface ClinicView {
  clientsMin: number;
  /** Central placement only: the clinics count the coordinator's noise (agent privacy.trustCoordinatorNoise). */
  trustCoordinatorNoise: boolean;
}

/**
 * The manifest's privacy section whose mechanism protects each clinic, as its agent accounts it,
 * by noise multiplier `zEffective`: local z = zEffective; distributed (no secure aggregation, so a
 * clinic counts only its own share) z = zEffective·√clients.min; central z = zEffective, which
 * the clinic counts only if it trusts the coordinator's noise (else this throws: no epsilon).
 * Clipping is fixed at `clipNorm`.
 */
export function privacySectionFor(placement: Placement, zEffective: number, clipNorm: number, view: ClinicView): PrivacySection {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw invalid(`clipping norm must be finite and > 0 (got ${clipNorm})`);
  if (placement === 'central' && !view.trustCoordinatorNoise) throw invalid('central DP protects a clinic only if it trusts the coordinator\'s noise: set trustCoordinatorNoise');
  const z = placement === 'distributed' ? zEffective * Math.sqrt(view.clientsMin) : zEffective;
  const dp: DpSection = { placement, noiseMultiplier: z, clipping: { mode: 'fixed', norm: clipNorm } };
  // What the agent will count must be what was asked (rounding of √m aside).
  const counted = effectiveNoiseMultiplier(dp, { ...view, secureAggregation: false });
  if (Math.abs(counted - zEffective) > 1e-9 * zEffective) throw new FedlhsError('INTERNAL', `the clinics would count noise multiplier ${counted}, not ${zEffective}`);
  return { dp };
}

/** Epsilon at `delta` a clinic accounts for `rounds` rounds of a study with this privacy section (Infinity: unprotected). */
export function clinicEpsilon(privacy: PrivacySection, rounds: number, delta: number, view: ClinicView): number {
  if (privacy.dp === undefined) return Infinity;
  const one = roundRdp(privacy.dp, { ...view, secureAggregation: false }, DEFAULT_ORDERS);
  if (one.some((r) => !Number.isFinite(r))) return Infinity;
  return rdpToEpsilon(DEFAULT_ORDERS, one.map((r) => r * rounds), delta).epsilon;
}

/** The median of the accepted updates' norms ‖update − round model‖ (null norms skipped); undefined with none. */
export function medianUpdateNorm(contributions: readonly { accepted: boolean; deltaNorm?: number | null }[]): number | undefined {
  const norms = contributions.flatMap((c) => (c.accepted && typeof c.deltaNorm === 'number' && Number.isFinite(c.deltaNorm) && c.deltaNorm > 0 ? [c.deltaNorm] : [])).sort((a, b) => a - b);
  if (norms.length === 0) return undefined;
  const mid = Math.floor(norms.length / 2);
  return norms.length % 2 === 1 ? norms[mid]! : (norms[mid - 1]! + norms[mid]!) / 2;
}

/** Parses "--epsilons 1,3,8": distinct finite numbers in (0, 10000], ascending. Throws INVALID_ARGUMENT naming the bad item. */
export function parseEpsilons(text: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  const out = items.map((s) => {
    const e = /^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) ? Number(s) : Number.NaN;
    if (!(e > 0 && e <= 10_000)) throw invalid(`--epsilons: ${JSON.stringify(s)} is not a number in (0, 10000]`);
    return e;
  });
  if (new Set(out).size !== out.length) throw invalid(`--epsilons: ${JSON.stringify(text)} repeats a value`);
  return out.sort((a, b) => a - b);
}
