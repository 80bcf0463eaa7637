/**
 * The weight layout a third-party agent reads from common.proto (TensorSpec): tensor names,
 * order, shapes and kernel orientation. A forward pass computed here from nothing but that text
 * and the flat float32 vector must agree with tfjs's own predict on the same weights.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { createModelRuntime, type ModelSpec } from './model.js';
import { mulberry32 } from './shuffle.js';

const INPUT = 12;

/** Unnamed layers except one, so the naming rule for unnamed layers is exercised. */
const spec: ModelSpec = {
  topology: {
    class_name: 'Sequential',
    config: {
      layers: [
        { class_name: 'Dense', config: { units: 6, activation: 'relu', batch_input_shape: [null, INPUT] } },
        { class_name: 'BatchNormalization', config: {} },
        { class_name: 'Reshape', config: { target_shape: [3, 2] } },
        { class_name: 'Conv1D', config: { filters: 4, kernel_size: 2, activation: 'linear' } },
        { class_name: 'Flatten', config: {} },
        { class_name: 'LayerNormalization', config: { name: 'norm' } },
        { class_name: 'Dense', config: { units: 1, activation: 'sigmoid' } },
      ],
    },
  },
  loss: 'binaryCrossentropy',
  optimizer: { name: 'sgd', learningRate: 0.1 },
  seed: 3,
};

/** The documented name of an unnamed layer at topology index i (common.proto, TensorSpec.name). */
const layerName = (className: string, i: number): string => `${className.replace(/([a-z0-9])([A-Z][a-z])/g, '$1_$2').toLowerCase()}_${i}`;

/**
 * The documented tensor list of `spec`, in payload order: every trainable weight (layers in
 * topology order, Keras order within a layer), then every non-trainable one (BatchNormalization's
 * moving statistics), again in topology order.
 */
const documented = [
  { name: `${layerName('Dense', 0)}/kernel`, shape: [INPUT, 6] },
  { name: `${layerName('Dense', 0)}/bias`, shape: [6] },
  { name: `${layerName('BatchNormalization', 1)}/gamma`, shape: [6] },
  { name: `${layerName('BatchNormalization', 1)}/beta`, shape: [6] },
  { name: `${layerName('Conv1D', 3)}/kernel`, shape: [2, 2, 4] },
  { name: `${layerName('Conv1D', 3)}/bias`, shape: [4] },
  { name: 'norm/gamma', shape: [8] },
  { name: 'norm/beta', shape: [8] },
  { name: `${layerName('Dense', 6)}/kernel`, shape: [8, 1] },
  { name: `${layerName('Dense', 6)}/bias`, shape: [1] },
  { name: `${layerName('BatchNormalization', 1)}/moving_mean`, shape: [6] },
  { name: `${layerName('BatchNormalization', 1)}/moving_variance`, shape: [6] },
];

/** Reads the flat vector tensor by tensor, in the documented order. */
function unpack(flat: Float32Array): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let offset = 0;
  for (const t of documented) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    out.set(t.name, flat.subarray(offset, offset + n));
    offset += n;
  }
  expect(offset).toBe(flat.length);
  return out;
}

/** y = x·K + b with K row-major [in, units]: K[i][j] at i * units + j. */
function dense(x: number[], k: Float32Array, b: Float32Array): number[] {
  const units = b.length;
  return Array.from({ length: units }, (_, j) => x.reduce((s, xi, i) => s + xi * k[i * units + j]!, b[j]!));
}

/** Conv1D, stride 1, padding "valid": K row-major [kernel_size, in_channels, filters]. */
function conv1d(x: number[][], k: Float32Array, b: Float32Array, kernelSize: number): number[][] {
  const inChannels = x[0]!.length;
  const filters = b.length;
  const out: number[][] = [];
  for (let t = 0; t + kernelSize <= x.length; t++) {
    out.push(Array.from({ length: filters }, (_, f) => {
      let s = b[f]!;
      for (let j = 0; j < kernelSize; j++) for (let c = 0; c < inChannels; c++) s += x[t + j]![c]! * k[(j * inChannels + c) * filters + f]!;
      return s;
    }));
  }
  return out;
}

/** The documented forward pass of `spec` (inference: BatchNormalization uses its moving statistics). */
function forward(w: Map<string, Float32Array>, x: number[]): number {
  const get = (name: string): Float32Array => w.get(name)!;
  let h = dense(x, get('dense_0/kernel'), get('dense_0/bias')).map((v) => Math.max(0, v));
  const bn = 'batch_normalization_1';
  h = h.map((v, i) => ((v - get(`${bn}/moving_mean`)[i]!) / Math.sqrt(get(`${bn}/moving_variance`)[i]! + 1e-3)) * get(`${bn}/gamma`)[i]! + get(`${bn}/beta`)[i]!);
  const seq = [0, 1, 2].map((t) => [h[t * 2]!, h[t * 2 + 1]!]); // Reshape [3, 2], row-major
  const flat = conv1d(seq, get('conv1d_3/kernel'), get('conv1d_3/bias'), 2).flat(); // Flatten, row-major
  const mean = flat.reduce((a, b) => a + b, 0) / flat.length;
  const variance = flat.reduce((a, b) => a + (b - mean) ** 2, 0) / flat.length;
  const normed = flat.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-3)) * get('norm/gamma')[i]! + get('norm/beta')[i]!);
  const logit = dense(normed, get('dense_6/kernel'), get('dense_6/bias'))[0]!;
  return 1 / (1 + Math.exp(-logit));
}

describe('wire layout of model weights (common.proto TensorSpec)', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('names, orders and shapes tensors as documented', async () => {
    const rt = await createModelRuntime(spec);
    try {
      expect(rt.specs).toEqual(documented);
    } finally {
      rt.dispose();
    }
  });

  it('a forward pass from the documented layout matches tfjs predict', async () => {
    const rt = await createModelRuntime(spec);
    try {
      const random = mulberry32(11);
      const total = documented.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      const flat = Float32Array.from({ length: total }, () => random() * 2 - 1);
      // Variances must be positive; everything else is arbitrary (and not symmetric, so a transposed kernel shows).
      const variance = unpack(flat).get('batch_normalization_1/moving_variance')!;
      for (let i = 0; i < variance.length; i++) variance[i] = 0.5 + Math.abs(variance[i]!);
      rt.setWeights(flat);
      const rows = 16;
      const x = Float32Array.from({ length: rows * INPUT }, () => random() * 4 - 2);
      const predicted = await rt.predict(x);
      const w = unpack(flat);
      const ours = Array.from({ length: rows }, (_, r) => forward(w, Array.from(x.subarray(r * INPUT, (r + 1) * INPUT))));
      expect(new Set(ours.map((p) => p.toFixed(3))).size).toBeGreaterThan(8); // not saturated: the comparison means something
      ours.forEach((p, r) => expect(predicted[r]!).toBeCloseTo(p, 5));
    } finally {
      rt.dispose();
    }
  });
});
