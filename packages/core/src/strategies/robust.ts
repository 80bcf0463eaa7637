import type { Tensor } from '../tensors.js';
import type { FedMedianConfig, ResolvedStrategyConfig, TrimmedMeanConfig } from './config.js';
import { allOf, only, sliceRound, sliceUpdates, type SlicePlan } from './slice-round.js';
import type { ClientUpdate, Strategy } from './types.js';
import { MAX_NETWORK_INPUTS, medianByNetwork, trimmedMeanByNetwork } from './order-stats.js';
import { assertUpdatesFinite, checkAggregateInputs, importNoState, tensorOf } from './validate.js';

/** x sorts before y: numeric order, with −0 before +0 (the order of TypedArray.prototype.sort). */
function before(x: number, y: number): boolean {
  return x < y || (x === 0 && y === 0 && 1 / x < 1 / y);
}

/**
 * Sorts `a` ascending in place (−0 before +0; values are finite). Insertion sort for the small
 * arrays robust aggregation sees (one value per update), so nothing is allocated per coordinate;
 * the built-in sort, same order, beyond 32 values.
 */
export function sortValues(a: Float64Array): void {
  const n = a.length;
  if (n > 32) {
    a.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && before(x, a[j]!)) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

/** Median of sorted values: the middle one, or the mean of the two middle ones (in float64). */
export function sortedMedian(s: Float64Array): number {
  const n = s.length;
  const mid = n >> 1;
  return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Applies `reduce` to each coordinate's values, gathered in update order into one reusable
 * scratch array (which `reduce` may reorder), and rounds the results to float32.
 */
export function coordinateWise(tensorsPerUpdate: readonly Tensor[][], reduce: (values: Float64Array) => number): Tensor[] {
  const n = tensorsPerUpdate.length;
  const scratch = new Float64Array(n);
  return tensorsPerUpdate[0]!.map((model, t) => {
    const sources = tensorsPerUpdate.map((ts) => ts[t]!.data);
    const out = new Float32Array(model.data.length);
    for (let i = 0; i < out.length; i++) {
      for (let k = 0; k < n; k++) scratch[k] = sources[k]![i]!;
      out[i] = reduce(scratch);
    }
    return tensorOf(model.shape, out);
  });
}

/**
 * Coordinate-wise median of the updates (example counts ignored): by sorting network
 * (order-stats.ts) up to MAX_NETWORK_INPUTS updates, the same bits as sorting each coordinate.
 */
export function coordinateMedian(updates: readonly ClientUpdate[]): Tensor[] {
  if (updates.length <= MAX_NETWORK_INPUTS) return medianByNetwork(updates.map((u) => u.weights));
  return coordinateWise(
    updates.map((u) => u.weights),
    (values) => {
      sortValues(values);
      return sortedMedian(values);
    },
  );
}

/**
 * How many values trimmed-mean drops at each end: floor(beta·n). A 1e-9 slack absorbs binary
 * rounding of decimal betas (0.29 · 100 is 28.999999999999996 in float64; a person means 29).
 */
export function trimCount(beta: number, n: number): number {
  return Math.floor(beta * n + 1e-9);
}

/**
 * Coordinate-wise mean after dropping the `trim` lowest and highest values (example counts
 * ignored), summed in ascending order; by sorting network up to MAX_NETWORK_INPUTS updates.
 */
export function coordinateTrimmedMean(updates: readonly ClientUpdate[], trim: number): Tensor[] {
  const n = updates.length;
  if (n <= MAX_NETWORK_INPUTS) return trimmedMeanByNetwork(updates.map((u) => u.weights), trim);
  const kept = n - 2 * trim;
  return coordinateWise(
    updates.map((u) => u.weights),
    (values) => {
      sortValues(values);
      let sum = 0;
      for (let k = trim; k < n - trim; k++) sum += values[k]!;
      return sum / kept;
    },
  );
}

/**
 * The finiteness check of strategies that compute the squared distances between all n ≥ 2
 * updates anyway (the Krum family), from those distances instead of a scan of every value (which
 * costs ~1.5 copies of the updates): an update with a NaN or ±Infinity makes each of its
 * distances NaN or +Infinity, and finite float32 values cannot overflow a float64 sum of squares
 * (each term < 5e77), so some distance is non-finite exactly when some value is. Then the full
 * scan runs and rejects the value as the scan up front would have.
 */
export type FiniteByDistances = (dist: Float64Array) => void;

/**
 * Shared shape of the stateless order-statistic strategies: `compute` whole, `plan` slice-wise.
 * With `byDistances`, `compute` must pass its distances over all updates to the check it is
 * given before it uses them (see `FiniteByDistances`); otherwise every value is scanned first.
 */
export function allUpdatesStrategy(
  config: ResolvedStrategyConfig,
  minUpdates: number,
  tooFew: ((n: number) => string) | undefined,
  compute: (updates: readonly ClientUpdate[], finite: FiniteByDistances) => Tensor[],
  plan: (numExamples: readonly number[]) => SlicePlan,
  byDistances = false,
): Strategy {
  const name = config.name;
  return {
    name,
    config,
    input: 'all-updates',
    minUpdates,
    aggregate(global, updates, round) {
      const fused = byDistances && updates.length >= 2;
      checkAggregateInputs(name, global, updates, round, { minUpdates, tooFew, scanFinite: !fused, globalFinite: false });
      return compute(updates, (dist) => {
        if (!fused || dist.every((d) => Number.isFinite(d))) return;
        assertUpdatesFinite(name, updates);
        throw new Error(`${name}: a pairwise distance is not finite though every value is`);
      });
    },
    sliceRound: (length, numExamples) => sliceRound(name, length, numExamples, minUpdates, tooFew, () => plan(numExamples)),
    exportState: () => [],
    importState: (state) => importNoState(name, state),
  };
}

/**
 * fedmedian: for every coordinate, the median of the n update values — the middle one for odd
 * n, the mean of the two middle ones for even n. Example counts are ignored; global's values are
 * not read. Any n ≥ 1.
 */
export function createMedianStrategy(config: FedMedianConfig): Strategy {
  return allUpdatesStrategy(config, 1, undefined, coordinateMedian, (ns) => ({
    reads: () => allOf(ns.length),
    combine: (slices) => only(coordinateMedian(sliceUpdates(slices))),
  }));
}

/**
 * trimmed-mean (Yin et al. 2018): for every coordinate, sort the n update values, drop the
 * floor(beta·n) lowest and the floor(beta·n) highest, and average the rest. beta < 0.5 keeps at
 * least one value. Example counts are ignored. Any n ≥ 1 (with small n and beta, nothing may be
 * trimmed: beta 0.1 trims only from n = 10).
 */
export function createTrimmedMeanStrategy(config: Required<TrimmedMeanConfig>): Strategy {
  return allUpdatesStrategy(
    config,
    1,
    undefined,
    (updates) => coordinateTrimmedMean(updates, trimCount(config.beta, updates.length)),
    (ns) => ({
      reads: () => allOf(ns.length),
      combine: (slices) => only(coordinateTrimmedMean(sliceUpdates(slices), trimCount(config.beta, ns.length))),
    }),
  );
}
