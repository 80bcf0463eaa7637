import { createStrategy } from '@fedlhs/core';
import { initialWeights } from '@fedlhs/model';
import { describe, expect, it } from 'vitest';
import { BUILD_FACTOR, SLICE_ROUND_BYTES_PER_CLIENT, estimateBytes, memoryEstimate, topologyParameters } from './model-memory.js';

const sequential = (layers: Record<string, unknown>[]) => ({ class_name: 'Sequential', config: { name: 'm', layers } });
const layer = (class_name: string, config: Record<string, unknown>) => ({ class_name, config: { name: `${class_name.toLowerCase()}_${Math.random().toString(36).slice(2, 7)}`, ...config } });

describe('topologyParameters', () => {
  // Every layer class the manifest allows, against what TF.js actually builds.
  it.each([
    ['dense', [layer('Dense', { units: 8, activation: 'relu', batch_input_shape: [null, 6] }), layer('Dense', { units: 1, activation: 'sigmoid' })]],
    ['dense without bias, dropout, activation', [layer('Dense', { units: 5, use_bias: false, batch_input_shape: [null, 3] }), layer('Dropout', { rate: 0.1 }), layer('Activation', { activation: 'tanh' }), layer('Dense', { units: 1 })]],
    ['normalisation layers', [layer('Dense', { units: 7, batch_input_shape: [null, 4] }), layer('BatchNormalization', {}), layer('LayerNormalization', {}), layer('Dense', { units: 1 })]],
    ['reshape, conv, pooling, flatten', [
      layer('Reshape', { target_shape: [12, 1], batch_input_shape: [null, 12] }),
      layer('Conv1D', { filters: 4, kernel_size: 3, activation: 'relu' }),
      layer('MaxPooling1D', { pool_size: 2 }),
      layer('Conv1D', { filters: 3, kernel_size: [2], padding: 'same' }),
      layer('Flatten', {}),
      layer('Dense', { units: 1 }),
    ]],
    ['global pooling', [layer('Reshape', { target_shape: [5, 2], input_shape: [10] }), layer('Conv1D', { filters: 6, kernel_size: 2 }), layer('GlobalAveragePooling1D', {}), layer('Dense', { units: 1 })]],
  ])('counts what TF.js builds: %s', async (_label, layers) => {
    const topology = sequential(layers);
    const built = await initialWeights({ topology, loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.1 }, seed: 1 } as never);
    expect(topologyParameters(topology)).toBe(built.weights.length);
  });

  it('counts a 420M-parameter model without allocating it', () => {
    expect(topologyParameters(sequential([layer('Dense', { units: 21_000, batch_input_shape: [null, 20_000] }), layer('Dense', { units: 1 })]))).toBe(20_000 * 21_000 + 21_000 + 21_000 + 1);
  });

  it('is undefined when a shape cannot be followed', () => {
    expect(topologyParameters(sequential([layer('Dense', { units: 4, batch_input_shape: [null, null] })]))).toBeUndefined();
    expect(topologyParameters(sequential([layer('Dense', { units: 4 })]))).toBeUndefined();
    expect(topologyParameters({})).toBeUndefined();
  });
});

describe('memoryEstimate', () => {
  it('is the largest of building the model and a round of the strategy', () => {
    expect(memoryEstimate(createStrategy({ name: 'fedavg' } as never), 10)).toEqual({ factor: BUILD_FACTOR, fixedBytes: 0 });
    expect(memoryEstimate(createStrategy({ name: 'fedadam' } as never), 10)).toEqual({ factor: 3 + 8, fixedBytes: 0 });
  });

  it('charges order-statistic rounds a slice per client, not a model per client (they read the spooled updates slice by slice)', () => {
    const configs = [{ name: 'fedmedian' }, { name: 'trimmed-mean' }, { name: 'krum', byzantine: 1 }, { name: 'multi-krum', byzantine: 1 }, { name: 'bulyan', byzantine: 1 }];
    for (const config of configs) {
      const { name } = config;
      const strategy = createStrategy(config as never);
      expect(strategy.sliceRound, name).toBeDefined();
      expect(memoryEstimate(strategy, 50), name).toEqual({ factor: BUILD_FACTOR, fixedBytes: 50 * SLICE_ROUND_BYTES_PER_CLIENT });
    }
    // 100M parameters and 50 clinics: 2.7 GiB, where a model per clinic would be 21 GB.
    expect(estimateBytes(memoryEstimate(createStrategy({ name: 'fedmedian' } as never), 50), 100_000_000)).toBe(100_000_000 * 4 * BUILD_FACTOR + 50 * SLICE_ROUND_BYTES_PER_CLIENT);
  });

  it('charges a model per client to an all-updates strategy without slice rounds', () => {
    const median = createStrategy({ name: 'fedmedian' } as never);
    const whole = { name: median.name, input: median.input } as const;
    expect(memoryEstimate(whole, 10)).toEqual({ factor: 13, fixedBytes: 0 });
    expect(memoryEstimate(whole, 2)).toEqual({ factor: BUILD_FACTOR, fixedBytes: 0 });
  });
});
