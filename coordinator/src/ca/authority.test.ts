import { X509Certificate, generateKeyPairSync, sign } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority, nodeIdOfCertificate } from './authority.js';
import { commonName, ECDSA_WITH_SHA256, spkiOf, toPem, verifyCsr } from './x509.js';

const T0 = Date.parse('2026-11-30T12:00:00Z');

/** A CSR signed with `signer` (normally the key it names). */
function csr(subject: string, named = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }), signer = named.privateKey): string {
  const info = new CertificationRequestInfo({ version: 0, subject: commonName(subject), subjectPKInfo: spkiOf(named.publicKey) });
  const sig = sign('sha256', Buffer.from(AsnConvert.serialize(info)), { key: signer, dsaEncoding: 'der' });
  const req = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sig).buffer });
  return toPem(Buffer.from(AsnConvert.serialize(req)), 'CERTIFICATE REQUEST');
}

function open(dataDir: string, now = T0) {
  return CertificateAuthority.open({ dataDir, caValidityDays: 3650, nodeCertificateSeconds: 7 * 86400, now: () => now });
}

describe('CertificateAuthority', () => {
  it('creates a P-256 CA once (key 0600) and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    const first = open(dir);
    expect(first.created).toBe(true);
    expect(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(first.ca.certificate.ca).toBe(true);
    expect(first.ca.certificate.checkIssued(first.ca.certificate)).toBe(true);
    const again = open(dir);
    expect(again.created).toBe(false);
    expect(again.ca.fingerprint).toBe(first.ca.fingerprint);
  });

  it('refuses a key readable by others, a missing half and a key that is not the certificate\'s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    open(dir);
    const keyPath = join(dir, 'ca', 'ca.key');
    chmodSync(keyPath, 0o644);
    expect(() => open(dir)).toThrow(/readable by others \(mode 644\): chmod 600 it/);
    chmodSync(keyPath, 0o600);
    const other = mkdtempSync(join(tmpdir(), 'ca-'));
    open(other);
    writeFileSync(keyPath, readFileSync(join(other, 'ca', 'ca.key')));
    expect(() => open(dir)).toThrow(/does not belong to .*ca\.key \(the public keys differ\)/);
    const half = mkdtempSync(join(tmpdir(), 'ca-'));
    open(half);
    writeFileSync(join(half, 'ca', 'ca.crt'), '');
    expect(() => open(half)).toThrow(/cannot read the node CA/);
  });

  it('issues a client certificate naming the node, whatever subject the request asks for', () => {
    const { ca } = open(mkdtempSync(join(tmpdir(), 'ca-')));
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const issued = ca.issue('node_0123456789abcdef', csr('node_ffffffffffffffff', keys));
    const cert = new X509Certificate(issued.certificatePem);
    expect(cert.subject).toBe('CN=node_0123456789abcdef');
    expect(cert.subjectAltName).toBe('URI:urn:fedlhs:node:node_0123456789abcdef');
    expect(nodeIdOfCertificate(cert.subjectAltName)).toBe('node_0123456789abcdef');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.certificate.publicKey)).toBe(true);
    expect(cert.checkIssued(ca.certificate)).toBe(true);
    expect(cert.publicKey.equals(keys.publicKey)).toBe(true);
    expect(Date.parse(cert.validTo)).toBe(T0 + 7 * 86400_000);
    expect(issued.notAfter).toBe(T0 + 7 * 86400_000);
    expect(cert.serialNumber).toBe(issued.serial);
    expect(issued.caCertificatePem).toBe(ca.certificatePem);
    // OpenSSL, an implementation independent of this one, accepts it as a TLS client certificate of the CA.
    const dir = mkdtempSync(join(tmpdir(), 'ca-verify-'));
    writeFileSync(join(dir, 'ca.pem'), ca.certificatePem);
    writeFileSync(join(dir, 'node.pem'), issued.certificatePem);
    const verified = execFileSync('openssl', ['verify', '-attime', String(T0 / 1000 + 60), '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), join(dir, 'node.pem')], { stdio: 'pipe' }).toString();
    expect(verified).toContain('node.pem: OK');
    // Two issues never share a serial.
    expect(ca.issue('node_0123456789abcdef', csr('x')).serial).not.toBe(issued.serial);
  });

  it('refuses a CA that expires before a certificate issued now would', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ca-'));
    open(dir);
    expect(() => open(dir, T0 + 3649 * 86400_000)).toThrow(/expires on .* before a certificate issued now would/);
  });
});

describe('verifyCsr', () => {
  it('accepts a request signed by its own key', () => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(verifyCsr(csr('n', keys)).equals(keys.publicKey)).toBe(true);
  });

  it('refuses a request whose signature is not by the key it names', () => {
    const named = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => verifyCsr(csr('n', named, other.privateKey))).toThrow('certificate_signing_request: its signature does not verify with its own public key');
  });

  it('refuses what is not a P-256 PKCS#10 request', () => {
    expect(() => verifyCsr('hello')).toThrow('certificate_signing_request: not a PEM "CERTIFICATE REQUEST"');
    expect(() => verifyCsr(toPem(Buffer.from('nonsense'), 'CERTIFICATE REQUEST'))).toThrow('certificate_signing_request: not a PKCS#10 request');
    const ed = generateKeyPairSync('ed25519');
    const info = new CertificationRequestInfo({ version: 0, subject: commonName('n'), subjectPKInfo: spkiOf(ed.publicKey) });
    const req = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new ArrayBuffer(8) });
    expect(() => verifyCsr(toPem(Buffer.from(AsnConvert.serialize(req)), 'CERTIFICATE REQUEST'))).toThrow('certificate_signing_request: its key is not ECDSA P-256');
    expect(() => verifyCsr('x'.repeat(5000))).toThrow(/longer than 4096/);
  });
});
