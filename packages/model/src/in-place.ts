/**
 * Weight writes without a second copy of the model, on the JavaScript cpu backend. tfjs never
 * updates a tensor in place: loading a model allocates new storage beside the old, and each SGD
 * step computes −lr·g and then −lr·g + w as two more model-sized arrays before the variable lets
 * go of w, so a 1 GiB model briefly needs 4 GiB. The cpu backend keeps each tensor's values in
 * one Float32Array and counts the tensors that share it; when a variable alone uses its array,
 * writing into that array is what the op sequence would have produced, without the copies. On
 * any other backend, or when the array is shared, callers take tfjs' own path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FedlhsError } from '@fedlhs/core';
import { LARGE_BYTES, releaseIfLarge } from './release.js';

/** What the cpu backend keeps per data id (tfjs-backend-cpu's DataStorage entries). */
interface CpuEntry {
  values?: unknown;
  refCount?: number;
}

/**
 * The Float32Array the cpu backend stores `t`'s values in, when `t` is float32 and no other
 * tensor shares that storage (writing into it then changes `t` alone); undefined otherwise,
 * including on every other backend (where a read is a copy and writing to it changes nothing).
 */
export function exclusiveStorage(t: tf.Tensor): Float32Array | undefined {
  if (t.dtype !== 'float32' || t.isDisposed || tf.getBackend() !== 'cpu') return undefined;
  const data = (tf.backend() as unknown as { data?: { get(id: unknown): CpuEntry | undefined } }).data;
  const entry = data?.get(t.dataId);
  if (entry === undefined || entry.refCount !== 1) return undefined;
  const values = entry.values;
  // refCount does not see every sharing (review ragm): a tensor made from tf.slice holds a
  // subarray view of another tensor's storage under its own data id. Only an array that owns its
  // whole buffer is written. (A slice or a dataSync() array of a weight kept by a caller across
  // a fit or setWeights would still see the write: nothing in fedlhs keeps one.)
  if (!(values instanceof Float32Array) || values.length !== t.size) return undefined;
  return values.byteOffset === 0 && values.byteLength === values.buffer.byteLength ? values : undefined;
}

/**
 * One SGD step as tfjs' SGDOptimizer.applyGradients computes it on the cpu backend,
 * w ← add(mul(−lr, g), w) with each op's result rounded to float32, written into w's own
 * storage. `negLr` is the optimizer's float32 constant, Math.fround(−learningRate). Returns
 * false, touching nothing, when w's storage is not exclusively its own (tfjs' path then).
 */
export function sgdStepInPlace(variable: tf.Variable, gradient: tf.Tensor, negLr: number): boolean {
  const w = exclusiveStorage(variable);
  if (w === undefined || gradient.dtype !== 'float32' || gradient.size !== w.length) return false;
  // A read of the gradient: on cpu its own storage, no copy.
  const g = gradient.dataSync() as Float32Array;
  for (let i = 0; i < w.length; i++) w[i] = Math.fround(negLr * g[i]!) + w[i]!;
  return true;
}

/**
 * Writes `values` into a variable's own storage (a copy into memory the model already holds),
 * when the cpu backend lets it and no constraint would have rewritten the value (tfjs-layers
 * LayerVariable.write applies one); false otherwise, with nothing written.
 */
export function writeInPlace(variable: tf.Variable, values: Float32Array, hasConstraint: boolean): boolean {
  if (hasConstraint) return false;
  const w = exclusiveStorage(variable);
  if (w === undefined || w.length !== values.length) return false;
  w.set(values);
  return true;
}

let warnedFallback = false;

/**
 * Says once per process when a large weight (LARGE_BYTES or more) takes tfjs' own SGD step on
 * the cpu backend (its storage shared, or tfjs-backend-cpu's internals changed): memory is then
 * about five times the model again. A process warning: the agent copies those into its log.
 */
function warnLargeFallback(v: tf.Variable): void {
  if (warnedFallback || v.size * 4 < LARGE_BYTES) return;
  warnedFallback = true;
  process.emitWarning(`weight ${v.name} (${v.size * 4} bytes) took tfjs' own SGD step on the cpu backend, not the in-place one (its storage is shared, or tfjs-backend-cpu changed): local training needs about five times the model's memory`, { code: 'FEDLHS_TRAINING_NOT_IN_PLACE' });
}

/**
 * `optimizer.minimize(f, true, vars)` (the loss returned, gradients freed), except that plain SGD
 * on the cpu backend writes each step into the weights' own storage and frees each gradient
 * as soon as it is applied: a step then holds the model and one gradient, not the model four
 * times. The weights are bit-identical to tfjs' SGD (in-place.test.ts, fit-loop.test.ts).
 * `sgd`: the optimizer's spec when `optimizer` is the plain SGD built from it; undefined otherwise.
 */
export function minimize(optimizer: tf.Optimizer, f: () => tf.Scalar, vars: tf.Variable[], sgd: { learningRate: number } | undefined): tf.Scalar {
  if (sgd === undefined || tf.getBackend() !== 'cpu') {
    const value = optimizer.minimize(f, true, vars);
    if (value === null) throw new FedlhsError('INTERNAL', 'the optimizer returned no loss');
    // On cpu tfjs' own step leaves the old weights and its temporaries as garbage.
    if (tf.getBackend() === 'cpu') releaseIfLarge(vars.reduce((n, v) => n + v.size * 4, 0));
    return value;
  }
  // tfjs keeps −lr as a float32 scalar (SGDOptimizer's `c`).
  const negLr = Math.fround(-sgd.learningRate);
  const { value, grads } = optimizer.computeGradients(f, vars);
  let freed = 0;
  try {
    const rest: tf.NamedTensorMap = {};
    for (const v of vars) {
      const g = grads[v.name];
      // SGD skips a variable without a gradient, as applyGradients does.
      if (g === undefined || g === null) continue;
      freed += g.size * 4;
      if (sgdStepInPlace(v, g, negLr)) g.dispose();
      else {
        rest[v.name] = g;
        warnLargeFallback(v);
      }
    }
    // applyGradients counts the step once; so does the in-place path when it took every variable.
    if (Object.keys(rest).length > 0) optimizer.applyGradients(rest);
    else (optimizer as unknown as { incrementIterations(): void }).incrementIterations();
  } catch (err) {
    value.dispose();
    throw err;
  } finally {
    tf.dispose(grads);
  }
  // The gradients are dead: a large model's are returned before anything else model-sized is allocated.
  releaseIfLarge(freed);
  return value;
}
