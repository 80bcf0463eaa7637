import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeCertificateFiles, checkIssued, newKeyAndCsr, renewalTime } from './certificates.js';

const NODE = 'node_0123456789abcdef';

/** A CA made with OpenSSL, and a signer of CSRs with it: an implementation independent of the coordinator's. */
function opensslCa(dir: string): { caPem: string; sign(csrPem: string, nodeId: string): string } {
  const p = (f: string): string => join(dir, f);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=test node CA', '-keyout', p('ca.key'), '-out', p('ca.pem')], { stdio: 'pipe' });
  return {
    caPem: readFileSync(p('ca.pem'), 'utf8'),
    sign(csrPem, nodeId) {
      writeFileSync(p('req.csr'), csrPem);
      writeFileSync(p('ext'), `subjectAltName=URI:urn:fedlhs:node:${nodeId}\nextendedKeyUsage=clientAuth\n`);
      execFileSync('openssl', ['x509', '-req', '-in', p('req.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', p('ext'), '-out', p('node.pem')], { stdio: 'pipe' });
      return readFileSync(p('node.pem'), 'utf8');
    },
  };
}

describe('node certificate requests and checks', () => {
  it('makes a P-256 key and a PKCS#10 request that OpenSSL verifies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cert-'));
    const { keyPem, csrPem } = newKeyAndCsr('anything');
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    writeFileSync(join(dir, 'r.csr'), csrPem);
    const text = execFileSync('openssl', ['req', '-in', join(dir, 'r.csr'), '-verify', '-noout', '-text'], { stdio: 'pipe' }).toString();
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toContain('ecdsa-with-SHA256');
  });

  it('keeps a certificate only if it is for its key, from the pinned CA and for this node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cert-'));
    const ca = opensslCa(dir);
    const { keyPem, csrPem } = newKeyAndCsr(NODE);
    const pem = ca.sign(csrPem, NODE);
    const ok = checkIssued(pem, keyPem, ca.caPem, NODE);
    expect(ok.serial).toBe(new X509Certificate(pem).serialNumber);
    expect(() => checkIssued(pem, newKeyAndCsr(NODE).keyPem, ca.caPem, NODE)).toThrow('the certificate the coordinator issued is not for the key this agent sent');
    const other = opensslCa(mkdtempSync(join(tmpdir(), 'agent-cert-')));
    expect(() => checkIssued(pem, keyPem, other.caPem, NODE)).toThrow('the certificate the coordinator issued is not signed by its pinned node CA');
    expect(() => checkIssued(ca.sign(csrPem, 'node_ffffffffffffffff'), keyPem, ca.caPem, NODE)).toThrow(`names URI:urn:fedlhs:node:node_ffffffffffffffff, not this node (${NODE})`);
    expect(() => checkIssued(pem, keyPem, ca.caPem, NODE, ok.notAfter + 1)).toThrow(/expired on/);
  });

  it('stores the key 0600, reads it back, and refuses a key others can read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cert-'));
    const ca = opensslCa(dir);
    const { keyPem, csrPem } = newKeyAndCsr(NODE);
    const files = new NodeCertificateFiles(dir);
    expect(files.exists()).toBe(false);
    files.save(checkIssued(ca.sign(csrPem, NODE), keyPem, ca.caPem, NODE));
    expect(statSync(files.keyPath).mode & 0o777).toBe(0o600);
    expect(files.load(NODE).keyPem).toBe(keyPem);
    chmodSync(files.keyPath, 0o640);
    expect(() => files.load(NODE)).toThrow(/node-key\.pem is readable by others \(mode 640\)/);
  });

  it('a renewal interrupted between its writes leaves a pair that loads (old, or the new one completed), and a new node CA is pinned at a new enrolment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cert-'));
    const ca = opensslCa(dir);
    const files = new NodeCertificateFiles(dir);
    const first = newKeyAndCsr(NODE);
    files.save(checkIssued(ca.sign(first.csrPem, NODE), first.keyPem, ca.caPem, NODE));
    const next = newKeyAndCsr(NODE);
    const nextPem = ca.sign(next.csrPem, NODE);
    // A full disk while writing the new certificate: only the new key was written beside the old pair.
    writeFileSync(`${files.keyPath}.next`, next.keyPem, { mode: 0o600 });
    expect(files.load(NODE).keyPem).toBe(first.keyPem);
    // A crash after the key was moved into place but before the certificate: load completes the move.
    writeFileSync(`${files.certificatePath}.next`, nextPem);
    renameSync(`${files.keyPath}.next`, files.keyPath);
    expect(files.load(NODE).keyPem).toBe(next.keyPem);
    expect(existsSync(`${files.certificatePath}.next`)).toBe(false);
    // Enrolling again after the coordinator's CA changed: the new CA replaces the pinned one.
    const ca2 = opensslCa(mkdtempSync(join(tmpdir(), 'agent-cert-')));
    const again = newKeyAndCsr(NODE);
    files.save(checkIssued(ca2.sign(again.csrPem, NODE), again.keyPem, ca2.caPem, NODE));
    expect(files.load(NODE).keyPem).toBe(again.keyPem);
  });

  it('renews at two thirds of the life left, never in the past', () => {
    expect(renewalTime({ notAfter: 30_000 }, 0)).toBe(20_000);
    expect(renewalTime({ notAfter: 30_000 }, 27_000)).toBe(29_000);
  });
});
