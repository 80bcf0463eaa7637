import { describe, expect, it } from 'vitest';
import { FedlhsError } from './errors.js';
import { WeightedSum } from './fedavg.js';

function rejection(fn: () => unknown): FedlhsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return err as FedlhsError;
  }
  throw new Error('expected a FedlhsError, nothing was thrown');
}

describe('WeightedSum', () => {
  it('averages a one-value model weighted by example counts: 1 (n=10) and 2 (n=30) → 1.75', () => {
    const s = new WeightedSum(1);
    s.addChunk(0, Float32Array.from([1]), 10);
    s.commit(10);
    s.addChunk(0, Float32Array.from([2]), 30);
    s.commit(30);
    // (10·1 + 30·2) / 40 = 70 / 40
    expect(Array.from(s.mean())).toEqual([1.75]);
    expect(s.count).toBe(2);
    expect(s.totalWeight).toBe(40);
  });

  it('averages vectors element-wise: [1,2,3] (n=10) and [5,6,-1] (n=30) → [4,5,0]', () => {
    const s = new WeightedSum(3);
    s.addChunk(0, Float32Array.from([1, 2, 3]), 10);
    s.commit(10);
    s.addChunk(0, Float32Array.from([5, 6, -1]), 30);
    s.commit(30);
    // [(10+150)/40, (20+180)/40, (30-30)/40]
    expect(Array.from(s.mean())).toEqual([4, 5, 0]);
  });

  it('gives the plain mean for equal weights and the single update for one contribution', () => {
    const s = new WeightedSum(2);
    s.addChunk(0, Float32Array.from([0.5, -4]), 1);
    s.commit(1);
    expect(Array.from(s.mean())).toEqual([0.5, -4]);
    s.addChunk(0, Float32Array.from([1.5, 8]), 1);
    s.commit(1);
    expect(Array.from(s.mean())).toEqual([1, 2]);
  });

  it('gives the same result for chunked adds at offsets as for one add', () => {
    const a = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5]);
    const b = Float32Array.from([-3, 7.25, 1e-3, 42, 0]);
    const whole = new WeightedSum(5);
    whole.addChunk(0, a, 3);
    whole.commit(3);
    whole.addChunk(0, b, 7);
    whole.commit(7);

    const chunked = new WeightedSum(5);
    chunked.addChunk(0, a.subarray(0, 2), 3);
    chunked.addChunk(2, a.subarray(2, 4), 3);
    chunked.addChunk(4, a.subarray(4), 3);
    chunked.commit(3);
    // Chunks of one contribution may arrive in any order.
    chunked.addChunk(3, b.subarray(3), 7);
    chunked.addChunk(0, b.subarray(0, 3), 7);
    chunked.commit(7);

    expect(chunked.mean()).toEqual(whole.mean());
    expect(chunked.mean()[3]).toBe(Math.fround((3 * Math.fround(0.4) + 7 * 42) / 10));
  });

  it('returns a slice of the mean', () => {
    const s = new WeightedSum(4);
    s.addChunk(0, Float32Array.from([2, 4, 6, 8]), 2);
    s.commit(2);
    expect(Array.from(s.meanSlice(1, 2))).toEqual([4, 6]);
  });

  it.each([0, -1, NaN, Infinity])('refuses to commit weight %s', (weight) => {
    const s = new WeightedSum(1);
    const err = rejection(() => s.commit(weight));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(`contribution weight must be a positive finite number, got ${weight}`);
    expect(s.count).toBe(0);
    expect(s.totalWeight).toBe(0);
  });

  it('refuses to average with no contributions', () => {
    const s = new WeightedSum(3);
    s.addChunk(0, Float32Array.from([1, 2, 3]), 1);
    const err = rejection(() => s.mean());
    expect(err.code).toBe('INVALID_STATE');
    expect(err.message).toMatchInlineSnapshot(`"no contributions to average: nothing has been committed yet"`);
  });

  it('refuses a chunk that overruns the model and leaves the sum unchanged', () => {
    const s = new WeightedSum(4);
    const err = rejection(() => s.addChunk(3, Float32Array.from([1, 2]), 1));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatchInlineSnapshot(`"chunk at 3 of 2 values overruns the model (4)"`);
    s.addChunk(2, Float32Array.from([5, 6]), 1);
    s.commit(1);
    expect(Array.from(s.mean())).toEqual([0, 0, 5, 6]);
  });

  it('starts at zero whatever the length (the pages are touched at construction, the contents kept)', () => {
    for (const length of [0, 1, 511, 512, 513, 3 * 512 + 7]) {
      const s = new WeightedSum(length);
      const values = Float32Array.from({ length }, (_, i) => i % 7);
      s.addChunk(0, values, 3);
      s.commit(3);
      expect(Array.from(s.mean()), `length ${length}`).toEqual(Array.from(values));
    }
  });

  it('after discard (a contribution only partly added) every mean throws, naming why', () => {
    const s = new WeightedSum(2);
    s.addChunk(0, Float32Array.from([1, 2]), 1);
    s.commit(1);
    s.addChunk(0, Float32Array.from([5]), 1);
    s.discard('read failed');
    const err = rejection(() => s.meanSlice(0, 2));
    expect(err.code).toBe('INVALID_STATE');
    expect(err.message).toMatchInlineSnapshot(`"the running sum holds part of a contribution and cannot be averaged: read failed"`);
  });
});
