import { checkServerIdentity } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { backoffDelay } from '@fedlhs/core';
import type { FederationClient } from '@fedlhs/proto';
import { channelCredentials, type ClientTlsOptions, type Logger } from '@fedlhs/service';
import type { AgentState } from './agent-state.js';
import { authMetadata, deadlineIn } from './connection.js';
import { NodeCertificateFiles, NodeCertificateProvider, checkIssued, newKeyAndCsr, renewalTime, type NodeCertificate } from './certificates.js';

/**
 * Channel credentials that present the node certificate `provider` holds now: connections opened
 * after a renewal present the renewed one. The coordinator's server certificate is checked as
 * `channelCredentials` (@fedlhs/service) checks it, against tls.ca (or the system roots) and the
 * address' host or tls.serverName.
 */
export function nodeCertificateCredentials(tls: ClientTlsOptions, provider: NodeCertificateProvider): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const { options } = channelCredentials({ ...tls, cert: '', key: '' });
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (host, peer) => {
      const err = checkServerIdentity(host, peer);
      if (err !== undefined) return new Error(`the coordinator's certificate is not for ${JSON.stringify(host)}: dial a name it is for, or set tls.serverName (${err.message})`);
      tls.onServerCertificate?.({ sha256: peer.fingerprint256, names: [] });
      return undefined;
    },
  });
  return { credentials, options };
}

export interface CertificateRenewerOptions {
  nodeId: string;
  credential: string;
  coordinator: string;
  files: NodeCertificateFiles;
  provider: NodeCertificateProvider;
  current: NodeCertificate;
  federation: () => FederationClient;
  state: AgentState;
  log: Logger;
  now?: () => number;
}

/**
 * Renews the node certificate at two thirds of the lifetime it has left, without operator action: a new key
 * and CSR, Federation.RenewCertificate over the current connection (authenticated by the current
 * certificate and the credential), the answer checked (same pinned CA, this key, this node) and
 * kept, then used for every connection opened after (the provider; the coordinator closes the
 * connection that still presents the old one gracefully at its next call, so the agent's calls
 * move to the renewed certificate at once, and refuses the old one soon after). Logged
 * (agent.certificate_renewed) and audited (certificate_renewed). A failed attempt is logged and
 * retried with backoff until the certificate expires.
 */
export class CertificateRenewer {
  private current: NodeCertificate;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly opts: CertificateRenewerOptions) {
    this.current = opts.current;
    this.now = opts.now ?? Date.now;
  }

  /** Schedules the next renewal (at once if the certificate has expired: the coordinator then refuses, loudly). */
  start(): void {
    this.schedule(renewalTime(this.current, this.now()) - this.now());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.renew(), Math.max(0, ms));
    this.timer.unref();
  }

  /** One renewal attempt (exposed for tests). */
  async renew(): Promise<void> {
    const { keyPem, csrPem } = newKeyAndCsr(this.opts.nodeId);
    try {
      const r = await new Promise<{ clientCertificate: string; clientCaCertificate: string }>((resolve, reject) => {
        this.opts.federation().RenewCertificate({ certificateSigningRequest: csrPem }, authMetadata(this.opts.credential), { deadline: deadlineIn(30_000) }, (err, res) => (err === null ? resolve(res!) : reject(err)));
      });
      // The pinned CA, not the one the answer names: a renewal cannot move the node to another CA.
      const next = checkIssued(r.clientCertificate, keyPem, this.current.caPem, this.opts.nodeId, this.now());
      this.opts.files.save(next);
      this.opts.provider.setIdentity(next);
      this.current = next;
      this.attempt = 0;
      const nextRenewal = renewalTime(next, this.now());
      this.opts.state.audit({ event: 'certificate_renewed', coordinator: this.opts.coordinator, detail: `serial ${next.serial}, valid until ${new Date(next.notAfter).toISOString()}`, sent: { renewCertificate: { certificateSigningRequest: '(a PKCS#10 request for a new P-256 public key)' } } });
      this.opts.log.info({ event: 'agent.certificate_renewed', serial: next.serial, notAfter: new Date(next.notAfter).toISOString(), nextRenewal: new Date(nextRenewal).toISOString() }, 'client certificate renewed');
      this.schedule(nextRenewal - this.now());
    } catch (err) {
      this.attempt += 1;
      const left = this.current.notAfter - this.now();
      this.opts.log.warn({ event: 'agent.certificate_renew_failed', err, notAfter: new Date(this.current.notAfter).toISOString() }, `could not renew the client certificate (${left > 0 ? `it expires in ${Math.round(left / 1000)} s` : 'it has expired'}); retrying`);
      this.schedule(Math.min(backoffDelay(this.attempt, { baseMs: 1000, capMs: 60_000 }), Math.max(1000, left / 10)));
    }
  }
}

/** What `enrol` needs to ask for a node certificate: a new key and a CSR for it (none over plaintext: no TLS, no certificate). */
export function enrolmentRequest(tlsMode: 'tls' | 'plaintext'): { keyPem: string; csrPem: string } | undefined {
  return tlsMode === 'tls' ? newKeyAndCsr('fedlhs node (the coordinator names it)') : undefined;
}

/**
 * Keeps the certificate an enrolment answer carries (none: the coordinator does not issue any),
 * checked against the key this agent made, and audits it (certificate_issued).
 */
export function keepEnrolmentCertificate(
  stateDir: string, state: AgentState, coordinator: string, nodeId: string, keyPem: string | undefined,
  r: { clientCertificate?: string; clientCaCertificate?: string },
): NodeCertificate | undefined {
  if ((r.clientCertificate ?? '') === '') return undefined;
  if (keyPem === undefined) throw new Error('the coordinator issued a certificate without a request');
  const issued = checkIssued(r.clientCertificate!, keyPem, r.clientCaCertificate ?? '', nodeId);
  new NodeCertificateFiles(stateDir).save(issued);
  state.audit({ event: 'certificate_issued', coordinator, detail: `serial ${issued.serial}, valid until ${new Date(issued.notAfter).toISOString()}`, sent: { enrol: { certificateSigningRequest: '(a PKCS#10 request for a new P-256 public key)' } } });
  return issued;
}

/**
 * A command's TLS settings with the node certificate from the coordinator, if this agent holds
 * one and no other client certificate is configured (tls.cert).
 */
export function withNodeCertificate<T extends { stateDir: string; tls: { cert: string; key: string } }>(c: T): T {
  const files = new NodeCertificateFiles(c.stateDir);
  if (c.tls.cert !== '' || !files.exists()) return c;
  return { ...c, tls: { ...c.tls, cert: files.certificatePath, key: files.keyPath } };
}
