import type { Tensor } from '../tensors.js';
import type { BulyanConfig, KrumConfig, MultiKrumConfig } from './config.js';
import { weightedMean } from './mean.js';
import { allUpdatesStrategy, coordinateWise, sortValues, sortedMedian } from './robust.js';
import type { ClientUpdate, Strategy } from './types.js';
import { tensorOf } from './validate.js';

/**
 * Squared L2 distances between every pair of updates over the whole model, in float64, as a
 * symmetric n×n matrix (row-major). n(n−1)/2 passes over the model, each pair once.
 */
export function pairwiseSquaredDistances(updates: readonly ClientUpdate[]): Float64Array {
  const n = updates.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = updates[i]!.weights;
    for (let j = i + 1; j < n; j++) {
      const b = updates[j]!.weights;
      let s = 0;
      for (let t = 0; t < a.length; t++) {
        const x = a[t]!.data;
        const y = b[t]!.data;
        for (let e = 0; e < x.length; e++) {
          const d = x[e]! - y[e]!;
          s += d * d;
        }
      }
      dist[i * n + j] = s;
      dist[j * n + i] = s;
    }
  }
  return dist;
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
  return allUpdatesStrategy(config, min, needs('krum', f, min, 'n > 2f + 2'), (updates) => {
    const all = updates.map((_, i) => i);
    const scores = krumScores(pairwiseSquaredDistances(updates), updates.length, all, f);
    return copyWeights(updates[argmin(scores)]!);
  });
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
  return allUpdatesStrategy(config, min, tooFew, (updates) => {
    const n = updates.length;
    const all = updates.map((_, i) => i);
    const scores = krumScores(pairwiseSquaredDistances(updates), n, all, f);
    const keep = all.sort((a, b) => scores[a]! - scores[b]! || a - b).slice(0, toKeep ?? n - f);
    return weightedMean('multi-krum', keep.map((i) => updates[i]!));
  });
}

/**
 * Bulyan selection: θ = n − 2f updates picked by iterated Krum — Krum scores recomputed within
 * the remaining set (neighbours max(1, m − f − 2) for a set of m), its winner (earliest on
 * ties) moved to the selection — in the order picked.
 */
export function bulyanSelect(updates: readonly ClientUpdate[], f: number): number[] {
  const n = updates.length;
  const dist = pairwiseSquaredDistances(updates);
  const remaining = updates.map((_, i) => i);
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
  return allUpdatesStrategy(config, min, needs('bulyan', f, min, 'n ≥ 4f + 3'), (updates) => {
    const chosen = bulyanSelect(updates, f).map((i) => updates[i]!.weights);
    const theta = chosen.length;
    const beta = theta - 2 * f;
    const sorted = new Float64Array(theta);
    const distance = new Float64Array(theta);
    const order = new Int32Array(theta);
    return coordinateWise(chosen, (values) => {
      sorted.set(values);
      sortValues(sorted);
      const median = sortedMedian(sorted);
      // Stable insertion sort of positions by distance to the median: ties keep selection order.
      for (let j = 0; j < theta; j++) {
        const d = Math.abs(values[j]! - median);
        let p = j - 1;
        while (p >= 0 && distance[p]! > d) {
          distance[p + 1] = distance[p]!;
          order[p + 1] = order[p]!;
          p--;
        }
        distance[p + 1] = d;
        order[p + 1] = j;
      }
      let sum = 0;
      for (let r = 0; r < beta; r++) sum += values[order[r]!]!;
      return sum / beta;
    });
  });
}
