/**
 * Special functions the RDP accountant needs and JavaScript lacks (issue 14): log-gamma, the
 * complementary error function and its logarithm, the log of the standard normal CDF, and
 * addition/subtraction of numbers held as logarithms. Implemented from the mathematics (Stirling's
 * series, the Taylor series of log Γ about 1, the Maclaurin series of erf and the Laplace
 * continued fraction of erfc; see Abramowitz & Stegun 6.1.40, 6.1.33, 7.1.6, 7.1.14).
 */
import { FedlhsError } from '../errors.js';

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const SQRT_PI = Math.sqrt(Math.PI);
const EULER_GAMMA = 0.5772156649015329;

/** B_{2k} / (2k(2k−1)) for k = 1..15: the coefficients of Stirling's series for log Γ. */
const STIRLING = [
  [1, 6], [-1, 30], [1, 42], [-1, 30], [5, 66], [-691, 2730], [7, 6], [-3617, 510], [43867, 798],
  [-174611, 330], [854513, 138], [-236364091, 2730], [8553103, 6], [-23749461029, 870], [8615841276005, 14322],
].map(([num, den], i) => num! / den! / ((2 * i + 2) * (2 * i + 1)));

/** ζ(k) for k = 2..31 (computed with mpmath at 40 digits), for log Γ(1+z) = −γz + Σ (−1)^k ζ(k) z^k / k. */
const ZETA = [
  1.6449340668482264, 1.2020569031595943, 1.0823232337111382, 1.0369277551433699, 1.0173430619844491,
  1.0083492773819228, 1.0040773561979443, 1.0020083928260822, 1.0009945751278181, 1.0004941886041195,
  1.000246086553308, 1.0001227133475785, 1.0000612481350587, 1.000030588236307, 1.0000152822594087,
  1.0000076371976379, 1.000003817293265, 1.0000019082127165, 1.0000009539620339, 1.0000004769329868,
  1.0000002384505027, 1.000000119219926, 1.0000000596081891, 1.0000000298035035, 1.0000000149015548,
  1.0000000074507118, 1.000000003725334, 1.0000000018626597, 1.0000000009313274, 1.0000000004656629,
];

/** log Γ(1+z) for |z| ≤ 0.25 by its Taylor series: accurate relative to the result near the root at z=0. */
function lgamma1p(z: number): number {
  if (z === 0) return 0; // not −0
  let sum = 0;
  let power = z;
  for (let k = 2; k <= ZETA.length + 1; k++) {
    power *= -z;
    sum += (ZETA[k - 2]! * power) / k;
  }
  return -EULER_GAMMA * z - sum;
}

/** Stirling's asymptotic series for x ≥ 7, where 15 terms leave an error below 1e-18. */
function stirling(x: number): number {
  const inv = 1 / x;
  const inv2 = inv * inv;
  let series = 0;
  let power = inv;
  for (const c of STIRLING) {
    series += c * power;
    power *= inv2;
  }
  return (x - 0.5) * Math.log(x) - x + LOG_SQRT_2PI + series;
}

/**
 * The natural logarithm of the gamma function, log Γ(x), for x > 0. Relative error about 1e-14
 * (absolute about 1e-16 at the roots x = 1 and 2, where a Taylor series about 1 takes over);
 * `Infinity` at `Infinity`. Throws INVALID_ARGUMENT for x ≤ 0 or NaN.
 */
export function lgamma(x: number): number {
  if (!(x > 0)) throw new FedlhsError('INVALID_ARGUMENT', `lgamma needs x > 0 (got ${x})`);
  if (x === Infinity) return Infinity;
  if (Math.abs(x - 1) <= 0.25) return lgamma1p(x - 1);
  if (Math.abs(x - 2) <= 0.25) return Math.log1p(x - 2) + lgamma1p(x - 2); // Γ(2+z) = (1+z)Γ(1+z)
  if (x >= 7) return stirling(x);
  // Γ(x) = Γ(x+n) / (x(x+1)…(x+n−1)); the product stays below 7! so it cannot overflow.
  let product = 1;
  let y = x;
  while (y < 7) {
    product *= y;
    y += 1;
  }
  return stirling(y) - Math.log(product);
}

/** erf(x) for |x| < 1 by its Maclaurin series 2/√π Σ (−1)^n x^{2n+1} / (n!(2n+1)). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 60; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * sum;
}

/**
 * The scaled complement e^{x²}·erfc(x) for x ≥ 1 by the even part of Laplace's continued fraction,
 * 2x/√π / (2x²+1 − 1·2/(2x²+5 − 3·4/(2x²+9 − …))), evaluated by the modified Lentz method
 * (fewer than 100 terms at x = 1, a handful in the tails).
 */
function erfcxFraction(x: number): number {
  const tiny = 1e-300;
  const x2 = 2 * x * x;
  let f = x2 + 1;
  let c = f;
  let d = 0;
  for (let n = 1; n < 1000; n++) {
    const a = -(2 * n - 1) * (2 * n);
    const b = x2 + 4 * n + 1;
    d = b + a * d;
    if (d === 0) d = tiny;
    c = b + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (2 * x) / SQRT_PI / f;
}

/** e^{−x²} without the rounding error of x² (x = h + l with h short, so h² is exact). */
function expMinusSquare(x: number): number {
  const h = Math.trunc(x * 16) / 16;
  return Math.exp(-h * h) * Math.exp(-(x - h) * (x + h));
}

/**
 * The complementary error function erfc(x) = 1 − erf(x), accurate relative to its value in both
 * tails (about 1e-15 relative; underflows to 0 beyond x ≈ 26.5 — use `logErfc` there).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) < 1) return 1 - erfSeries(x);
  if (x < 0) return 2 - erfc(-x);
  if (x === Infinity) return 0;
  if (x > 27.3) return 0; // below the smallest subnormal
  return expMinusSquare(x) * erfcxFraction(x);
}

/** log erfc(x), finite and accurate for every finite x (−x² − log x − log √π + … in the far tail). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x < 1) return Math.log(erfc(x));
  return -x * x + Math.log(erfcxFraction(x));
}

/**
 * log Φ(x), the logarithm of the standard normal CDF (scipy's `log_ndtr`), stable for very negative
 * x (log Φ(−40) ≈ −804.608) and for large positive x (log Φ(x) ≈ −Φ(−x)).
 */
export function logNdtr(x: number): number {
  if (Number.isNaN(x)) return NaN;
  // Φ(x) = erfc(−x/√2)/2.
  if (x > 0) return Math.log1p(-0.5 * erfc(x / Math.SQRT2));
  return logErfc(-x / Math.SQRT2) - Math.LN2;
}

/** log(e^a + e^b) without overflow; −Infinity stands for 0. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/**
 * log(e^a − e^b) for a ≥ b; −Infinity when they are equal (the difference is 0). Throws
 * INVALID_ARGUMENT when a < b (the difference would be negative).
 */
export function logSub(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b) || a < b) {
    throw new FedlhsError('INVALID_ARGUMENT', `logSub needs a >= b: the difference of exponentials must not be negative (a=${a}, b=${b})`);
  }
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}
