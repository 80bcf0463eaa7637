import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import { concatTensors, splitTensors, type Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate, type Strategy, type StrategyConfig } from './index.js';

const t = (values: number[], shape: number[] = [values.length]): Tensor => ({ shape, data: Float32Array.from(values) });
const up = (numExamples: number, values: number[]): ClientUpdate => ({ numExamples, weights: [t(values)] });
const flat = (ts: Tensor[]): number[] => ts.flatMap((x) => Array.from(x.data));

function rejection(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('INVALID_ARGUMENT');
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

/** Runs one round with a one-tensor model and returns the new global values. */
function round(s: Strategy, global: number[], updates: ClientUpdate[], r: number): number[] {
  return flat(s.aggregate([t(global)], updates, r));
}

describe('fedavgm (serverLearningRate 0.5, momentum 0.5), three rounds', () => {
  it('steps v ← 0.5·v + (global − avg), global ← global − 0.5·v', () => {
    const s = createStrategy({ name: 'fedavgm', serverLearningRate: 0.5, momentum: 0.5 });
    expect(s.exportState()).toEqual([]);
    // Round 1: avg of [1,0] and [3,2] (1 example each) = [2,1]; Δ = [0,1] − [2,1] = [−2,0];
    // v = 0.5·0 + Δ = [−2,0]; global = [0,1] − 0.5·[−2,0] = [1,1].
    expect(round(s, [0, 1], [up(1, [1, 0]), up(1, [3, 2])], 1)).toEqual([1, 1]);
    expect(flat(s.exportState())).toEqual([-2, 0]);
    // Round 2: avg [3,0]; Δ = [1,1] − [3,0] = [−2,1]; v = 0.5·[−2,0] + [−2,1] = [−3,1];
    // global = [1,1] − 0.5·[−3,1] = [2.5,0.5].
    expect(round(s, [1, 1], [up(5, [3, 0])], 2)).toEqual([2.5, 0.5]);
    expect(flat(s.exportState())).toEqual([-3, 1]);
    // Round 3: the clinics return the global model (Δ = 0), momentum alone moves it:
    // v = 0.5·[−3,1] = [−1.5,0.5]; global = [2.5,0.5] − 0.5·[−1.5,0.5] = [3.25,0.25].
    expect(round(s, [2.5, 0.5], [up(2, [2.5, 0.5])], 3)).toEqual([3.25, 0.25]);
    expect(flat(s.exportState())).toEqual([-1.5, 0.5]);
  });

  it('defaults to serverLearningRate 1 and momentum 0.9', () => {
    const s = createStrategy({ name: 'fedavgm' });
    expect(s.config).toEqual({ name: 'fedavgm', serverLearningRate: 1, momentum: 0.9 });
    // Round 1 with v = 0 is FedAvg: global − 1·(global − avg) = avg.
    expect(round(s, [0], [up(1, [2])], 1)).toEqual([2]);
    // Round 2: Δ = 2 − 2 = 0; v = 0.9·(−2) = −1.8; global = 2 + 1.8 = 3.8 (as float32).
    expect(round(s, [2], [up(1, [2])], 2)).toEqual([Math.fround(3.8)]);
  });
});

// The adaptive optimizers share one scenario: eta 1, beta1 0.5, tau 1 (beta2 0.75), a two-value
// model whose second value never moves (avg = global → Δ = 0, m = v = 0, step 0/(0 + τ) = 0).
const adaptive = { eta: 1, beta1: 0.5, tau: 1 };

describe('fedadagrad (eta 1, beta1 0.5, tau 1), three rounds', () => {
  it('steps m ← 0.5·m + 0.5·Δ, v ← v + Δ², global ← global + m/(√v + 1)', () => {
    const s = createStrategy({ name: 'fedadagrad', ...adaptive });
    // Round 1: avg = (2·[2,7] + 1·[5,7])/3 = [3,7]; Δ = [3,0]; m = [1.5,0]; v = [9,0];
    // global = [0 + 1.5/(3 + 1), 7 + 0/(0 + 1)] = [0.375, 7].
    expect(round(s, [0, 7], [up(2, [2, 7]), up(1, [5, 7])], 1)).toEqual([0.375, 7]);
    expect(flat(s.exportState())).toEqual([1.5, 0, 9, 0]);
    // Round 2: avg [4.375,7]; Δ = [4,0]; m = 0.75 + 2 = 2.75; v = 9 + 16 = 25;
    // global = 0.375 + 2.75/(5 + 1) = 0.8333… → float32 0.8333333134651184.
    const g2 = round(s, [0.375, 7], [up(4, [4.375, 7])], 2);
    expect(g2).toEqual([Math.fround(5 / 6), 7]);
    expect(flat(s.exportState())).toEqual([2.75, 0, 25, 0]);
    // Round 3: clinics return the model (Δ = 0): m = 1.375; v = 25 (Adagrad never forgets);
    // global = 0.83333331 + 1.375/6 = 1.06249998 → float32 1.0625.
    expect(round(s, g2, [up(1, g2)], 3)).toEqual([1.0625, 7]);
    expect(flat(s.exportState())).toEqual([1.375, 0, 25, 0]);
  });
});

describe('fedadam (eta 1, beta1 0.5, beta2 0.75, tau 1), three rounds', () => {
  it('steps v ← 0.75·v + 0.25·Δ², no bias correction', () => {
    const s = createStrategy({ name: 'fedadam', ...adaptive, beta2: 0.75 });
    // Round 1: Δ = 6; m = 3; v = 0.25·36 = 9; global = 0 + 3/(3 + 1) = 0.75.
    expect(round(s, [0, 7], [up(1, [6, 7])], 1)).toEqual([0.75, 7]);
    expect(flat(s.exportState())).toEqual([3, 0, 9, 0]);
    // Round 2: Δ = 0; m = 1.5; v = 0.75·9 = 6.75; global = 0.75 + 1.5/(2.5980762 + 1) = 1.1668894.
    const g2 = round(s, [0.75, 7], [up(1, [0.75, 7])], 2);
    expect(g2[0]).toBeCloseTo(1.1668894, 6);
    expect(flat(s.exportState())).toEqual([1.5, 0, 6.75, 0]);
    // Round 3: avg −2: Δ = −2 − 1.1668894 = −3.1668894; m = 0.75 − 1.5834447 = −0.8334447;
    // v = 0.75·6.75 + 0.25·10.0291882 = 5.0625 + 2.5072970 = 7.5697970; √v = 2.7513264;
    // global = 1.1668894 − 0.8334447/3.7513264 = 1.1668894 − 0.2221733 = 0.9447161.
    const g3 = round(s, g2, [up(3, [-2, 7])], 3);
    expect(g3[0]).toBeCloseTo(0.9447161, 6);
    expect(g3[1]).toBe(7);
    const [m, , v] = flat(s.exportState());
    expect(m).toBeCloseTo(-0.8334447, 6);
    expect(v).toBeCloseTo(7.569797, 5);
  });
});

describe('fedyogi (eta 1, beta1 0.5, beta2 0.75, tau 1), three rounds', () => {
  it('steps v ← v − 0.25·Δ²·sign(v − Δ²): up, unchanged at Δ² = v, then down', () => {
    const s = createStrategy({ name: 'fedyogi', ...adaptive, beta2: 0.75 });
    // Round 1: Δ = 6; v = 0 − 0.25·36·sign(0 − 36) = 9; m = 3; global = 3/(3 + 1) = 0.75.
    expect(round(s, [0, 7], [up(1, [6, 7])], 1)).toEqual([0.75, 7]);
    expect(flat(s.exportState())).toEqual([3, 0, 9, 0]);
    // Round 2: Δ = 3.75 − 0.75 = 3; Δ² = 9 = v → sign 0 → v stays 9; m = 1.5 + 1.5 = 3;
    // global = 0.75 + 3/(3 + 1) = 1.5.
    expect(round(s, [0.75, 7], [up(1, [3.75, 7])], 2)).toEqual([1.5, 7]);
    expect(flat(s.exportState())).toEqual([3, 0, 9, 0]);
    // Round 3: Δ = 2.5 − 1.5 = 1; Δ² = 1 < v → v = 9 − 0.25 = 8.75 (Adam would give 7);
    // m = 1.5 + 0.5 = 2; global = 1.5 + 2/(2.9580399 + 1) = 1.5 + 0.5053005 = 2.0053005.
    const g3 = round(s, [1.5, 7], [up(1, [2.5, 7])], 3);
    expect(g3[0]).toBeCloseTo(2.0053005, 6);
    expect(flat(s.exportState())).toEqual([2, 0, 8.75, 0]);
  });
});

describe('server optimizer defaults', () => {
  it.each([
    ['fedadagrad', { eta: 0.1, beta1: 0.9, tau: 1e-9 }],
    ['fedadam', { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 }],
    ['fedyogi', { eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }],
  ] as const)('%s defaults to %o', (name, defaults) => {
    const s = createStrategy({ name });
    expect(s.config).toEqual({ name, ...defaults });
    expect(s.input).toBe('weighted-mean');
    expect(s.minUpdates).toBe(1);
  });
});

const STATEFUL: StrategyConfig[] = [
  { name: 'fedavgm', serverLearningRate: 0.7, momentum: 0.8 },
  { name: 'fedadagrad', eta: 0.3 },
  { name: 'fedadam', eta: 0.2, tau: 1e-3 },
  { name: 'fedyogi', eta: 0.2 },
];

/** A deterministic two-tensor model and updates for round r. */
function scenario(r: number): { global: Tensor[]; updates: ClientUpdate[] } {
  const model = (seed: number): Tensor[] => [
    t(Array.from({ length: 6 }, (_, i) => Math.sin(seed * 3.1 + i)), [2, 3]),
    t(Array.from({ length: 2 }, (_, i) => Math.cos(seed * 1.7 + i))),
  ];
  return { global: model(r), updates: [1, 2, 3].map((k) => ({ numExamples: 10 * k + r, weights: model(r * 10 + k) })) };
}

describe.each(STATEFUL)('$name server state', (config) => {
  it('is [] until the first round, then m/v tensors shaped like the model, copied', () => {
    const s = createStrategy(config);
    expect(s.exportState()).toEqual([]);
    const { global, updates } = scenario(1);
    s.aggregate(global, updates, 1);
    const state = s.exportState();
    const slots = config.name === 'fedavgm' ? 1 : 2;
    expect(state.map((x) => x.shape)).toEqual(Array.from({ length: slots }, () => [[2, 3], [2]]).flat());
    state[0]!.data.fill(99);
    expect(s.exportState()[0]!.data[0]).not.toBe(99);
  });

  it('restored from a checkpoint, continues bit for bit like a strategy that never stopped', () => {
    const never = createStrategy(config);
    const stopped = createStrategy(config);
    for (const r of [1, 2]) {
      const { global, updates } = scenario(r);
      never.aggregate(global, updates, r);
      stopped.aggregate(global, updates, r);
    }
    // Through the coordinator's checkpoint format: one flat float32 file of model-sized bundles.
    const file = concatTensors(stopped.exportState());
    const specs = scenario(0).global.map((x, i) => ({ name: `t${i}`, shape: x.shape }));
    const restored = createStrategy(config);
    const state: Tensor[] = [];
    for (let offset = 0; offset < file.length; offset += 8) state.push(...splitTensors(specs, file.slice(offset, offset + 8)));
    restored.importState(state);
    for (const r of [3, 4, 5]) {
      const { global, updates } = scenario(r);
      expect(restored.aggregate(global, updates, r)).toEqual(never.aggregate(global, updates, r));
      expect(restored.exportState()).toEqual(never.exportState());
    }
  });

  it('importState([]) resets to the initial state', () => {
    const s = createStrategy(config);
    const { global, updates } = scenario(1);
    const first = s.aggregate(global, updates, 1);
    s.aggregate(global, updates, 2);
    s.importState([]);
    expect(s.exportState()).toEqual([]);
    expect(s.aggregate(global, updates, 1)).toEqual(first);
  });

  it('leaves the state unchanged when a round is rejected', () => {
    const s = createStrategy(config);
    const { global, updates } = scenario(1);
    s.aggregate(global, updates, 1);
    const before = s.exportState();
    const poisoned = { numExamples: 1, weights: [t([0, 0, NaN, 0, 0, 0], [2, 3]), t([0, 0])] };
    expect(rejection(() => s.aggregate(global, [...updates, poisoned], 2)).message).toBe(`${config.name}: update 3 tensor 0 has a non-finite value (NaN) at index 2`);
    expect(rejection(() => s.aggregate([t([0, 0])], [up(1, [1, 1])], 2)).message).toMatch(/the server state is for 2 tensors, the model has 1/);
    expect(s.exportState()).toEqual(before);
  });
});

describe('server state validation', () => {
  const m = t([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = t([1, 2]);
  const message = (config: StrategyConfig, state: Tensor[]) => rejection(() => createStrategy(config).importState(state)).message;

  it('checks the tensor count, shapes and values', () => {
    expect(message({ name: 'fedadam' }, [m, b, m])).toMatchInlineSnapshot(`"fedadam: state must hold m then v for every model tensor (2 per model tensor), got 3 tensors"`);
    expect(message({ name: 'fedadam' }, [m, b, m, t([1, 2, 3])])).toMatchInlineSnapshot(`"fedadam: state v tensor 1 has shape [3], the model's is [2]"`);
    expect(message({ name: 'fedyogi' }, [m, b, m, t([1, -2])])).toMatchInlineSnapshot(`"fedyogi: state v tensor 1 has a negative value (-2) at index 1"`);
    expect(message({ name: 'fedavgm' }, [m, t([1, Infinity])])).toMatchInlineSnapshot(`"fedavgm: state v tensor 1 has a non-finite value (Infinity) at index 1"`);
    expect(message({ name: 'fedadagrad' }, [{ shape: [2], data: Float32Array.from([1]) }, b])).toMatchInlineSnapshot(
      `"fedadagrad: state m tensor 0 has 1 values, its shape [2] needs 2"`,
    );
  });

  it('accepts negative momentum (fedavgm v) and negative first moments', () => {
    createStrategy({ name: 'fedavgm' }).importState([t([-1, -2])]);
    createStrategy({ name: 'fedadam' }).importState([t([-1, -2]), t([1, 2])]);
  });

  it('checks restored state against the model at the next round', () => {
    const s = createStrategy({ name: 'fedadam' });
    s.importState([t([0, 0, 0]), t([0, 0, 0])]);
    expect(rejection(() => s.aggregate([t([0, 0])], [up(1, [1, 1])], 1)).message).toMatchInlineSnapshot(
      `"fedadam: the server state of tensor 0 has shape [3], the model's is [2]"`,
    );
  });

  it('refuses a step that overflows float32 and keeps the state', () => {
    const big = Math.fround(3e38);
    const s = createStrategy({ name: 'fedadam' });
    // Δ = 3e38 − (−3e38) = 6e38: v = 0.01·3.6e77 is far beyond float32.
    expect(rejection(() => s.aggregate([t([-big])], [up(1, [big])], 1)).message).toMatchInlineSnapshot(
      `"fedadam: the step overflows float32 at tensor 0 index 0 (global -3.0000000054977558e+38, mean update 3.0000000054977558e+38)"`,
    );
    expect(s.exportState()).toEqual([]);
  });

  it('requires a finite global model', () => {
    expect(rejection(() => createStrategy({ name: 'fedavgm' }).aggregate([t([0, NaN])], [up(1, [1, 1])], 1)).message).toMatchInlineSnapshot(
      `"fedavgm: global tensor 0 has a non-finite value (NaN) at index 1"`,
    );
  });
});
