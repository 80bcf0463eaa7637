import { describe, expect, it } from 'vitest';
import type { PrivacySection } from '../manifest.js';
import {
  clipIndicatorNoiseStd,
  clipNormParameter,
  noisyClipIndicator,
  noisyUnclippedFraction,
  withClipNormParameter,
} from './adaptive-clip.js';
import { adaptiveClipNorm } from './mechanism.js';

type Dp = NonNullable<PrivacySection['dp']>;
const adaptive = (placement: Dp['placement'], countNoiseMultiplier = 4): Dp => ({
  placement, noiseMultiplier: 1, clipping: { mode: 'adaptive', initialNorm: 1, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier },
});

/** A byte source that is not random: a fixed pattern, so noise draws are reproducible. */
const fixedBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) % 256);

describe('clip norm in study parameters', () => {
  it('reads dp.clipNorm, absent when there is none', () => {
    expect(clipNormParameter(null)).toBeUndefined();
    expect(clipNormParameter('')).toBeUndefined();
    expect(clipNormParameter('{"normalization":{"method":"zscore","features":[]}}')).toBeUndefined();
    expect(clipNormParameter('{"dp":{"clipNorm":0.75}}')).toBe(0.75);
  });
  it('refuses a clipNorm that is not finite and > 0, naming the field', () => {
    for (const bad of ['{"dp":{"clipNorm":0}}', '{"dp":{"clipNorm":-1}}', '{"dp":{"clipNorm":"1"}}', '{"dp":{"clipNorm":null}}', '{"dp":3}', '[1]', '{nope']) {
      expect(() => clipNormParameter(bad)).toThrow(/Task\.parameters_json dp\.clipNorm|study parameters/);
    }
    expect(() => clipNormParameter('{"dp":{"clipNorm":1e999}}')).toThrow(/dp\.clipNorm must be a finite number > 0/);
    // A subnormal or absurd norm from the coordinator is refused (review clinic2 LOW 3); the bounds themselves are accepted.
    expect(() => clipNormParameter('{"dp":{"clipNorm":5e-324}}')).toThrow(/dp\.clipNorm must be from 0\.000001 to 1000000 \(got 5e-324\)/);
    expect(() => clipNormParameter('{"dp":{"clipNorm":1e7}}')).toThrow(/must be from/);
    expect(clipNormParameter('{"dp":{"clipNorm":1e-6}}')).toBe(1e-6);
    expect(clipNormParameter('{"dp":{"clipNorm":1e6}}')).toBe(1e6);
  });
  it('merges the norm into the parameters, keeping every other key', () => {
    const merged = withClipNormParameter('{"normalization":{"method":"zscore","features":[]},"dp":{"clipNorm":1,"note":"x"}}', 2.5);
    expect(JSON.parse(merged)).toEqual({ normalization: { method: 'zscore', features: [] }, dp: { clipNorm: 2.5, note: 'x' } });
    expect(JSON.parse(withClipNormParameter(null, 0.5))).toEqual({ dp: { clipNorm: 0.5 } });
    expect(() => withClipNormParameter(null, Number.NaN)).toThrow(/finite number > 0/);
  });
});

describe('clip indicator and its noise share', () => {
  it('places the count noise like the update noise', () => {
    expect(clipIndicatorNoiseStd(adaptive('local'), 4)).toBe(4);
    expect(clipIndicatorNoiseStd(adaptive('distributed'), 4)).toBe(2); // 4/√4
    expect(clipIndicatorNoiseStd(adaptive('central'), 4)).toBe(0);
    expect(clipIndicatorNoiseStd({ placement: 'local', noiseMultiplier: 1, clipping: { mode: 'fixed', norm: 1 } }, 4)).toBeUndefined();
  });
  it('is 1 at or under the norm, 0 above, bare only without a noise share', () => {
    expect(noisyClipIndicator(0.5, 1, 0)).toEqual({ bit: 1, value: 1 });
    expect(noisyClipIndicator(1, 1, 0)).toEqual({ bit: 1, value: 1 });
    expect(noisyClipIndicator(1.0001, 1, 0)).toEqual({ bit: 0, value: 0 });
    const noisy = noisyClipIndicator(0.5, 1, 3, fixedBytes);
    expect(noisy.bit).toBe(1);
    expect(noisy.value).not.toBe(1);
    expect(Number.isFinite(noisy.value)).toBe(true);
  });
  it('draws the share from the CSPRNG: its spread is the share', () => {
    const values = Array.from({ length: 4000 }, () => noisyClipIndicator(2, 1, 2).value);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
    expect(Math.abs(mean)).toBeLessThan(0.2); // bit 0, noise mean 0 (5σ of the mean is 0.16)
    expect(sd).toBeGreaterThan(1.85);
    expect(sd).toBeLessThan(2.15);
  });
});

describe('noisy unclipped fraction and the next norm (the paper\'s direction)', () => {
  it('is the indicators\' mean without central noise, and noisy with it', () => {
    expect(noisyUnclippedFraction(3, 4, 0)).toBe(0.75);
    expect(noisyUnclippedFraction(3, 4, 1, fixedBytes)).not.toBe(0.75);
    expect(() => noisyUnclippedFraction(1, 0, 0)).toThrow(/at least one update/);
    expect(() => noisyUnclippedFraction(Number.NaN, 2, 0)).toThrow(/must be finite/);
  });
  it('shrinks C when more clinics than γ are under it and grows it when fewer are', () => {
    // Andrew et al. 2021: C ← C·exp(−η(b̄ − γ)). The inverted implementation would grow C here.
    const under = noisyUnclippedFraction(noisyClipIndicator(0.2, 1, 0).value + noisyClipIndicator(0.4, 1, 0).value + noisyClipIndicator(3, 1, 0).value, 3, 0);
    expect(under).toBeCloseTo(2 / 3, 15);
    expect(adaptiveClipNorm(1, under, 0.5, 0.2)).toBeLessThan(1);
    const over = noisyUnclippedFraction(noisyClipIndicator(2, 1, 0).value + noisyClipIndicator(3, 1, 0).value + noisyClipIndicator(0.5, 1, 0).value, 3, 0);
    expect(adaptiveClipNorm(1, over, 0.5, 0.2)).toBeGreaterThan(1);
  });
});
