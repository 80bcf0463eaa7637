import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '@fedlhs/service';
import { join } from 'node:path';
import { FedlhsError } from '@fedlhs/core';
import { issueCertificate, newSerial, nodeUri, verifyCsr } from './x509.js';

const DAY_MS = 86_400_000;
/** Issued certificates start this much in the past, so an agent whose clock is a little behind accepts them. */
export const BACKDATE_MS = 5 * 60_000;
/** How long before the CA can no longer issue a full-lifetime certificate the coordinator warns (ca.expiring). */
export const CA_WARN_MS = 30 * DAY_MS;

export interface CertificateAuthorityOptions {
  /** The coordinator's data directory; the CA lives in <dataDir>/ca (ca.key 0600, ca.crt). */
  dataDir: string;
  /** Lifetime of the CA certificate when it is created (config tls.caValidityDays). */
  caValidityDays: number;
  /** Lifetime of each node certificate (config tls.nodeCertificateSeconds). */
  nodeCertificateSeconds: number;
  now: () => number;
}

/** A node certificate just issued. */
export interface IssuedCertificate {
  certificatePem: string;
  /** When it was issued (its notBefore is BACKDATE_MS earlier). */
  issuedAt: number;
  caCertificatePem: string;
  serial: string;
  notAfter: number;
}

function caError(message: string, cause?: unknown): FedlhsError {
  return new FedlhsError('CONFIG_INVALID', message, { cause, details: { key: 'tls.clientCertificates' } });
}

/**
 * The coordinator's own certificate authority for node client certificates (tls.clientCertificates
 * "issued"): an ECDSA P-256 key and a self-signed CA certificate in <dataDir>/ca, created at first
 * start and reused after (an active/standby pair: the same files on both, checked against the
 * store's record at start, ha/pair-ca.ts). A key file that is unreadable, readable by group or others, or does not
 * match the certificate refuses the start, naming the file: silently making a new CA would lock out
 * every enrolled node.
 */
export class CertificateAuthority {
  readonly certificatePem: string;
  readonly certificate: X509Certificate;
  private readonly key: KeyObject;
  private readonly publicKey: KeyObject;
  /** Lifetime of each node certificate (ms). */
  readonly nodeCertificateMs: number;
  readonly now: () => number;

  private constructor(certificatePem: string, key: KeyObject, opts: CertificateAuthorityOptions) {
    this.certificatePem = certificatePem;
    this.certificate = new X509Certificate(certificatePem);
    this.key = key;
    this.publicKey = createPublicKey(key);
    this.nodeCertificateMs = opts.nodeCertificateSeconds * 1000;
    this.now = opts.now;
  }

  /** Loads the CA from <dataDir>/ca, creating it if neither file exists. */
  static open(opts: CertificateAuthorityOptions): { ca: CertificateAuthority; created: boolean } {
    const loaded = CertificateAuthority.load(opts);
    if (loaded !== undefined) return { ca: loaded, created: false };
    const made = CertificateAuthority.generate(opts);
    made.save(opts.dataDir);
    return { ca: made.ca, created: true };
  }

  /**
   * A new CA in memory (nothing written yet): an active/standby coordinator records it in the
   * store first and writes its files only if it was the first (ha/pair-ca.ts).
   */
  static generate(opts: CertificateAuthorityOptions): { ca: CertificateAuthority; save: (dataDir: string) => void } {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const notBefore = new Date(opts.now() - BACKDATE_MS);
    const pem = issueCertificate({
      subject: 'fedlhs coordinator node CA', subjectKey: publicKey, issuer: 'fedlhs coordinator node CA', issuerKey: privateKey, issuerPublicKey: publicKey,
      notBefore, notAfter: new Date(opts.now() + opts.caValidityDays * DAY_MS), serial: newSerial(), kind: { ca: true },
    });
    return {
      ca: new CertificateAuthority(pem, privateKey, opts),
      save: (dataDir) => {
        const dir = join(dataDir, 'ca');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileAtomic(join(dir, 'ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
        writeFileAtomic(join(dir, 'ca.crt'), pem, 0o644);
      },
    };
  }

  /**
   * Loads the CA from <dataDir>/ca; undefined if neither file exists. Refuses (CONFIG_INVALID
   * naming the file) half a CA, a key readable by others, a key that is not the certificate's and
   * a CA that expires before a certificate issued now would.
   */
  static load(opts: CertificateAuthorityOptions): CertificateAuthority | undefined {
    const dir = join(opts.dataDir, 'ca');
    const keyPath = join(dir, 'ca.key');
    const certPath = join(dir, 'ca.crt');
    const haveKey = existsSync(keyPath);
    const haveCert = existsSync(certPath);
    if (!haveKey && !haveCert) return undefined;
    if (!haveKey || !haveCert) throw caError(`the node CA in ${dir} is incomplete: ${haveKey ? 'ca.crt' : 'ca.key'} is missing (restore it from a backup; removing both makes a new CA, and every node must then enrol again)`);
    const mode = statSync(keyPath).mode & 0o777;
    if ((mode & 0o077) !== 0) throw caError(`${keyPath} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
    let key: KeyObject;
    let pem: string;
    let cert: X509Certificate;
    try {
      key = createPrivateKey(readFileSync(keyPath));
      pem = readFileSync(certPath, 'utf8');
      cert = new X509Certificate(pem);
    } catch (err) {
      throw caError(`cannot read the node CA in ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw caError(`${keyPath} is not an ECDSA P-256 key`);
    if (!cert.publicKey.equals(createPublicKey(key))) throw caError(`${certPath} does not belong to ${keyPath} (the public keys differ)`);
    if (!cert.ca) throw caError(`${certPath} is not a CA certificate`);
    if (Date.parse(cert.validTo) <= opts.now() + opts.nodeCertificateSeconds * 1000) {
      throw caError(`the node CA certificate ${certPath} expires on ${new Date(cert.validTo).toISOString()}, before a certificate issued now would: renew the CA (move both files away, and with ha.enabled run \`fedlhs-coordinator ca reset\`; every node must enrol again)`);
    }
    return new CertificateAuthority(pem, key, opts);
  }

  /** When the CA certificate expires (ms since the epoch). */
  get notAfter(): number {
    return Date.parse(this.certificate.validTo);
  }

  /**
   * Whether the CA is within CA_WARN_MS of the last moment it can issue a full-lifetime
   * certificate (then the coordinator warns, ca.expiring), and that moment.
   */
  expiry(now = this.now()): { lastIssue: number; warn: boolean } {
    const lastIssue = this.notAfter - this.nodeCertificateMs;
    return { lastIssue, warn: lastIssue - now <= CA_WARN_MS };
  }

  /**
   * Throws NODE_CA_EXPIRED (UNAVAILABLE) if a certificate issued at `now` would outlive the CA.
   * Enrolment asks before it spends the join token (NodeCertificates.checkEnrolmentCsr).
   */
  checkCanIssue(now = this.now()): void {
    if (now + this.nodeCertificateMs <= this.notAfter) return;
    throw new FedlhsError(
      'NODE_CA_EXPIRED',
      `the node CA certificate ${this.notAfter <= now ? 'expired' : 'expires'} on ${new Date(this.notAfter).toISOString()}, before a certificate issued now would (tls.nodeCertificateSeconds): an operator must renew the node CA (README "Node certificates": \`fedlhs-coordinator ca reset\` with ha.enabled; every node then enrols again)`,
    );
  }

  /** SHA-256 fingerprint of the CA certificate, as "AB:CD:…". */
  get fingerprint(): string {
    return this.certificate.fingerprint256;
  }

  /**
   * Issues a client certificate for `nodeId` from a PKCS#10 request (PEM): the request's signature
   * is verified (INVALID_ARGUMENT if it does not verify), its subject ignored; the certificate
   * names the node in its subject CN and in a URI SAN (urn:fedlhs:node:<id>), is for TLS client
   * authentication only and lives tls.nodeCertificateSeconds.
   */
  issue(nodeId: string, csrPem: string): IssuedCertificate {
    const subjectKey = verifyCsr(csrPem);
    const now = this.now();
    const notAfter = now + this.nodeCertificateMs;
    // Checked at every issue, not only at start: a coordinator that runs for years reaches it.
    this.checkCanIssue(now);
    const serial = newSerial();
    const certificatePem = issueCertificate({
      subject: nodeId, subjectKey, issuer: this.certificate.subject.replace(/^CN=/, ''), issuerKey: this.key, issuerPublicKey: this.publicKey,
      notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(notAfter), serial, kind: { ca: false, nodeId },
    });
    return { certificatePem, issuedAt: now, caCertificatePem: this.certificatePem, serial: serial.toString('hex').toUpperCase(), notAfter };
  }
}

/** The node id a client certificate names in its URI SAN, or undefined if it names none. */
export function nodeIdOfCertificate(subjectaltname: string | undefined): string | undefined {
  const prefix = `URI:${nodeUri('')}`;
  const uris = (subjectaltname ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith(prefix));
  return uris.length === 1 ? uris[0]!.slice(prefix.length) : undefined;
}

