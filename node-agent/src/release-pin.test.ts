import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyId } from '@fedlhs/core';
import { pinReleaseKey } from './release-pin.js';

describe('pinReleaseKey', () => {
  const { publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

  it('pins an Ed25519 key whose fingerprint matches', () => {
    expect(pinReleaseKey(pem, keyId(publicKey))).toEqual({ publicPem: pem, fingerprint: keyId(publicKey) });
  });

  it('pins nothing when the coordinator sent no key', () => {
    expect(pinReleaseKey('', '')).toBeUndefined();
  });

  it('refuses a key that does not match its fingerprint, is not Ed25519, or does not parse', () => {
    expect(() => pinReleaseKey(pem, 'a'.repeat(64))).toThrow(/has fingerprint [0-9a-f]{64}, not the a{64}/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => pinReleaseKey(ec.export({ type: 'spki', format: 'pem' }).toString(), keyId(ec))).toThrow(/is ec, not Ed25519/);
    expect(() => pinReleaseKey('garbage', 'x')).toThrow(/not a PEM public key/);
  });
});
