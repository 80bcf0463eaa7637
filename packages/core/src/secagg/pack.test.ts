import { describe, expect, it } from 'vitest';
import { zeroWords, type MaskWords } from './masks.js';
import { packWords, packedLength, unpackWords } from './pack.js';
import { thrown } from './test-support.js';


/** Deterministic words below 2^bits, including the extremes 0 and 2^bits − 1. */
function words(length: number, bits: number, seed: number): MaskWords {
  const out = zeroWords(length, bits);
  let s = BigInt(seed) * 0x9e3779b97f4a7c15n;
  const mask = (1n << BigInt(bits)) - 1n;
  for (let i = 0; i < length; i++) {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    const v = i % 7 === 0 ? mask : i % 11 === 0 ? 0n : (s >> 7n) & mask;
    if (out instanceof Uint32Array) out[i] = Number(v);
    else out[i] = v;
  }
  return out;
}

/** The reference: value i at bits [i·bits, (i+1)·bits), least significant first, one bit at a time. */
function slowPack(w: MaskWords, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((w.length * bits) / 8));
  for (let i = 0; i < w.length; i++) {
    const v = BigInt(w[i]!);
    for (let b = 0; b < bits; b++) if ((v >> BigInt(b)) & 1n) out[(i * bits + b) >> 3]! |= 1 << ((i * bits + b) & 7);
  }
  return out;
}

describe('packWords / unpackWords', () => {
  it('round-trips at every width 1..64 and odd lengths, bit-exact with the reference layout', () => {
    for (let bits = 1; bits <= 64; bits++) {
      for (const length of [0, 1, 2, 3, 7, 31, 33, 100]) {
        const w = words(length, bits, bits * 1000 + length);
        const packed = packWords(w, bits);
        expect(packed.length).toBe(packedLength(length, bits));
        expect(packed.length).toBe(Math.ceil((length * bits) / 8));
        expect(Buffer.from(packed).equals(Buffer.from(slowPack(w, bits)))).toBe(true);
        expect(unpackWords(packed, bits, length)).toEqual(w);
      }
    }
  });

  it('refuses a wrong byte length and non-zero padding bits, naming the field', () => {
    const w = words(63, 20, 1); // 1260 bits: 158 bytes, 4 padding bits
    const packed = packWords(w, 20);
    let err = thrown(() => unpackWords(packed.subarray(1), 20, 63, 'StageReport.vector'));
    expect(err.message).toBe('StageReport.vector: must be 158 bytes (63 values of 20 bits), got 157');
    expect(err.details).toEqual({ field: 'StageReport.vector' });
    expect(thrown(() => unpackWords(new Uint8Array(159), 20, 63)).code).toBe('INVALID_ARGUMENT');
    for (const bit of [4, 5, 6, 7]) {
      const bad = packed.slice();
      bad[157]! |= 1 << bit;
      err = thrown(() => unpackWords(bad, 20, 63));
      expect(err.message).toBe('vector: the 4 padding bits of the last byte must be zero');
    }
    // A set bit inside the last value is data, not padding.
    const data = packed.slice();
    data[157]! ^= 1 << 3;
    expect(unpackWords(data, 20, 63)).not.toEqual(w);
    // Wide words: 3 values of 33 bits = 99 bits, 13 bytes, 5 padding bits.
    const wide = packWords(words(3, 33, 2), 33);
    wide[12]! |= 0x80;
    expect(thrown(() => unpackWords(wide, 33, 3)).message).toContain('padding bits');
  });

  it('refuses to pack a word at or above 2^bits, or of the wrong type', () => {
    expect(thrown(() => packWords(Uint32Array.of(1, 1 << 20), 20)).message).toBe('vector: value 1048576 at 1 is not below 2^20');
    expect(thrown(() => packWords(Uint32Array.of(1), 40)).code).toBe('INVALID_ARGUMENT');
  });

  it('is fast enough for a 1M-value model (pack + unpack under a second at 20 bits)', () => {
    const w = Uint32Array.from({ length: 1_000_000 }, (_, i) => (Math.imul(i, 2654435761) >>> 12) & 0xfffff);
    const started = performance.now();
    const packed = packWords(w, 20);
    const back = unpackWords(packed, 20, 1_000_000);
    const ms = performance.now() - started;
    expect(packed.length).toBe(2_500_000);
    expect(Buffer.from(back.buffer).equals(Buffer.from(w.buffer))).toBe(true);
    expect(ms).toBeLessThan(1000);
  });
});
