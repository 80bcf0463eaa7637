/**
 * Long-lived clinic identities for secure aggregation (Bonawitz et al. 2017, the actively secure
 * variant): each clinic signs its round keys and the round-wide survivor set with an Ed25519 key
 * that outlives rounds. Neighbours verify those signatures and pin the identity key (the agent's
 * pin store, `checkPeer`), so a coordinator can neither substitute a neighbour's round keys
 * (key substitution would let it open shares) nor forge a neighbour's consistency signature (that
 * is what lets a clinic trust the survivor set it is asked to unmask).
 * What is signed is a domain label and RFC 8785 canonical JSON, so the bytes are unambiguous in
 * every implementation.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { FedlhsError } from '../../errors.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, type MessageHeader } from './wire.js';

// canonicalize is CommonJS whose typings declare an ES default export (see manifest.ts).
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;


/** A clinic's identity in secure aggregation. */
export interface SecAggIdentity {
  /** Ed25519 private key (never leaves the clinic). */
  readonly privateKey: KeyObject;
  /** Its raw 32-byte public key, sent with the round keys. */
  readonly publicKey: Uint8Array;
  /**
   * Called with each neighbour's id and identity key before anything is shared with it: throws to
   * refuse (the agent's pin store refuses a key other than the one pinned for that peer).
   */
  checkPeer(id: string, identityKey: Uint8Array): void;
}

function invalid(field: string, message: string): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

/** The raw 32-byte public key of an Ed25519 key (public or private). */
export function rawEd25519PublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw invalid('identityKey', `must be an Ed25519 key, got ${pub.asymmetricKeyType ?? pub.type}`);
  const x = pub.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new FedlhsError('INTERNAL', 'Ed25519 key exported without x');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** A raw 32-byte Ed25519 public key as a KeyObject (refused if not a valid point encoding). */
export function ed25519PublicKeyFromRaw(raw: Uint8Array, field = 'identityKey'): KeyObject {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) throw invalid(field, `must be ${ED25519_PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch (err) {
    throw new FedlhsError('INVALID_ARGUMENT', `${field}: not an Ed25519 public key: ${(err as Error).message}`, { cause: err, details: { field } });
  }
}

const b64 = (v: string | Uint8Array): string => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

function labelled(label: string, value: unknown): Uint8Array {
  const text = canonicalize(value);
  if (text === undefined) throw new FedlhsError('INTERNAL', 'cannot canonicalise a signed secure-aggregation message');
  return new Uint8Array(Buffer.from(`${label}\n${text}`, 'utf8'));
}

/**
 * What a clinic signs over its round keys: "fedlhs.secagg.v1.keys\n" + canonical JSON of
 * {studyId, round, attempt, id, cPublic, sPublic} (keys as canonical base64, as on the wire).
 */
export function keysSigningBytes(header: MessageHeader, id: string, cPublic: string | Uint8Array, sPublic: string | Uint8Array): Uint8Array {
  return labelled('fedlhs.secagg.v1.keys', { studyId: header.studyId, round: header.round, attempt: header.attempt, id, cPublic: b64(cPublic), sPublic: b64(sPublic) });
}

/** The signer of a consistency signature: its id and the round keys it signed in stage 1. */
export interface ConsistencySigner {
  readonly id: string;
  readonly cPublic: string | Uint8Array;
  readonly sPublic: string | Uint8Array;
}

/**
 * What a clinic signs in the consistency stage: "fedlhs.secagg.v1.consistency\n" + canonical
 * JSON of {studyId, round, attempt, survivors (sorted, as sent), id, cPublic, sPublic}: the
 * signer's own id and this run's round keys bind the signature to one run of the round. Without
 * them a coordinator that ran a round twice under the same header could hand one run's
 * signatures to the other and unmask a clinic (review of issue 14, secagg2 HIGH 1); with them a
 * signature verifies only against the keys the verifier received in stage 2 of the same run.
 */
export function consistencySigningBytes(header: MessageHeader, survivors: readonly string[], signer: ConsistencySigner): Uint8Array {
  return labelled('fedlhs.secagg.v1.consistency', {
    studyId: header.studyId, round: header.round, attempt: header.attempt, survivors: [...survivors],
    id: signer.id, cPublic: b64(signer.cPublic), sPublic: b64(signer.sPublic),
  });
}

/** Ed25519 signature of `bytes`. */
export function signBytes(privateKey: KeyObject, bytes: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, bytes, privateKey));
}

/** Whether `signature` is a valid Ed25519 signature of `bytes` by `publicKey` (false, never throws, on a malformed one). */
export function verifyBytes(publicKey: KeyObject, bytes: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
  try {
    return verify(null, bytes, publicKey, signature);
  } catch {
    return false;
  }
}

/** Throws INVALID_ARGUMENT unless `identity` is an Ed25519 private key with its matching raw public key. */
export function checkIdentity(identity: SecAggIdentity): void {
  if (identity === null || typeof identity !== 'object') throw invalid('identity', 'must be a SecAggIdentity');
  if (identity.privateKey?.type !== 'private' || identity.privateKey.asymmetricKeyType !== 'ed25519') throw invalid('identity.privateKey', 'must be an Ed25519 private key');
  if (!(identity.publicKey instanceof Uint8Array) || Buffer.compare(rawEd25519PublicKey(identity.privateKey), identity.publicKey) !== 0) {
    throw invalid('identity.publicKey', 'must be the raw public key of identity.privateKey');
  }
  if (typeof identity.checkPeer !== 'function') throw invalid('identity.checkPeer', 'must be a function');
}

/**
 * A pin store in memory: the first key seen for a peer is pinned, a different one later is
 * refused naming the peer. The agent keeps its pins durably; this is for simulations and tests.
 */
export function memoryPins(pins: Map<string, Uint8Array> = new Map()): (id: string, identityKey: Uint8Array) => void {
  return (id, identityKey) => {
    const pinned = pins.get(id);
    if (pinned === undefined) pins.set(id, Uint8Array.from(identityKey));
    else if (Buffer.compare(pinned, identityKey) !== 0) {
      throw new FedlhsError('INVALID_ARGUMENT', `identityKey of ${id}: differs from the key pinned for that peer (refusing: the coordinator may be substituting keys)`, { details: { field: 'identityKey' } });
    }
  };
}

/**
 * A fresh identity (Ed25519 key in memory). `checkPeer` defaults to pinning in memory; pass
 * a PEM PKCS#8 private key to load an existing one.
 */
export function createSecAggIdentity(opts: { checkPeer?: SecAggIdentity['checkPeer']; privateKeyPem?: string } = {}): SecAggIdentity {
  const privateKey = opts.privateKeyPem === undefined ? generateKeyPairSync('ed25519').privateKey : createPrivateKey(opts.privateKeyPem);
  const identity: SecAggIdentity = { privateKey, publicKey: rawEd25519PublicKey(privateKey), checkPeer: opts.checkPeer ?? memoryPins() };
  checkIdentity(identity);
  return identity;
}
