/**
 * Turns a validated study topology into a compiled tfjs LayersModel, with weight names that
 * are the same in every process that builds it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FedlhsError, bundleLength, validateSpecs, validateTopology, type TensorSpec } from '@fedlhs/core';
import { fallBackToCpu, initBackend } from './backend.js';
import { seedInitializers, validateInitializers } from './initializers.js';
import { releaseIfLarge } from './release.js';

/** What a study says about its model: the layers topology and how to train it. */
export interface ModelSpec {
  /** A tfjs-layers `modelTopology` (a Sequential), checked against core's allow-lists. */
  topology: Record<string, unknown>;
  /** The compiled loss, also what evaluate() reports. */
  loss: 'binaryCrossentropy' | 'meanSquaredError';
  /** A fresh optimizer per runtime: its state (e.g. Adam moments) is never shared. */
  optimizer: { name: 'sgd' | 'adam' | 'rmsprop' | 'adagrad'; learningRate: number };
  /**
   * Seeds every random initialiser (a kernel left to tfjs is GlorotUniform), so the same study
   * builds the same initial weights in every process. Unseeded if absent. See `seedInitializers`.
   */
  seed?: number | undefined;
}

/** A compiled model plus what the runtime needs to know about it. */
export interface BuiltModel {
  model: tfl.LayersModel;
  /** Owned by us, not by the model: tfjs only disposes optimizers it created from a name. */
  optimizer: tf.Optimizer;
  specs: TensorSpec[];
  inputDim: number;
  /** The per-example loss compile() resolved `ModelSpec.loss` to, for custom training loops. */
  lossFunction: LossFunction;
  /** What `optimizer` was made from: the training loops update plain SGD's weights in place (in-place.ts). */
  optimizerSpec: ModelSpec['optimizer'];
}

/** Per-example loss: [batch, 1] targets and predictions to a [batch] tensor. */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

const OPTIMIZERS: Record<ModelSpec['optimizer']['name'], (lr: number) => tf.Optimizer> = {
  sgd: (lr) => tf.train.sgd(lr),
  adam: (lr) => tf.train.adam(lr),
  rmsprop: (lr) => tf.train.rmsprop(lr),
  adagrad: (lr) => tf.train.adagrad(lr),
};
type ModelJson = Parameters<typeof tfl.models.modelFromJSON>[0];
/**
 * The functions compile() looks these names up to; a Sequential does not expose its compiled
 * loss functions, but tfjs-layers exports the same ones under `metrics`.
 */
const LOSS_FUNCTIONS: Record<ModelSpec['loss'], LossFunction> = {
  binaryCrossentropy: tfl.metrics.binaryCrossentropy,
  meanSquaredError: tfl.metrics.meanSquaredError,
};
const LOSSES: readonly string[] = Object.keys(LOSS_FUNCTIONS);

/** MANIFEST_INVALID naming the manifest path at fault, in the message and in `details.path`. */
function manifestInvalid(path: string, message: string, options: { cause?: unknown } = {}): FedlhsError<'MANIFEST_INVALID'> {
  return new FedlhsError('MANIFEST_INVALID', `${path}: ${message}`, { details: { path }, cause: options.cause });
}

/**
 * Validates the spec, then builds and compiles the model on the active backend (initialising
 * 'auto' if nothing chose one yet). Nothing is built from a topology core has not accepted.
 */
export async function buildModel(spec: ModelSpec): Promise<BuiltModel> {
  validateTopology(spec.topology);
  validateInitializers(spec.topology);
  const lossFunction = Object.hasOwn(LOSS_FUNCTIONS, spec.loss) ? LOSS_FUNCTIONS[spec.loss] : undefined;
  if (lossFunction === undefined) {
    throw manifestInvalid('training.loss', `${JSON.stringify(spec.loss)} is not one of ${LOSSES.join(', ')}`);
  }
  const makeOptimizer = Object.hasOwn(OPTIMIZERS, spec.optimizer.name) ? OPTIMIZERS[spec.optimizer.name] : undefined;
  if (makeOptimizer === undefined) {
    throw manifestInvalid('training.optimizer.name', `${JSON.stringify(spec.optimizer.name)} is not one of ${Object.keys(OPTIMIZERS).join(', ')}`);
  }
  const lr = spec.optimizer.learningRate;
  if (!Number.isFinite(lr) || lr <= 0) {
    throw manifestInvalid('training.optimizer.learningRate', `must be a positive number, got ${lr}`);
  }
  await initBackend();

  let model: tfl.LayersModel;
  try {
    // tfjs types parsed JSON as PyJsonDict; core has already checked this object's structure.
    model = await tfl.models.modelFromJSON({ modelTopology: withLayerNames(spec.topology, spec.seed) } as unknown as ModelJson);
  } catch (err) {
    throw manifestInvalid('model.topology', `tfjs cannot build it: ${messageOf(err)}`, { cause: err });
  }
  const optimizer = makeOptimizer(lr);
  try {
    const inputDim = checkShapes(model);
    const specs = weightSpecs(model);
    model.compile({ optimizer, loss: spec.loss });
    await probeTraining(model, inputDim);
    // The probe's gradients (model-sized) are garbage now; a large model's go before its weights arrive (release.ts).
    releaseIfLarge(bundleLength(specs) * 4);
    return { model, optimizer, specs, inputDim, lossFunction, optimizerSpec: { name: spec.optimizer.name, learningRate: lr } };
  } catch (err) {
    model.dispose();
    optimizer.dispose();
    throw err;
  }
}

/**
 * tfjs names unnamed layers from a process-wide counter ('dense_Dense3'), so the same
 * topology would get different weight names in the coordinator and in each clinic. Name them
 * from their position instead, and seed the initialisers from the study seed.
 */
function withLayerNames(topology: Record<string, unknown>, seed: number | undefined): Record<string, unknown> {
  const copy = structuredClone(topology);
  const layers = (copy['config'] as { layers: { class_name: string; config: Record<string, unknown> }[] }).layers;
  if (seed !== undefined) seedInitializers(layers, seed);
  layers.forEach((layer, i) => {
    const name = layer.config['name'];
    if (typeof name !== 'string' || name.length === 0) {
      layer.config['name'] = `${layer.class_name.replace(/([a-z0-9])([A-Z][a-z])/g, '$1_$2').toLowerCase()}_${i}`;
    }
  });
  return copy;
}

/** The runtime feeds [batch, features] rows and reads one score per row. */
function checkShapes(model: tfl.LayersModel): number {
  const inputs = model.inputs.map((t) => t.shape);
  const outputs = model.outputs.map((t) => t.shape);
  const input = inputs[0];
  const inputDim = input?.[1];
  if (inputs.length !== 1 || input?.length !== 2 || typeof inputDim !== 'number' || inputDim < 1) {
    throw manifestInvalid('model.topology', `the model must take one 2-D input [batch, features], it takes ${JSON.stringify(inputs)}`);
  }
  const output = outputs[0];
  if (outputs.length !== 1 || output?.length !== 2 || output[1] !== 1) {
    throw manifestInvalid('model.topology', `the model must produce one [batch, 1] output, it produces ${JSON.stringify(outputs)}`);
  }
  return inputDim;
}

/**
 * One spec per weight in `model.weights` order, named `<layer>/<weight>`. The variable's own
 * name is not used: tfjs appends '_1', '_2'… when a process builds the same layers twice.
 */
function weightSpecs(model: tfl.LayersModel): TensorSpec[] {
  const names = new Map<tfl.LayerVariable, string>();
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      const shortName = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
      names.set(w, `${layer.name}/${shortName}`);
    }
  }
  const specs = model.weights.map((w) => {
    const name = names.get(w);
    if (name === undefined) throw new FedlhsError('INTERNAL', `weight ${w.name} belongs to no layer of the model`);
    if (w.dtype !== 'float32') throw manifestInvalid('model.topology', `weight ${name} is ${w.dtype}; only float32 weights are supported`);
    return { name, shape: [...w.shape] as number[] };
  });
  try {
    validateSpecs(specs);
  } catch (err) {
    throw manifestInvalid('model.topology', messageOf(err), { cause: err });
  }
  return specs;
}

/**
 * Runs one forward and backward pass on a zero row, so a kernel the backend lacks fails here
 * rather than mid-round. The wasm backend has no Conv2DBackpropFilter (needed to train
 * Conv1D); under 'auto' the process then moves to cpu. Inference mode keeps
 * BatchNormalization's moving statistics untouched; nothing is written to any weight.
 */
async function probeTraining(model: tfl.LayersModel, inputDim: number, retried = false): Promise<void> {
  // LayerVariable.read() returns the underlying tf.Variable, which is what variableGrads takes.
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  if (vars.length === 0) throw manifestInvalid('model.topology', 'the model has no trainable weights');
  try {
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.mean(tf.square(model.apply(tf.zeros([1, inputDim])) as tf.Tensor)) as tf.Scalar, vars);
      for (const g of Object.values(grads)) g.dataSync();
    });
  } catch (err) {
    discardFailedTape();
    const missing = /Kernel '([^']+)' not registered for backend '([^']+)'/.exec(messageOf(err));
    if (missing === null) throw manifestInvalid('model.topology', `the model cannot be trained: ${messageOf(err)}`, { cause: err });
    const reason = `kernel ${missing[1]} is missing on the ${missing[2]} backend`;
    if (!retried && (await fallBackToCpu(`${reason}; needed by this study's model`))) return probeTraining(model, inputDim, true);
    throw new FedlhsError('BACKEND_UNAVAILABLE', `this model cannot be trained here: ${reason}; initialise the cpu or tensorflow backend instead`, {
      cause: err,
      details: { backend: missing[2] },
    });
  }
}

/**
 * When a backward pass throws, tfjs leaves its gradient tape behind with the tensors it kept
 * for backprop; they would never be freed. Release them the way a successful pass does.
 */
function discardFailedTape(): void {
  const state = tf.engine().state;
  if (state.gradientDepth !== 0 || state.activeTape == null) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  // The engine itself resets the tape to null after a successful backward pass.
  (state as { activeTape: unknown }).activeTape = null;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
