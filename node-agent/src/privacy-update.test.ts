import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { clinicNoiseStd, privatiseUpdate, type DpSection } from './privacy-update.js';

const l2 = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const dp = (placement: DpSection['placement'], z = 1.5, norm = 0.5): DpSection => ({ placement, noiseMultiplier: z, clipping: { mode: 'fixed', norm } });

/** A round model and a trained model whose change has L2 norm `norm`. */
function models(n: number, norm: number): { base: Float32Array; trained: Float32Array } {
  const base = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const dir = Float32Array.from({ length: n }, (_, i) => Math.cos(3 * i) + 0.1);
  const scale = norm / l2(dir);
  return { base, trained: Float32Array.from(base, (b, i) => b + dir[i]! * scale) };
}

describe('privatiseUpdate', () => {
  it('clips the change to C before any noise: central is clip only, and the upload is round model + clipped change', () => {
    const { base, trained } = models(1000, 3);
    const { weights, info } = privatiseUpdate(trained, base, dp('central'), 4);
    expect(info).toMatchObject({ placement: 'central', clipNorm: 0.5, noiseStd: 0 });
    expect(info.normBefore).toBeCloseTo(3, 4);
    expect(info.clipFactor).toBeCloseTo(0.5 / 3, 5);
    const delta = Float32Array.from(weights, (w, i) => w - base[i]!);
    expect(l2(delta)).toBeLessThanOrEqual(0.5 * (1 + 1e-5));
    expect(l2(delta)).toBeGreaterThan(0.49);
    // The direction is kept: the clipped change is the change scaled.
    const change = Float32Array.from(trained, (t, i) => t - base[i]!);
    expect(delta[17]! / change[17]!).toBeCloseTo(info.clipFactor, 3);
  });

  it('leaves a change within C unscaled', () => {
    const { base, trained } = models(100, 0.2);
    const { weights, info } = privatiseUpdate(trained, base, dp('central'), 4);
    expect(info.clipFactor).toBe(1);
    expect(Array.from(weights)).toEqual(Array.from(trained));
  });

  it('adds noise of standard deviation z·C (local) and z·C/√clients.min (distributed) to the clipped change', () => {
    const n = 200_000;
    const { base, trained } = models(n, 3);
    const clippedOnly = privatiseUpdate(trained, base, dp('central'), 4).weights;
    for (const [placement, expected] of [['local', 1.5 * 0.5], ['distributed', (1.5 * 0.5) / 2]] as const) {
      const { weights, info } = privatiseUpdate(trained, base, dp(placement), 4);
      expect(info.noiseStd).toBeCloseTo(expected, 12);
      let sum = 0;
      let sq = 0;
      for (let i = 0; i < n; i++) {
        const noise = weights[i]! - clippedOnly[i]!;
        sum += noise;
        sq += noise * noise;
      }
      const mean = sum / n;
      const std = Math.sqrt(sq / n - mean * mean);
      // Sample std of 200k normals is within ~0.5 % of the true one (4.5 standard errors).
      expect(Math.abs(std / expected - 1)).toBeLessThan(0.01);
      expect(Math.abs(mean)).toBeLessThan((5 * expected) / Math.sqrt(n));
    }
  });

  it('draws the noise from the byte source it is given (Node crypto unless a test injects one)', () => {
    const { base, trained } = models(64, 3);
    let asked = 0;
    const source = (bytes: number): Uint8Array => {
      asked += bytes;
      return randomBytes(bytes);
    };
    privatiseUpdate(trained, base, dp('local'), 4, source);
    expect(asked).toBeGreaterThan(0);
  });

  it('clips adaptive studies at the initial norm (adaptive updates of C are not yet exchanged)', () => {
    const { base, trained } = models(100, 3);
    const adaptive: DpSection = { placement: 'central', noiseMultiplier: 1, clipping: { mode: 'adaptive', initialNorm: 0.25, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier: 10 } };
    expect(privatiseUpdate(trained, base, adaptive, 4).info.clipNorm).toBe(0.25);
    expect(clinicNoiseStd(adaptive, 4, 0.25)).toBe(0);
  });

  it('refuses models of different lengths', () => {
    expect(() => privatiseUpdate(new Float32Array(3), new Float32Array(4), dp('local'), 4)).toThrow(/3 values, the round's model 4/);
  });
});
