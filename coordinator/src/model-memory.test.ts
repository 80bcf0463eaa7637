import { createStrategy } from '@fedlhs/core';
import { initialWeights } from '@fedlhs/model';
import { describe, expect, it } from 'vitest';
import { BUILD_FACTOR, memoryFactor, topologyParameters } from './model-memory.js';

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

describe('memoryFactor', () => {
  it('is the largest of building the model and a round of the strategy', () => {
    expect(memoryFactor(createStrategy({ name: 'fedavg' } as never), 10)).toBe(BUILD_FACTOR);
    expect(memoryFactor(createStrategy({ name: 'fedadam' } as never), 10)).toBe(3 + 8);
    expect(memoryFactor(createStrategy({ name: 'fedmedian' } as never), 10)).toBe(13);
    expect(memoryFactor(createStrategy({ name: 'fedmedian' } as never), 2)).toBe(BUILD_FACTOR);
  });
});
