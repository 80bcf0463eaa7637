/**
 * The model runtime a clinic trains and evaluates with. Data crosses the boundary as flat
 * Float32Arrays, so callers never hold tfjs tensors and cannot leak them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FedlhsError, binaryAccuracy, elementCount, rocAuc, type EvalMetrics, type TensorSpec } from '@fedlhs/core';
import { buildModel, type BuiltModel, type ModelSpec } from './build.js';
import { createProximalTrainer, validateProximal, type ProximalOptions } from './proximal.js';
import { createPlainTrainer } from './fit-loop.js';
import { writeInPlace } from './in-place.js';
import { releaseIfLarge } from './release.js';
import { gatherRows, mulberry32, permutation } from './shuffle.js';

export type { ModelSpec } from './build.js';
export type { ProximalOptions } from './proximal.js';

/** Options of one local training run. */
export interface FitOptions {
  /** Passes over the data; a positive integer. */
  epochs: number;
  /** Examples per gradient step; a positive integer. */
  batchSize: number;
  /**
   * Called after each epoch with its 0-based index and mean training loss: the compiled loss
   * plus any layer regularizer penalties, averaged over the pass's examples. It never
   * includes the proximal term, so losses are comparable across FedAvg and FedProx.
   */
  onEpochEnd?: (epoch: number, loss: number) => void;
  /** Seeds the per-epoch shuffle so a run can be reproduced; a random seed if omitted. */
  shuffleSeed?: number;
  /**
   * Train exactly this many mini-batch steps instead of `epochs` passes (rows drawn from
   * successive shuffles), as FL benchmarks that fix local steps per round do.
   */
  steps?: number;
  /**
   * FedProx: when given with mu > 0, each step minimises loss(w) + (mu/2)·‖w − reference‖²
   * over the trainable weights, with the same batches and optimizer as without it. Absent or
   * mu = 0 trains as without it (results bit-identical to tfjs fit() over the same batch order);
   * a given term is validated either way.
   */
  proximal?: ProximalOptions;
}

/** A compiled model with flat-array inputs and weights. Call dispose() when done. */
export interface ModelRuntime {
  /** One spec per weight, named `<layer>/<weight>`, in the order of the flat weight vector. */
  readonly specs: TensorSpec[];
  /** Features per example; x arrays are row-major n × inputDim. */
  readonly inputDim: number;
  /** All weights concatenated in `specs` order (a copy). */
  getWeights(): Float32Array;
  /** Replaces all weights; throws INVALID_ARGUMENT unless `flat` has exactly the expected length. */
  setWeights(flat: Float32Array): void;
  /** Trains in place; resolves with the last epoch's mean loss (as reported to onEpochEnd). */
  fit(x: Float32Array, y: Float32Array, options: FitOptions): Promise<{ loss: number }>;
  /** Loss (the compiled loss), accuracy at 0.5 and ROC AUC of the predicted scores. */
  evaluate(x: Float32Array, y: Float32Array): Promise<EvalMetrics>;
  /** One score per row (a probability for sigmoid outputs). */
  predict(x: Float32Array): Promise<Float32Array>;
  /** Frees the model's weights and optimizer state. Idempotent. */
  dispose(): void;
}

/** Rows per forward pass in evaluate/predict: bounds peak memory on large evaluation sets. */
const INFERENCE_BATCH = 1024;

/**
 * Validates the topology against core's allow-lists, then builds and compiles the model. Uses
 * the backend chosen by initBackend(), initialising 'auto' if none was chosen.
 */
export async function createModelRuntime(spec: ModelSpec): Promise<ModelRuntime> {
  return new LayersRuntime(await buildModel(spec));
}

/** Builds the model once to read its freshly initialised weights, e.g. for round 0. */
export async function initialWeights(spec: ModelSpec): Promise<{ specs: TensorSpec[]; weights: Float32Array }> {
  const runtime = await createModelRuntime(spec);
  try {
    return { specs: runtime.specs, weights: runtime.getWeights() };
  } finally {
    runtime.dispose();
  }
}

/** `total` row indices: successive seeded shuffles of 0..n-1, the last one cut short. */
function stepOrder(n: number, total: number, random: () => number): Uint32Array {
  const order = new Uint32Array(total);
  for (let filled = 0; filled < total; ) {
    const perm = permutation(n, random);
    const take = Math.min(perm.length, total - filled);
    order.set(perm.subarray(0, take), filled);
    filled += take;
  }
  return order;
}

class LayersRuntime implements ModelRuntime {
  readonly specs: TensorSpec[];
  readonly inputDim: number;
  readonly #built: BuiltModel;
  readonly #length: number;
  #disposed = false;
  #training = false;

  constructor(built: BuiltModel) {
    this.#built = built;
    this.specs = built.specs;
    this.inputDim = built.inputDim;
    this.#length = built.specs.reduce((n, s) => n + elementCount(s.shape), 0);
  }

  getWeights(): Float32Array {
    this.#assertLive();
    const out = new Float32Array(this.#length);
    let offset = 0;
    for (const w of this.#built.model.weights) {
      const values = w.read().dataSync();
      out.set(values, offset);
      offset += values.length;
    }
    return out;
  }

  setWeights(flat: Float32Array): void {
    this.#assertIdle('setWeights');
    if (flat.length !== this.#length) {
      throw new FedlhsError('INVALID_ARGUMENT', `setWeights: expected ${this.#length} values for ${this.specs.length} tensors, got ${flat.length}`);
    }
    // tidy also frees what a weight constraint allocates inside LayerVariable.write().
    tf.tidy(() => {
      let offset = 0;
      for (const w of this.#built.model.weights) {
        const n = elementCount(w.shape as number[]);
        const values = flat.subarray(offset, offset + n);
        // Into the storage the model already holds where the backend allows (in-place.ts): a
        // new tensor would hold the old and new weights at once. Otherwise slice, not subarray:
        // the cpu backend keeps the array it is given as the tensor's storage.
        if (!writeInPlace(w.read() as tf.Variable, values, w.constraint != null)) {
          w.write(tf.tensor(values.slice(), w.shape as number[], 'float32'));
        }
        offset += n;
      }
    });
  }

  async fit(x: Float32Array, y: Float32Array, options: FitOptions): Promise<{ loss: number }> {
    this.#assertIdle('fit');
    const n = this.#rows(x, y, 'fit');
    if (n === 0) throw new FedlhsError('INVALID_ARGUMENT', 'fit: no training examples');
    for (const key of ['epochs', 'batchSize'] as const) {
      const v = options[key];
      if (!Number.isInteger(v) || v < 1) throw new FedlhsError('INVALID_ARGUMENT', `fit: ${key} must be a positive integer, got ${v}`);
    }
    const { steps, batchSize, proximal } = options;
    if (steps !== undefined && (!Number.isInteger(steps) || steps < 1)) throw new FedlhsError('INVALID_ARGUMENT', `fit: steps must be a positive integer, got ${steps}`);
    if (proximal !== undefined) validateProximal(proximal, this.#length, this.specs.length);
    const random = mulberry32(options.shuffleSeed ?? Math.floor(Math.random() * 2 ** 32));
    // mu = 0 is plain local training (fit-loop.ts), without a zero term.
    const trainer = proximal !== undefined && proximal.mu > 0 ? createProximalTrainer(this.#built, proximal) : createPlainTrainer(this.#built);
    // What the caller dropped before training (a large model's downloaded copy) goes before the
    // first gradient of the same size is allocated (release.ts).
    releaseIfLarge(this.#length * 4);
    this.#training = true;
    try {
      // With `steps`, one pass over steps × batchSize rows drawn from successive shuffles.
      const passes = steps === undefined ? options.epochs : 1;
      let loss = Number.NaN;
      for (let epoch = 0; epoch < passes; epoch++) {
        const order = steps === undefined ? permutation(n, random) : stepOrder(n, steps * batchSize, random);
        const rows = order.length;
        const xs = tf.tensor2d(gatherRows(x, this.inputDim, order), [rows, this.inputDim]);
        const ys = tf.tensor2d(gatherRows(y, 1, order), [rows, 1]);
        try {
          // Batches in the order of the seeded shuffle: what fit(shuffle: false) would run, faster.
          loss = await trainer.pass(xs, ys, batchSize);
        } finally {
          tf.dispose([xs, ys]);
        }
        options.onEpochEnd?.(epoch, loss);
      }
      return { loss };
    } finally {
      trainer.dispose();
      this.#training = false;
    }
  }

  async evaluate(x: Float32Array, y: Float32Array): Promise<EvalMetrics> {
    this.#assertLive();
    const n = this.#rows(x, y, 'evaluate');
    // Zero weight in example-weighted averages; a NaN loss would not survive JSON.
    if (n === 0) return { numExamples: 0, loss: 0, accuracy: 0, auc: undefined };
    const xs = tf.tensor2d(x, [n, this.inputDim]);
    const ys = tf.tensor2d(y, [n, 1]);
    try {
      const result = this.#built.model.evaluate(xs, ys, { batchSize: INFERENCE_BATCH });
      const lossTensors = Array.isArray(result) ? result : [result];
      let loss: number;
      try {
        loss = (await lossTensors[0]!.data())[0]!;
      } finally {
        tf.dispose(lossTensors);
      }
      const scores = await this.#scores(xs);
      return { numExamples: n, loss, accuracy: binaryAccuracy(scores, y), auc: rocAuc(scores, y) };
    } finally {
      tf.dispose([xs, ys]);
    }
  }

  async predict(x: Float32Array): Promise<Float32Array> {
    this.#assertLive();
    if (x.length % this.inputDim !== 0) {
      throw new FedlhsError('INVALID_ARGUMENT', `predict: x has ${x.length} values, not a multiple of inputDim ${this.inputDim}`);
    }
    const n = x.length / this.inputDim;
    if (n === 0) return new Float32Array(0);
    const xs = tf.tensor2d(x, [n, this.inputDim]);
    try {
      return await this.#scores(xs);
    } finally {
      xs.dispose();
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#assertIdle('dispose');
    this.#disposed = true;
    this.#built.model.dispose();
    this.#built.optimizer.dispose();
  }

  async #scores(xs: tf.Tensor2D): Promise<Float32Array> {
    const out = tf.tidy(() => tf.reshape(this.#built.model.predict(xs, { batchSize: INFERENCE_BATCH }) as tf.Tensor, [-1]));
    try {
      return Float32Array.from(await out.data());
    } finally {
      out.dispose();
    }
  }

  /** Number of examples, after checking x and y agree with each other and with inputDim. */
  #rows(x: Float32Array, y: Float32Array, op: string): number {
    if (x.length !== y.length * this.inputDim) {
      throw new FedlhsError('INVALID_ARGUMENT', `${op}: x has ${x.length} values, expected ${y.length} rows × ${this.inputDim} features = ${y.length * this.inputDim}`);
    }
    return y.length;
  }

  #assertLive(): void {
    if (this.#disposed) throw new FedlhsError('INVALID_STATE', 'the model runtime has been disposed');
  }

  #assertIdle(op: string): void {
    this.#assertLive();
    if (this.#training) throw new FedlhsError('INVALID_STATE', `${op}: the model is training; await fit() first`);
  }
}
