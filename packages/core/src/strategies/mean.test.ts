import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import type { Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate } from './index.js';

const t = (values: number[], shape: number[] = [values.length]): Tensor => ({ shape, data: Float32Array.from(values) });
const up = (numExamples: number, ...tensors: number[][]): ClientUpdate => ({ numExamples, weights: tensors.map((v) => t(v)) });
const zeros = (...lengths: number[]): Tensor[] => lengths.map((n) => t(new Array<number>(n).fill(0)));
const values = (ts: Tensor[]): number[][] => ts.map((x) => Array.from(x.data));

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

const fedavg = createStrategy({ name: 'fedavg' });

describe('fedavg', () => {
  it('is Σ n_k·w_k / Σ n_k: [1,2,3] (n=10) and [5,6,-1] (n=30) → [4,5,0]', () => {
    // [(10·1 + 30·5)/40, (10·2 + 30·6)/40, (10·3 − 30·1)/40] = [160/40, 200/40, 0/40]
    expect(values(fedavg.aggregate(zeros(3), [up(10, [1, 2, 3]), up(30, [5, 6, -1])], 1))).toEqual([[4, 5, 0]]);
  });

  it('averages every tensor and keeps its shape', () => {
    const global = [t([0, 0, 0, 0], [2, 2]), t([0], [])];
    const out = fedavg.aggregate(global, [{ numExamples: 1, weights: [t([1, 2, 3, 4], [2, 2]), t([8], [])] }, { numExamples: 3, weights: [t([5, 6, 7, 8], [2, 2]), t([0], [])] }], 1);
    // (1·[1,2,3,4] + 3·[5,6,7,8]) / 4 = [16,20,24,28]/4; (1·8 + 3·0) / 4 = 2
    expect(out.map((x) => x.shape)).toEqual([[2, 2], []]);
    expect(values(out)).toEqual([[4, 5, 6, 7], [2]]);
  });

  it('rounds once, to float32, from the float64 sum', () => {
    const next = Math.fround(1 + 2 ** -23); // the float32 right after 1
    // Equal weights: (1 + 1 + 2⁻²³)/2 = 1 + 2⁻²⁴, exactly halfway → ties to even → 1.
    expect(values(fedavg.aggregate(zeros(1), [up(1, [1]), up(1, [next])], 1))).toEqual([[1]]);
    // Weights 1 and 3: (1 + 3·(1 + 2⁻²³))/4 = 1 + 0.75·2⁻²³ → nearer 1 + 2⁻²³.
    expect(values(fedavg.aggregate(zeros(1), [up(1, [1]), up(3, [next])], 1))).toEqual([[next]]);
    // 0.1 is not a float32: fround(0.1) = 0.100000001490116…; the mean of three copies is that value.
    expect(values(fedavg.aggregate(zeros(1), [up(1, [0.1]), up(2, [0.1]), up(7, [0.1])], 1))).toEqual([[Math.fround(0.1)]]);
  });

  it('sums in float64: 3e38-sized values whose float32 sum would overflow', () => {
    const big = Math.fround(3e38); // 3.0000000054977558e38; float32 max is 3.4028e38
    // (2·big + 2·big)/4 = big; a float32 accumulator would reach 4·big = Infinity.
    expect(values(fedavg.aggregate(zeros(2), [up(2, [big, big]), up(2, [big, -big])], 1))).toEqual([[big, 0]]);
    // (big·1 + big·1 + (−big)·2)/4 = 0
    expect(values(fedavg.aggregate(zeros(1), [up(1, [big]), up(1, [big]), up(2, [-big])], 1))).toEqual([[0]]);
  });

  it('keeps −0 when every update is −0, and gives +0 for a mix', () => {
    const [allNeg] = fedavg.aggregate(zeros(1), [up(1, [-0]), up(5, [-0])], 1);
    expect(Object.is(allNeg!.data[0], -0)).toBe(true);
    const [mixed] = fedavg.aggregate(zeros(1), [up(1, [-0]), up(5, [0])], 1);
    expect(Object.is(mixed!.data[0], 0)).toBe(true);
  });

  it('matches a plain float64 reference for many updates and a model larger than one block', () => {
    const len = 10_007;
    const updates = Array.from({ length: 11 }, (_, k) => ({
      numExamples: 3 + 7 * k,
      weights: [t(Array.from({ length: len }, (_, i) => Math.sin(i * 0.37 + k) * (k + 1)))],
    }));
    const expected = new Float32Array(len);
    for (let i = 0; i < len; i++) {
      let s = 0;
      let w = 0;
      for (const u of updates) {
        s += u.numExamples * u.weights[0]!.data[i]!;
        w += u.numExamples;
      }
      expected[i] = s / w;
    }
    expect(fedavg.aggregate(zeros(len), updates, 1)[0]!.data).toEqual(expected);
  });

  it('handles example counts so large that Σ n_k·3e38 would overflow float64', () => {
    // Weights 1e300 and 3e300 are rescaled to 1/3 and 1: (1/3·4 + 1·8)/(4/3) = 7.
    expect(values(fedavg.aggregate(zeros(1), [up(1e300, [4]), up(3e300, [8])], 1))).toEqual([[7]]);
  });

  it('returns fresh tensors and never mutates its inputs', () => {
    const global = [t([9, 9])];
    const u = up(4, [1, 2]);
    const out = fedavg.aggregate(global, [u], 1);
    expect(values(out)).toEqual([[1, 2]]);
    expect(out[0]!.data).not.toBe(u.weights[0]!.data);
    expect(out[0]!.shape).not.toBe(u.weights[0]!.shape);
    out[0]!.data[0] = 42;
    expect(Array.from(u.weights[0]!.data)).toEqual([1, 2]);
    expect(Array.from(global[0]!.data)).toEqual([9, 9]);
  });

  it('is stateless', () => {
    expect(fedavg.exportState()).toEqual([]);
    fedavg.importState([]);
    expect(rejection(() => fedavg.importState([t([1])])).message).toMatchInlineSnapshot(`"fedavg: has no server state to import, got 1 tensors"`);
  });
});

describe('fedavg input validation', () => {
  const global = [t([0, 0]), t([0], [1])];
  const ok = (n = 1): ClientUpdate => up(n, [1, 2], [3]);
  const message = (global: Tensor[], updates: ClientUpdate[], round = 1) => rejection(() => fedavg.aggregate(global, updates, round)).message;

  it('rejects no updates', () => {
    expect(message(global, [])).toMatchInlineSnapshot(`"fedavg: no updates to aggregate"`);
  });

  it('rejects a tensor count, shape or value count that differs from the model', () => {
    expect(message(global, [ok(), up(1, [1, 2])])).toMatchInlineSnapshot(`"fedavg: update 1 has 1 tensors, the model has 2"`);
    expect(message(global, [{ numExamples: 1, weights: [t([1, 2], [2, 1]), t([3], [1])] }])).toMatchInlineSnapshot(
      `"fedavg: update 0 tensor 0 has shape [2,1], the model's is [2]"`,
    );
    expect(message(global, [{ numExamples: 1, weights: [{ shape: [2], data: Float32Array.from([1, 2, 3]) }, t([3], [1])] }])).toMatchInlineSnapshot(
      `"fedavg: update 0 tensor 0 has 3 values, its shape [2] needs 2"`,
    );
    expect(message([t([0, 0], [3])], [ok()])).toMatchInlineSnapshot(`"fedavg: global tensor 0 has 2 values, its shape [3] needs 3"`);
    expect(message(global, [{ numExamples: 1, weights: [{ shape: [2], data: [1, 2] as unknown as Float32Array }, t([3], [1])] }])).toMatchInlineSnapshot(
      `"fedavg: update 0 tensor 0 must be a { shape: number[], data: Float32Array }"`,
    );
  });

  it.each([0, -1, NaN, Infinity])('rejects numExamples %s', (n) => {
    expect(message(global, [ok(), ok(n)])).toBe(`fedavg: update 1 numExamples must be a positive finite number, got ${n}`);
  });

  it.each([NaN, Infinity, -Infinity])('rejects a %s value, naming where it is', (v) => {
    expect(message(global, [ok(), up(2, [1, 2], [v])])).toBe(`fedavg: update 1 tensor 1 has a non-finite value (${v}) at index 0`);
  });

  it('rejects a round that is not an integer ≥ 0', () => {
    expect(message(global, [ok()], -1)).toMatchInlineSnapshot(`"fedavg: round must be an integer ≥ 0, got -1"`);
    expect(message(global, [ok()], 1.5)).toMatchInlineSnapshot(`"fedavg: round must be an integer ≥ 0, got 1.5"`);
  });
});

describe('fedprox', () => {
  it('exposes mu and aggregates exactly like fedavg', () => {
    const fedprox = createStrategy({ name: 'fedprox', mu: 0.01 });
    expect(fedprox.config).toEqual({ name: 'fedprox', mu: 0.01 });
    expect(fedprox.input).toBe('weighted-mean');
    const updates = [up(10, [1, 2, 3]), up(30, [5, 6, -1]), up(3, [0.1, 0.2, 0.3])];
    expect(fedprox.aggregate(zeros(3), updates, 1)).toEqual(fedavg.aggregate(zeros(3), updates, 1));
    // (10·1 + 30·5)/40 = 4 …
    expect(values(fedprox.aggregate(zeros(3), updates.slice(0, 2), 1))).toEqual([[4, 5, 0]]);
  });
});
