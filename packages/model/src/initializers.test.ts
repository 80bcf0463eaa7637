import { beforeAll, describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import { initBackend } from './backend.js';
import { ALLOWED_INITIALIZERS, validateInitializers } from './initializers.js';
import { initialWeights, type ModelSpec } from './model.js';

const FAN_IN = 13;
const BOUND = 1 / Math.sqrt(FAN_IN);
/** PyTorch's nn.Linear default: kaiming_uniform(a=√5) kernel = U(±1/√fan_in), bias U(±1/√fan_in). */
const TORCH_LINEAR = {
  kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1 / 3, mode: 'fan_in', distribution: 'uniform' } },
  bias_initializer: { class_name: 'RandomUniform', config: { minval: -BOUND, maxval: BOUND } },
};

function logreg(init: Record<string, unknown>): Record<string, unknown> {
  return { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 1, activation: 'sigmoid', batch_input_shape: [null, FAN_IN], ...init } }] } };
}

const spec = (topology: Record<string, unknown>, seed?: number): ModelSpec => ({ topology, loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.001 }, seed });

/** The MANIFEST_INVALID message validateInitializers throws for a Dense layer with these entries. */
function rejection(init: Record<string, unknown>): string {
  try {
    validateInitializers(logreg(init));
  } catch (err) {
    if (isFedlhsError(err, 'MANIFEST_INVALID')) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('initialiser allow-list', () => {
  it('accepts the standard initialisers with numeric settings, and absent or null entries', () => {
    expect(ALLOWED_INITIALIZERS).toEqual(['Zeros', 'Ones', 'Constant', 'RandomUniform', 'RandomNormal', 'TruncatedNormal', 'VarianceScaling', 'GlorotUniform', 'GlorotNormal', 'HeUniform', 'HeNormal', 'LeCunUniform', 'LeCunNormal']);
    expect(() => validateInitializers(logreg(TORCH_LINEAR))).not.toThrow();
    expect(() => validateInitializers(logreg({ kernel_initializer: null, bias_initializer: { class_name: 'Constant', config: { value: 0.5 } } }))).not.toThrow();
    expect(() => validateInitializers(logreg({ kernel_initializer: { class_name: 'HeNormal' }, bias_initializer: { class_name: 'Zeros', config: {} } }))).not.toThrow();
  });

  it('refuses unknown classes, unknown or non-numeric settings and values tfjs would misread, naming the JSON path', () => {
    expect(rejection({ kernel_initializer: { class_name: 'Orthogonal', config: {} } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.kernel_initializer.class_name: initialiser "Orthogonal" is not allowed; allowed: Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LeCunUniform, LeCunNormal"`,
    );
    expect(rejection({ kernel_initializer: 'glorot_uniform' })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.kernel_initializer: must be an object {class_name, config}, got "glorot_uniform""`,
    );
    expect(rejection({ bias_initializer: { class_name: 'RandomUniform', config: { minval: '-0.1', maxval: 0.1 } } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.bias_initializer.config.minval: must be a finite number other than 0 (tfjs reads 0 as "use its default ±0.05"), got "-0.1""`,
    );
    expect(rejection({ bias_initializer: { class_name: 'RandomUniform', config: { minval: 0, maxval: 0.1 } } })).toMatch(/config\.minval: must be a finite number other than 0/);
    expect(rejection({ bias_initializer: { class_name: 'RandomUniform', config: { minval: 0.2, maxval: 0.1 } } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.bias_initializer.config: minval must be below maxval, got [0.2, 0.1] (tfjs' defaults: -0.05, 0.05)"`,
    );
    expect(rejection({ kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_sideways' } } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.kernel_initializer.config.mode: must be one of fan_in, fan_out, fan_avg, fanIn, fanOut, fanAvg, got "fan_sideways""`,
    );
    expect(rejection({ kernel_initializer: { class_name: 'VarianceScaling', config: { scale: -1 } } })).toMatch(/config\.scale: must be a finite number > 0, got -1$/);
    expect(rejection({ kernel_initializer: { class_name: 'GlorotUniform', config: { gain: 2 } } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.kernel_initializer.config.gain: is not a setting of GlorotUniform; accepted: seed"`,
    );
    expect(rejection({ kernel_initializer: { class_name: 'Zeros', config: { value: 1 } } })).toMatch(/is not a setting of Zeros; it takes none$/);
    expect(rejection({ bias_initializer: { class_name: 'Constant', config: {} } })).toMatch(/bias_initializer\.config\.value: is required for Constant$/);
    expect(rejection({ kernel_initializer: { class_name: 'Zeros', config: {}, module: 'keras.initializers' } })).toMatch(/kernel_initializer\.module: is not allowed/);
    expect(rejection({ kernelInitializer: { class_name: 'Zeros' } })).toMatchInlineSnapshot(
      `"model.topology.config.layers[0].config.kernelInitializer: write it kernel_initializer, the Keras JSON spelling"`,
    );
  });
});

describe('initialisers in built models', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it("draws PyTorch's nn.Linear default: kernel and bias in ±1/√fan_in, reproducible per study seed, kernel and bias on separate streams", async () => {
    const a = await initialWeights(spec(logreg(TORCH_LINEAR), 3));
    const b = await initialWeights(spec(logreg(TORCH_LINEAR), 3));
    const c = await initialWeights(spec(logreg(TORCH_LINEAR), 4));
    expect(a.specs.map((s) => s.name)).toEqual(['dense_0/kernel', 'dense_0/bias']);
    const kernel = Array.from(a.weights.subarray(0, FAN_IN));
    const bias = a.weights[FAN_IN]!;
    expect(kernel.every((v) => Math.abs(v) <= BOUND + 1e-7)).toBe(true);
    // GlorotUniform's limit here is √(6/14) ≈ 0.65: a spread this wide means the declared initialiser was used.
    expect(Math.max(...kernel.map(Math.abs))).toBeGreaterThan(BOUND / 2);
    expect(bias).not.toBe(0);
    expect(Math.abs(bias)).toBeLessThanOrEqual(BOUND + 1e-7);
    expect(bias).not.toBe(a.weights[0]);
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
    expect(Array.from(a.weights)).not.toEqual(Array.from(c.weights));
  });

  it('keeps a normal-distribution kernel reproducible at study seed 0 (tfjs ignores a seed of 0 for normal draws)', async () => {
    const he = logreg({ kernel_initializer: { class_name: 'HeNormal', config: {} } });
    const a = await initialWeights(spec(he, 0));
    const b = await initialWeights(spec(he, 0));
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
  });

  it('leaves an unchosen kernel GlorotUniform and the bias zero, as before initialisers could be chosen', async () => {
    const { weights } = await initialWeights(spec(logreg({}), 3));
    const limit = Math.sqrt(6 / (FAN_IN + 1));
    expect(Array.from(weights.subarray(0, FAN_IN)).every((v) => Math.abs(v) <= limit)).toBe(true);
    expect(weights[FAN_IN]).toBe(0);
  });

  it('refuses to build a model whose initialiser is not allowed', async () => {
    await expect(initialWeights(spec(logreg({ kernel_initializer: { class_name: 'Identity', config: { gain: 1 } } }), 1))).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
  });
});
