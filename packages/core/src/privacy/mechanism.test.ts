import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PrivacySection } from '../manifest.js';
import {
  adaptiveClipNorm,
  clipL2,
  effectiveCountNoiseMultiplier,
  effectiveNoiseMultiplier,
  gaussianNoise,
  roundRdp,
} from './mechanism.js';
import { computeRdp, DEFAULT_ORDERS } from './rdp.js';

type Dp = NonNullable<PrivacySection['dp']>;
const fixed = (placement: Dp['placement'], z = 1.2): Dp => ({ placement, noiseMultiplier: z, clipping: { mode: 'fixed', norm: 1 } });
const ctx = { clientsMin: 4, secureAggregation: false, trustCoordinatorNoise: false };

describe('effectiveNoiseMultiplier', () => {
  it('counts what protects one clinic under each placement', () => {
    expect(effectiveNoiseMultiplier(fixed('local'), ctx)).toBe(1.2);
    expect(effectiveNoiseMultiplier(fixed('distributed'), { ...ctx, secureAggregation: true })).toBe(1.2);
    expect(effectiveNoiseMultiplier(fixed('distributed'), ctx)).toBeCloseTo(0.6, 15); // 1.2/√4
    expect(effectiveNoiseMultiplier(fixed('central'), ctx)).toBe(0);
    expect(effectiveNoiseMultiplier(fixed('central'), { ...ctx, trustCoordinatorNoise: true })).toBe(1.2);
    expect(() => effectiveNoiseMultiplier(fixed('local'), { ...ctx, clientsMin: 0 })).toThrow(/clients.min must be a positive integer/);
  });
});

describe('roundRdp', () => {
  it('is one unsampled Gaussian step at the effective multiplier', () => {
    expect(roundRdp(fixed('local'), ctx)).toEqual(computeRdp(1, 1.2, 1, DEFAULT_ORDERS));
    expect(roundRdp(fixed('distributed'), ctx, [2, 8])).toEqual(computeRdp(1, 1.2 / 2, 1, [2, 8]));
  });
  it('is Infinity everywhere without protection', () => {
    expect(roundRdp(fixed('central'), ctx, [2, 8])).toEqual([Infinity, Infinity]);
  });
  it('adds the noisy count of adaptive clipping, and is Infinity if that count is exact', () => {
    const adaptive = (countNoiseMultiplier: number): Dp => ({
      placement: 'local',
      noiseMultiplier: 1.2,
      clipping: { mode: 'adaptive', initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier },
    });
    expect(effectiveCountNoiseMultiplier(fixed('local'), ctx)).toBeUndefined();
    expect(effectiveCountNoiseMultiplier(adaptive(10), ctx)).toBe(10);
    const [r2] = roundRdp(adaptive(10), ctx, [2]);
    expect(r2).toBeCloseTo(2 / (2 * 1.44) + 2 / (2 * 100), 14);
    expect(roundRdp(adaptive(0), ctx, [2])).toEqual([Infinity]);
  });
});

describe('clipL2', () => {
  it('scales an update over the norm to exactly within it and leaves one within it alone', () => {
    const big = Float32Array.from([3, 4]);
    const out = clipL2(big, 1);
    expect(out.norm).toBeCloseTo(5, 12);
    expect(out.factor).toBeCloseTo(0.2, 6);
    expect(Math.hypot(out.clipped[0]!, out.clipped[1]!)).toBeLessThanOrEqual(1);
    expect(Array.from(big)).toEqual([3, 4]); // input untouched
    const small = clipL2(Float32Array.from([0.3, 0.4]), 1);
    expect(small.factor).toBe(1);
    expect(Array.from(small.clipped)).toEqual(Array.from(Float32Array.from([0.3, 0.4])));
  });
  it('never leaves a float32 update above the norm', () => {
    const v = new Float32Array(10_000).map((_, i) => Math.sin(i * 12.9898) * 43758.5453);
    for (const c of [1e-3, 0.7, 1, 3.3, 123.456]) {
      const { clipped } = clipL2(v, c);
      let s = 0;
      for (const x of clipped) s += x * x;
      expect(Math.sqrt(s)).toBeLessThanOrEqual(c);
      expect(Math.sqrt(s)).toBeGreaterThan(c * (1 - 1e-5));
    }
  });
  it('refuses a bad norm or a non-finite update', () => {
    expect(() => clipL2(Float32Array.from([1]), 0)).toThrow(/clipping norm must be finite and > 0/);
    expect(() => clipL2(Float32Array.from([1, NaN]), 1)).toThrow(/update element 1 is not finite/);
  });
});

describe('gaussianNoise', () => {
  it('has mean 0 and the asked standard deviation', () => {
    const n = 200_000;
    const std = 2.5;
    const x = gaussianNoise(n, std);
    expect(x).toHaveLength(n);
    let sum = 0;
    let sq = 0;
    let beyond2 = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 2 * std) beyond2++;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    // 6 standard errors: a correct sampler fails this about once in 10^9 runs.
    expect(Math.abs(mean)).toBeLessThan((6 * std) / Math.sqrt(n));
    expect(Math.abs(variance / (std * std) - 1)).toBeLessThan(6 * Math.sqrt(2 / n));
    expect(Math.abs(beyond2 / n - 0.0455)).toBeLessThan(6 * Math.sqrt((0.0455 * 0.9545) / n)); // a Gaussian's tails
  });
  it('draws every byte from the injected source, in bounded chunks', () => {
    const asked: number[] = [];
    const source = (bytes: number) => {
      asked.push(bytes);
      return randomBytes(bytes);
    };
    const x = gaussianNoise(10_001, 1, source);
    expect(x).toHaveLength(10_001);
    expect(asked.reduce((a, b) => a + b, 0)).toBe(16 * 5001);
    expect(Math.max(...asked)).toBeLessThanOrEqual(16 * 4096);
    // Same bytes, same noise: the output is a function of the source alone.
    const fixedBytes = (bytes: number) => new Uint8Array(bytes).map((_, i) => (i * 37 + 11) & 0xff);
    expect(gaussianNoise(5, 1, fixedBytes)).toEqual(gaussianNoise(5, 1, fixedBytes));
    expect(() => gaussianNoise(4, 1, () => new Uint8Array(3))).toThrow(/random source returned 3 bytes, 32 asked/);
  });
  it('gives zeros for std 0 and refuses bad arguments', () => {
    expect(Array.from(gaussianNoise(3, 0))).toEqual([0, 0, 0]);
    expect(() => gaussianNoise(-1, 1)).toThrow(/noise length/);
    expect(() => gaussianNoise(2, NaN)).toThrow(/standard deviation/);
  });
});

describe('adaptiveClipNorm (Andrew et al. 2021, the paper\'s sign)', () => {
  it('shrinks the norm when more clinics than the target quantile are under it', () => {
    expect(adaptiveClipNorm(1, 0.9, 0.5, 0.2)).toBeLessThan(1);
    expect(adaptiveClipNorm(1, 0.9, 0.5, 0.2)).toBeCloseTo(Math.exp(-0.2 * 0.4), 15);
  });
  it('grows the norm when fewer clinics than the target quantile are under it', () => {
    expect(adaptiveClipNorm(1, 0.1, 0.5, 0.2)).toBeGreaterThan(1);
    expect(adaptiveClipNorm(2, 0, 0.5, 0.2)).toBeCloseTo(2 * Math.exp(0.1), 15);
  });
  it('stays put at the target, and converges to the target quantile of a fixed norm distribution', () => {
    expect(adaptiveClipNorm(3, 0.5, 0.5, 0.2)).toBe(3);
    const norms = Array.from({ length: 101 }, (_, i) => i / 10); // 0..10, median 5
    let c = 0.5;
    for (let round = 0; round < 400; round++) {
      const under = norms.filter((x) => x <= c).length / norms.length;
      c = adaptiveClipNorm(c, under, 0.5, 0.2);
    }
    expect(c).toBeGreaterThan(4.5);
    expect(c).toBeLessThan(5.5);
  });
  it('refuses bad arguments', () => {
    expect(() => adaptiveClipNorm(0, 0.5, 0.5, 0.2)).toThrow(/clipping norm/);
    expect(() => adaptiveClipNorm(1, NaN, 0.5, 0.2)).toThrow(/fraction of clinics under/);
    expect(() => adaptiveClipNorm(1, 0.5, 1.5, 0.2)).toThrow(/target quantile/);
    expect(() => adaptiveClipNorm(1, 0.5, 0.5, -1)).toThrow(/learning rate/);
  });
});
