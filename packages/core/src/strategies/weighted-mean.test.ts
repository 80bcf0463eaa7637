import { describe, expect, it } from 'vitest';
import { WeightedSum } from '../fedavg.js';
import { concatTensors, splitTensors, type Tensor, type TensorSpec } from '../tensors.js';
import { STRATEGY_NAMES, createStrategy, type ClientUpdate, type StrategyConfig } from './index.js';

// The 'weighted-mean' contract: aggregating many updates gives, bit for bit, the result of
// aggregating one update holding their float32 example-weighted mean and total count — the
// coordinator pre-averages with a running WeightedSum and never holds the updates.

const specs: TensorSpec[] = [
  { name: 'kernel', shape: [3, 5] },
  { name: 'bias', shape: [5] },
];
const LENGTH = 20;

const bits = (ts: Tensor[]): number[] => Array.from(new Uint32Array(concatTensors(ts).buffer));

function updatesFor(r: number): ClientUpdate[] {
  // Seven clinics: one pass of four, then three single ones in the weighted sum's inner loop.
  return Array.from({ length: 7 }, (_, k) => ({
    numExamples: [13, 250, 7, 1, 99, 3.5, 40][k]!,
    weights: splitTensors(specs, Float32Array.from({ length: LENGTH }, (_, i) => Math.sin(r * 11 + k * 5 + i) * (1 + k))),
  }));
}

/** The coordinator's pre-averaging: a float64 running sum, one float32 rounding at the end. */
function preAveraged(updates: ClientUpdate[]): ClientUpdate {
  const sum = new WeightedSum(LENGTH);
  for (const u of updates) {
    sum.addChunk(0, concatTensors(u.weights), u.numExamples);
    sum.commit(u.numExamples);
  }
  return { weights: splitTensors(specs, sum.mean()), numExamples: sum.totalWeight };
}

const CONFIGS: StrategyConfig[] = [
  { name: 'fedavg' },
  { name: 'fedprox', mu: 0.1 },
  { name: 'fedavgm' },
  { name: 'fedadagrad' },
  { name: 'fedadam' },
  { name: 'fedyogi', eta: 0.05 },
];

describe('weighted-mean strategies', () => {
  it('are exactly the six that only need the mean', () => {
    const weightedMean = STRATEGY_NAMES.filter((name) => CONFIGS.some((c) => c.name === name));
    expect(weightedMean).toEqual(CONFIGS.map((c) => c.name));
    for (const c of CONFIGS) expect(createStrategy(c).input).toBe('weighted-mean');
  });

  it.each(CONFIGS)('$name: many updates and their pre-averaged mean agree bit for bit over three rounds', (config) => {
    const many = createStrategy(config);
    const one = createStrategy(config);
    let global = splitTensors(specs, Float32Array.from({ length: LENGTH }, (_, i) => Math.cos(i)));
    for (const r of [1, 2, 3]) {
      const updates = updatesFor(r);
      const a = many.aggregate(global, updates, r);
      const b = one.aggregate(global, [preAveraged(updates)], r);
      expect(bits(b)).toEqual(bits(a));
      expect(bits(one.exportState())).toEqual(bits(many.exportState()));
      global = a;
    }
  });

  it.each(CONFIGS)('$name: aggregating the strategy-computed fedavg mean agrees too', (config) => {
    const fedavg = createStrategy({ name: 'fedavg' });
    const updates = updatesFor(4);
    const total = updates.reduce((s, u) => s + u.numExamples, 0);
    const global = splitTensors(specs, new Float32Array(LENGTH).fill(0.25));
    const pre = { weights: fedavg.aggregate(global, updates, 4), numExamples: total };
    expect(bits(createStrategy(config).aggregate(global, [pre], 4))).toEqual(bits(createStrategy(config).aggregate(global, updates, 4)));
  });
});
