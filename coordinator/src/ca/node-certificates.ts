import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { NodeRecord } from '../store.js';
import { CertificateAuthority, nodeIdOfCertificate, type CertificateAuthorityOptions, type IssuedCertificate } from './authority.js';
import { verifyCsr } from './x509.js';

/** The peer side of a gRPC server call that node certificates need (grpc-js ≥ 1.12 server calls have it). */
export interface CallWithAuthContext {
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * Node client certificates issued by the coordinator (tls.clientCertificates "issued"): the CA,
 * the gRPC server credentials that ask every client for a certificate of that CA, and the check
 * every Federation call makes of the certificate it came with.
 *
 * The TLS handshake asks for a client certificate but does not require one, because Enrol is
 * called before the agent has any: TLS verifies a certificate that is presented against the CA
 * (chain, validity, signature), and `checkCall` then refuses any Federation call whose connection
 * presented none that verified, or one naming another node than the call's credential. Revoking a
 * node revokes all its certificates at once (the check reads the node's record, in memory).
 */
export class NodeCertificates {
  readonly ca: CertificateAuthority;
  readonly created: boolean;

  private constructor(opened: { ca: CertificateAuthority; created: boolean }) {
    this.ca = opened.ca;
    this.created = opened.created;
  }

  /** Opens (or creates) the CA in the data directory; refuses loudly if it is unusable. */
  static open(opts: CertificateAuthorityOptions): NodeCertificates {
    return new NodeCertificates(CertificateAuthority.open(opts));
  }

  /**
   * Server credentials with the coordinator's own certificate (`cert`, `key`: PEM files) that
   * request a client certificate from the node CA but let a client without one in (for Enrol).
   */
  serverCredentials(certPath: string, keyPath: string): grpc.ServerCredentials {
    const read = (path: string, what: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new FedlhsError('CONFIG_INVALID', `${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, details: { key: what } });
      }
    };
    const identity = { certificate: read(certPath, 'tls.cert'), privateKey: read(keyPath, 'tls.key') };
    const caCertificate = Buffer.from(this.ca.certificatePem);
    // One provider answers both roles: grpc-js names the parameters of
    // createCertificateProviderServerCredentials in one order and uses them in the other. The
    // answers come a tick later: grpc-js registers the server's watcher only after adding these
    // listeners, and an answer given before it is lost (the server then drops every connection).
    const provider: grpc.experimental.CertificateProvider = {
      addCaCertificateListener: (listener) => queueMicrotask(() => listener({ caCertificate })),
      removeCaCertificateListener: () => undefined,
      addIdentityCertificateListener: (listener) => queueMicrotask(() => listener(identity)),
      removeIdentityCertificateListener: () => undefined,
    };
    return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
  }

  /**
   * Checks the client certificate of an authenticated call: it must have verified against the
   * node CA during the handshake (grpc-js reports a peer certificate only then) and name `node`.
   * Throws CREDENTIAL_INVALID (UNAUTHENTICATED) naming what is wrong.
   */
  checkCall(call: CallWithAuthContext, node: NodeRecord): void {
    const peer = call.getAuthContext?.()?.sslPeerCertificate;
    if (peer === undefined) {
      throw new FedlhsError('CREDENTIAL_INVALID', 'this coordinator requires a client certificate issued by its node CA (mutual TLS): none was presented, or it was not issued by this coordinator', { details: { why: 'certificate' } });
    }
    const certNode = nodeIdOfCertificate(peer.subjectaltname);
    if (certNode !== node.id) {
      throw new FedlhsError('CREDENTIAL_INVALID', `the client certificate is for ${certNode ?? 'no node'}, but the node credential is ${node.id}'s`, { details: { why: 'certificate' } });
    }
  }

  /**
   * Issues a certificate for a node whose credential and current certificate the call has
   * already checked (RenewCertificate), logging it (node.certificate_renewed).
   */
  renew(node: NodeRecord, csrPem: string, log: Logger): IssuedCertificate {
    const issued = this.ca.issue(node.id, csrPem);
    log.info({ event: 'node.certificate_renewed', nodeId: node.id, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString() }, 'node certificate renewed');
    return issued;
  }

  /** Checks a CSR before enrolment spends the join token; INVALID_ARGUMENT if it is missing or invalid. */
  checkEnrolmentCsr(csrPem: string): void {
    if (csrPem === '') throw new FedlhsError('INVALID_ARGUMENT', 'certificate_signing_request: this coordinator issues node certificates and needs one at enrolment', { details: { field: 'certificate_signing_request' } });
    verifyCsr(csrPem);
  }
}

const registry = new WeakMap<object, NodeCertificates>();

/** Makes `certificates` the node certificates of the server serving `coordinator` (startGrpcServer). */
export function useNodeCertificates(coordinator: object, certificates: NodeCertificates): void {
  registry.set(coordinator, certificates);
}

/** The node certificates of a coordinator's gRPC server, if it issues them. */
export function nodeCertificatesOf(coordinator: object): NodeCertificates | undefined {
  return registry.get(coordinator);
}
