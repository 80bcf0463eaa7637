import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IN_TOTO_PAYLOAD_TYPE, inTotoStatement, keyId, pae, signEnvelope, verifyEnvelope, verifyStatement, type DsseEnvelope } from './dsse.js';
import { isFedlhsError } from './errors.js';

/** A big-endian unsigned integer (decimal) as 32 bytes, base64url: a JWK coordinate. */
function coordinate(decimal: string): string {
  return Buffer.from(BigInt(decimal).toString(16).padStart(64, '0'), 'hex').toString('base64url');
}

/** The test vector of the DSSE protocol (secure-systems-lab/dsse protocol.md, "Test Vectors"). */
const VECTOR = {
  payloadType: 'http://example.com/HelloWorld',
  body: 'hello world',
  pae: 'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
  key: createPublicKey({
    key: {
      kty: 'EC', crv: 'P-256',
      x: coordinate('46950820868899156662930047687818585632848591499744589407958293238635476079160'),
      y: coordinate('5640078356564379163099075877009565129882514886557779369047442380624545832820'),
    },
    format: 'jwk',
  }),
  envelope: {
    payload: 'aGVsbG8gd29ybGQ=',
    payloadType: 'http://example.com/HelloWorld',
    signatures: [{ sig: 'A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==' }],
  },
};

function why(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isFedlhsError(err, 'SIGNATURE_INVALID')) return err.details.why;
    throw err;
  }
  return undefined;
}

describe('DSSE', () => {
  it('encodes PAE as the protocol\'s test vector', () => {
    expect(pae(VECTOR.payloadType, Buffer.from(VECTOR.body)).toString('utf8')).toBe(VECTOR.pae);
    // Lengths are byte counts, not characters.
    expect(pae('t', Buffer.from('é')).toString('utf8')).toBe('DSSEv1 1 t 2 é');
  });

  it('verifies the protocol\'s reference envelope (ECDSA P-256) and refuses it altered', () => {
    expect(verifyEnvelope(VECTOR.envelope, VECTOR.key, VECTOR.payloadType).toString('utf8')).toBe('hello world');
    // URL-safe base64 is accepted too.
    const urlSafe = { ...VECTOR.envelope, signatures: [{ sig: VECTOR.envelope.signatures[0]!.sig.replace(/\+/g, '-').replace(/\//g, '_') }] };
    expect(verifyEnvelope(urlSafe, VECTOR.key, VECTOR.payloadType).toString('utf8')).toBe('hello world');
    expect(why(() => verifyEnvelope({ ...VECTOR.envelope, payload: Buffer.from('hello World').toString('base64') }, VECTOR.key, VECTOR.payloadType))).toBe('signature');
    // The type is signed: changing it breaks the signature before its value is even compared.
    expect(why(() => verifyEnvelope({ ...VECTOR.envelope, payloadType: 'http://example.com/Other' }, VECTOR.key, 'http://example.com/Other'))).toBe('signature');
    expect(why(() => verifyEnvelope(VECTOR.envelope, VECTOR.key, 'application/vnd.in-toto+json'))).toBe('payload_type');
  });

  it('signs with Ed25519 and verifies only with the same key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const other = generateKeyPairSync('ed25519').publicKey;
    const env = signEnvelope('application/vnd.fedlhs.test+json', Buffer.from('{"a":1}'), privateKey);
    expect(env.signatures).toEqual([{ keyid: keyId(publicKey), sig: expect.any(String) }]);
    expect(keyId(privateKey)).toBe(keyId(publicKey));
    expect(keyId(publicKey)).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyEnvelope(env, publicKey, 'application/vnd.fedlhs.test+json').toString()).toBe('{"a":1}');
    expect(why(() => verifyEnvelope(env, other, 'application/vnd.fedlhs.test+json'))).toBe('signature');
    // A key id naming the trusted key does not make a wrong signature pass.
    const forged: DsseEnvelope = { ...env, signatures: [{ keyid: keyId(publicKey), sig: signEnvelope(env.payloadType, Buffer.from('{"a":2}'), privateKey).signatures[0]!.sig }] };
    expect(why(() => verifyEnvelope(forged, publicKey, env.payloadType))).toBe('signature');
  });

  it('refuses what is not an envelope with a reason', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(why(() => verifyEnvelope(null, publicKey, 't'))).toBe('malformed');
    expect(why(() => verifyEnvelope({ payload: 'aGk=', payloadType: 't', signatures: [] }, publicKey, 't'))).toBe('malformed');
    expect(why(() => verifyEnvelope({ payload: 'not base64!', payloadType: 't', signatures: [{ sig: 'AA==' }] }, publicKey, 't'))).toBe('malformed');
    expect(why(() => verifyEnvelope({ payload: 'aGk=', payloadType: 't', signatures: [{ sig: 42 }] }, publicKey, 't'))).toBe('signature');
  });
});

describe('in-toto Statement', () => {
  const digest = (c: string): string => c.repeat(64);

  it('round-trips subjects and predicate through a signed envelope', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const body = inTotoStatement([{ name: 'model.f32', digest: { sha256: digest('a') } }, { name: 'card.md', digest: { sha256: digest('b') } }], 'https://fedlhs.dev/release/v1', { study: 's1', round: 3 });
    const statement = verifyStatement(signEnvelope(IN_TOTO_PAYLOAD_TYPE, body, privateKey), publicKey);
    expect(statement).toEqual({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'model.f32', digest: { sha256: digest('a') } }, { name: 'card.md', digest: { sha256: digest('b') } }],
      predicateType: 'https://fedlhs.dev/release/v1',
      predicate: { study: 's1', round: 3 },
    });
  });

  it('refuses a signed payload that is not a well-formed Statement', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signed = (x: unknown) => signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)), privateKey);
    expect(why(() => verifyStatement(signed('{not json'), publicKey))).toBe('malformed');
    expect(why(() => verifyStatement(signed({ _type: 'https://in-toto.io/Statement/v0.1', subject: [], predicateType: 'x', predicate: {} }), publicKey))).toBe('malformed');
    const dup = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'a', digest: { sha256: digest('a') } }, { name: 'a', digest: { sha256: digest('b') } }], predicateType: 'x', predicate: {} };
    expect(why(() => verifyStatement(signed(dup), publicKey))).toBe('malformed');
    const short = { _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'a', digest: { sha256: 'abc' } }], predicateType: 'x', predicate: {} };
    expect(why(() => verifyStatement(signed(short), publicKey))).toBe('malformed');
  });
});
