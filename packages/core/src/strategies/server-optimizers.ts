import { FedlhsError } from '../errors.js';
import { elementCount } from '../tensors.js';
import type { FedAdagradConfig, FedAdamConfig, FedAvgMConfig, FedYogiConfig } from './config.js';
import { weightedMean } from './mean.js';
import type { Strategy } from './types.js';
import { checkAggregateInputs, checkLikeModel, checkTensor, findNonFinite, sameShape, shapeText, tensorOf } from './validate.js';

/** Server optimizers, every parameter resolved. */
export type ServerOptimizerConfig = Required<FedAvgMConfig> | Required<FedAdagradConfig> | Required<FedAdamConfig> | Required<FedYogiConfig>;

/** Per-slot, per-tensor state: fedavgm [v]; adaptive [m, v]. Float32, exactly what is checkpointed. */
type Slots = Float32Array[][];

interface State {
  readonly shapes: number[][];
  readonly slots: Slots;
}

/** A slice-wise round between beginRound and endRound: the state stepped into `next`, not yet adopted. */
interface OpenRound {
  readonly round: number;
  readonly shapes: number[][];
  /** Flat offset of each tensor, then the model's length. */
  readonly starts: number[];
  /** The state stepped from; undefined for the initial zeros (not allocated: slices use a zero slice). */
  readonly old: Slots | undefined;
  readonly next: Slots;
  /** Where the next slice must start. */
  offset: number;
  /** The tensor holding `offset`. */
  tensor: number;
}

/**
 * One step of the server optimizer on one tensor, element by element in float64; new state and
 * output are rounded to float32 (the stored state is what the output is computed from).
 * Returns the index of the first non-finite result, or -1.
 */
function step(c: ServerOptimizerConfig, g: Float32Array, a: Float32Array, old: Float32Array[], next: Float32Array[], out: Float32Array): number {
  const len = g.length;
  let bad = -1;
  if (c.name === 'fedavgm') {
    // Hsu et al. 2019: Δ = global − avg; v ← momentum·v + Δ; global ← global − lr·v.
    const [v0] = old as [Float32Array];
    const [v1] = next as [Float32Array];
    const { momentum, serverLearningRate: lr } = c;
    for (let i = 0; i < len; i++) {
      const gi = g[i]!;
      v1[i] = momentum * v0[i]! + (gi - a[i]!);
      const o = (out[i] = gi - lr * v1[i]!);
      if (bad < 0 && (o - o !== 0 || v1[i]! - v1[i]! !== 0)) bad = i;
    }
    return bad;
  }
  // Reddi et al. 2021, Algorithm 2, no bias correction: Δ = avg − global;
  // m ← β1·m + (1 − β1)·Δ; v per optimizer; global ← global + η·m / (√v + τ).
  const [m0, v0] = old as [Float32Array, Float32Array];
  const [m1, v1] = next as [Float32Array, Float32Array];
  const { eta, beta1, tau } = c;
  const b2 = c.name === 'fedadagrad' ? 0 : c.beta2;
  const kind = c.name === 'fedadagrad' ? 0 : c.name === 'fedadam' ? 1 : 2;
  for (let i = 0; i < len; i++) {
    const gi = g[i]!;
    const d = a[i]! - gi;
    const d2 = d * d;
    const vPrev = v0[i]!;
    m1[i] = beta1 * m0[i]! + (1 - beta1) * d;
    if (kind === 0) v1[i] = vPrev + d2;
    else if (kind === 1) v1[i] = b2 * vPrev + (1 - b2) * d2;
    else v1[i] = vPrev - (1 - b2) * d2 * (vPrev > d2 ? 1 : vPrev < d2 ? -1 : 0);
    const mi = m1[i]!;
    const vi = v1[i]!;
    const o = (out[i] = gi + (eta * mi) / (Math.sqrt(vi) + tau));
    if (bad < 0 && (o - o !== 0 || mi - mi !== 0 || vi - vi !== 0)) bad = i;
  }
  return bad;
}

/**
 * FedAvgM (Hsu et al. 2019) and FedAdagrad, FedAdam, FedYogi (Reddi et al. 2021, Algorithm 2):
 * a server optimizer stepping on the pseudo-gradient between the global model and the
 * example-weighted mean `avg` of the updates (float32, exactly FedAvg's result, so passing one
 * pre-averaged update gives the same result bit for bit). The state starts at zero, shaped like
 * the model at the first `aggregate` (or from `importState`), and is kept in float32.
 *
 * - fedavgm: Δ = global − avg; v ← momentum·v + Δ; global ← global − serverLearningRate·v.
 * - fedadagrad: Δ = avg − global; m ← β1·m + (1 − β1)·Δ; v ← v + Δ².
 * - fedadam: same m; v ← β2·v + (1 − β2)·Δ².
 * - fedyogi: same m; v ← v − (1 − β2)·Δ²·sign(v − Δ²).
 * - adaptive: global ← global + η·m / (√v + τ). No bias correction; v starts at 0 (Algorithm 2
 *   allows v₋₁ ≥ τ²; 0 is Flower's choice).
 *
 * A step whose output or new state is not finite in float32 (a pseudo-gradient beyond ~1.8e19
 * overflows v = Δ² in float32) throws INVALID_ARGUMENT and leaves the state as it was.
 *
 * Slice-wise (`beginRound`, `stepSlice`…, `endRound`) the same elementwise step runs on each
 * slice's part of every tensor it spans, into a pending copy of the state that `endRound` adopts:
 * results and state are bit for bit those of `aggregate`. `aggregate`, `importState` and a new
 * `beginRound` abandon a round still open.
 */
export function createServerOptimizer(config: ServerOptimizerConfig): Strategy {
  const name = config.name;
  const slotCount = name === 'fedavgm' ? 1 : 2;
  const slotNames = name === 'fedavgm' ? ['v'] : ['m', 'v'];
  let state: State | undefined;
  let open: OpenRound | undefined;

  const invalid = (message: string): FedlhsError => new FedlhsError('INVALID_ARGUMENT', `${name}: ${message}`);
  const outOfOrder = (message: string): FedlhsError => new FedlhsError('INVALID_STATE', `${name}: ${message}`);

  /** Throws unless the server state (if any) is for a model of these shapes. */
  function checkStateFits(model: readonly (readonly number[])[]): void {
    if (state === undefined) return;
    const { shapes } = state;
    if (shapes.length !== model.length) throw invalid(`the server state is for ${shapes.length} tensors, the model has ${model.length}`);
    shapes.forEach((shape, t) => {
      if (!sameShape(shape, model[t]!)) throw invalid(`the server state of tensor ${t} has shape ${shapeText(shape)}, the model's is ${shapeText(model[t]!)}`);
    });
  }

  /** The error for a non-finite result at one value (which input made it, when one is not finite). */
  function stepError(t: number, i: number, g: number, a: number): FedlhsError {
    if (g - g !== 0) return invalid(`global tensor ${t} has a non-finite value (${g}) at index ${i}`);
    if (a - a !== 0) return invalid(`the mean update has a non-finite value (${a}) at tensor ${t} index ${i}`);
    return invalid(`the step overflows float32 at tensor ${t} index ${i} (global ${g}, mean update ${a})`);
  }

  const zeroSlots = (lengths: readonly number[]): Slots => Array.from({ length: slotCount }, () => lengths.map((n) => new Float32Array(n)));

  return {
    name,
    config,
    input: 'weighted-mean',
    minUpdates: 1,

    aggregate(global, updates, round) {
      open = undefined;
      checkAggregateInputs(name, global, updates, round, { minUpdates: 1, scanFinite: false, globalFinite: true });
      checkStateFits(global.map((t) => t.shape));
      const avg = weightedMean(name, updates);
      const old = state?.slots ?? zeroSlots(global.map((t) => t.data.length));
      const next: Slots = old.map((slot) => slot.map((d) => new Float32Array(d.length)));
      const result = global.map((g, t) => {
        const out = new Float32Array(g.data.length);
        const bad = step(config, g.data, avg[t]!.data, old.map((s) => s[t]!), next.map((s) => s[t]!), out);
        if (bad >= 0) throw stepError(t, bad, g.data[bad]!, avg[t]!.data[bad]!);
        return tensorOf(g.shape, out);
      });
      state = { shapes: global.map((t) => [...t.shape]), slots: next };
      return result;
    },

    readsGlobal: true,

    beginRound(round, shapes) {
      open = undefined;
      if (!Number.isSafeInteger(round) || round < 0) throw invalid(`round must be an integer ≥ 0, got ${String(round)}`);
      if (!Array.isArray(shapes) || !shapes.every((s) => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0))) {
        throw invalid('shapes must be an array of shapes (arrays of integers ≥ 0)');
      }
      checkStateFits(shapes);
      const lengths = shapes.map((s) => elementCount(s));
      const starts = [0];
      for (const n of lengths) starts.push(starts[starts.length - 1]! + n);
      const next = zeroSlots(lengths);
      open = { round, shapes: shapes.map((s) => [...s]), starts, old: state?.slots, next, offset: 0, tensor: 0 };
    },

    stepSlice(offset, global, mean, round) {
      const r = open;
      if (r === undefined) throw outOfOrder('stepSlice outside beginRound/endRound');
      // Any failure abandons the round: the pending state may be half stepped.
      open = undefined;
      if (round !== r.round) throw outOfOrder(`stepSlice for round ${round} in round ${r.round}`);
      if (offset !== r.offset) throw outOfOrder(`slice at ${offset}, expected ${r.offset}: slices come in order and cover the model once`);
      const len = mean.length;
      const end = offset + len;
      const total = r.starts[r.starts.length - 1]!;
      if (global.length !== len) throw invalid(`the global slice has ${global.length} values, the mean's ${len}`);
      if (end > total) throw invalid(`slice [${offset}, ${end}) overruns the model (${total} values)`);
      const out = new Float32Array(len);
      const zeros = r.old === undefined ? new Float32Array(len) : undefined;
      let t = r.tensor;
      for (; t < r.shapes.length && r.starts[t]! < end; t++) {
        // Tensor t's values [lo, hi) are the slice's [from, to).
        const start = r.starts[t]!;
        const lo = Math.max(offset, start) - start;
        const hi = Math.min(end, r.starts[t + 1]!) - start;
        if (hi <= lo) continue;
        const from = start + lo - offset;
        const to = start + hi - offset;
        const g = global.subarray(from, to);
        const a = mean.subarray(from, to);
        const old = r.old?.map((s) => s[t]!.subarray(lo, hi)) ?? Array.from({ length: slotCount }, () => zeros!.subarray(from, to));
        const bad = step(config, g, a, old, r.next.map((s) => s[t]!.subarray(lo, hi)), out.subarray(from, to));
        if (bad >= 0) throw stepError(t, lo + bad, g[bad]!, a[bad]!);
      }
      // The last tensor touched may continue into the next slice.
      r.tensor = Math.max(r.tensor, t - 1);
      r.offset = end;
      open = r;
      return out;
    },

    endRound() {
      const r = open;
      open = undefined;
      if (r === undefined) throw outOfOrder('endRound without beginRound');
      const total = r.starts[r.starts.length - 1]!;
      if (r.offset !== total) throw outOfOrder(`the round's slices covered ${r.offset} of the model's ${total} values`);
      state = { shapes: r.shapes, slots: r.next };
    },

    exportState() {
      if (state === undefined) return [];
      const { shapes, slots } = state;
      return slots.flatMap((slot) => slot.map((d, t) => tensorOf(shapes[t]!, d.slice())));
    },

    importState(incoming) {
      open = undefined;
      if (!Array.isArray(incoming)) throw new FedlhsError('INVALID_ARGUMENT', `${name}: state must be an array of tensors`);
      if (incoming.length === 0) {
        state = undefined;
        return;
      }
      if (incoming.length % slotCount !== 0) {
        throw new FedlhsError('INVALID_ARGUMENT', `${name}: state must hold ${slotNames.join(' then ')} for every model tensor (${slotCount} per model tensor), got ${incoming.length} tensors`);
      }
      const perSlot = incoming.length / slotCount;
      const first = incoming.slice(0, perSlot);
      first.forEach((t, i) => checkTensor(`${name}: state ${slotNames[0]} tensor ${i}`, t));
      const slots: Slots = [];
      for (let s = 0; s < slotCount; s++) {
        const tensors = incoming.slice(s * perSlot, (s + 1) * perSlot);
        checkLikeModel(name, `state ${slotNames[s]}`, tensors, first);
        tensors.forEach((t, i) => {
          const j = findNonFinite(t.data);
          if (j >= 0) throw new FedlhsError('INVALID_ARGUMENT', `${name}: state ${slotNames[s]} tensor ${i} has a non-finite value (${t.data[j]}) at index ${j}`);
          if (slotNames[s] === 'v' && name !== 'fedavgm') {
            const neg = t.data.findIndex((x) => x < 0);
            if (neg >= 0) throw new FedlhsError('INVALID_ARGUMENT', `${name}: state v tensor ${i} has a negative value (${t.data[neg]}) at index ${neg}`);
          }
        });
        slots.push(tensors.map((t) => t.data.slice()));
      }
      state = { shapes: first.map((t) => [...t.shape]), slots };
    },
  };
}
