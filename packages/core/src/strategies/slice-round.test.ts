import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import { mulberry32 } from '../random.js';
import { concatTensors } from '../tensors.js';
import { createStrategy, type ClientUpdate, type StrategyConfig } from './index.js';

const ORDER_STATISTICS: StrategyConfig[] = [
  { name: 'fedmedian' },
  { name: 'trimmed-mean', beta: 0.2 },
  { name: 'krum', byzantine: 2 },
  { name: 'multi-krum', byzantine: 1 },
  { name: 'multi-krum', byzantine: 1, toKeep: 3 },
  { name: 'bulyan', byzantine: 1 },
  { name: 'bulyan', byzantine: 2 },
];

/** n updates of two tensors (2500 + 7 values) with ties, wide magnitudes and ±0. */
function updates(n: number, seed: number): ClientUpdate[] {
  const r = mulberry32(seed);
  const value = (): number => (r() < 0.2 ? [-1, -0, 0, 1, 2][Math.floor(r() * 5)]! : (r() - 0.5) * 10 ** Math.floor(r() * 10 - 5));
  return Array.from({ length: n }, (_, k) => ({
    numExamples: 3 + 7 * k,
    weights: [{ shape: [50, 50], data: Float32Array.from({ length: 2500 }, value) }, { shape: [7], data: Float32Array.from({ length: 7 }, value) }],
  }));
}

/** Runs a slice round over the flat updates cut into slices of `sliceLen`, as the coordinator does. */
function bySlices(config: StrategyConfig, us: ClientUpdate[], sliceLen: number): Float32Array {
  const flat = us.map((u) => concatTensors(u.weights));
  const length = flat[0]!.length;
  const round = createStrategy(config).sliceRound!(length, us.map((u) => u.numExamples));
  const cut = (xs: Float32Array[], offset: number) => xs.map((x) => x.slice(offset, Math.min(length, offset + sliceLen)));
  if (round.needsScan) for (let o = 0; o < length; o += sliceLen) round.scan(o, cut(flat, o));
  const reads = round.reads();
  const out = new Float32Array(length);
  for (let o = 0; o < length; o += sliceLen) out.set(round.combine(o, cut(reads.map((k) => flat[k]!), o)), o);
  return out;
}

const bits = (x: Float32Array): number[] => Array.from(new Uint32Array(x.slice().buffer));

describe('slice-wise rounds of the order-statistic strategies', () => {
  for (const config of ORDER_STATISTICS) {
    it(`${JSON.stringify(config)}: equal to aggregate bit for bit, whatever the slice length`, () => {
      for (const n of [11, 12]) {
        const us = updates(n, n);
        const zero = us[0]!.weights.map((t) => ({ shape: t.shape, data: new Float32Array(t.data.length) }));
        const whole = bits(concatTensors(createStrategy(config).aggregate(zero, us, 1)));
        for (const sliceLen of [1, 333, 1024, 2507, 5000]) expect(bits(bySlices(config, us, sliceLen))).toEqual(whole);
      }
    });
  }

  it('refuses passes out of turn, slices out of order and too few updates', () => {
    const code = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(FedlhsError);
        return `${(err as FedlhsError).code}: ${(err as FedlhsError).message}`;
      }
      return 'nothing thrown';
    };
    expect(code(() => createStrategy({ name: 'krum', byzantine: 1 }).sliceRound!(10, [1, 1, 1, 1]))).toBe(
      'INVALID_ARGUMENT: krum: byzantine=1 needs at least 5 updates (n > 2f + 2), got 4',
    );
    expect(code(() => createStrategy({ name: 'fedmedian' }).sliceRound!(10, [1, 0]))).toMatch(/^INVALID_ARGUMENT: fedmedian: update 1 numExamples/);
    const krum = createStrategy({ name: 'krum', byzantine: 0 }).sliceRound!(4, [1, 1, 1]);
    const s = (len: number) => [new Float32Array(len), new Float32Array(len), new Float32Array(len)];
    expect(code(() => krum.reads())).toMatch(/^INVALID_STATE: krum: reads\(\) before the scan/);
    expect(code(() => krum.scan(2, s(2)))).toMatch(/^INVALID_STATE: krum: scan: slice at 2, expected 0/);
    krum.scan(0, s(2));
    expect(code(() => krum.scan(2, s(3)))).toMatch(/^INVALID_STATE: krum: scan: slices at 2 must share one length/);
    expect(code(() => krum.combine(2, s(2)))).toMatch(/^INVALID_STATE: krum: combine called during the scan pass/);
    krum.scan(2, s(2));
    expect(krum.reads()).toEqual([0]);
    expect(code(() => krum.combine(0, s(4)))).toMatch(/^INVALID_STATE: krum: combine: 3 slices, expected 1/);
    const median = createStrategy({ name: 'fedmedian' }).sliceRound!(4, [1, 1, 1]);
    expect(median.needsScan).toBe(false);
    expect(code(() => median.combine(0, s(4)))).toMatch(/^INVALID_STATE: fedmedian: combine called during the reads pass/);
  });
});
