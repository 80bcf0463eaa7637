import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { FedlhsError } from '@fedlhs/core';
import { writeFileAtomic } from '@fedlhs/service';

/**
 * The node's TLS client certificate issued by the coordinator's CA (enrolment.proto, "Node
 * certificates"): its ECDSA P-256 key (node-key.pem, mode 0600), the certificate (node-cert.pem)
 * and the CA that issued it, pinned at enrolment (node-ca.pem), in the state directory.
 */

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const COMMON_NAME = '2.5.4.3';

/** A fresh ECDSA P-256 key (PKCS#8 PEM) and a PKCS#10 request for it (PEM) with subject CN=`subject`. */
export function newKeyAndCsr(subject: string): { keyPem: string; csrPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME, value: new AttributeValue({ utf8String: subject }) })])]),
    subjectPKInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
  });
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(info)), { key: privateKey, dsaEncoding: 'der' });
  const csr = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(signature).buffer });
  const der = Buffer.from(AsnConvert.serialize(csr)).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${der}\n-----END CERTIFICATE REQUEST-----\n` };
}

/** The node certificate in use. */
export interface NodeCertificate {
  keyPem: string;
  certificatePem: string;
  caPem: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

function invalid(message: string): FedlhsError {
  return new FedlhsError('CONFIG_INVALID', message, { details: { key: 'tls.cert' } });
}

/**
 * Checks a certificate the coordinator returned before it is kept: it must be for `key` (PEM),
 * issued by `caPem` (the pinned CA), name `nodeId` in its URI SAN and be valid now.
 */
export function checkIssued(certificatePem: string, keyPem: string, caPem: string, nodeId: string, now = Date.now()): NodeCertificate {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
    ca = new X509Certificate(caPem);
  } catch (err) {
    throw new FedlhsError('CONFIG_INVALID', `the coordinator's certificate is not a PEM X.509 certificate: ${(err as Error).message}`, { cause: err });
  }
  if (!cert.publicKey.equals(createPublicKey(createPrivateKey(keyPem)))) throw invalid('the certificate the coordinator issued is not for the key this agent sent');
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw invalid('the certificate the coordinator issued is not signed by its pinned node CA');
  if (cert.subjectAltName !== `URI:urn:fedlhs:node:${nodeId}`) throw invalid(`the certificate the coordinator issued names ${cert.subjectAltName ?? 'nothing'}, not this node (${nodeId})`);
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (!(notAfter > now)) throw invalid(`the certificate the coordinator issued expired on ${new Date(notAfter).toISOString()}`);
  return { keyPem, certificatePem, caPem, serial: cert.serialNumber, notBefore, notAfter };
}

/**
 * When to renew a certificate held since `from` (received, or loaded at start): at two thirds of
 * the life it has left. Not from notBefore: the coordinator backdates that for clock skew, which
 * would put the renewal of a short-lived certificate in the past.
 */
export function renewalTime(c: Pick<NodeCertificate, 'notAfter'>, from: number): number {
  return from + Math.floor(((c.notAfter - from) * 2) / 3);
}

/** The node certificate files in an agent's state directory. */
export class NodeCertificateFiles {
  readonly keyPath: string;
  readonly certificatePath: string;
  readonly caPath: string;

  constructor(stateDir: string) {
    this.keyPath = join(stateDir, 'node-key.pem');
    this.certificatePath = join(stateDir, 'node-cert.pem');
    this.caPath = join(stateDir, 'node-ca.pem');
  }

  /** Whether this agent holds a certificate from the coordinator. */
  exists(): boolean {
    return existsSync(this.certificatePath);
  }

  /**
   * Writes a checked certificate and its key. Both are written in full beside the current pair
   * first (`.next`), then moved into place key first; a crash or a full disk at any point leaves
   * either the old pair, or a pair that `load` completes (review of issue 15: a renewal that failed
   * between the two writes left a new key beside the old certificate, and the agent could not
   * start). The node CA is written every time: an enrolment after the coordinator's CA was renewed
   * must pin the new one.
   */
  save(c: NodeCertificate): void {
    writeFileAtomic(`${this.keyPath}.next`, c.keyPem, 0o600);
    writeFileAtomic(`${this.certificatePath}.next`, c.certificatePem, 0o644);
    writeFileAtomic(this.caPath, c.caPem, 0o644);
    this.complete();
  }

  /** Moves a fully written `.next` pair into place (key, then certificate); a lone `.next` certificate follows its key. */
  private complete(): void {
    const keyNext = `${this.keyPath}.next`;
    const certNext = `${this.certificatePath}.next`;
    if (existsSync(keyNext) && existsSync(certNext)) renameSync(keyNext, this.keyPath);
    if (existsSync(certNext) && !existsSync(keyNext)) renameSync(certNext, this.certificatePath);
  }

  /** The stored certificate, checked again (the key file must not be readable by others). */
  load(nodeId: string): NodeCertificate {
    this.complete();
    const mode = statSync(this.keyPath).mode & 0o777;
    if ((mode & 0o077) !== 0) throw invalid(`${this.keyPath} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${this.keyPath}`);
    // Expired or not, it is what the agent has; the caller decides (renewal cannot use an expired one).
    return checkIssued(readFileSync(this.certificatePath, 'utf8'), readFileSync(this.keyPath, 'utf8'), readFileSync(this.caPath, 'utf8'), nodeId, 0);
  }
}

/**
 * Certificate updates for grpc-js: the CA that signed the coordinator's server certificate and
 * the node's current client certificate. `setIdentity` makes every connection opened after it
 * present the new certificate (grpc-js builds a secure context per connection from the latest update).
 */
export class NodeCertificateProvider implements grpc.experimental.CertificateProvider {
  private identity: grpc.experimental.IdentityCertificateUpdate;
  private readonly ca: grpc.experimental.CaCertificateUpdate;
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  /** `serverCaPath`: the PEM bundle that signed the coordinator's server certificate; empty: the system roots. */
  constructor(serverCaPath: string, current: NodeCertificate) {
    this.ca = { caCertificate: serverCaPath === '' ? Buffer.from(rootCertificates.join('\n')) : readFileSync(serverCaPath) };
    this.identity = { certificate: Buffer.from(current.certificatePem), privateKey: Buffer.from(current.keyPem) };
  }

  setIdentity(c: NodeCertificate): void {
    this.identity = { certificate: Buffer.from(c.certificatePem), privateKey: Buffer.from(c.keyPem) };
    for (const l of this.identityListeners) l(this.identity);
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    listener(this.ca);
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    listener(this.identity);
  }
  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}
