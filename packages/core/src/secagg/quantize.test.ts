import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { applyMasks, keyAgreement, pairSign, pairwiseSeed, sumWords, unmaskSum, type MaskWords } from './masks.js';
import { checkModulus, dequantizeSum, modulusBits, quantizationParams, quantize } from './quantize.js';
import { thrown } from './test-support.js';


/** Uniform floats in [−c, c] from a CSPRNG (the test needs no reproducibility, only coverage). */
function uniform(length: number, c: number): Float64Array {
  const raw = randomBytes(4 * length);
  return Float64Array.from({ length }, (_, i) => (raw.readUInt32LE(4 * i) / 2 ** 32) * 2 * c - c);
}

describe('quantisation', () => {
  it('sizes the modulus as ⌈log2 clients⌉ + valueBits', () => {
    expect([1, 2, 3, 4, 5, 10, 50, 64, 65].map((n) => modulusBits(n, 16))).toEqual([16, 17, 18, 18, 19, 20, 22, 22, 23]);
    expect(thrown(() => modulusBits(2 ** 20, 48)).message).toContain('more than 64');
    expect(thrown(() => modulusBits(0, 16)).details).toEqual({ field: 'clients' });
  });

  for (const [clients, valueBits] of [[10, 16], [50, 8], [3, 20], [1000, 30]] as const) {
    it(`recovers the float sum within clients·step/2 per coordinate (${clients} clients, ${valueBits} bits)`, () => {
      const spec = { clip: 0.5, valueBits, clients };
      const { step, bits } = quantizationParams(spec);
      const length = 200;
      const inputs = Array.from({ length: clients }, () => uniform(length, spec.clip));
      inputs[0]![0] = spec.clip;
      inputs[0]![1] = -spec.clip;
      const sum = sumWords(inputs.map((v) => quantize(v, spec)), length, bits);
      const got = dequantizeSum(sum, clients, spec);
      let worst = 0;
      for (let i = 0; i < length; i++) {
        const exact = inputs.reduce((acc, v) => acc + v[i]!, 0);
        worst = Math.max(worst, Math.abs(got[i]! - exact));
      }
      // A tiny slack for floating-point in the test's own reference sum.
      expect(worst).toBeLessThanOrEqual((clients * step) / 2 + 1e-9 * clients);
      expect(worst).toBeGreaterThan(0);
    });
  }

  it('never wraps at the maximum: n clients all at +clip sum to n·clip exactly', () => {
    for (const clients of [1, 2, 3, 7, 8, 9, 50, 64, 65]) {
      const spec = { clip: 1, valueBits: 12, clients };
      const { bits, levels } = quantizationParams(spec);
      const top = quantize([1, 1], spec);
      expect(top[0]).toBe(levels);
      const sum = sumWords(Array.from({ length: clients }, () => top), 2, bits);
      expect(sum[0]).toBe(clients * levels);
      expect(Array.from(dequantizeSum(sum, clients, spec))).toEqual([clients, clients]);
    }
  });

  it('recovers the sum through masking: quantise, mask, sum, unmask, dequantise', () => {
    const ids = [1, 2, 3, 4];
    const spec = { clip: 2, valueBits: 16, clients: ids.length };
    const { bits, step } = quantizationParams(spec);
    const keys = ids.map(() => keyAgreement());
    const inputs = ids.map(() => uniform(32, spec.clip));
    const selfSeeds = ids.map(() => new Uint8Array(randomBytes(32)));
    const masked: MaskWords[] = ids.map((u, i) => {
      const pairs = ids.filter((v) => v !== u).map((v) => ({ seed: pairwiseSeed(keys[i]!.privateKey, keys[v - 1]!.publicKey, { studyId: 's', round: 1, a: u, b: v }), sign: pairSign(u, v) }));
      return applyMasks(quantize(inputs[i]!, spec), selfSeeds[i]!, pairs, bits);
    });
    const sum = dequantizeSum(unmaskSum(sumWords(masked, 32, bits), { selfSeeds, pairwise: [] }, bits), ids.length, spec);
    for (let j = 0; j < 32; j++) expect(Math.abs(sum[j]! - inputs.reduce((a, v) => a + v[j]!, 0))).toBeLessThanOrEqual((ids.length * step) / 2 + 1e-9);
  });

  it('refuses values outside the clipping range and non-finite values instead of wrapping', () => {
    const spec = { clip: 1, valueBits: 8, clients: 4 };
    expect(thrown(() => quantize([0, 1.0000001], spec)).message).toMatchInlineSnapshot(`"values[1]: 1.0000001 is outside the clipping range [−1, 1]: clip before quantising"`);
    expect(thrown(() => quantize([-2], spec)).details).toEqual({ field: 'values[0]' });
    expect(thrown(() => quantize([Number.NaN], spec)).message).toContain('not a finite number');
    expect(thrown(() => quantize([0], { ...spec, clip: 0 })).details).toEqual({ field: 'clip' });
  });

  it('refuses a modulus too small for the clients summed, and a sum that must have wrapped', () => {
    const spec = { clip: 1, valueBits: 8, clients: 4 };
    expect(quantizationParams(spec).bits).toBe(10);
    expect(thrown(() => checkModulus(10, 5, 8)).message).toMatchInlineSnapshot(`"bits: a 10-bit modulus is too small for 5 clients of 8 bits (needs 11): the sum could wrap"`);
    expect(thrown(() => dequantizeSum(new Uint32Array(1), 4, spec, 9)).message).toContain('too small');
    expect(thrown(() => dequantizeSum(new Uint32Array(1), 5, spec)).message).toContain('sized for at most 4');
    // 3 clients can sum to at most 3·255 = 765; 800 fits the 10-bit modulus but no honest sum.
    expect(thrown(() => dequantizeSum(new Uint32Array([800]), 3, spec)).message).toContain('above the largest possible sum 765');
  });
});
