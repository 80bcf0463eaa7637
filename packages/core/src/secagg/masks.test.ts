import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { combineShares, splitSecret } from './shamir.js';
import {
  applyMasks,
  checkWords,
  decodeWords,
  encodeWords,
  keyAgreement,
  maskVector,
  pairSign,
  pairwiseSeed,
  privateKeyBytes,
  privateKeyFromBytes,
  sumWords,
  unmaskSum,
  zeroWords,
  type MaskWords,
  type SignedSeed,
} from './masks.js';
import { thrown } from './test-support.js';


const ctx = { studyId: 'study-a', round: 3 };

function randomWords(length: number, bits: number): MaskWords {
  const out = zeroWords(length, bits);
  const raw = randomBytes(8 * length);
  for (let i = 0; i < length; i++) {
    const w = raw.readBigUInt64LE(8 * i) & ((1n << BigInt(bits)) - 1n);
    if (out instanceof Uint32Array) out[i] = Number(w);
    else out[i] = w;
  }
  return out;
}

/** n clinics, every pair agreeing a seed (the complete graph), as the clinics would. */
function setup(ids: readonly string[]) {
  const keys = new Map(ids.map((id) => [id, keyAgreement()]));
  const pairwiseOf = (u: string, others: readonly string[]): SignedSeed[] =>
    others.filter((v) => v !== u).map((v) => ({ seed: pairwiseSeed(keys.get(u)!.privateKey, keys.get(v)!.publicKey, { ...ctx, a: u, b: v }), sign: pairSign(u, v) }));
  return { keys, pairwiseOf };
}

describe('masks', () => {
  const ids = ['clinic-a', 'clinic-b', 'clinic-c', 'clinic-d', 'clinic-e', 'clinic-f'];

  it('both ends of a pair derive the same seed', () => {
    const { keys } = setup(ids);
    const u = keys.get('clinic-a')!;
    const v = keys.get('clinic-d')!;
    const uv = pairwiseSeed(u.privateKey, v.publicKey, { ...ctx, a: 'clinic-a', b: 'clinic-d' });
    const vu = pairwiseSeed(v.privateKey, u.publicKey, { ...ctx, a: 'clinic-d', b: 'clinic-a' });
    expect(Buffer.from(uv)).toEqual(Buffer.from(vu));
    expect(uv.length).toBe(32);
  });

  for (const bits of [20, 32, 40, 64]) {
    it(`pairwise masks cancel exactly and self masks come off given the seeds (${bits} bits)`, () => {
      const length = 1000;
      const { pairwiseOf } = setup(ids);
      // Pairwise masks alone sum to zero.
      const pairOnly = ids.map((u) => {
        const v = zeroWords(length, bits);
        return applyMasks(v, new Uint8Array(32), pairwiseOf(u, ids), bits);
      });
      const selfOfZero = maskVector(new Uint8Array(32), length, bits);
      const pairSum = unmaskSum(sumWords(pairOnly, length, bits), { selfSeeds: ids.map(() => new Uint8Array(32)), pairwise: [] }, bits);
      expect(pairSum.every((w) => w === 0 || w === 0n)).toBe(true);
      expect(selfOfZero.some((w) => w !== 0 && w !== 0n)).toBe(true);
      // Full protocol: masked inputs reveal nothing alone, the unmasked sum is exact.
      const inputs = ids.map(() => randomWords(length, bits));
      const selfSeeds = ids.map(() => new Uint8Array(randomBytes(32)));
      const masked = ids.map((u, i) => applyMasks(inputs[i]!, selfSeeds[i]!, pairwiseOf(u, ids), bits));
      expect(masked[0]).not.toEqual(inputs[0]);
      const sum = unmaskSum(sumWords(masked, length, bits), { selfSeeds, pairwise: [] }, bits);
      expect(sum).toEqual(sumWords(inputs, length, bits));
    });
  }

  it('unmasks a round where a clinic dropped before sending, from its rebuilt private key', () => {
    const bits = 24;
    const length = 64;
    const { keys, pairwiseOf } = setup(ids);
    const dropped = 'clinic-c';
    const survivors = ids.filter((id) => id !== dropped);
    // The dropped clinic had shared its private key with the others (threshold 3).
    const keyShares = splitSecret(privateKeyBytes(keys.get(dropped)!.privateKey), 3, [1, 2, 3, 4, 5]);
    const inputs = survivors.map(() => randomWords(length, bits));
    const selfSeeds = survivors.map(() => new Uint8Array(randomBytes(32)));
    const masked = survivors.map((u, i) => applyMasks(inputs[i]!, selfSeeds[i]!, pairwiseOf(u, ids), bits));
    const rebuilt = privateKeyFromBytes(combineShares([keyShares[4]!, keyShares[0]!, keyShares[2]!], 3));
    const residual = survivors.map((s) => ({ seed: pairwiseSeed(rebuilt, keys.get(s)!.publicKey, { ...ctx, a: dropped, b: s }), sign: pairSign(s, dropped) }));
    const sum = unmaskSum(sumWords(masked, length, bits), { selfSeeds, pairwise: residual }, bits);
    expect(sum).toEqual(sumWords(inputs, length, bits));
    // Without the residual masks the sum is garbage: the test can fail.
    expect(unmaskSum(sumWords(masked, length, bits), { selfSeeds, pairwise: [] }, bits)).not.toEqual(sum);
  });

  it('seeds of another round, study or pair are unrelated', () => {
    const { keys } = setup(ids);
    const u = keys.get('clinic-a')!;
    const v = keys.get('clinic-b')!;
    const w = keys.get('clinic-e')!;
    const base = pairwiseSeed(u.privateKey, v.publicKey, { ...ctx, a: 'clinic-a', b: 'clinic-b' });
    const others = [
      pairwiseSeed(u.privateKey, v.publicKey, { ...ctx, round: 4, a: 'clinic-a', b: 'clinic-b' }),
      pairwiseSeed(u.privateKey, v.publicKey, { ...ctx, studyId: 'study-b', a: 'clinic-a', b: 'clinic-b' }),
      pairwiseSeed(u.privateKey, v.publicKey, { ...ctx, a: 'clinic-a', b: 'clinic-x' }),
      pairwiseSeed(u.privateKey, w.publicKey, { ...ctx, a: 'clinic-a', b: 'clinic-b' }),
    ];
    const length = 4096;
    const m0 = maskVector(base, length, 32);
    for (const seed of others) {
      expect(Buffer.from(seed)).not.toEqual(Buffer.from(base));
      const m = maskVector(seed, length, 32);
      // Unrelated uniform 32-bit words agree with probability 2^-32 each.
      expect(m.filter((x, i) => x === m0[i]).length).toBeLessThan(3);
    }
  });

  // The pinned words were checked independently: HKDF-SHA256 in Python's hmac, then `openssl enc -aes-256-ctr` over zeros.
  it('is deterministic for a seed, and pinned: every clinic must compute the same stream', () => {
    const seed = new Uint8Array(32).map((_, i) => i);
    expect(maskVector(seed, 50_000, 32)).toEqual(maskVector(seed, 50_000, 32));
    expect(Array.from(maskVector(seed, 4, 32) as Uint32Array)).toMatchInlineSnapshot(`
      [
        1427491830,
        2382273805,
        543129416,
        3553511877,
      ]
    `);
    expect(Array.from(maskVector(seed, 2, 64) as BigUint64Array)).toMatchInlineSnapshot(`
      [
        10231788084019973110n,
        15262217298205704008n,
      ]
    `);
    expect(Array.from(maskVector(seed, 4, 12) as Uint32Array).every((w) => w < 4096)).toBe(true);
    // A prefix of a longer stream: masks do not depend on chunking.
    expect(Array.from(maskVector(seed, 9000, 32) as Uint32Array).slice(0, 8192)).toEqual(Array.from(maskVector(seed, 8192, 32) as Uint32Array));
  });

  it('refuses a low-order public key, a malformed key and a pair of one clinic', () => {
    const { keys } = setup(ids);
    const u = keys.get('clinic-a')!;
    expect(thrown(() => pairwiseSeed(u.privateKey, new Uint8Array(32), { ...ctx, a: 'clinic-a', b: 'clinic-b' })).details).toEqual({ field: 'theirPublic' });
    expect(thrown(() => pairwiseSeed(u.privateKey, new Uint8Array(31), { ...ctx, a: 'clinic-a', b: 'clinic-b' })).details).toEqual({ field: 'theirPublic' });
    expect(thrown(() => pairwiseSeed(u.privateKey, u.publicKey, { ...ctx, a: 'clinic-a', b: 'clinic-a' })).details).toEqual({ field: 'pair' });
    expect(thrown(() => pairSign('1', 2)).message).toContain('cannot order');
    expect(pairSign(2, 10)).toBe(1);
    expect(pairSign('b', 'a')).toBe(-1);
  });

  it('checks masked vectors: type, length and range', () => {
    expect(thrown(() => checkWords(new Uint32Array([1, 2 ** 20]), 20, 'masked', 2)).message).toMatchInlineSnapshot(`"masked: value 1048576 at 1 is not below 2^20"`);
    expect(thrown(() => checkWords(new Uint32Array(3), 20, 'masked', 2)).message).toContain('must hold 2 values');
    expect(thrown(() => checkWords(new Uint32Array(2), 40)).message).toContain('BigUint64Array');
    expect(thrown(() => checkWords(new BigUint64Array([1n << 40n]), 40)).message).toContain('not below 2^40');
    expect(thrown(() => applyMasks(new Uint32Array([1 << 21]), new Uint8Array(32), [], 20)).details).toEqual({ field: 'q' });
    expect(() => checkWords(new Uint32Array([2 ** 20 - 1]), 20, 'masked', 1)).not.toThrow();
  });
});

describe('masked vectors on the wire', () => {
  it('round-trips words of 20, 32, 40 and 64 bits', () => {
    for (const bits of [20, 32, 40, 64]) {
      const v = bits <= 32 ? new Uint32Array([0, 1, 2 ** bits - 1]) : new BigUint64Array([0n, 1n, (1n << BigInt(bits)) - 1n]);
      const bytes = encodeWords(v, bits);
      expect(bytes.length).toBe(3 * (bits <= 32 ? 4 : 8));
      expect(decodeWords(bytes, 3, bits)).toEqual(v);
    }
  });

  it('refuses a wrong length and an out-of-field value, naming the field', () => {
    expect(thrown(() => decodeWords(new Uint8Array(7), 2, 20, 'masked')).message).toMatchInlineSnapshot(`"masked: must be 8 bytes (2 values of 4 bytes), got 7"`);
    const over = new Uint8Array(8);
    over.set([0, 0, 0x10, 0], 4); // 2^20 in the second word
    expect(thrown(() => decodeWords(over, 2, 20, 'masked')).message).toContain('value 1048576 at 1 is not below 2^20');
  });
});
