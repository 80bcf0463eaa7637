import type { Tensor } from '../tensors.js';
import type { ResolvedStrategyConfig, StrategyName } from './config.js';

/** One clinic's contribution to a round: its full model weights (not a delta) and how many examples produced them. */
export interface ClientUpdate {
  /** The clinic's weights after local training, one tensor per model tensor, in model order. */
  weights: Tensor[];
  /** Number of training examples; the weight of this update in example-weighted means. Positive and finite. */
  numExamples: number;
}

/**
 * A server-side aggregation strategy: turns a round's global model and client updates into the
 * next global model. Made by `createStrategy`. Strategies never mutate their inputs and always
 * return fresh float32 tensors; sums are computed in float64.
 *
 * Stateful strategies (fedavgm, fedadagrad, fedadam, fedyogi) keep their server state between
 * calls to `aggregate` (or slice-wise rounds: `beginRound`, `stepSlice`…, `endRound`), stored in
 * float32 exactly as `exportState` returns it, so a strategy restored with `importState`
 * continues bit for bit like one that never stopped. A call that throws leaves the state unchanged.
 */
export interface Strategy {
  readonly name: StrategyName;
  /** The parameters in effect, with every default filled in. */
  readonly config: ResolvedStrategyConfig;
  /**
   * 'weighted-mean': the result depends on the updates only through their example-weighted mean
   * (fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi) — the coordinator may pass a single
   * pre-averaged update `{ weights: avg, numExamples: total }` and gets the same result: bit for
   * bit when avg is Σ n_k·w_k / Σ n_k summed in float64 in the same order and rounded once to
   * float32, as `WeightedSum` does (short of the sign of a zero: updates that are all −0 average
   * to −0 here, to +0 in a sum started at +0); these strategies also step slice by slice
   * (`stepSlice`), which is how the coordinator applies them;
   * 'all-updates': the strategy needs every update at once (fedmedian, trimmed-mean, krum,
   * multi-krum, bulyan).
   */
  readonly input: 'weighted-mean' | 'all-updates';
  /** Smallest number of updates `aggregate` accepts with these parameters (e.g. krum: 2f + 3, bulyan: 4f + 3). */
  readonly minUpdates: number;
  /**
   * The next global model. `global` is this round's model (read by the server optimizers, and
   * the reference for shapes); `round` must be an integer ≥ 0 (no strategy's math depends on it).
   * Throws FedlhsError INVALID_ARGUMENT if the updates are empty or fewer than `minUpdates`, if
   * any update's tensor count, shapes or value counts differ from `global`'s, if a numExamples is
   * not a positive finite number, or if any update value is NaN or infinite.
   */
  aggregate(global: Tensor[], updates: ClientUpdate[], round: number): Tensor[];
  /**
   * Weighted-mean strategies: whether `stepSlice` reads its `global` argument. `false` (fedavg,
   * fedprox: the step is the mean itself) lets a caller pass a zero-length array instead of
   * reading the round's model. Absent means true; a wrapper reports its own need or its inner's.
   */
  readonly readsGlobal?: boolean;
  /**
   * Weighted-mean strategies: the server step on one slice of the flat model (every tensor's
   * values, in model order, concatenated), so a caller holding a running weighted sum never
   * materialises the model: memory O(slice). `mean` is the float32 example-weighted mean of the
   * updates on [offset, offset + mean.length), `global` this round's model on the same range
   * (or zero-length when `readsGlobal` is false). Between `beginRound` and `endRound` the slices
   * must come in order and cover the model once; the concatenated results equal, bit for bit,
   * `aggregate(global, [{ weights: mean, numExamples: total }], round)`, and `endRound` leaves the
   * server state that call would. Neither input is mutated; the result may be `mean` itself.
   * `mean` is trusted to be finite (the caller checked the updates); a non-finite result throws
   * INVALID_ARGUMENT, a slice out of order or outside a round FAILED_PRECONDITION: either way the
   * round is abandoned and the state left unchanged.
   *
   * A wrapper (e.g. central DP noise) composes by wrapping `stepSlice` and forwarding
   * `beginRound`/`endRound`, `exportState`/`importState` and `readsGlobal` to its inner strategy.
   */
  stepSlice?(offset: number, global: Float32Array, mean: Float32Array, round: number): Float32Array;
  /**
   * Opens one slice-wise aggregation of a model with these tensor shapes (checked against the
   * server state like `aggregate` checks `global`). A round already open is abandoned. Throws
   * INVALID_ARGUMENT for a bad round or shapes that do not match the state.
   */
  beginRound?(round: number, shapes: readonly (readonly number[])[]): void;
  /**
   * Closes the round opened by `beginRound`: the server state becomes the one stepped over the
   * slices. Throws FAILED_PRECONDITION (state unchanged) if no round is open or the slices did not
   * cover the model.
   */
  endRound?(): void;
  /**
   * All-updates strategies: aggregation from the updates read in slices, so that a caller
   * streaming each update's values (e.g. from its spool file) holds O(slice × n), never a whole
   * model per update. `numExamples` are the updates' example counts, in update order; `length`
   * the model's value count. See `SliceRound` for the passes; the concatenated results equal, bit
   * for bit, `aggregate` on the same updates. Throws INVALID_ARGUMENT as `aggregate` does for too
   * few updates or a bad example count.
   */
  sliceRound?(length: number, numExamples: readonly number[]): SliceRound;
  /**
   * Server state to checkpoint, as float32 tensors shaped like the model, slot after slot:
   * fedavgm [v…]; fedadagrad, fedadam, fedyogi [m…, v…]. `[]` if the strategy is stateless or
   * has not aggregated yet (nor imported state). The tensors are copies.
   */
  exportState(): Tensor[];
  /**
   * Restores state exported by a strategy of the same name and parameters. `[]` resets to the
   * initial (zero) state. Checks the tensor count (a whole number of slots), that every slot has
   * the same shapes, well-formed tensors and finite values (and v ≥ 0 for the adaptive
   * optimizers); the shapes are checked against the model at the next `aggregate`. Copies the data.
   */
  importState(state: Tensor[]): void;
}

/**
 * One slice-wise aggregation of an all-updates strategy (`Strategy.sliceRound`). Slices are
 * float32 values [offset, offset + len) of the flat model (every tensor's values in model order),
 * all of the same len at one offset, offsets in order from 0 and covering the model once per
 * pass; the caller checked the values finite (the coordinator does at intake). Passes:
 * 1. if `needsScan` (krum, multi-krum, bulyan: pairwise distances), `scan` every slice of every
 *    update, in update order;
 * 2. `reads()`: which updates the result is made of, in the order `combine` takes them;
 * 3. `combine` their slices: the result on that slice (fresh float32 values).
 * A slice out of order, of the wrong count or length, or a pass out of turn throws
 * INVALID_STATE.
 */
export interface SliceRound {
  readonly needsScan: boolean;
  scan(offset: number, slices: readonly Float32Array[]): void;
  reads(): number[];
  combine(offset: number, slices: readonly Float32Array[]): Float32Array;
}
