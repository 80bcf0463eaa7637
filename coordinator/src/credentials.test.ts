import { describe, expect, it } from 'vitest';
import { formatNodeCredential, hashSecret, newJoinToken, newSecret, parseNodeCredential, sameHash } from './credentials.js';

describe('node credentials', () => {
  it('parses what formatNodeCredential produces', () => {
    const secret = newSecret();
    const credential = formatNodeCredential('node_7f3a-b2', secret);
    expect(credential).toBe(`fnc_node_7f3a-b2.${secret}`);
    expect(parseNodeCredential(credential)).toEqual({ nodeId: 'node_7f3a-b2', secret });
  });

  it('accepts ids and secrets at their length limits', () => {
    const id = 'n'.repeat(64);
    expect(parseNodeCredential(`fnc_${id}.${'s'.repeat(16)}`)).toEqual({ nodeId: id, secret: 's'.repeat(16) });
    expect(parseNodeCredential(`fnc_a.${'s'.repeat(128)}`)).toEqual({ nodeId: 'a', secret: 's'.repeat(128) });
  });

  it.each([
    ['empty', ''],
    ['no prefix', `node1.${'s'.repeat(20)}`],
    ['join-token prefix', `fjt_node1.${'s'.repeat(20)}`],
    ['no separator', `fnc_node1${'s'.repeat(20)}`],
    ['empty node id', `fnc_.${'s'.repeat(20)}`],
    ['secret too short', `fnc_node1.${'s'.repeat(15)}`],
    ['secret too long', `fnc_node1.${'s'.repeat(129)}`],
    ['node id too long', `fnc_${'n'.repeat(65)}.${'s'.repeat(20)}`],
    ['dot in the secret', `fnc_node1.${'s'.repeat(10)}.${'s'.repeat(10)}`],
    ['base64 padding', `fnc_node1.${'s'.repeat(20)}=`],
    ['non-url-safe base64', `fnc_node1.${'s'.repeat(20)}+/`],
    ['trailing newline', `fnc_node1.${'s'.repeat(20)}\n`],
    ['leading space', ` fnc_node1.${'s'.repeat(20)}`],
  ])('rejects a credential with %s', (_label, value) => {
    expect(parseNodeCredential(value)).toBeUndefined();
  });
});

describe('secrets', () => {
  it('makes 256-bit base64url secrets that differ every time', () => {
    const a = newSecret();
    const b = newSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('makes join tokens with the fjt_ prefix', () => {
    expect(newJoinToken()).toMatch(/^fjt_[A-Za-z0-9_-]{43}$/);
  });

  it('hashes secrets as lowercase hex SHA-256 of their UTF-8 bytes', () => {
    expect(hashSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    // UTF-8 (c3 a9), not Latin-1 (e9, which would hash to de2e331d…)
    expect(hashSecret('é')).toBe('4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
  });
});

describe('sameHash', () => {
  const h = hashSecret('secret-1');

  it('is true for equal hashes, whatever the hex case', () => {
    expect(sameHash(h, hashSecret('secret-1'))).toBe(true);
    expect(sameHash(h, h.toUpperCase())).toBe(true);
  });

  it('is false for different hashes, including ones differing in the last nibble', () => {
    expect(sameHash(h, hashSecret('secret-2'))).toBe(false);
    const last = h.at(-1) === '0' ? '1' : '0';
    expect(sameHash(h, h.slice(0, -1) + last)).toBe(false);
  });

  it('is false for hashes of different lengths instead of throwing', () => {
    expect(sameHash(h, h.slice(0, 62))).toBe(false);
    expect(sameHash(h, '')).toBe(false);
  });
});
