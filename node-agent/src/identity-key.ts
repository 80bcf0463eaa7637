import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, rawEd25519PublicKey } from '@fedlhs/core';
import { fsyncDir } from '@fedlhs/service';

/*
 * The clinic's long-lived secure-aggregation identity (proto "Secure aggregation", Identity): an
 * Ed25519 key in `<stateDir>/identity-key.pem` (PKCS#8 PEM, mode 0600). Its KEYS answers and its
 * consistency signatures are signed with it; neighbours pin its public key the first time they
 * see it (peer-pins.ts). It is created at first need and never replaced by the agent: a new key
 * makes every neighbour refuse this clinic until their operators run `peers forget`, so a key that
 * cannot be read is an error the operator resolves, not something the agent papers over.
 */

/** The file name of the identity key in the state directory. */
export const IDENTITY_KEY_FILE = 'identity-key.pem';

/** The clinic's identity key, loaded. */
export interface IdentityKey {
  /** The Ed25519 private key. */
  privateKey: KeyObject;
  /** The raw 32-byte Ed25519 public key (what KEYS answers carry as identityKey). */
  publicKey: Uint8Array;
  /** SHA-256 of the raw public key, lowercase hex: what operators compare out of band. */
  fingerprint: string;
  path: string;
}

/** SHA-256 of a raw identity public key, lowercase hex. */
export function identityFingerprint(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex');
}

/** Where the identity key lives in a state directory. */
export function identityKeyPath(stateDir: string): string {
  return join(stateDir, IDENTITY_KEY_FILE);
}

const invalid = (path: string, why: string, cause?: unknown): FedlhsError =>
  new FedlhsError(
    'CONFIG_INVALID',
    `${path}: ${why}. This clinic's secure-aggregation identity key is never replaced by the agent (neighbouring clinics pinned it): fix the file, or move it away to have a new key created, and ask the operators of the other clinics to run \`fedlhs-agent peers forget <this node id>\``,
    cause === undefined ? undefined : { cause },
  );

/**
 * Reads the identity key at `<stateDir>/identity-key.pem`, or undefined when there is none.
 * Refuses loudly (CONFIG_INVALID naming the file) a key readable by others, unreadable, or not Ed25519.
 */
export function readIdentityKey(stateDir: string): IdentityKey | undefined {
  const path = identityKeyPath(stateDir);
  if (!existsSync(path)) return undefined;
  let pem: string;
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) throw invalid(path, `readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof FedlhsError) throw err;
    throw invalid(path, `cannot be read (${(err as Error).message})`, err);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw invalid(path, `not a PEM private key (${(err as Error).message})`, err);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw invalid(path, `an ${String(privateKey.asymmetricKeyType)} key, not Ed25519`);
  const publicKey = rawEd25519PublicKey(privateKey);
  return { privateKey, publicKey, fingerprint: identityFingerprint(publicKey), path };
}

/**
 * The identity key, created (mode 0600 from the start) when there is none yet. Creation is
 * exclusive: the key is written to a temporary file and hard-linked into place, which fails if
 * another process (the running agent, a CLI command) created one meanwhile; that one is then read.
 * `created` says whether this call made the key.
 */
export function loadOrCreateIdentityKey(stateDir: string): IdentityKey & { created: boolean } {
  const existing = readIdentityKey(stateDir);
  if (existing !== undefined) return { ...existing, created: false };
  const path = identityKeyPath(stateDir);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  let created = false;
  try {
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    unlinkSync(tmp);
  }
  fsyncDir(stateDir);
  const key = readIdentityKey(stateDir);
  if (key === undefined) throw invalid(path, 'vanished right after it was created');
  return { ...key, created };
}
