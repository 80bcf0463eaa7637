import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../store.js';
import { NodeCertificates } from './node-certificates.js';
import { ECDSA_WITH_SHA256, commonName, spkiOf, toPem } from './x509.js';

function csr(): string {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const info = new CertificationRequestInfo({ version: 0, subject: commonName('x'), subjectPKInfo: spkiOf(keys.publicKey) });
  const sig = sign('sha256', Buffer.from(AsnConvert.serialize(info)), { key: keys.privateKey, dsaEncoding: 'der' });
  return toPem(Buffer.from(AsnConvert.serialize(new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sig).buffer }))), 'CERTIFICATE REQUEST');
}

const node = (id: string): NodeRecord => ({ id, siteName: 's', credentialHash: 'h', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' });
/** A server call whose TLS connection presented (and verified) `pem`, or none. */
const callWith = (pem?: string) => ({ getAuthContext: () => (pem === undefined ? {} : { sslPeerCertificate: { subjectaltname: new X509Certificate(pem).subjectAltName } as PeerCertificate }) });

describe('NodeCertificates', () => {
  const certificates = NodeCertificates.open({ dataDir: mkdtempSync(join(tmpdir(), 'nc-')), caValidityDays: 30, nodeCertificateSeconds: 60, now: Date.now });
  const a = certificates.ca.issue('node_aaaaaaaaaaaaaaaa', csr()).certificatePem;

  it('lets a call through only with a verified certificate naming the credential\'s node', () => {
    expect(() => certificates.checkCall(callWith(a), node('node_aaaaaaaaaaaaaaaa'))).not.toThrow();
    expect(() => certificates.checkCall(callWith(a), node('node_bbbbbbbbbbbbbbbb'))).toThrow("the client certificate is for node_aaaaaaaaaaaaaaaa, but the node credential is node_bbbbbbbbbbbbbbbb's");
    expect(() => certificates.checkCall(callWith(), node('node_aaaaaaaaaaaaaaaa'))).toThrow(/requires a client certificate issued by its node CA/);
    expect(() => certificates.checkCall({}, node('node_aaaaaaaaaaaaaaaa'))).toThrow(/requires a client certificate/);
  });

  it('needs a valid CSR at enrolment, before the token is spent', () => {
    expect(() => certificates.checkEnrolmentCsr('')).toThrow('certificate_signing_request: this coordinator issues node certificates and needs one at enrolment');
    expect(() => certificates.checkEnrolmentCsr('nonsense')).toThrow(/not a PEM/);
    expect(() => certificates.checkEnrolmentCsr(csr())).not.toThrow();
  });
});
