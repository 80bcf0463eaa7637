import { readFileSync } from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorStore, NodeRecord } from '../store.js';
import { BACKDATE_MS, CertificateAuthority, nodeIdOfCertificate, type CertificateAuthorityOptions, type IssuedCertificate } from './authority.js';
import { CertificateLedger, certificateRefused, refusalReason, type LedgerLog, type RefusalReason } from './ledger.js';
import { verifyCsr } from './x509.js';

/** The peer side of a gRPC server call that node certificates need (grpc-js ≥ 1.12 server calls have it). */
export interface CallWithAuthContext {
  getAuthContext?(): { sslPeerCertificate?: PeerCertificate } | null;
}

/** The CA as the gRPC handlers use it: what it issues is recorded (in a coordinator's NodeCertificates). */
export interface IssuingCa {
  readonly certificatePem: string;
  readonly certificate: X509Certificate;
  readonly fingerprint: string;
  /** Issues a certificate for `nodeId` from a PKCS#10 request (CertificateAuthority.issue). */
  issue(nodeId: string, csrPem: string): IssuedCertificate;
}

/** How long a superseded certificate is still accepted, by default (config tls.supersededGraceSeconds). */
export const SUPERSEDED_GRACE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How soon a node whose last renewal answer was lost may renew again (capped at a third of the lifetime). */
export const RENEWAL_RETRY_MS = 10 * 60_000;

export interface NodeCertificatesOptions extends CertificateAuthorityOptions {
  /** How long a superseded certificate is still accepted (default SUPERSEDED_GRACE_MS). */
  supersededGraceMs?: number;
  /** Where CA warnings and record failures go; process warnings (logged as process.warning) if absent. */
  log?: LedgerLog & Pick<Logger, 'info'>;
}

/** A logger made of process warnings, for a NodeCertificates opened without one (the process logs them). */
const warningLog: LedgerLog & Pick<Logger, 'info'> = {
  warn: (obj, msg) => process.emitWarning(msg, { code: `FEDLHS_${String((obj as { event?: string }).event ?? 'ca').toUpperCase().replace(/\W/g, '_')}` }),
  error: (obj, msg) => process.emitWarning(msg, { code: `FEDLHS_${String((obj as { event?: string }).event ?? 'ca').toUpperCase().replace(/\W/g, '_')}` }),
  info: () => undefined,
};

/**
 * Node client certificates issued by the coordinator (tls.clientCertificates "issued"): the CA,
 * the gRPC server credentials that ask every client for a certificate of that CA, and the check
 * every Federation call makes of the certificate it came with.
 *
 * The TLS handshake asks for a client certificate but does not require one, because Enrol is
 * called before the agent has any: TLS verifies a certificate that is presented against the CA
 * (chain, validity, signature), and `checkCall` then refuses any Federation call whose connection
 * presented none that verified, one naming another node than the call's credential, one that
 * has expired since the connection was made, and one whose serial the ledger refuses (superseded
 * by a renewal, revoked with its node: ledger.ts, shared by an active/standby pair through the
 * store). Revoking a node also refuses its credential at once (the node directory).
 *
 * `open` gives the CA alone; `bind` gives the instance of one coordinator (its store's ledger),
 * which `useNodeCertificates` registers for its gRPC handlers.
 */
export class NodeCertificates {
  readonly authority: CertificateAuthority;
  readonly created: boolean;
  /** The CA for the handlers; in a bound instance every certificate it issues is recorded. */
  readonly ca: IssuingCa;
  private readonly ledger: CertificateLedger | undefined;
  private readonly graceMs: number;
  private readonly log: LedgerLog & Pick<Logger, 'info'>;
  private readonly refusals: Counter<'reason'> | undefined;
  private lastExpiryWarning = -Infinity;
  private drainWarned = false;

  private constructor(authority: CertificateAuthority, created: boolean, opts: { supersededGraceMs?: number; log?: LedgerLog & Pick<Logger, 'info'> }, ledger?: CertificateLedger, refusals?: Counter<'reason'>) {
    this.authority = authority;
    this.created = created;
    this.ledger = ledger;
    this.graceMs = opts.supersededGraceMs ?? SUPERSEDED_GRACE_MS;
    this.log = opts.log ?? warningLog;
    this.refusals = refusals;
    const issue = (nodeId: string, csrPem: string): IssuedCertificate => {
      const issued = authority.issue(nodeId, csrPem);
      this.warnIfExpiring();
      ledger?.recordLater({ serial: issued.serial, nodeId, issuedAt: issued.issuedAt, notAfter: issued.notAfter });
      return issued;
    };
    this.ca = {
      certificatePem: authority.certificatePem,
      certificate: authority.certificate,
      get fingerprint() {
        return authority.fingerprint;
      },
      issue,
    };
  }

  /** Opens (or creates) the CA in the data directory; refuses loudly if it is unusable. */
  static open(opts: NodeCertificatesOptions): NodeCertificates {
    const { ca, created } = CertificateAuthority.open(opts);
    return new NodeCertificates(ca, created, opts);
  }

  /** The node certificates of a CA opened elsewhere (an active/standby pair's: ha/pair-ca.ts). */
  static of(authority: CertificateAuthority, created: boolean, opts: Omit<NodeCertificatesOptions, keyof CertificateAuthorityOptions>): NodeCertificates {
    return new NodeCertificates(authority, created, opts);
  }

  /**
   * This CA bound to a coordinator's store: certificates it issues are recorded there and calls
   * are checked against the record. `metrics`: fedlhs_node_ca_expiry_timestamp_seconds and
   * fedlhs_node_certificate_refusals_total{reason} are registered there (once per registry).
   */
  bind(store: CoordinatorStore, metrics?: Registry): NodeCertificates {
    const ledger = new CertificateLedger(store, this.authority.now, this.log);
    let refusals: Counter<'reason'> | undefined;
    if (metrics !== undefined) {
      const authority = this.authority;
      if (metrics.getSingleMetric('fedlhs_node_ca_expiry_timestamp_seconds') === undefined) {
        new Gauge({
          name: 'fedlhs_node_ca_expiry_timestamp_seconds', help: 'When the node CA certificate expires (Unix seconds); it cannot issue once less than tls.nodeCertificateSeconds is left.', registers: [metrics],
          collect() {
            this.set(authority.notAfter / 1000);
          },
        });
      }
      refusals = (metrics.getSingleMetric('fedlhs_node_certificate_refusals_total') as Counter<'reason'> | undefined)
        ?? new Counter({ name: 'fedlhs_node_certificate_refusals_total', help: 'Federation calls refused for their client certificate, by reason.', labelNames: ['reason'], registers: [metrics] });
    }
    const bound = new NodeCertificates(this.authority, this.created, { supersededGraceMs: this.graceMs, log: this.log }, ledger, refusals);
    bound.warnIfExpiring();
    return bound;
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
    const caCertificate = Buffer.from(this.authority.certificatePem);
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
   * node CA during the handshake (grpc-js reports a peer certificate only then), name `node`, not
   * have expired since (a connection outlives its certificate otherwise), and pass the ledger.
   * A superseded certificate within tls.supersededGraceSeconds, or one whose node has a newer
   * one, is let through and its connection closed gracefully (HTTP/2 GOAWAY): the agent's next
   * calls open a connection that presents its newest certificate. Throws CREDENTIAL_INVALID
   * (UNAUTHENTICATED) naming what is wrong.
   */
  async checkCall(call: CallWithAuthContext, node: NodeRecord): Promise<void> {
    const peer = call.getAuthContext?.()?.sslPeerCertificate;
    if (peer === undefined) {
      throw this.refuse('none', 'this coordinator requires a client certificate issued by its node CA (mutual TLS): none was presented, or it was not issued by this coordinator, or it had expired when the connection was made');
    }
    const certNode = nodeIdOfCertificate(peer.subjectaltname);
    if (certNode !== node.id) throw this.refuse('wrong_node', `the client certificate is for ${certNode ?? 'no node'}, but the node credential is ${node.id}'s`);
    const notAfter = Date.parse(peer.valid_to);
    const now = this.authority.now();
    if (!(notAfter > now)) {
      throw this.refuse('expired', `the client certificate (serial ${peer.serialNumber}) expired on ${Number.isNaN(notAfter) ? peer.valid_to : new Date(notAfter).toISOString()}: agents renew at two thirds of its lifetime; this one must enrol again with a new join token`);
    }
    if (this.ledger === undefined) throw new FedlhsError('INTERNAL', 'node certificates used before being bound to a store (NodeCertificates.bind)');
    let verdict: 'ok' | 'drain';
    try {
      verdict = await this.ledger.check(node.id, { serial: peer.serialNumber, issuedAt: Date.parse(peer.valid_from) + BACKDATE_MS, notAfter }, this.graceMs);
    } catch (err) {
      const reason = refusalReason(err);
      if (reason !== undefined) this.refusals?.inc({ reason });
      throw err;
    }
    if (verdict === 'drain') this.drain(call);
  }

  /**
   * Issues a certificate for a node whose credential and current certificate the call has
   * already checked (RenewCertificate), records it (the answer waits until it is durable) and
   * logs it (node.certificate_renewed). Refused RATE_LIMITED (with retryAfterMs) while the
   * node's newest certificate is younger than a third of its lifetime (agents renew at two
   * thirds), or, when the call presents an older one (the last answer was lost), younger than
   * RENEWAL_RETRY_MS: a node cannot fill the table and memory with certificates.
   */
  async renew(call: CallWithAuthContext, node: NodeRecord, csrPem: string, log: Logger): Promise<IssuedCertificate> {
    if (this.ledger === undefined) throw new FedlhsError('INTERNAL', 'node certificates used before being bound to a store (NodeCertificates.bind)');
    const presented = call.getAuthContext?.()?.sslPeerCertificate?.serialNumber ?? '';
    const lifetime = this.authority.nodeCertificateMs;
    const wait = this.ledger.renewalWait(node.id, presented, Math.floor(lifetime / 3), Math.min(RENEWAL_RETRY_MS, Math.floor(lifetime / 3)));
    if (wait > 0) {
      log.warn({ event: 'node.certificate_renewal_refused', nodeId: node.id, retryAfterMs: wait }, 'node certificate renewal refused: the node renewed recently');
      throw new FedlhsError('RATE_LIMITED', `${node.id} renewed its certificate recently: a renewal is accepted once the newest certificate is a third of its lifetime old (or ${RENEWAL_RETRY_MS / 60_000} minutes, if the last answer was lost); retry in ${Math.ceil(wait / 1000)} s`, {
        details: { limit: 'node certificate renewals', retryAfterMs: wait },
      });
    }
    const issued = this.authority.issue(node.id, csrPem);
    this.warnIfExpiring();
    await this.ledger.record({ serial: issued.serial, nodeId: node.id, issuedAt: issued.issuedAt, notAfter: issued.notAfter });
    log.info({ event: 'node.certificate_renewed', nodeId: node.id, serial: issued.serial, notAfter: new Date(issued.notAfter).toISOString() }, 'node certificate renewed');
    return issued;
  }

  /**
   * Checks a CSR, and that the CA can still issue, before enrolment spends the join token:
   * INVALID_ARGUMENT if the CSR is missing or invalid, NODE_CA_EXPIRED if the CA is past its last
   * issue date (the clinic keeps its token for when an operator has renewed the CA).
   */
  checkEnrolmentCsr(csrPem: string): void {
    if (csrPem === '') throw new FedlhsError('INVALID_ARGUMENT', 'certificate_signing_request: this coordinator issues node certificates and needs one at enrolment', { details: { field: 'certificate_signing_request' } });
    verifyCsr(csrPem);
    this.authority.checkCanIssue();
  }

  /**
   * Ends a long call (the Session) when the certificate it came with stops being accepted:
   * `onRefused` gets the refusal (CREDENTIAL_INVALID naming the serial and why) at the
   * certificate's notAfter, or tls.supersededGraceSeconds after it is superseded by a renewed
   * certificate, whichever is first (revocation ends calls through the node directory), and the
   * call's connection is closed gracefully (GOAWAY). Returns the function that stops watching
   * (call it when the call ends). Calls are checked when they start (checkCall); a stream would
   * otherwise run on a certificate that was replaced or has expired. The caller should end the
   * stream UNAVAILABLE, not UNAUTHENTICATED: agents take UNAUTHENTICATED as a revoked credential
   * and stop, while this agent may hold a renewed certificate; its reconnection presents that
   * one, or is refused UNAUTHENTICATED if it has none.
   */
  watchCall(call: CallWithAuthContext, onRefused: (err: FedlhsError) => void): () => void {
    const peer = call.getAuthContext?.()?.sslPeerCertificate;
    if (peer === undefined || this.ledger === undefined) return () => undefined;
    const serial = peer.serialNumber;
    const notAfter = Date.parse(peer.valid_to);
    let timer: NodeJS.Timeout | undefined;
    let due = Number.isNaN(notAfter) ? Infinity : notAfter;
    let why: () => FedlhsError = () =>
      this.refuse('expired', `the client certificate (serial ${serial}) of this session expired on ${new Date(notAfter).toISOString()}: the session ends; agents renew at two thirds of its lifetime and reconnect with the renewed certificate`);
    let stopped = false;
    let unsubscribe = (): void => undefined;
    const stop = (): void => {
      stopped = true;
      clearTimeout(timer);
      unsubscribe();
    };
    const arm = (): void => {
      clearTimeout(timer);
      if (stopped || due === Infinity) return;
      // setTimeout holds at most 2^31-1 ms (24.8 days): longer waits re-arm. Never called back
      // synchronously: the caller is still setting its stream up.
      const left = due - this.authority.now();
      timer = setTimeout(() => {
        if (stopped) return;
        if (due - this.authority.now() > 0) return arm();
        stop();
        // The stream's connection too: the agent's next stream then opens a connection that
        // presents its newest certificate.
        this.drain(call);
        onRefused(why());
      }, Math.min(Math.max(left, 0), 2_147_483_647));
      timer.unref();
    };
    unsubscribe = this.ledger.onSuperseded(serial, (at) => {
      const ends = at + this.graceMs;
      if (ends >= due) return;
      due = ends;
      why = () => this.refuse('superseded', `the client certificate (serial ${serial}) of this session was superseded on ${new Date(at).toISOString()} by a renewed one, and tls.supersededGraceSeconds (${this.graceMs / 1000} s) has passed: the session ends; the agent reconnects with its renewed certificate`);
      arm();
    });
    arm();
    return stop;
  }

  /** The ledger of a bound instance (tests). */
  get records(): CertificateLedger | undefined {
    return this.ledger;
  }

  /** Warns (ca.expiring, at most once a day) when the CA is within CA_WARN_MS of the last day it can issue. */
  warnIfExpiring(): void {
    const now = this.authority.now();
    const { lastIssue, warn } = this.authority.expiry(now);
    if (!warn || now - this.lastExpiryWarning < DAY_MS) return;
    this.lastExpiryWarning = now;
    this.log.warn(
      { event: 'ca.expiring', notAfter: new Date(this.authority.notAfter).toISOString(), lastIssue: new Date(lastIssue).toISOString(), fingerprint: this.authority.fingerprint },
      `the node CA certificate expires on ${new Date(this.authority.notAfter).toISOString()}: from ${new Date(lastIssue).toISOString()} it cannot issue or renew node certificates (NODE_CA_EXPIRED); renew the CA before then`,
    );
  }

  private refuse(reason: RefusalReason, message: string): FedlhsError {
    this.refusals?.inc({ reason });
    return certificateRefused(reason, message);
  }

  /**
   * Closes the call's HTTP/2 connection gracefully (GOAWAY: calls open on it finish, new ones
   * open a connection, which presents the agent's newest certificate). grpc-js has no public way
   * to reach a call's session; if its internals change, this warns once and the superseded
   * certificate is refused after the grace instead.
   */
  private drain(call: CallWithAuthContext): void {
    const session = http2SessionOf(call);
    if (session !== undefined) {
      if (!session.closed) session.close();
      return;
    }
    if (this.drainWarned) return;
    this.drainWarned = true;
    this.log.warn({ event: 'node.certificate_drain_unavailable' }, 'cannot reach the HTTP/2 session of a gRPC call (grpc-js internals changed): agents keep connections with superseded certificates, which are refused once tls.supersededGraceSeconds has passed');
  }
}

/**
 * The HTTP/2 session of a grpc-js server call: the handler's call → its interceptor chain → the
 * base call's stream (grpc-js private fields, 1.10-1.14); undefined if a grpc-js version lays
 * them out otherwise (drain.test.ts, against a real grpc-js server, fails then).
 */
export function http2SessionOf(call: unknown): { closed: boolean; close(): void } | undefined {
  let c = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && typeof c === 'object' && c !== null; depth++) {
    const session = (c as { stream?: { session?: { closed: boolean; close(): void } } }).stream?.session;
    if (session !== undefined && typeof session.close === 'function') return session;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

const registry = new WeakMap<object, NodeCertificates>();

/**
 * Makes `certificates` the node certificates of the server serving `coordinator`
 * (startGrpcServer; ha-app.ts at each takeover), bound to the coordinator's store and metrics.
 */
export function useNodeCertificates(coordinator: object, certificates: NodeCertificates): void {
  const c = coordinator as { store?: CoordinatorStore; metrics?: { registry?: Registry } };
  registry.set(coordinator, c.store === undefined ? certificates : certificates.bind(c.store, c.metrics?.registry));
}

/** The node certificates of a coordinator's gRPC server, if it issues them. */
export function nodeCertificatesOf(coordinator: object): NodeCertificates | undefined {
  return registry.get(coordinator);
}
