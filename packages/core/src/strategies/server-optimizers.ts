import { FedlhsError } from '../errors.js';
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
 */
export function createServerOptimizer(config: ServerOptimizerConfig): Strategy {
  const name = config.name;
  const slotCount = name === 'fedavgm' ? 1 : 2;
  const slotNames = name === 'fedavgm' ? ['v'] : ['m', 'v'];
  let state: State | undefined;

  return {
    name,
    config,
    input: 'weighted-mean',
    minUpdates: 1,

    aggregate(global, updates, round) {
      checkAggregateInputs(name, global, updates, round, { minUpdates: 1, scanFinite: false, globalFinite: true });
      if (state !== undefined) {
        const { shapes } = state;
        if (shapes.length !== global.length) {
          throw new FedlhsError('INVALID_ARGUMENT', `${name}: the server state is for ${shapes.length} tensors, the model has ${global.length}`);
        }
        shapes.forEach((shape, t) => {
          const model = global[t]!.shape;
          if (!sameShape(shape, model)) {
            throw new FedlhsError('INVALID_ARGUMENT', `${name}: the server state of tensor ${t} has shape ${shapeText(shape)}, the model's is ${shapeText(model)}`);
          }
        });
      }
      const avg = weightedMean(name, updates);
      const old = state?.slots ?? Array.from({ length: slotCount }, () => global.map((t) => new Float32Array(t.data.length)));
      const next: Slots = old.map((slot) => slot.map((d) => new Float32Array(d.length)));
      const result = global.map((g, t) => {
        const out = new Float32Array(g.data.length);
        const bad = step(config, g.data, avg[t]!.data, old.map((s) => s[t]!), next.map((s) => s[t]!), out);
        if (bad >= 0) {
          throw new FedlhsError(
            'INVALID_ARGUMENT',
            `${name}: the step overflows float32 at tensor ${t} index ${bad} (global ${g.data[bad]}, mean update ${avg[t]!.data[bad]})`,
          );
        }
        return tensorOf(g.shape, out);
      });
      state = { shapes: global.map((t) => [...t.shape]), slots: next };
      return result;
    },

    exportState() {
      if (state === undefined) return [];
      const { shapes, slots } = state;
      return slots.flatMap((slot) => slot.map((d, t) => tensorOf(shapes[t]!, d.slice())));
    },

    importState(incoming) {
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
