import { describe, expect, it } from 'vitest';
import { clipL2, gaussianNoise, mulberry32 } from '@fedlhs/core';
import { applyChangeInPlace, modelChange, privatiseDelta, privatiseUpdate, type DpSection } from './privacy-update.js';

/** A deterministic byte source (a seeded PRNG), so two runs draw the same noise. */
function byteSource(seed: number): { next: (bytes: number) => Uint8Array; asks: number[] } {
  const random = mulberry32(seed);
  const asks: number[] = [];
  return {
    asks,
    next: (bytes) => {
      asks.push(bytes);
      const words = new Uint32Array(Math.ceil(bytes / 4));
      for (let i = 0; i < words.length; i++) words[i] = Math.floor(random() * 2 ** 32);
      return new Uint8Array(words.buffer, 0, bytes);
    },
  };
}

const bytes = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

const local: DpSection = { placement: 'local', noiseMultiplier: 1.1, clipping: { mode: 'fixed', norm: 0.5 } };

describe('DP update without extra model-sized copies', () => {
  it('adds the same noise block by block as one draw over the whole update, reading the source in the same sizes', () => {
    // More than one block of 2^20 values, the last one partial and odd.
    const n = (1 << 20) + 12_345;
    const delta = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e-3);
    const ours = byteSource(7);
    const { delta: noisy, info } = privatiseDelta(delta, local, 4, ours.next);
    // The reference: one gaussianNoise call over all n values, added as before.
    const theirs = byteSource(7);
    const { clipped } = clipL2(delta, 0.5);
    const noise = gaussianNoise(n, info.noiseStd, theirs.next);
    const expected = Float32Array.from(clipped, (c, i) => c + noise[i]!);
    expect(ours.asks).toEqual(theirs.asks);
    // Bytewise: vitest's deep equality is slow on millions of elements.
    expect(bytes(noisy).equals(bytes(expected))).toBe(true);
    expect(info.noiseStd).toBeGreaterThan(0);
    expect(bytes(noisy).equals(bytes(clipped))).toBe(false);
  });

  it('writes Δ over the trained weights and the upload over the round model, with the values of new arrays', () => {
    const round = Float32Array.from({ length: 1001 }, (_, i) => Math.cos(i));
    const trained = Float32Array.from(round, (r, i) => r + Math.sin(3 * i) / 7);
    const fresh = modelChange(trained, round);
    expect(fresh).not.toBe(trained);
    const inPlace = modelChange(Float32Array.from(trained), round, trained);
    expect(inPlace).toBe(trained);
    expect(inPlace).toEqual(fresh);
    const expectedWeights = Float32Array.from(round, (r, i) => r + fresh[i]!);
    const weights = applyChangeInPlace(round, fresh);
    expect(weights).toBe(round);
    expect(weights).toEqual(expectedWeights);
    expect(() => modelChange(trained, round, new Float32Array(3))).toThrow(/Δ needs 1001 values/);
    expect(() => applyChangeInPlace(round, new Float32Array(3))).toThrow(/Δ has 3 values/);
  });

  it('privatiseUpdate returns round model + clipped, noisy Δ and leaves its inputs alone', () => {
    const round = Float32Array.from({ length: 500 }, (_, i) => Math.cos(i));
    const trained = Float32Array.from(round, (r, i) => r + Math.sin(3 * i));
    const [roundCopy, trainedCopy] = [Float32Array.from(round), Float32Array.from(trained)];
    const { weights } = privatiseUpdate(trained, round, local, 4, byteSource(8).next);
    const { delta } = privatiseDelta(modelChange(trainedCopy, roundCopy), local, 4, byteSource(8).next);
    expect(weights).toEqual(Float32Array.from(roundCopy, (r, i) => r + delta[i]!));
    expect(round).toEqual(roundCopy);
    expect(trained).toEqual(trainedCopy);
  });
});
