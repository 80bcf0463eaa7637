import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import { WeightedSum } from '../fedavg.js';
import { concatTensors, splitTensors, type TensorSpec } from '../tensors.js';
import { STRATEGY_NAMES, createStrategy, type Strategy, type StrategyConfig } from './index.js';

// The slice-wise contract: beginRound, stepSlice over consecutive slices of the flat model,
// endRound give bit for bit the model and server state of aggregate() on the pre-averaged
// update, whatever the slice size and however slices cut across tensors.

const specs: TensorSpec[] = [
  { name: 'kernel', shape: [3, 5] },
  { name: 'bias', shape: [5] },
  { name: 'empty', shape: [0, 4] },
  { name: 'out', shape: [5, 1] },
];
const LENGTH = 25;
const shapes = specs.map((s) => s.shape);

const bits = (values: Float32Array): number[] => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

/** The float32 example-weighted mean of seven clinics' updates in round r, as the coordinator's WeightedSum makes it. */
function meanFor(r: number): { mean: Float32Array; total: number } {
  const sum = new WeightedSum(LENGTH);
  [13, 250, 7, 1, 99, 3.5, 40].forEach((n, k) => {
    sum.addChunk(0, Float32Array.from({ length: LENGTH }, (_, i) => Math.sin(r * 11 + k * 5 + i) * (1 + k)), n);
    sum.commit(n);
  });
  return { mean: sum.mean(), total: sum.totalWeight };
}

/** One slice-wise round with slices of `size` values. */
function sliced(s: Strategy, global: Float32Array, mean: Float32Array, round: number, size: number): Float32Array {
  s.beginRound?.(round, shapes);
  const out = new Float32Array(LENGTH);
  for (let offset = 0; offset < LENGTH; offset += size) {
    const end = Math.min(LENGTH, offset + size);
    const g = s.readsGlobal === false ? new Float32Array(0) : global.slice(offset, end);
    out.set(s.stepSlice!(offset, g, mean.slice(offset, end), round), offset);
  }
  s.endRound?.();
  return out;
}

function whole(s: Strategy, global: Float32Array, mean: Float32Array, total: number, round: number): Float32Array {
  return concatTensors(s.aggregate(splitTensors(specs, global), [{ weights: splitTensors(specs, mean), numExamples: total }], round));
}

function failure(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

const CONFIGS: StrategyConfig[] = [
  { name: 'fedavg' },
  { name: 'fedprox', mu: 0.1 },
  { name: 'fedavgm', serverLearningRate: 0.7 },
  { name: 'fedadagrad', eta: 0.1 },
  { name: 'fedadam', eta: 0.01 },
  { name: 'fedyogi', eta: 0.05 },
];

describe('stepSlice', () => {
  it('every weighted-mean strategy has it; fedavg and fedprox do not read the global model', () => {
    const robust: StrategyConfig[] = [
      { name: 'fedmedian' },
      { name: 'trimmed-mean', beta: 0.2 },
      { name: 'krum', byzantine: 1 },
      { name: 'multi-krum', byzantine: 1 },
      { name: 'bulyan', byzantine: 1 },
    ];
    expect([...CONFIGS, ...robust].map((c) => c.name).sort()).toEqual([...STRATEGY_NAMES].sort());
    for (const config of [...CONFIGS, ...robust]) {
      const s = createStrategy(config);
      expect(s.stepSlice !== undefined, config.name).toBe(s.input === 'weighted-mean');
    }
    expect(createStrategy({ name: 'fedavg' }).readsGlobal).toBe(false);
    expect(createStrategy({ name: 'fedprox', mu: 1 }).readsGlobal).toBe(false);
    expect(createStrategy({ name: 'fedadam' }).readsGlobal).toBe(true);
  });

  it.each(CONFIGS)('$name: equals aggregate() bit for bit, model and state, for slices of 1, 4, 7, 15 and 25 values over three rounds', (config) => {
    for (const size of [1, 4, 7, 15, 25]) {
      const a = createStrategy(config);
      const b = createStrategy(config);
      let global: Float32Array = Float32Array.from({ length: LENGTH }, (_, i) => Math.cos(i));
      for (const r of [1, 2, 3]) {
        const { mean, total } = meanFor(r);
        const expected = whole(a, global, mean, total, r);
        const got = sliced(b, global, mean, r, size);
        expect(bits(got), `size ${size} round ${r}`).toEqual(bits(expected));
        expect(bits(concatTensors(b.exportState()))).toEqual(bits(concatTensors(a.exportState())));
        global = expected;
      }
    }
  });

  it('continues from imported state like aggregate does', () => {
    const a = createStrategy({ name: 'fedyogi', eta: 0.05 });
    const global = Float32Array.from({ length: LENGTH }, (_, i) => i / 10);
    const first = meanFor(1);
    whole(a, global, first.mean, first.total, 1);
    const b = createStrategy({ name: 'fedyogi', eta: 0.05 });
    b.importState(a.exportState());
    const { mean, total } = meanFor(2);
    expect(bits(sliced(b, global, mean, 2, 6))).toEqual(bits(whole(a, global, mean, total, 2)));
    expect(bits(concatTensors(b.exportState()))).toEqual(bits(concatTensors(a.exportState())));
  });

  it('fedavg and fedprox return the mean itself', () => {
    const mean = Float32Array.of(1, -0, 3);
    expect(createStrategy({ name: 'fedavg' }).stepSlice!(0, new Float32Array(0), mean, 1)).toBe(mean);
  });

  describe('server optimizers: the state changes only at endRound, and only after a complete round', () => {
    const global = Float32Array.from({ length: LENGTH }, (_, i) => Math.cos(i));

    /** fedadam with one round aggregated, and its state bits. */
    function stepped(): { s: Strategy; state: number[] } {
      const s = createStrategy({ name: 'fedadam', eta: 0.01 });
      const { mean, total } = meanFor(1);
      whole(s, global, mean, total, 1);
      return { s, state: bits(concatTensors(s.exportState())) };
    }

    it('exportState during a round is the state before it; an abandoned round leaves it', () => {
      const { s, state } = stepped();
      const { mean } = meanFor(2);
      s.beginRound!(2, shapes);
      s.stepSlice!(0, global.slice(0, 10), mean.slice(0, 10), 2);
      expect(bits(concatTensors(s.exportState()))).toEqual(state);
      s.beginRound!(2, shapes);
      expect(bits(concatTensors(s.exportState()))).toEqual(state);
      expect(failure(() => s.endRound!()).message).toMatchInlineSnapshot(`"fedadam: the round's slices covered 0 of the model's 25 values"`);
      expect(bits(concatTensors(s.exportState()))).toEqual(state);
    });

    it('rejects slices out of order, of the wrong length or round, and abandons the round', () => {
      const { s, state } = stepped();
      const { mean } = meanFor(2);
      const cases: [string, () => unknown][] = [
        ['gap', () => s.stepSlice!(5, global.slice(5, 10), mean.slice(5, 10), 2)],
        ['length', () => s.stepSlice!(0, global.slice(0, 4), mean.slice(0, 5), 2)],
        ['overrun', () => s.stepSlice!(0, new Float32Array(26), new Float32Array(26), 2)],
        ['round', () => s.stepSlice!(0, global.slice(0, 5), mean.slice(0, 5), 3)],
      ];
      const messages = cases.map(([label, call]) => {
        s.beginRound!(2, shapes);
        const err = failure(call);
        expect(failure(() => s.stepSlice!(0, global, mean, 2)).code, label).toBe('INVALID_STATE');
        return `${err.code}: ${err.message}`;
      });
      expect(messages).toMatchInlineSnapshot(`
        [
          "INVALID_STATE: fedadam: slice at 5, expected 0: slices come in order and cover the model once",
          "INVALID_ARGUMENT: fedadam: the global slice has 4 values, the mean's 5",
          "INVALID_ARGUMENT: fedadam: slice [0, 26) overruns the model (25 values)",
          "INVALID_STATE: fedadam: stepSlice for round 3 in round 2",
        ]
      `);
      expect(failure(() => s.endRound!()).message).toMatchInlineSnapshot(`"fedadam: endRound without beginRound"`);
      expect(bits(concatTensors(s.exportState()))).toEqual(state);
    });

    it('a non-finite step throws INVALID_ARGUMENT naming tensor and index, and leaves the state', () => {
      const { s, state } = stepped();
      const { mean } = meanFor(2);
      const bad = global.slice();
      bad[17] = Number.NaN; // tensor 1 (bias) starts at 15
      const huge = mean.slice();
      huge[21] = 3e38; // tensor 3 (out) starts at 20: Δ² overflows float32
      const messages = [bad, global].map((g) => {
        s.beginRound!(2, shapes);
        s.stepSlice!(0, g.slice(0, 12), (g === global ? huge : mean).slice(0, 12), 2);
        return failure(() => s.stepSlice!(12, g.slice(12), (g === global ? huge : mean).slice(12), 2)).message;
      });
      expect(messages).toMatchInlineSnapshot(`
        [
          "fedadam: global tensor 1 has a non-finite value (NaN) at index 2",
          "fedadam: the step overflows float32 at tensor 3 index 1 (global -0.5477292537689209, mean update 3.0000000054977558e+38)",
        ]
      `);
      expect(bits(concatTensors(s.exportState()))).toEqual(state);
    });

    it('checks the model shapes against the state at beginRound', () => {
      const { s } = stepped();
      const messages = [
        () => s.beginRound!(2, [[3, 5], [5]]),
        () => s.beginRound!(2, [[5, 3], [5], [0, 4], [5, 1]]),
        () => s.beginRound!(-1, shapes),
        () => s.beginRound!(2, [[1.5]]),
      ].map((f) => failure(f).message);
      expect(messages).toMatchInlineSnapshot(`
        [
          "fedadam: the server state is for 4 tensors, the model has 2",
          "fedadam: the server state of tensor 0 has shape [3,5], the model's is [5,3]",
          "fedadam: round must be an integer ≥ 0, got -1",
          "fedadam: shapes must be an array of shapes (arrays of integers ≥ 0)",
        ]
      `);
    });

    it('aggregate and importState abandon an open round', () => {
      const { s } = stepped();
      const { mean, total } = meanFor(2);
      s.beginRound!(2, shapes);
      whole(s, global, mean, total, 2);
      expect(failure(() => s.stepSlice!(0, global, mean, 2)).code).toBe('INVALID_STATE');
      s.beginRound!(3, shapes);
      s.importState([]);
      expect(failure(() => s.endRound!()).code).toBe('INVALID_STATE');
    });
  });
});
