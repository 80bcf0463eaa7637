import { createPublicKey } from 'node:crypto';
import { FedlhsError, keyId } from '@fedlhs/core';

/** The coordinator's release key as pinned at enrolment (issue 12): releases are verified against it only. */
export interface PinnedReleaseKey {
  /** Ed25519 SubjectPublicKeyInfo, PEM. */
  publicPem: string;
  /** SHA-256 of the key's SubjectPublicKeyInfo (DER), hex: the DSSE key id, compared out of band. */
  fingerprint: string;
  /**
   * Keys pinned before this one (`fedlhs-agent release-key pin` after the hospital rotated its
   * key), newest first: releases kept while they were current still verify; new releases are
   * kept only when signed by the current key.
   */
  retired?: { publicPem: string; fingerprint: string; retiredAt: string }[] | undefined;
}

/** The PEM text of every key a kept release may be verified with: the current one first, then the retired ones. */
export function trustedReleasePem(pinned: PinnedReleaseKey): string {
  return [pinned.publicPem, ...(pinned.retired ?? []).map((r) => r.publicPem)].join('');
}

/**
 * Checks the release key an EnrolResponse carries: an Ed25519 public key in PEM whose
 * fingerprint is the one sent with it. Undefined when the coordinator sent none (an older
 * coordinator: its releases cannot be verified, which the caller says). Throws SIGNATURE_INVALID
 * (why 'malformed') for a key that does not parse, is not Ed25519, or does not match its fingerprint.
 */
export function pinReleaseKey(publicPem: string, fingerprint: string): PinnedReleaseKey | undefined {
  if (publicPem === '' && fingerprint === '') return undefined;
  let key;
  try {
    key = createPublicKey(publicPem);
  } catch (err) {
    throw new FedlhsError('SIGNATURE_INVALID', `the coordinator's release key is not a PEM public key: ${(err as Error).message}`, { cause: err, details: { why: 'malformed' } });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new FedlhsError('SIGNATURE_INVALID', `the coordinator's release key is ${key.asymmetricKeyType ?? 'of an unknown type'}, not Ed25519`, { details: { why: 'malformed' } });
  }
  const actual = keyId(key);
  if (actual !== fingerprint) {
    throw new FedlhsError('SIGNATURE_INVALID', `the coordinator's release key has fingerprint ${actual}, not the ${fingerprint.slice(0, 64)} it was sent with`, { details: { why: 'malformed' } });
  }
  return { publicPem: key.export({ type: 'spki', format: 'pem' }).toString(), fingerprint: actual };
}
