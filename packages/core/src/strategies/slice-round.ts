import { FedlhsError } from '../errors.js';
import type { Tensor } from '../tensors.js';
import type { StrategyName } from './config.js';
import type { ClientUpdate, SliceRound } from './types.js';

/** What a strategy does in a slice-wise round (see `SliceRound`). */
export interface SlicePlan {
  /** Pass 1, or absent: takes every update's slice at one offset, in model order. */
  readonly scan?: (slices: readonly Float32Array[]) => void;
  /** After pass 1: the updates the result is made of, in `combine`'s order. */
  readonly reads: () => number[];
  /** Pass 2: the result on one slice from the slices of `reads()`. */
  readonly combine: (slices: readonly Float32Array[]) => Float32Array;
}

/** Slices as one-tensor updates (example counts `numExamples[k]`, else 1), for the whole-model code that works per tensor. */
export const sliceUpdates = (slices: readonly Float32Array[], numExamples?: readonly number[]): ClientUpdate[] =>
  slices.map((data, k) => ({ weights: [{ shape: [data.length], data }], numExamples: numExamples?.[k] ?? 1 }));

/** The values of a one-tensor result. */
export const only = (tensors: readonly Tensor[]): Float32Array => tensors[0]!.data;

/** Indices 0 … n − 1. */
export const allOf = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Checks a slice round's arguments like `aggregate` checks its own (INVALID_ARGUMENT), then
 * enforces the pass order and slice bookkeeping around `plan` (INVALID_STATE).
 */
export function sliceRound(
  name: StrategyName,
  length: number,
  numExamples: readonly number[],
  minUpdates: number,
  tooFew: ((n: number) => string) | undefined,
  makePlan: () => SlicePlan,
): SliceRound {
  const invalid = (message: string) => new FedlhsError('INVALID_ARGUMENT', `${name}: ${message}`);
  const n = numExamples.length;
  if (!Number.isSafeInteger(length) || length < 1) throw invalid(`the model length must be an integer ≥ 1, got ${String(length)}`);
  if (n === 0) throw invalid('no updates to aggregate');
  if (n < minUpdates) throw new FedlhsError('INVALID_ARGUMENT', tooFew?.(n) ?? `${name}: needs at least ${minUpdates} updates, got ${n}`);
  numExamples.forEach((e, k) => {
    if (typeof e !== 'number' || !(e > 0) || !Number.isFinite(e)) throw invalid(`update ${k} numExamples must be a positive finite number, got ${String(e)}`);
  });
  const plan = makePlan();
  let pass: 'scan' | 'reads' | 'combine' | 'done' = plan.scan === undefined ? 'reads' : 'scan';
  let next = 0;
  let reads: number[] | undefined;
  const outOfTurn = (message: string) => new FedlhsError('INVALID_STATE', `${name}: ${message}`);
  const step = (what: 'scan' | 'combine', offset: number, slices: readonly Float32Array[], count: number): void => {
    if (pass !== what) throw outOfTurn(`${what} called during the ${pass} pass`);
    if (offset !== next) throw outOfTurn(`${what}: slice at ${offset}, expected ${next}`);
    if (slices.length !== count) throw outOfTurn(`${what}: ${slices.length} slices, expected ${count}`);
    const len = slices[0]?.length ?? 0;
    if (len === 0 || offset + len > length || slices.some((s) => s.length !== len)) {
      throw outOfTurn(`${what}: slices at ${offset} must share one length ≥ 1 within the model's ${length} values`);
    }
    next = offset + len;
  };
  const finishPass = (after: typeof pass): void => {
    if (next === length) {
      pass = after;
      next = 0;
    }
  };
  return {
    needsScan: plan.scan !== undefined,
    scan(offset, slices) {
      step('scan', offset, slices, n);
      plan.scan!(slices);
      finishPass('reads');
    },
    reads() {
      if (pass === 'scan') throw outOfTurn(`reads() before the scan covered the model (at ${next} of ${length})`);
      if (reads === undefined) {
        reads = plan.reads();
        pass = 'combine';
      }
      return [...reads];
    },
    combine(offset, slices) {
      step('combine', offset, slices, reads?.length ?? -1);
      const out = plan.combine(slices);
      finishPass('done');
      return out;
    },
  };
}
