import { FedlhsError } from '../errors.js';
import type { Tensor } from '../tensors.js';
import type { FedAvgConfig, FedProxConfig, StrategyName } from './config.js';
import type { ClientUpdate, Strategy } from './types.js';
import { assertUpdatesFinite, checkAggregateInputs, importNoState, tensorOf } from './validate.js';

/**
 * Coordinates summed per block. The float64 block accumulator (32 KiB) stays in L1/L2 while
 * every update streams through it once, so memory traffic is one read of each update and one
 * write of the result, whatever the number of updates.
 */
const BLOCK = 4096;

/** Largest float32 magnitude, rounded up: |x| ≤ FLOAT32_BOUND for every finite float32 x. */
const FLOAT32_BOUND = 3.5e38;

/** Reusable block accumulator; never escapes. */
const acc = new Float64Array(BLOCK);

/**
 * out[i] = Σ_k w_k·x_k[i] / total over one tensor, for two or more updates; returns false if a
 * result is not finite. Updates go four per pass — one load and store of the accumulator per
 * four inputs, which is what bounds V8's scalar code — but associated left to right, so the
 * float64 sum is bit for bit that of adding the updates one by one in the given order (as
 * `WeightedSum` does). The first pass initialises the block instead of adding to +0, so −0
 * survives.
 */
function meanOfTensor(xs: readonly Float32Array[], ws: Float64Array, total: number, out: Float32Array): boolean {
  const n = xs.length;
  const len = out.length;
  const [a0, a1, a2, a3] = xs;
  const w0 = ws[0]!, w1 = ws[1]!, w2 = ws[2] ?? 0, w3 = ws[3] ?? 0;
  let finite = true;
  for (let start = 0; start < len; start += BLOCK) {
    const end = Math.min(len, start + BLOCK);
    if (n === 2) for (let j = start; j < end; j++) acc[j - start] = w0 * a0![j]! + w1 * a1![j]!;
    else if (n === 3) for (let j = start; j < end; j++) acc[j - start] = w0 * a0![j]! + w1 * a1![j]! + w2 * a2![j]!;
    else for (let j = start; j < end; j++) acc[j - start] = w0 * a0![j]! + w1 * a1![j]! + w2 * a2![j]! + w3 * a3![j]!;
    let k = 4;
    for (; k + 3 < n; k += 4) {
      const a = xs[k]!, b = xs[k + 1]!, c = xs[k + 2]!, d = xs[k + 3]!;
      const wa = ws[k]!, wb = ws[k + 1]!, wc = ws[k + 2]!, wd = ws[k + 3]!;
      for (let j = start; j < end; j++) acc[j - start] = acc[j - start]! + wa * a[j]! + wb * b[j]! + wc * c[j]! + wd * d[j]!;
    }
    for (; k < n; k++) {
      const a = xs[k]!;
      const wa = ws[k]!;
      for (let j = start; j < end; j++) acc[j - start]! += wa * a[j]!;
    }
    for (let j = start; j < end; j++) {
      const v = acc[j - start]! / total;
      // v − v is 0 for finite v, NaN for NaN and ±Infinity.
      if (v - v !== 0) finite = false;
      out[j] = v;
    }
  }
  return finite;
}

/**
 * The example-weighted mean Σ n_k·w_k / Σ n_k of the updates, tensor by tensor, summed in
 * float64 and rounded once to float32. Shapes must already be checked. NaN and ±Infinity are
 * detected while summing — a finite float32 input cannot overflow the float64 sum (weights are
 * rescaled by the largest in the absurd case where Σ n_k · 3.5e38 would) — and reported as
 * INVALID_ARGUMENT naming the update, tensor and index. Zeros keep their sign (all −0 → −0).
 *
 * The mean of a single update is that update exactly (copied), so averaging a pre-averaged
 * float32 mean again is the identity — what makes the 'weighted-mean' input contract hold bit
 * for bit.
 */
export function weightedMean(name: StrategyName, updates: readonly ClientUpdate[]): Tensor[] {
  const n = updates.length;
  const weights = new Float64Array(n);
  let total = 0;
  let max = 0;
  for (let k = 0; k < n; k++) {
    const w = updates[k]!.numExamples;
    weights[k] = w;
    total += w;
    if (w > max) max = w;
  }
  if (!(total * FLOAT32_BOUND < Number.MAX_VALUE)) {
    total = 0;
    for (let k = 0; k < n; k++) total += weights[k] = weights[k]! / max;
  }
  return updates[0]!.weights.map((model, t) => {
    // One update is its own mean: fl32(n·x / n) is x for every float32 x, so copy it.
    if (n === 1) {
      assertUpdatesFinite(name, updates, t);
      return tensorOf(model.shape, model.data.slice());
    }
    const out = new Float32Array(model.data.length);
    if (!meanOfTensor(updates.map((u) => u.weights[t]!.data), weights, total, out)) {
      assertUpdatesFinite(name, updates, t);
      throw new FedlhsError('INTERNAL', `${name}: the weighted mean of tensor ${t} is not finite`);
    }
    return tensorOf(model.shape, out);
  });
}

/** Strategies whose result is the example-weighted mean itself. */
type MeanConfig = FedAvgConfig | Required<FedProxConfig>;

/**
 * FedAvg and FedProx: the new global model is Σ n_k·w_k / Σ n_k. FedProx differs only on the
 * clinics, which add (mu/2)·‖w − global‖² to their loss; `config.mu` is exposed for the agent.
 * Stateless; the global model's values are not read (only its shapes), and the slice-wise step
 * is the identity on the mean (no copy: the coordinator streams its running mean straight out).
 */
export function createMeanStrategy(config: MeanConfig): Strategy {
  const name = config.name;
  return {
    name,
    config,
    input: 'weighted-mean',
    minUpdates: 1,
    aggregate(global, updates, round) {
      checkAggregateInputs(name, global, updates, round, { minUpdates: 1, scanFinite: false, globalFinite: false });
      return weightedMean(name, updates);
    },
    readsGlobal: false,
    stepSlice: (_offset, _global, mean) => mean,
    exportState: () => [],
    importState: (state) => importNoState(name, state),
  };
}
