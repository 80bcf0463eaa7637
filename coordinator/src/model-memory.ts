import type { Strategy } from '@fedlhs/core';

/**
 * What a study's model costs the coordinator in memory, so that `study start` can refuse a model
 * that does not fit limits.modelMemoryBytes before anything is allocated (issue 11: 100M
 * parameters froze the coordinator for 8 s while it built the model; 420M got it killed).
 *
 * The factors, in multiples of the model's float32 bytes (4 × parameters):
 * - building the initial model (TF.js layers, seeded initialisers, then the weights copied out):
 *   6, measured (peak RSS over the process before it, wasm backend, 10M and 25M parameters:
 *   5.99 and 6.02). Transient, at `study start` only.
 * - a round of a weighted-mean strategy (fedavg, fedprox, fedavgm, fedadagrad, fedadam,
 *   fedyogi): the float64 running sum of the updates (2), one whole model for a strategy without
 *   slice steps and for checkpoint work (1), and per slot of server state (fedavgm and fedadagrad
 *   1, fedadam and fedyogi 2) the state itself, its pending copy while the round steps, the
 *   copy kept to undo a round that does not commit, and the export written as the state
 *   checkpoint (4 per slot). Uploads, downloads and the base model are read in chunks: O(chunk).
 * - a round of an order-statistic strategy (fedmedian, trimmed-mean, krum, multi-krum, bulyan):
 *   the held updates stay in their spooled files and are read slice by slice
 *   (`Strategy.sliceRound`, aggregation.ts): one whole model for checkpoint work (1), plus a
 *   fixed `SLICE_ROUND_BYTES_PER_CLIENT` per client (its slice read, its clipped copy), whatever
 *   the model's size. A strategy without `sliceRound` would hold every update of the round
 *   (clients.max), the base model, the result and its concatenation (clients.max + 3).
 * The estimate is the largest of building and a round.
 */
export const BUILD_FACTOR = 6;

/**
 * What a slice-wise order-statistic round holds per client beside the model: the slice read
 * from its spooled update and a clipped copy of it (two 4 MiB slices, aggregation.ts).
 */
export const SLICE_ROUND_BYTES_PER_CLIENT = 2 * 4 * 1024 * 1024;

/** Server-state slots per weighted-mean strategy (server-optimizers.ts); 0 for the others. */
const STATE_SLOTS: Readonly<Record<string, number>> = { fedavgm: 1, fedadagrad: 1, fedadam: 2, fedyogi: 2 };

/** A study's peak memory: `factor` × the model's float32 bytes, plus `fixedBytes` whatever the model's size. */
export interface MemoryEstimate {
  readonly factor: number;
  readonly fixedBytes: number;
}

/** What a study needs at its peak (see the module comment). */
export function memoryEstimate(strategy: Pick<Strategy, 'name' | 'input' | 'sliceRound'>, clientsMax: number): MemoryEstimate {
  if (strategy.input === 'all-updates') {
    if (strategy.sliceRound === undefined) return { factor: Math.max(BUILD_FACTOR, clientsMax + 3), fixedBytes: 0 };
    return { factor: BUILD_FACTOR, fixedBytes: clientsMax * SLICE_ROUND_BYTES_PER_CLIENT };
  }
  return { factor: Math.max(BUILD_FACTOR, 3 + 4 * (STATE_SLOTS[strategy.name] ?? 0)), fixedBytes: 0 };
}

/** The estimate in bytes for a model of `parameters` float32 values. */
export const estimateBytes = (estimate: MemoryEstimate, parameters: number): number => parameters * 4 * estimate.factor + estimate.fixedBytes;

type Shape = number[];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown): number | undefined {
  const n = Array.isArray(v) ? v[0] : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

const product = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/**
 * The number of parameters (every weight TF.js creates, trainable or not) of a validated
 * `Sequential` topology (core topology.ts), from the layer configurations alone: no tensor is
 * allocated. Undefined when a shape cannot be followed (e.g. an unknown input dimension); the
 * caller then checks the built model instead.
 */
export function topologyParameters(topology: unknown): number | undefined {
  if (!isRecord(topology) || !isRecord(topology['config']) || !Array.isArray(topology['config']['layers'])) return undefined;
  let shape: Shape | undefined;
  let params = 0;
  for (const layer of topology['config']['layers'] as unknown[]) {
    if (!isRecord(layer) || !isRecord(layer['config'])) return undefined;
    const c = layer['config'];
    const declared = Array.isArray(c['batch_input_shape']) ? (c['batch_input_shape'] as unknown[]).slice(1) : Array.isArray(c['input_shape']) ? (c['input_shape'] as unknown[]) : undefined;
    if (declared !== undefined) {
      const dims = declared.map(positiveInt);
      if (dims.some((d) => d === undefined)) return undefined;
      shape = dims as Shape;
    }
    if (shape === undefined || shape.length === 0) return undefined;
    const last = shape[shape.length - 1]!;
    const bias = c['use_bias'] !== false;
    switch (layer['class_name']) {
      case 'InputLayer':
      case 'Dropout':
      case 'Activation':
        break;
      case 'Dense': {
        const units = positiveInt(c['units']);
        if (units === undefined) return undefined;
        params += last * units + (bias ? units : 0);
        shape = [...shape.slice(0, -1), units];
        break;
      }
      case 'BatchNormalization':
        params += last * ((c['center'] === false ? 0 : 1) + (c['scale'] === false ? 0 : 1) + 2);
        break;
      case 'LayerNormalization':
        params += last * ((c['center'] === false ? 0 : 1) + (c['scale'] === false ? 0 : 1));
        break;
      case 'Flatten':
        shape = [product(shape)];
        break;
      case 'Reshape': {
        const target = Array.isArray(c['target_shape']) ? (c['target_shape'] as unknown[]).map(positiveInt) : [];
        if (target.length === 0 || target.some((d) => d === undefined)) return undefined;
        shape = target as Shape;
        break;
      }
      case 'Conv1D': {
        const filters = positiveInt(c['filters']);
        const kernel = positiveInt(c['kernel_size']);
        if (filters === undefined || kernel === undefined || shape.length !== 2) return undefined;
        params += kernel * last * filters + (bias ? filters : 0);
        const stride = positiveInt(c['strides']) ?? 1;
        const dilation = positiveInt(c['dilation_rate']) ?? 1;
        const span = (kernel - 1) * dilation + 1;
        const length = c['padding'] === 'same' ? Math.ceil(shape[0]! / stride) : Math.floor((shape[0]! - span) / stride) + 1;
        if (length < 1) return undefined;
        shape = [length, filters];
        break;
      }
      case 'MaxPooling1D': {
        const pool = positiveInt(c['pool_size']) ?? 2;
        const stride = positiveInt(c['strides']) ?? pool;
        if (shape.length !== 2) return undefined;
        const length = c['padding'] === 'same' ? Math.ceil(shape[0]! / stride) : Math.floor((shape[0]! - pool) / stride) + 1;
        if (length < 1) return undefined;
        shape = [length, last];
        break;
      }
      case 'GlobalAveragePooling1D':
        if (shape.length !== 2) return undefined;
        shape = [last];
        break;
      default:
        return undefined;
    }
    if (!Number.isSafeInteger(params)) return undefined;
  }
  return params;
}
