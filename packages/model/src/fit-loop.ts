/**
 * Plain local training without tfjs-layers fit()'s per-batch overhead. fit() gathers every
 * batch through an index tensor, runs its train function through a symbolic feed dictionary
 * and awaits a callback list (BaseLogger, History, the yielder) around each batch: on small
 * tabular models that is a fifth of the training time. The runtime has already put the rows
 * in its seeded order, so contiguous slices give the same batches; each step computes what
 * fit()'s train function computes (same ops, same order, the compiled optimizer), and the epoch
 * loss is summed and scaled with the tensor ops BaseLogger uses. Weights and reported losses
 * are bit-identical to fit(shuffle: false) over the same rows (fit-loop.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { FedlhsError } from '@fedlhs/core';
import type { BuiltModel } from './build.js';
import { minimize } from './in-place.js';

/** One pass over already-ordered rows; the contract shared with the FedProx trainer. */
export interface PassTrainer {
  /**
   * Runs one pass of mini-batches over the rows of `xs`/`ys` in order, the last batch partial
   * when `batchSize` does not divide the row count. Resolves with the pass's mean loss (batch
   * means weighted by batch size, as fit() reports it).
   */
  pass(xs: tf.Tensor2D, ys: tf.Tensor2D, batchSize: number): Promise<number>;
  /** Frees what the trainer holds. Idempotent. */
  dispose(): void;
}

/** How long a pass may hold the event loop before yielding; fit()'s own default is 125 ms. */
const YIELD_EVERY_MS = 125;

/**
 * A trainer over contiguous batches with the model's compiled optimizer (its state, e.g. Adam
 * moments, carries over between fits as with fit()), its loss and its layers' regularizers.
 */
export function createPlainTrainer(built: BuiltModel): PassTrainer {
  const { model, optimizer, lossFunction, optimizerSpec } = built;
  // LayerVariable.read() returns the tf.Variable itself, which the optimizer updates in place.
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Plain SGD steps write into the weights' own storage where the backend allows (in-place.ts).
  const sgd = optimizerSpec.name === 'sgd' ? optimizerSpec : undefined;
  const train = (xb: tf.Tensor, yb: tf.Tensor): tf.Scalar =>
    minimize(
      optimizer,
      () => {
        // What fit()'s train function computes: the compiled loss averaged over the batch,
        // plus any layer regularizer penalties.
        let loss = tf.mean(lossFunction(yb, model.apply(xb, { training: true }) as tf.Tensor)) as tf.Scalar;
        for (const penalty of model.calculateLosses()) loss = tf.add(loss, penalty);
        return loss;
      },
      vars,
      sgd,
    );
  return {
    async pass(xs, ys, batchSize) {
      const rows = xs.shape[0];
      // Σ batch loss × batch size on the backend, as BaseLogger keeps it (starting from the number 0).
      let total: tf.Tensor | undefined;
      try {
        let lastYield = performance.now();
        for (let start = 0; start < rows; start += batchSize) {
          const size = Math.min(batchSize, rows - start);
          // Only the loss scalar leaves the scope: the slices and what the tape kept are freed.
          const loss = tf.tidy(() => train(tf.slice(xs, [start, 0], [size, -1]), tf.slice(ys, [start, 0], [size, -1])));
          const previous = total;
          total = tf.tidy(() => tf.add(previous ?? 0, tf.mul(loss, size)));
          tf.dispose(previous === undefined ? [loss] : [previous, loss]);
          // Like fit(), let timers and I/O (e.g. gRPC keepalives) run during long passes.
          if (performance.now() - lastYield >= YIELD_EVERY_MS) {
            await tf.nextFrame();
            lastYield = performance.now();
          }
        }
        if (total === undefined) throw new FedlhsError('INTERNAL', 'a training pass had no rows');
        const sum = total;
        // BaseLogger's epoch mean: (1 / seen) × total, in float32 on the backend.
        const mean = tf.tidy(() => tf.mul(tf.div(1, rows), sum));
        try {
          return (await mean.data())[0]!;
        } finally {
          mean.dispose();
        }
      } finally {
        total?.dispose();
      }
    },
    dispose() {},
  };
}
