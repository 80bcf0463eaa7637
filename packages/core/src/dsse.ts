import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { FedlhsError } from './errors.js';

/**
 * DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse protocol v1) and in-toto
 * Statement v1: the signed form of a model release (issue 12), readable by standard
 * supply-chain tooling. Pure: keys come in as Node KeyObjects; nothing is read or written.
 */

/** The payload type of an in-toto Statement in a DSSE envelope. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** The `_type` of an in-toto Statement v1. */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';

/** The recommended JSON envelope. `payload` and `sig` are base64 (standard or URL-safe). */
export interface DsseEnvelope {
  payload: string;
  payloadType: string;
  signatures: { keyid?: string; sig: string }[];
}

/** One artefact an in-toto Statement is about: a file of the release bundle and its digest. */
export interface InTotoSubject {
  name: string;
  digest: { sha256: string };
}

export interface InTotoStatement<P = unknown> {
  _type: typeof IN_TOTO_STATEMENT_TYPE;
  subject: InTotoSubject[];
  predicateType: string;
  predicate: P;
}

/**
 * Pre-Authentication Encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths as
 * ASCII decimal byte counts. What is signed, so that type and body cannot be confused.
 */
export function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${body.length} `, 'ascii'), body]);
}

/**
 * A key id: the SHA-256 of the public key's SubjectPublicKeyInfo (DER), hex. Also the
 * fingerprint an operator compares out of band. A hint only: verification never trusts it.
 */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The digest algorithm Node's sign/verify want for a key: none for EdDSA, SHA-256 for ECDSA/RSA. */
function algorithmOf(key: KeyObject): string | null {
  const type = key.asymmetricKeyType;
  return type === 'ed25519' || type === 'ed448' ? null : 'sha256';
}

/** Signs `body` as `payloadType` with `privateKey` (Ed25519 for releases): one signature, with its key id. */
export function signEnvelope(payloadType: string, body: Uint8Array, privateKey: KeyObject): DsseEnvelope {
  const sig = sign(algorithmOf(privateKey), pae(payloadType, body), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { payload: Buffer.from(body).toString('base64'), payloadType, signatures: [{ keyid: keyId(privateKey), sig: sig.toString('base64') }] };
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function decodeBase64(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !BASE64.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new FedlhsError('SIGNATURE_INVALID', `${what} is not base64`, { details: { why: 'malformed' } });
  }
  // Node decodes both alphabets; DSSE verifiers must accept either.
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/**
 * Verifies an envelope against one trusted public key and the payload type expected, and
 * returns the body. Throws SIGNATURE_INVALID with `details.why`: 'malformed' (not an envelope,
 * bad base64), 'payload_type' (another type), 'signature' (no signature verifies with the key).
 * Key ids are ignored for the decision (the DSSE protocol: a hint only).
 */
export function verifyEnvelope(envelope: unknown, publicKey: KeyObject, expectedPayloadType: string): Buffer {
  if (typeof envelope !== 'object' || envelope === null) throw new FedlhsError('SIGNATURE_INVALID', 'the envelope is not a JSON object', { details: { why: 'malformed' } });
  const e = envelope as Partial<Record<keyof DsseEnvelope, unknown>>;
  if (typeof e.payloadType !== 'string') throw new FedlhsError('SIGNATURE_INVALID', 'the envelope has no payloadType', { details: { why: 'malformed' } });
  if (!Array.isArray(e.signatures) || e.signatures.length === 0) throw new FedlhsError('SIGNATURE_INVALID', 'the envelope has no signatures', { details: { why: 'malformed' } });
  const body = decodeBase64(e.payload, 'the envelope payload');
  const message = pae(e.payloadType, body);
  const algorithm = algorithmOf(publicKey);
  const verified = e.signatures.some((s: unknown) => {
    if (typeof s !== 'object' || s === null) return false;
    let sig: Buffer;
    try {
      sig = decodeBase64((s as { sig?: unknown }).sig, 'a signature');
    } catch {
      return false;
    }
    return verify(algorithm, message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  });
  if (!verified) throw new FedlhsError('SIGNATURE_INVALID', `no signature of the envelope verifies with key ${keyId(publicKey).slice(0, 16)}…`, { details: { why: 'signature' } });
  // Checked after the signature, as the protocol orders it: an unsigned type says nothing.
  if (e.payloadType !== expectedPayloadType) {
    throw new FedlhsError('SIGNATURE_INVALID', `the envelope's payloadType is ${JSON.stringify(e.payloadType.slice(0, 100))}, expected ${expectedPayloadType}`, { details: { why: 'payload_type' } });
  }
  return body;
}

/** An in-toto Statement v1 about `subject`, serialised for signing (keys in a fixed order). */
export function inTotoStatement<P>(subject: readonly InTotoSubject[], predicateType: string, predicate: P): Buffer {
  const statement: InTotoStatement<P> = { _type: IN_TOTO_STATEMENT_TYPE, subject: subject.map((s) => ({ name: s.name, digest: { sha256: s.digest.sha256 } })), predicateType, predicate };
  return Buffer.from(JSON.stringify(statement), 'utf8');
}

/**
 * Verifies a signed in-toto Statement and parses it: the envelope (verifyEnvelope), then the
 * Statement's shape (`_type`, subjects with a 64-hex sha256 each, unique names). Throws
 * SIGNATURE_INVALID ('malformed' for a Statement that does not parse).
 */
export function verifyStatement(envelope: unknown, publicKey: KeyObject): InTotoStatement {
  const body = verifyEnvelope(envelope, publicKey, IN_TOTO_PAYLOAD_TYPE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FedlhsError('SIGNATURE_INVALID', 'the signed payload is not JSON', { details: { why: 'malformed' } });
  }
  const s = parsed as Partial<InTotoStatement>;
  if (s._type !== IN_TOTO_STATEMENT_TYPE) throw new FedlhsError('SIGNATURE_INVALID', `the signed payload is not an in-toto Statement v1 (_type ${JSON.stringify(s._type)})`, { details: { why: 'malformed' } });
  if (!Array.isArray(s.subject) || typeof s.predicateType !== 'string') throw new FedlhsError('SIGNATURE_INVALID', 'the Statement has no subject list or predicateType', { details: { why: 'malformed' } });
  const names = new Set<string>();
  for (const sub of s.subject as unknown[]) {
    const x = sub as Partial<InTotoSubject>;
    if (typeof x.name !== 'string' || typeof x.digest?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(x.digest.sha256) || names.has(x.name)) {
      throw new FedlhsError('SIGNATURE_INVALID', `the Statement has a subject without a unique name and a sha256 digest: ${JSON.stringify(sub).slice(0, 120)}`, { details: { why: 'malformed' } });
    }
    names.add(x.name);
  }
  return s as InTotoStatement;
}
