import type { Tensor } from '../tensors.js';
import type { BulyanConfig, KrumConfig, MultiKrumConfig } from './config.js';
import { weightedMean } from './mean.js';
import { bulyanByNetwork, bulyanCoordinate } from './bulyan.js';
import { DistanceSum, MAX_NETWORK_INPUTS, squaredDistances } from './order-stats.js';
import { allOf, only, sliceUpdates } from './slice-round.js';
import { allUpdatesStrategy, coordinateWise, sortValues, type FiniteByDistances } from './robust.js';
import type { ClientUpdate, Strategy } from './types.js';
import { tensorOf } from './validate.js';

/**
 * Squared L2 distances between every pair of updates over the whole model, in float64, as a
 * symmetric n×n matrix (row-major); one blocked pass over the model (order-stats.ts), each
 * pair's sum in model order.
 */
export function pairwiseSquaredDistances(updates: readonly ClientUpdate[]): Float64Array {
  return squaredDistances(updates.map((u) => u.weights));
}

/**
 * Krum scores of `members` (indices into the distance matrix) within that set: for each, the
 * sum of its squared distances to its max(1, m − f − 2) nearest other members (m = the set's
 * size; never more than m − 1), added smallest first so equal multisets give equal scores.
 */
export function krumScores(dist: Float64Array, n: number, members: readonly number[], f: number): Float64Array {
  const m = members.length;
  const neighbours = Math.min(Math.max(1, m - f - 2), m - 1);
  const scores = new Float64Array(m);
  const others = new Float64Array(m - 1);
  members.forEach((i, a) => {
    let o = 0;
    for (const j of members) if (j !== i) others[o++] = dist[i * n + j]!;
    sortValues(others);
    let s = 0;
    for (let k = 0; k < neighbours; k++) s += others[k]!;
    scores[a] = s;
  });
  return scores;
}

/** Position of the lowest score; the earliest on ties. */
function argmin(scores: Float64Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! < scores[best]!) best = i;
  return best;
}

/** `pairwiseSquaredDistances`, which also check every value is finite (`FiniteByDistances`). */
function checkedDistances(updates: readonly ClientUpdate[], finite: FiniteByDistances): Float64Array {
  const dist = pairwiseSquaredDistances(updates);
  finite(dist);
  return dist;
}

const copyWeights = (u: ClientUpdate): Tensor[] => u.weights.map((t) => tensorOf(t.shape, t.data.slice()));

const needs = (name: string, f: number, min: number, rule: string) => (n: number) =>
  `${name}: byzantine=${f} needs at least ${min} updates (${rule}), got ${n}`;

/**
 * krum (Blanchard et al. 2017): scores each update by the sum of squared L2 distances to its
 * max(1, n − f − 2) nearest other updates and returns a copy of the lowest-scoring update
 * (ties: the earliest in the given order). Example counts are ignored. Needs n ≥ 2f + 3.
 */
export function createKrumStrategy(config: Required<KrumConfig>): Strategy {
  const f = config.byzantine;
  const min = 2 * f + 3;
  const pick = (dist: Float64Array, n: number): number => argmin(krumScores(dist, n, allOf(n), f));
  return allUpdatesStrategy(
    config,
    min,
    needs('krum', f, min, 'n > 2f + 2'),
    (updates, finite) => copyWeights(updates[pick(checkedDistances(updates, finite), updates.length)]!),
    (ns) => {
      const sum = new DistanceSum(ns.length);
      return { scan: (slices) => sum.add(slices), reads: () => [pick(sum.result(), ns.length)], combine: (slices) => slices[0]!.slice() };
    },
    true,
  );
}

/**
 * multi-krum (Blanchard et al. 2017): Krum scores computed once over all n updates; the
 * `toKeep` lowest-scoring updates (ties: earliest first; default toKeep = n − f, per round) are
 * averaged weighted by example counts. Needs n ≥ 2f + 3 and n ≥ toKeep + f.
 */
export function createMultiKrumStrategy(config: MultiKrumConfig): Strategy {
  const f = config.byzantine;
  const toKeep = config.toKeep;
  const min = Math.max(2 * f + 3, (toKeep ?? 0) + f);
  const tooFew =
    toKeep === undefined
      ? needs('multi-krum', f, min, 'n > 2f + 2')
      : (n: number) => `multi-krum: byzantine=${f} and toKeep=${toKeep} need at least ${min} updates (n > 2f + 2 and n ≥ toKeep + f), got ${n}`;
  const keep = (dist: Float64Array, n: number): number[] => {
    const all = allOf(n);
    const scores = krumScores(dist, n, all, f);
    return all.sort((a, b) => scores[a]! - scores[b]! || a - b).slice(0, toKeep ?? n - f);
  };
  return allUpdatesStrategy(
    config,
    min,
    tooFew,
    (updates, finite) => weightedMean('multi-krum', keep(checkedDistances(updates, finite), updates.length).map((i) => updates[i]!)),
    (ns) => {
      const sum = new DistanceSum(ns.length);
      let kept: number[] = [];
      return {
        scan: (slices) => sum.add(slices),
        reads: () => (kept = keep(sum.result(), ns.length)),
        combine: (slices) => only(weightedMean('multi-krum', sliceUpdates(slices, kept.map((i) => ns[i]!)))),
      };
    },
    true,
  );
}

/**
 * Bulyan selection: θ = n − 2f updates picked by iterated Krum — Krum scores recomputed within
 * the remaining set (neighbours max(1, m − f − 2) for a set of m), its winner (earliest on
 * ties) moved to the selection — in the order picked.
 */
export function bulyanSelect(updates: readonly ClientUpdate[], f: number): number[] {
  return bulyanSelectBy(pairwiseSquaredDistances(updates), updates.length, f);
}

/** `bulyanSelect` from the n×n squared distances. */
function bulyanSelectBy(dist: Float64Array, n: number, f: number): number[] {
  const remaining = allOf(n);
  const selected: number[] = [];
  while (selected.length < n - 2 * f) {
    const pick = argmin(krumScores(dist, n, remaining, f));
    selected.push(...remaining.splice(pick, 1));
  }
  return selected;
}

/**
 * bulyan (El Mhamdi et al. 2018), as in the paper: needs n ≥ 4f + 3. Selects θ = n − 2f updates
 * by iterated Krum (`bulyanSelect`); then for every coordinate takes the coordinate-wise median
 * of the θ selected values (mean of the two middle ones for even θ) and averages, unweighted,
 * the β = θ − 2f values closest to it (ties in distance: the update selected earlier wins).
 * Example counts are ignored.
 */
export function createBulyanStrategy(config: Required<BulyanConfig>): Strategy {
  const f = config.byzantine;
  const min = 4 * f + 3;
  const combine = (chosen: readonly Tensor[][]): Tensor[] => {
    const theta = chosen.length;
    const beta = theta - 2 * f;
    if (theta <= MAX_NETWORK_INPUTS) return bulyanByNetwork(chosen, beta);
    const sorted = new Float64Array(theta);
    const distance = new Float64Array(theta);
    const order = new Int32Array(theta);
    return coordinateWise(chosen, (values) => bulyanCoordinate(values, beta, sorted, distance, order));
  };
  return allUpdatesStrategy(
    config,
    min,
    needs('bulyan', f, min, 'n ≥ 4f + 3'),
    (updates, finite) => combine(bulyanSelectBy(checkedDistances(updates, finite), updates.length, f).map((i) => updates[i]!.weights)),
    (ns) => {
      const sum = new DistanceSum(ns.length);
      return {
        scan: (slices) => sum.add(slices),
        reads: () => bulyanSelectBy(sum.result(), ns.length, f),
        combine: (slices) => only(combine(sliceUpdates(slices).map((u) => u.weights))),
      };
    },
    true,
  );
}
