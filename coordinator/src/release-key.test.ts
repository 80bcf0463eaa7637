import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IN_TOTO_PAYLOAD_TYPE, inTotoStatement, isFedlhsError, signEnvelope, verifyStatement } from '@fedlhs/core';
import { createPublicKey } from 'node:crypto';
import { loadOrCreateReleaseKey, retiredReleaseKeys, rotateReleaseKey } from './release-key.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'fedlhs-release-key-'));

describe('release key', () => {
  it('is created once, mode 0600, and loaded with the same fingerprint', () => {
    const d = dir();
    const first = loadOrCreateReleaseKey(d);
    expect(first.created).toBe(true);
    expect(statSync(join(d, 'release-key.pem')).mode & 0o777).toBe(0o600);
    const again = loadOrCreateReleaseKey(d);
    expect(again.created).toBe(false);
    expect(again.key.fingerprint).toBe(first.key.fingerprint);
    expect(first.key.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    // The public PEM is what a clinic pins: it verifies what the key signs.
    const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, inTotoStatement([{ name: 'model.f32', digest: { sha256: 'a'.repeat(64) } }], 'https://fedlhs.dev/release/v1', {}), again.key.privateKey);
    expect(verifyStatement(envelope, createPublicKey(first.key.publicPem)).subject).toHaveLength(1);
  });

  it('refuses a key file others can read, and one that is not an Ed25519 private key', () => {
    const d = dir();
    loadOrCreateReleaseKey(d);
    chmodSync(join(d, 'release-key.pem'), 0o644);
    expect(() => loadOrCreateReleaseKey(d)).toThrow(/readable by others \(mode 644\)/);
    const e = dir();
    writeFileSync(join(e, 'release-key.pem'), 'not a key', { mode: 0o600 });
    let err: unknown;
    try {
      loadOrCreateReleaseKey(e);
    } catch (x) {
      err = x;
    }
    expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
  });

  it('rotates: a new key, the old public key kept to verify old releases', () => {
    const d = dir();
    const old = loadOrCreateReleaseKey(d).key;
    const { previous, current } = rotateReleaseKey(d);
    expect(previous).toBe(old.fingerprint);
    expect(current.fingerprint).not.toBe(old.fingerprint);
    expect(loadOrCreateReleaseKey(d).key.fingerprint).toBe(current.fingerprint);
    expect(retiredReleaseKeys(d)).toEqual([old.fingerprint]);
    expect(readFileSync(join(d, 'release-keys', `${old.fingerprint}.pub.pem`), 'utf8')).toBe(old.publicPem);
    expect(statSync(join(d, 'release-key.pem')).mode & 0o777).toBe(0o600);
  });
});
