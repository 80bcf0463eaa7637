/**
 * FedProx local training (Li et al., "Federated Optimization in Heterogeneous Networks",
 * MLSys 2020): each mini-batch step minimises loss(w) + (mu/2)·‖w − w_ref‖², which keeps a
 * clinic's update near the global model it started from. tfjs-layers' fit() cannot add a
 * term that depends on the weights, so this is a custom loop that otherwise does what fit()
 * does: same batches, same optimizer instance, same training-mode forward pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { FedlhsError, elementCount } from '@fedlhs/core';
import type { BuiltModel } from './build.js';
import { minimize } from './in-place.js';

/**
 * FedProx's proximal term. Only trainable weights are pulled towards the reference: weights
 * the optimizer never updates (BatchNormalization moving statistics, layers with
 * `trainable: false`) are not part of the term, and their entries in `reference` are ignored.
 */
export interface ProximalOptions {
  /** Strength of the pull towards `reference`; finite and ≥ 0. 0 trains exactly as without the term. */
  mu: number;
  /**
   * The global weights received this round, in the flat `specs` layout of getWeights() and
   * setWeights(); every value finite.
   */
  reference: Float32Array;
}

/** Trains passes over already-ordered rows with the proximal term; dispose() when the fit ends. */
export interface ProximalTrainer {
  /**
   * Runs one pass of mini-batches over the rows of `xs`/`ys` in order, the last batch
   * partial when `batchSize` does not divide the row count (as tfjs fit() does). Resolves
   * with the mean data loss over the pass (batch means weighted by batch size, as fit()
   * reports it), without the proximal term.
   */
  pass(xs: tf.Tensor2D, ys: tf.Tensor2D, batchSize: number): Promise<number>;
  /** Frees the reference tensors. Idempotent. */
  dispose(): void;
}

/** How long a pass may hold the event loop before yielding; tfjs fit() uses the same 125 ms. */
const YIELD_EVERY_MS = 125;

/** Throws INVALID_ARGUMENT unless `proximal` is usable with a flat weight vector of `length` values. */
export function validateProximal(proximal: ProximalOptions, length: number, tensors: number): void {
  const { mu, reference } = proximal;
  if (typeof mu !== 'number' || !Number.isFinite(mu) || mu < 0) {
    throw new FedlhsError('INVALID_ARGUMENT', `fit: proximal.mu must be a finite number ≥ 0, got ${String(mu)}`);
  }
  if (!(reference instanceof Float32Array)) {
    throw new FedlhsError('INVALID_ARGUMENT', 'fit: proximal.reference must be a Float32Array');
  }
  if (reference.length !== length) {
    throw new FedlhsError('INVALID_ARGUMENT', `fit: proximal.reference has ${reference.length} values, expected ${length} for ${tensors} tensors`);
  }
  const bad = reference.findIndex((v) => !Number.isFinite(v));
  if (bad !== -1) throw new FedlhsError('INVALID_ARGUMENT', `fit: proximal.reference[${bad}] is ${reference[bad]}, not a finite number`);
}

/**
 * Prepares proximal training of a built model with its own optimizer (the one it was compiled
 * with), so optimizer state (Adam moments, iteration count) carries over exactly as in the
 * fit() path. `proximal` must have passed validateProximal() for `model.weights`. Copies the
 * trainable part of the reference into tensors once; they live until dispose().
 */
export function createProximalTrainer(built: BuiltModel, proximal: ProximalOptions): ProximalTrainer {
  const { model, optimizer, lossFunction, optimizerSpec } = built;
  // Plain SGD steps write into the weights' own storage where the backend allows (in-place.ts).
  const sgd = optimizerSpec.name === 'sgd' ? optimizerSpec : undefined;
  const offsets = new Map<tfl.LayerVariable, number>();
  let offset = 0;
  for (const w of model.weights) {
    offsets.set(w, offset);
    offset += elementCount(w.shape as number[]);
  }
  const trainable = model.trainableWeights;
  // LayerVariable.read() returns the tf.Variable itself, which the optimizer updates in place.
  const vars = trainable.map((w) => w.read() as tf.Variable);
  const starts = trainable.map((w) => {
    const start = offsets.get(w);
    if (start === undefined) throw new FedlhsError('INTERNAL', `trainable weight ${w.name} is not among the model's weights`);
    return start;
  });
  // slice, not subarray: the cpu backend keeps the array it is given as the tensor's storage.
  const refs = trainable.map((w, i) => {
    const shape = w.shape as number[];
    return tf.tensor(proximal.reference.slice(starts[i], starts[i]! + elementCount(shape)), shape, 'float32');
  });
  const halfMu = proximal.mu / 2;
  let disposed = false;

  /** One optimizer step on rows [start, start + size); returns the batch's data loss. */
  const step = (xs: tf.Tensor2D, ys: tf.Tensor2D, start: number, size: number): tf.Scalar =>
    tf.tidy(() => {
      const xb = tf.slice(xs, [start, 0], [size, -1]);
      const yb = tf.slice(ys, [start, 0], [size, -1]);
      const kept: { loss?: tf.Scalar } = {};
      try {
        // The total's value is not needed: the data loss leaves through `kept`.
        minimize(
          optimizer,
          () => {
            const out = model.apply(xb, { training: true }) as tf.Tensor;
            // As tfjs fit() does: the compiled loss averaged over the batch, plus any layer
            // regularizer penalties.
            let loss = tf.mean(lossFunction(yb, out)) as tf.Scalar;
            for (const penalty of model.calculateLosses()) loss = tf.add(loss, penalty);
            // Kept past the gradient tape's scope so the loss can be reported without the term.
            kept.loss = tf.keep(loss);
            const distance = tf.addN(vars.map((v, i) => tf.sum(tf.squaredDifference(v, refs[i]!))));
            return tf.add(loss, tf.mul(distance, halfMu));
          },
          vars,
          sgd,
        ).dispose();
      } catch (err) {
        kept.loss?.dispose();
        throw err;
      }
      if (kept.loss === undefined) throw new FedlhsError('INTERNAL', 'the optimizer did not evaluate the loss');
      return kept.loss;
    });

  return {
    async pass(xs, ys, batchSize) {
      if (disposed) throw new FedlhsError('INVALID_STATE', 'the proximal trainer has been disposed');
      const rows = xs.shape[0];
      // Σ batch loss × batch size, kept on the backend so no step waits for a readback.
      let total: tf.Scalar = tf.scalar(0);
      try {
        let lastYield = performance.now();
        for (let start = 0; start < rows; start += batchSize) {
          const size = Math.min(batchSize, rows - start);
          const loss = step(xs, ys, start, size);
          const previous = total;
          total = tf.tidy(() => tf.add(previous, tf.mul(loss, size)));
          tf.dispose([previous, loss]);
          // Like fit(), let timers and I/O (e.g. gRPC keepalives) run during long passes.
          if (performance.now() - lastYield >= YIELD_EVERY_MS) {
            await tf.nextFrame();
            lastYield = performance.now();
          }
        }
        return (await total.data())[0]! / rows;
      } finally {
        total.dispose();
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      tf.dispose(refs);
    },
  };
}
