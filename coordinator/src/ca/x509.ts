import { createPublicKey, randomBytes, sign, verify, createHash, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, AuthorityKeyIdentifier, BasicConstraints, Certificate, ExtendedKeyUsage, Extension,
  Extensions, GeneralName, KeyIdentifier, KeyUsage, KeyUsageFlags, Name, RelativeDistinguishedName, SubjectAlternativeName, SubjectKeyIdentifier,
  SubjectPublicKeyInfo, TBSCertificate, Validity, Version, id_ce_authorityKeyIdentifier, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage,
  id_ce_subjectAltName, id_ce_subjectKeyIdentifier, id_kp_clientAuth,
} from '@peculiar/asn1-x509';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { FedlhsError } from '@fedlhs/core';

/**
 * The few X.509 structures the coordinator's CA writes, built with @peculiar/asn1-x509 (DER
 * schemas only: Node's crypto parses certificates but cannot issue them) and signed with Node's
 * crypto. Every key is ECDSA P-256 and every signature ecdsa-with-SHA256, the pair every TLS stack
 * (OpenSSL under Node and grpc-js, BoringSSL, Go, Java) accepts for client authentication.
 */

/** ecdsa-with-SHA256 (RFC 5758 §3.2); its AlgorithmIdentifier has no parameters. */
export const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';

/** The URI SAN a node certificate carries: urn:fedlhs:node:<node id>. */
export function nodeUri(nodeId: string): string {
  return `urn:fedlhs:node:${nodeId}`;
}

/** A distinguished name with one common name. */
export function commonName(cn: string): Name {
  return new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME, value: new AttributeValue({ utf8String: cn }) })])]);
}

/** A positive 128-bit serial number (RFC 5280 §4.1.2.2: at most 20 octets, positive, unpredictable). */
export function newSerial(): Buffer {
  const s = randomBytes(16);
  s[0] = (s[0]! & 0x7f) | 0x01; // positive, and no leading zero octet to strip
  return s;
}

/** A Buffer's bytes as a fresh ArrayBuffer (the schemas take ArrayBuffer). */
function arrayBuffer(b: Buffer): ArrayBuffer {
  return new Uint8Array(b).buffer;
}

/** The key identifier of a public key (RFC 5280 §4.2.1.2 method 1: SHA-1 of the key bits). */
function keyIdentifier(spki: SubjectPublicKeyInfo): ArrayBuffer {
  return arrayBuffer(createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest());
}

function ext(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** SubjectPublicKeyInfo of a Node public key. */
export function spkiOf(key: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(key.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
}

/** What a certificate is for; the issuer key signs it. */
export interface CertificateTemplate {
  subject: string;
  subjectKey: KeyObject;
  issuer: string;
  issuerKey: KeyObject;
  /** The issuer's public key (authority key identifier). */
  issuerPublicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  serial: Buffer;
  /** A CA certificate (keyCertSign, pathlen 0) or a TLS client certificate for `nodeId`. */
  kind: { ca: true } | { ca: false; nodeId: string };
}

/** Builds and signs a certificate; returns it in PEM. */
export function issueCertificate(t: CertificateTemplate): string {
  const spki = spkiOf(t.subjectKey);
  const extensions = new Extensions([
    ext(id_ce_basicConstraints, true, t.kind.ca ? new BasicConstraints({ cA: true, pathLenConstraint: 0 }) : new BasicConstraints({ cA: false })),
    ext(id_ce_keyUsage, true, new KeyUsage(t.kind.ca ? KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign : KeyUsageFlags.digitalSignature)),
    ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyIdentifier(spki))),
    ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyIdentifier(spkiOf(t.issuerPublicKey))) })),
  ]);
  if (!t.kind.ca) {
    extensions.push(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_clientAuth])));
    extensions.push(ext(id_ce_subjectAltName, false, new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: nodeUri(t.kind.nodeId) })])));
  }
  const algorithm = new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: arrayBuffer(t.serial),
    signature: algorithm,
    issuer: commonName(t.issuer),
    validity: new Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: commonName(t.subject),
    subjectPublicKeyInfo: spki,
    extensions,
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, { key: t.issuerKey, dsaEncoding: 'der' });
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: arrayBuffer(signature) });
  return toPem(Buffer.from(AsnConvert.serialize(cert)), 'CERTIFICATE');
}

/** DER in PEM armour, 64 characters a line. */
export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** The largest CSR the coordinator parses (a P-256 CSR is about 400 bytes in PEM). */
export const MAX_CSR_CHARS = 4096;

function csrError(message: string, cause?: unknown): FedlhsError {
  return new FedlhsError('INVALID_ARGUMENT', `certificate_signing_request: ${message}`, { cause, details: { field: 'certificate_signing_request' } });
}

/**
 * The public key of a PKCS#10 certificate signing request (PEM), once its signature has been
 * verified with that key: the request proves possession of the private key. Only ECDSA P-256 keys
 * signed with ecdsa-with-SHA256 are accepted. The subject and attributes the request asks for
 * are ignored: the coordinator decides what the certificate says.
 */
export function verifyCsr(pem: string): KeyObject {
  if (pem.length > MAX_CSR_CHARS) throw csrError(`longer than ${MAX_CSR_CHARS} characters`);
  const m = /^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\r?\n?$/.exec(pem.trim() + '\n');
  if (m === null) throw csrError('not a PEM "CERTIFICATE REQUEST"');
  const der = Buffer.from(m[1]!.replace(/\s/g, ''), 'base64');
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch (err) {
    throw csrError('not a PKCS#10 request', err);
  }
  if (csr.signatureAlgorithm.algorithm !== ECDSA_WITH_SHA256) throw csrError(`signature algorithm ${csr.signatureAlgorithm.algorithm} is not ecdsa-with-SHA256`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)), format: 'der', type: 'spki' });
  } catch (err) {
    throw csrError('its public key cannot be read', err);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw csrError('its key is not ECDSA P-256');
  // The signature covers the request info exactly as sent: its original bytes, not a re-encoding.
  const info = csr.certificationRequestInfoRaw === undefined ? Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo)) : Buffer.from(csr.certificationRequestInfoRaw);
  let ok = false;
  try {
    ok = verify('sha256', info, { key, dsaEncoding: 'der' }, Buffer.from(csr.signature));
  } catch (err) {
    throw csrError('its signature cannot be checked', err);
  }
  if (!ok) throw csrError('its signature does not verify with its own public key');
  return key;
}
