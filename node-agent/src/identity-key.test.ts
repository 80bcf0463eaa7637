import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFedlhsError, rawEd25519PublicKey } from '@fedlhs/core';
import { identityFingerprint, identityKeyPath, loadOrCreateIdentityKey, readIdentityKey } from './identity-key.js';

const newDir = (): string => mkdtempSync(join(tmpdir(), 'fedlhs-identity-'));

describe('identity key', () => {
  it('is created at first need as an Ed25519 PKCS#8 PEM with mode 0600, and read back the same afterwards', () => {
    const dir = newDir();
    expect(readIdentityKey(dir)).toBeUndefined();
    const first = loadOrCreateIdentityKey(dir);
    expect(first.created).toBe(true);
    expect(statSync(identityKeyPath(dir)).mode & 0o777).toBe(0o600);
    expect(readFileSync(identityKeyPath(dir), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(first.privateKey.asymmetricKeyType).toBe('ed25519');
    expect(first.publicKey).toHaveLength(32);
    expect(first.publicKey).toEqual(rawEd25519PublicKey(first.privateKey));
    expect(first.fingerprint).toBe(identityFingerprint(first.publicKey));
    expect(first.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const again = loadOrCreateIdentityKey(dir);
    expect(again.created).toBe(false);
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(readIdentityKey(dir)!.fingerprint).toBe(first.fingerprint);
  });

  it('refuses, and never replaces, a key that is not Ed25519', () => {
    const dir = newDir();
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    writeFileSync(identityKeyPath(dir), pem, { mode: 0o600 });
    let error: unknown;
    try {
      loadOrCreateIdentityKey(dir);
    } catch (err) {
      error = err;
    }
    expect(isFedlhsError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/identity-key\.pem: an ec key, not Ed25519\. .*never replaced by the agent.*peers forget/);
    expect(readFileSync(identityKeyPath(dir), 'utf8')).toBe(pem);
  });

  it('refuses, and never replaces, a file that is not a PEM key, or one others can read', () => {
    const dir = newDir();
    writeFileSync(identityKeyPath(dir), 'not a key\n', { mode: 0o600 });
    expect(() => loadOrCreateIdentityKey(dir)).toThrow(/identity-key\.pem: not a PEM private key/);
    expect(readFileSync(identityKeyPath(dir), 'utf8')).toBe('not a key\n');
    const open = newDir();
    loadOrCreateIdentityKey(open);
    chmodSync(identityKeyPath(open), 0o644);
    expect(() => readIdentityKey(open)).toThrow(/readable by others \(mode 644\); run: chmod 600/);
    expect(() => loadOrCreateIdentityKey(open)).toThrow(/readable by others/);
  });
});
