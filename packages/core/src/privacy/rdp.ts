/**
 * The Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (issue 14), implemented
 * from the mathematics of Mironov, Talwar & Zhang, "Rényi Differential Privacy of the Sampled
 * Gaussian Mechanism" (2019, arXiv:1908.10530) — the analysis behind the reference accountant of
 * TensorFlow Privacy / dp_accounting — with the improved RDP → (ε, δ) conversion of Balle et al.,
 * "Hypothesis Testing Interpretations and Rényi Differential Privacy" (AISTATS 2020, Theorem 21)
 * and Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy" (2020,
 * arXiv:2004.00010, Proposition 12).
 */
import { FedlhsError } from '../errors.js';
import { lgamma, logAdd, logErfc, logSub } from './special.js';

/**
 * The Rényi orders the accountant evaluates by default: fine steps where small budgets are
 * optimal, every integer to 64, and a few large orders for very small δ or heavy noise.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5,
  ...Array.from({ length: 60 }, (_, i) => i + 5),
  128, 256, 512,
]);

function invalid(message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', message);
}

/** log C(n, i) for integers 0 ≤ i ≤ n. */
function logBinomial(n: number, i: number): number {
  if (i === 0 || i === n) return 0;
  return lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1);
}

/**
 * log A_α for integer α (Mironov et al. 2019, §3.3): A_α = Σ_{i=0}^{α} C(α,i) q^i (1−q)^{α−i}
 * exp((i²−i)/(2σ²)), every term positive, summed in log space.
 */
function logAInt(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    const term = logBinomial(alpha, i) + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, term);
  }
  return logA;
}

/** Beyond this many terms the fractional series is declared not to converge (loud, not wrong). */
const MAX_TERMS = 10_000_000;

/**
 * log A_α for fractional α (Mironov et al. 2019, §3.3): the integral splits at
 * z₀ = σ² log(1/q − 1) + 1/2 into two series over the generalised binomial coefficients C(α,i),
 * whose terms carry erfc factors; they alternate in sign once i > α and are summed until both
 * fall below e^−30.
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const scale = Math.SQRT2 * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logAbsCoef = 0; // log |C(α, i)|, updated by C(α, i+1) = C(α, i)·(α − i)/(i + 1)
  let positive = true;
  for (let i = 0; i < MAX_TERMS; i++) {
    const j = alpha - i;
    const logT0 = logAbsCoef + i * logQ + j * log1mQ;
    const logT1 = logAbsCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / scale);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / scale);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) return logAdd(logA0, logA1);
    const factor = alpha - i;
    logAbsCoef += Math.log(Math.abs(factor)) - Math.log(i + 1);
    if (factor < 0) positive = !positive;
  }
  throw invalid(`the RDP series at order ${alpha} did not converge in ${MAX_TERMS} terms (q=${q}, noise multiplier ${sigma})`);
}

/** RDP of one application of the sampled Gaussian mechanism at one order. */
function rdpOnce(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/**
 * Rényi-DP of `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling
 * rate `q` and noise multiplier `noiseMultiplier` (noise std / L2 sensitivity), at each order
 * (Mironov et al. 2019). q = 1 is the plain Gaussian mechanism, α/(2σ²) per step; q = 0 spends
 * nothing; a noise multiplier of 0 gives Infinity (no protection). Composition is additive.
 * Throws INVALID_ARGUMENT naming the bad input (q outside [0,1], negative or non-finite noise,
 * steps not a non-negative integer, an order not finite and > 1).
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[]): number[] {
  if (!(q >= 0 && q <= 1)) throw invalid(`sampling rate q must be in [0, 1] (got ${q})`);
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) throw invalid(`noise multiplier must be finite and >= 0 (got ${noiseMultiplier})`);
  if (!Number.isSafeInteger(steps) || steps < 0) throw invalid(`steps must be a non-negative integer (got ${steps})`);
  for (const alpha of orders) {
    if (!(alpha > 1) || !Number.isFinite(alpha)) throw invalid(`RDP orders must be finite and > 1 (got ${alpha})`);
  }
  return orders.map((alpha) => (steps === 0 ? 0 : rdpOnce(q, noiseMultiplier, alpha) * steps));
}

/**
 * The smallest ε such that a mechanism with RDP `rdp[k]` at order `orders[k]` (for every k) is
 * (ε, δ)-DP, with the order that attains it. Uses the improved conversion (Balle et al. 2020,
 * Thm 21; Canonne et al. 2020, Prop. 12): ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α),
 * rather than the classic rdp − log δ/(α − 1) (Mironov 2017). Where δ ≥ √(1 − e^{−rdp}) the
 * KL bound already gives ε = 0; orders ≤ 1.01 are skipped (the formula is unstable there).
 * Throws INVALID_ARGUMENT naming the bad input (lengths differ or are 0, an order < 1, an RDP
 * negative or NaN, δ outside (0, 1)). ε is Infinity when every RDP value is.
 */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (orders.length === 0) throw invalid('rdpToEpsilon needs at least one order');
  if (orders.length !== rdp.length) throw invalid(`rdpToEpsilon needs one RDP value per order (${orders.length} orders, ${rdp.length} values)`);
  if (!(delta > 0 && delta < 1)) throw invalid(`delta must be in (0, 1) (got ${delta})`);
  let best = { epsilon: Infinity, order: orders[0]! };
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k]!;
    const r = rdp[k]!;
    if (!(alpha >= 1)) throw invalid(`RDP orders must be at least 1 (got ${alpha})`);
    if (!(r >= 0)) throw invalid(`RDP values must be >= 0 (got ${r} at order ${alpha})`);
    let epsilon = Infinity;
    if (delta * delta + Math.expm1(-r) >= 0) epsilon = 0;
    else if (alpha > 1.01) epsilon = r + Math.log1p(-1 / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);
    if (epsilon < best.epsilon) best = { epsilon, order: alpha };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}
