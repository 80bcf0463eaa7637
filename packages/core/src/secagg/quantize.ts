/**
 * Fixed-point quantisation for secure aggregation: masks work mod 2^bits, so each clinic maps its
 * clipped update onto the integer grid {0, …, 2^valueBits − 1} over [−clip, clip], and the
 * modulus is sized to the number of clinics so that their sum can never wrap (Bonawitz et al.
 * 2017 §3; Bell et al. 2020). A value outside [−clip, clip] is refused, never wrapped or
 * silently clamped: clipping (DP's or the range check) happens before quantisation, and the
 * quantisation range is then what bounds any single clinic's influence on the sum.
 *
 * Rounding is to the nearest grid point, so each coordinate of one clinic is off by at most
 * step/2 and a sum of n clinics by at most n·step/2, with step = 2·clip / (2^valueBits − 1).
 */
import { FedlhsError } from '../errors.js';
import { zeroWords, checkWords, type MaskWords } from './masks.js';

/** How a round quantises: the clipping range, the bits per value, the most clinics summed. */
export interface QuantizationSpec {
  /** c > 0: values must lie in [−c, c]. */
  readonly clip: number;
  /** Bits of one quantised value, 1..48 (exact in doubles even summed over many clinics). */
  readonly valueBits: number;
  /** The most clinics whose values are summed: sizes the modulus. */
  readonly clients: number;
}

/** The grid a spec defines. */
export interface QuantizationParams {
  /** The largest quantised value, 2^valueBits − 1. */
  readonly levels: number;
  /** The float distance between grid points, 2·clip / levels. */
  readonly step: number;
  /** 1 / step: quantised = round((value + clip) · scale). */
  readonly scale: number;
  /** The modulus exponent: `modulusBits(clients, valueBits)`. */
  readonly bits: number;
}

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

function checkCount(clients: number, field: string): void {
  if (!Number.isSafeInteger(clients) || clients < 1) throw invalid(field, `must be an integer ≥ 1, got ${clients}`);
}

/**
 * Bits of a modulus in which the sum of `clients` values of `valueBits` bits never wraps:
 * ⌈log2(clients)⌉ + valueBits, since clients·(2^valueBits − 1) < 2^⌈log2 clients⌉ · 2^valueBits.
 * Refuses more than 64.
 */
export function modulusBits(clients: number, valueBits: number): number {
  checkCount(clients, 'clients');
  if (!Number.isInteger(valueBits) || valueBits < 1 || valueBits > 48) throw invalid('valueBits', `must be an integer in [1, 48], got ${valueBits}`);
  // ⌈log2 n⌉ is the bit length of n − 1 (0 for n = 1).
  const bits = (clients === 1 ? 0 : (clients - 1).toString(2).length) + valueBits;
  if (bits > 64) throw invalid('valueBits', `${clients} clients of ${valueBits} bits need a ${bits}-bit modulus, more than 64`);
  return bits;
}

/** Throws unless a modulus of `bits` bits holds the sum of `clients` values of `valueBits` bits without wrapping. */
export function checkModulus(bits: number, clients: number, valueBits: number): void {
  const needed = modulusBits(clients, valueBits);
  if (bits < needed) throw invalid('bits', `a ${bits}-bit modulus is too small for ${clients} clients of ${valueBits} bits (needs ${needed}): the sum could wrap`);
}

/** The grid of `spec`, validated. */
export function quantizationParams(spec: QuantizationSpec): QuantizationParams {
  if (!Number.isFinite(spec.clip) || spec.clip <= 0) throw invalid('clip', `must be a finite number > 0, got ${spec.clip}`);
  const bits = modulusBits(spec.clients, spec.valueBits);
  const levels = 2 ** spec.valueBits - 1;
  const step = (2 * spec.clip) / levels;
  return { levels, step, scale: 1 / step, bits };
}

/**
 * Quantises `values` onto the grid of `spec`, as words mod 2^bits (`quantizationParams(spec).bits`)
 * ready for `applyMasks`. Refuses a non-finite value or one outside [−clip, clip], naming its index.
 */
export function quantize(values: ArrayLike<number>, spec: QuantizationSpec): MaskWords {
  const { levels, scale, bits } = quantizationParams(spec);
  const out = zeroWords(values.length, bits);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw invalid(`values[${i}]`, `not a finite number (${v})`);
    if (v < -spec.clip || v > spec.clip) throw invalid(`values[${i}]`, `${v} is outside the clipping range [−${spec.clip}, ${spec.clip}]: clip before quantising`);
    // The bound only absorbs floating-point error at ±clip; in-range values round inside [0, levels].
    const q = Math.min(levels, Math.max(0, Math.round((v + spec.clip) * scale)));
    if (out instanceof Uint32Array) out[i] = q;
    else out[i] = BigInt(q);
  }
  return out;
}

/**
 * The float sum of `clients` quantised vectors from their sum `sum` (mod 2^bits, unmasked):
 * S·step − clients·clip per coordinate, within clients·step/2 of the true float sum. Refuses
 * more clients than `spec.clients`, a modulus `bits` too small for them, and a coordinate above
 * clients·levels (the sum wrapped or an input was out of range).
 */
export function dequantizeSum(sum: MaskWords, clients: number, spec: QuantizationSpec, bits: number = quantizationParams(spec).bits): Float64Array {
  const { levels, step } = quantizationParams(spec);
  checkCount(clients, 'clients');
  if (clients > spec.clients) throw invalid('clients', `${clients} clients summed, the quantisation was sized for at most ${spec.clients}`);
  checkModulus(bits, clients, spec.valueBits);
  checkWords(sum, bits, 'sum');
  const max = clients * levels;
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const s = Number(sum[i]!);
    if (s > max) throw invalid('sum', `coordinate ${i} is ${s}, above the largest possible sum ${max} of ${clients} clients: the sum wrapped or an input was out of range`);
    out[i] = s * step - clients * spec.clip;
  }
  return out;
}
