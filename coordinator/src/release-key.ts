import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, keyId } from '@fedlhs/core';
import { writeFileAtomic } from '@fedlhs/service';

/** The coordinator's release signing key (Ed25519, issue 12) and where it lives. */
export interface ReleaseKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** SHA-256 of the public key's SubjectPublicKeyInfo, hex: the DSSE key id and the fingerprint clinics compare out of band. */
  readonly fingerprint: string;
  /** The public key as PEM (what agents pin at enrolment). */
  readonly publicPem: string;
}

const KEY_FILE = 'release-key.pem';
const RETIRED_DIR = 'release-keys';

function fromPrivate(privateKey: KeyObject): ReleaseKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new FedlhsError('CONFIG_INVALID', `the release key must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`, { details: { key: KEY_FILE } });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, fingerprint: keyId(publicKey), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/**
 * The release key in `<dataDir>/release-key.pem` (PKCS#8 PEM, mode 0600), created on first use.
 * The private key never leaves this file and this process. A key file readable by others, or
 * one that is not an Ed25519 private key, is refused (CONFIG_INVALID) rather than used.
 */
export function loadOrCreateReleaseKey(dataDir: string): { key: ReleaseKey; created: boolean } {
  const path = join(dataDir, KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
    return { key: fromPrivate(privateKey), created: true };
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new FedlhsError('CONFIG_INVALID', `${path} is readable by others (mode ${mode.toString(8)}): the release signing key must be mode 0600 (chmod 600 it)`, { details: { key: KEY_FILE } });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(path));
  } catch (err) {
    throw new FedlhsError('CONFIG_INVALID', `${path} is not a PEM private key: ${(err as Error).message}`, { cause: err, details: { key: KEY_FILE } });
  }
  return { key: fromPrivate(privateKey), created: false };
}

/**
 * Replaces the release key with a new one. The old public key is kept in
 * `<dataDir>/release-keys/<fingerprint>.pub.pem`, so releases it signed stay verifiable; its
 * private key is gone. Returns the old and new keys' fingerprints.
 */
export function rotateReleaseKey(dataDir: string): { previous: string; current: ReleaseKey } {
  const { key: old } = loadOrCreateReleaseKey(dataDir);
  writeFileAtomic(join(dataDir, RETIRED_DIR, `${old.fingerprint}.pub.pem`), old.publicPem, 0o644);
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileAtomic(join(dataDir, KEY_FILE), privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  return { previous: old.fingerprint, current: fromPrivate(privateKey) };
}

/** Fingerprints of the retired release keys (their public keys, kept to verify old releases). */
export function retiredReleaseKeys(dataDir: string): string[] {
  const dir = join(dataDir, RETIRED_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.pub.pem')).map((f) => f.slice(0, -'.pub.pem'.length)).sort();
}

/** Writes the current public key to `<dataDir>/release-key.pub.pem` (0644: it is public) for clinics to pin; returns the path. */
export function writePublicReleaseKey(dataDir: string, key: ReleaseKey): string {
  const path = join(dataDir, 'release-key.pub.pem');
  writeFileAtomic(path, key.publicPem, 0o644);
  return path;
}
