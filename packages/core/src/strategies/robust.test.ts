import { describe, expect, it } from 'vitest';
import type { Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate, type Strategy } from './index.js';
import { sortValues, trimCount } from './robust.js';

const t = (values: number[], shape: number[] = [values.length]): Tensor => ({ shape, data: Float32Array.from(values) });
const up = (numExamples: number, values: number[]): ClientUpdate => ({ numExamples, weights: [t(values)] });
const run = (s: Strategy, ...updates: number[][]): number[] =>
  Array.from(s.aggregate([t(new Array<number>(updates[0]!.length).fill(0))], updates.map((v, k) => up(k + 1, v)), 1)[0]!.data);
const big = Math.fround(3e38);
const next1 = Math.fround(1 + 2 ** -23); // the float32 right after 1

describe('fedmedian', () => {
  const median = createStrategy({ name: 'fedmedian' });

  it('takes the middle value per coordinate for odd n, ignoring example counts', () => {
    // Coordinates: {1, 2, 100} → 2; {10, 20, 0} → 10; {−3, −1, −2} → −2. The outlier 100 has
    // 1000 examples and still does not move the median.
    const out = median.aggregate([t([0, 0, 0])], [up(1, [1, 10, -3]), up(1, [2, 20, -1]), up(1000, [100, 0, -2])], 1);
    expect(Array.from(out[0]!.data)).toEqual([2, 10, -2]);
    expect(median.input).toBe('all-updates');
    expect(median.minUpdates).toBe(1);
  });

  it('averages the two middle values for even n', () => {
    // {1, 2, 3, 10} → (2 + 3)/2 = 2.5; {−4, 4, 0, 1} → sorted −4, 0, 1, 4 → (0 + 1)/2 = 0.5.
    expect(run(median, [1, -4], [2, 4], [3, 0], [10, 1])).toEqual([2.5, 0.5]);
    // A single update is its own median; two updates give their mean.
    expect(run(median, [7, -1])).toEqual([7, -1]);
    expect(run(median, [7, -1], [8, 1])).toEqual([7.5, 0]);
  });

  it('rounds the mean of the two middle values once, to float32', () => {
    // (1 + (1 + 2⁻²³))/2 = 1 + 2⁻²⁴, halfway between two float32s → ties to even → 1.
    expect(run(median, [1], [next1], [0], [5])).toEqual([1]);
  });

  it('does not overflow on 3e38-sized middle values', () => {
    // Sorted −big, big, big, big → (big + big)/2 = big; in float32, big + big = Infinity.
    expect(run(median, [big], [big], [-big], [big])).toEqual([big]);
  });

  it('orders −0 before +0, like TypedArray.prototype.sort', () => {
    expect(Object.is(run(median, [-0], [-0], [0])[0], -0)).toBe(true); // −0, −0, +0 → −0
    expect(Object.is(run(median, [0], [-0], [0])[0], 0)).toBe(true); // −0, +0, +0 → +0
    expect(Object.is(run(median, [-0], [-0])[0], -0)).toBe(true); // (−0 + −0)/2 = −0
  });

  it('is stateless', () => {
    expect(median.exportState()).toEqual([]);
    expect(() => median.importState([t([1])])).toThrow('fedmedian: has no server state to import, got 1 tensors');
  });
});

describe('trimmed-mean', () => {
  const values = [[1], [2], [3], [4], [100]];

  it('with floor(beta·n) = 0 is the plain, unweighted mean', () => {
    // Default beta 0.1, n = 5: floor(0.5) = 0 → (1 + 2 + 3 + 4 + 100)/5 = 22 (counts 1…5 ignored).
    const s = createStrategy({ name: 'trimmed-mean' });
    expect(s.config).toEqual({ name: 'trimmed-mean', beta: 0.1 });
    expect(run(s, ...values)).toEqual([22]);
  });

  it('with floor(beta·n) > 0 drops that many lowest and highest values', () => {
    // beta 0.2, n = 5: floor(1) = 1 → drop 1 and 100 → (2 + 3 + 4)/3 = 3.
    expect(run(createStrategy({ name: 'trimmed-mean', beta: 0.2 }), ...values)).toEqual([3]);
    // beta 0.3, n = 5: floor(1.5) = 1 → same.
    expect(run(createStrategy({ name: 'trimmed-mean', beta: 0.3 }), ...values)).toEqual([3]);
    // beta 0.4, n = 5: floor(2) = 2 → only the median 3 is left.
    expect(run(createStrategy({ name: 'trimmed-mean', beta: 0.4 }), ...values)).toEqual([3]);
    // beta 0.25, n = 8: floor(2) = 2 per end: {−50, 0, 1, 2, 4, 6, 9, 70} → (1 + 2 + 4 + 6)/4 = 3.25.
    expect(run(createStrategy({ name: 'trimmed-mean', beta: 0.25 }), [9], [-50], [2], [70], [1], [0], [6], [4])).toEqual([3.25]);
  });

  it('trims per coordinate, independently', () => {
    // beta 0.2, n = 5. Coordinate 1: {5, 1, 9, 2, 3} → drop 1, 9 → (5 + 2 + 3)/3 = 10/3;
    // coordinate 2: {0, −1, 0, 30, 0} → drop −1, 30 → 0.
    const out = run(createStrategy({ name: 'trimmed-mean', beta: 0.2 }), [5, 0], [1, -1], [9, 0], [2, 30], [3, 0]);
    expect(out).toEqual([Math.fround(10 / 3), 0]);
  });

  it('sums the kept values in float64', () => {
    // beta 0.2, n = 5: {big, big, big, −big, 0} → drop −big and one big → (0 + big + big)/3.
    expect(run(createStrategy({ name: 'trimmed-mean', beta: 0.2 }), [big], [big], [big], [-big], [0])).toEqual([Math.fround((2 * big) / 3)]);
  });

  it('counts floor(beta·n) the way a person would for decimal betas', () => {
    expect(trimCount(0.1, 9)).toBe(0);
    expect(trimCount(0.1, 10)).toBe(1);
    expect(trimCount(0.29, 100)).toBe(29); // 0.29·100 = 28.999999999999996 in float64
    expect(trimCount(0.3, 10)).toBe(3);
    expect(trimCount(0.49, 3)).toBe(1);
    expect(trimCount(0, 1000)).toBe(0);
  });
});

describe('sortValues', () => {
  it('sorts small and large arrays ascending, −0 before +0', () => {
    for (const n of [0, 1, 2, 7, 32, 33, 100]) {
      const a = Float64Array.from({ length: n }, (_, i) => (i % 3 === 0 ? (i % 2 ? -0 : 0) : Math.sin(i * 7.3) * 10));
      const expected = Float64Array.from(a).sort();
      sortValues(a);
      expect(Array.from(a).map((x) => (Object.is(x, -0) ? '-0' : x))).toEqual(Array.from(expected).map((x) => (Object.is(x, -0) ? '-0' : x)));
    }
  });
});
