import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FIELD_PRIME, bytesToBigInt, fieldInv, fieldMul, fieldSub } from './field.js';
import { SHARE_BYTES, combineShares, decodeShare, encodeShare, interpolateAt, splitSecret, type Share } from './shamir.js';
import { thrown } from './test-support.js';


function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [first, ...rest] = items;
  return [...subsets(rest, size - 1).map((s) => [first!, ...s]), ...subsets(rest, size)];
}

describe('field', () => {
  it('inverts: a · a⁻¹ = 1, including near the prime', () => {
    for (const a of [1n, 2n, 12345678901234567890n, FIELD_PRIME - 1n, bytesToBigInt(randomBytes(60))]) expect(fieldMul(a, fieldInv(a))).toBe(1n);
    expect(thrown(() => fieldInv(FIELD_PRIME)).code).toBe('INVALID_ARGUMENT');
  });
});

describe('Shamir sharing', () => {
  const secret = new Uint8Array(randomBytes(32));
  const holders = [1, 2, 3, 5, 8, 13];

  it('rebuilds the secret from every subset of exactly t shares, for t = 1..n', () => {
    for (let t = 1; t <= holders.length; t++) {
      const shares = splitSecret(secret, t, holders);
      for (const subset of subsets(shares, t)) expect(Buffer.from(combineShares(subset, t))).toEqual(Buffer.from(secret));
    }
  });

  it('rebuilds the all-zero and all-0xff secrets (the edges of the 32-byte range)', () => {
    for (const s of [new Uint8Array(32), new Uint8Array(32).fill(0xff)]) {
      expect(Buffer.from(combineShares(splitSecret(s, 3, holders).slice(2, 5), 3))).toEqual(Buffer.from(s));
    }
  });

  it('gives something other than the secret from t − 1 shares, and combineShares refuses them', () => {
    const t = 4;
    const shares = splitSecret(secret, t, holders);
    for (const subset of subsets(shares, t - 1)) expect(interpolateAt(subset, 0)).not.toBe(bytesToBigInt(secret));
    const err = thrown(() => combineShares(shares.slice(0, t - 1), t));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatchInlineSnapshot(`"shares: 3 shares cannot rebuild a secret of threshold 4"`);
  });

  it('uses fresh randomness: two sharings of one secret differ', () => {
    const a = splitSecret(secret, 3, holders);
    const b = splitSecret(secret, 3, holders);
    expect(a[0]!.y).not.toBe(b[0]!.y);
  });

  it('refuses duplicate coordinates, coordinate 0, a threshold above n and a wrong-length secret', () => {
    expect(thrown(() => splitSecret(secret, 2, [1, 2, 2])).message).toContain('coordinate 2 appears twice');
    expect(thrown(() => splitSecret(secret, 2, [0, 1])).details).toEqual({ field: 'shareholders[0]' });
    expect(thrown(() => splitSecret(secret, 4, [1, 2, 3])).details).toEqual({ field: 'threshold' });
    expect(thrown(() => splitSecret(new Uint8Array(31), 2, [1, 2])).details).toEqual({ field: 'secret' });
    const [s1, s2] = splitSecret(secret, 2, [1, 2]);
    expect(thrown(() => combineShares([s1!, { ...s1! }], 2)).message).toContain('appears twice');
    expect(thrown(() => combineShares([s1!, { x: 2, y: FIELD_PRIME }], 2)).details).toEqual({ field: 'shares[1].y' });
    expect(Buffer.from(combineShares([s2!, s1!], 2))).toEqual(Buffer.from(secret));
  });

  it('a deliberately tampered share gives a wrong secret undetected: shares need authentication', () => {
    const t = 3;
    const shares = splitSecret(secret, t, holders).slice(0, t);
    // Shift the secret by +1: add 1/L_0(0) to share 0's y, L_0 its Lagrange basis polynomial.
    const [x0, x1, x2] = shares.map((s) => BigInt(s.x));
    const l0 = fieldMul(fieldMul(fieldSub(0n, x1!), fieldSub(0n, x2!)), fieldInv(fieldMul(fieldSub(x0!, x1!), fieldSub(x0!, x2!))));
    const tampered: Share[] = [{ x: shares[0]!.x, y: (shares[0]!.y + fieldInv(l0)) % FIELD_PRIME }, shares[1]!, shares[2]!];
    const got = combineShares(tampered, t);
    expect(bytesToBigInt(got)).toBe((bytesToBigInt(secret) + 1n) % 2n ** 256n);
    expect(Buffer.from(got)).not.toEqual(Buffer.from(secret));
  });

  it('detects a flipped bit (not a crafted change): the result leaves 32 bytes, or an extra share is off the polynomial', () => {
    const t = 3;
    const shares = splitSecret(secret, t, holders);
    const corrupt: Share[] = [{ x: shares[0]!.x, y: (shares[0]!.y ^ (1n << 400n)) % FIELD_PRIME }, ...shares.slice(1)];
    expect(thrown(() => combineShares(corrupt.slice(0, t), t)).message).toContain('do not rebuild a 32-byte secret');
    // With t + 1 shares the extra one is checked against the polynomial of the first t.
    expect(thrown(() => combineShares([...shares.slice(1, t + 1), corrupt[0]!], t)).message).toContain('does not lie on the polynomial');
    expect(Buffer.from(combineShares(shares, t))).toEqual(Buffer.from(secret));
  });

  it('encodes shares in fixed length and decodes them back', () => {
    for (const share of splitSecret(secret, 3, [1, 255, 256, 65535])) {
      const bytes = encodeShare(share);
      expect(bytes.length).toBe(SHARE_BYTES);
      expect(decodeShare(bytes)).toEqual(share);
    }
  });

  it('decode refuses a wrong length, an unknown format, coordinate 0 and a value not below p', () => {
    const good = encodeShare(splitSecret(secret, 2, [7, 9])[0]!);
    expect(thrown(() => decodeShare(good.subarray(1))).message).toMatchInlineSnapshot(`"share: must be 69 bytes, got 68"`);
    const badFormat = Uint8Array.from(good);
    badFormat[0] = 2;
    expect(thrown(() => decodeShare(badFormat)).details).toEqual({ field: 'share.format' });
    const zeroX = Uint8Array.from(good);
    zeroX[1] = 0;
    zeroX[2] = 0;
    expect(thrown(() => decodeShare(zeroX)).details).toEqual({ field: 'share.x' });
    const bigY = Uint8Array.from(good);
    bigY.fill(0xff, 3);
    bigY[3] = 0x01; // exactly 2^521 − 1 = p
    expect(thrown(() => decodeShare(bigY)).message).toContain('not below the field prime');
  });
});
