import { FedlhsError } from '@fedlhs/core';
import type { CoordinatorStore, NewNodeCertificate, NodeCertificateRecord } from '../store.js';

/** What the ledger logs (a pino logger fits). */
export interface LedgerLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Why a certificate was refused (the `reason` label of fedlhs_node_certificate_refusals_total). */
export type RefusalReason = 'none' | 'wrong_node' | 'expired' | 'superseded' | 'revoked' | 'unrecorded';

const reasons = new WeakMap<object, RefusalReason>();

/** CREDENTIAL_INVALID (UNAUTHENTICATED, `details.why` 'certificate') for a refused certificate; `refusalReason` tells the kind. */
export function certificateRefused(reason: RefusalReason, message: string): FedlhsError {
  const err = new FedlhsError('CREDENTIAL_INVALID', message, { details: { why: 'certificate' } });
  reasons.set(err, reason);
  return err;
}

/** Why `err` refused a certificate, if it is a refusal of certificateRefused. */
export function refusalReason(err: unknown): RefusalReason | undefined {
  return typeof err === 'object' && err !== null ? reasons.get(err) : undefined;
}

/** A serial as Node prints it (X509Certificate.serialNumber, a TLS peer's serialNumber): upper-case hex. */
export function normalSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase();
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** A node's certificates in memory: its newest, and the older ones not superseded yet (usually none). */
interface NodeEntry {
  newest: NodeCertificateRecord;
  open: NodeCertificateRecord[];
}

/** How often memory drops expired certificates (an expired one is refused before the ledger is asked). */
const SWEEP_MS = 3_600_000;

/**
 * Every unexpired certificate the node CA issued, in memory (about 100 bytes each), kept in the
 * store (node_certificates) so that both coordinators of an active/standby pair agree: loaded
 * once per coordinator (lazily), then kept current by issuing (`record`, `recordLater`) and by the
 * calls themselves (`check`). Only one coordinator of a pair is active at a time, and a new
 * active loads the table when it takes over, so memory never lags a write of the other.
 *
 * Supersession: a node's older serials are superseded when it first presents a newer one (it
 * has its renewed certificate, and the coordinator closed the connection of the renewal so that
 * the agent's next calls present it: node-certificates.ts). A renewed certificate whose answer was
 * lost therefore does not lock the node out: its current one stays valid until it presents a
 * newer one or expires. A revoked node's serials are revoked in the store with it.
 *
 * A certificate the CA signed but the store has no row of (issued before the table existed, or
 * its enrolment record was lost in a crash) is adopted when it is newer than every serial of its
 * node on record, and refused otherwise: an older one was superseded. Concurrent first uses of
 * one such certificate share one adoption.
 *
 * Per call the work is constant per node: each node's newest certificate is indexed, and only
 * its not-yet-superseded older ones are kept in its list (emptied by the supersession).
 */
export class CertificateLedger {
  private readonly bySerial = new Map<string, NodeCertificateRecord>();
  private readonly byNode = new Map<string, NodeEntry>();
  private readonly adopting = new Map<string, Promise<NodeCertificateRecord>>();
  private readonly supersededListeners = new Map<string, Set<(at: number) => void>>();
  private loading: Promise<void> | undefined;
  private lastSweep: number;

  constructor(private readonly store: CoordinatorStore, private readonly now: () => number, private readonly log: LedgerLog) {
    this.lastSweep = now();
  }

  /** Reads the unexpired certificates once (later calls return the same promise; a failed read is retried). */
  load(): Promise<void> {
    this.loading ??= this.store.listNodeCertificates(this.now()).then(
      (rows) => {
        // A certificate recorded while the list was read is newer in memory: keep that one.
        for (const r of rows) if (!this.bySerial.has(r.serial)) this.add(r);
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
  }

  /** Records a certificate just issued; resolves once it is durable (renewal answers only then). */
  async record(c: NewNodeCertificate): Promise<void> {
    const r = { ...c, serial: normalSerial(c.serial), supersededAt: null, revokedAt: null };
    await this.store.insertNodeCertificate(r);
    if (!this.bySerial.has(r.serial)) this.add(r);
  }

  /**
   * Records a certificate just issued, in memory now and in the store in the background
   * (enrolment hands the certificate out synchronously). A failed write is logged; the node's
   * first call then adopts the certificate (it is the newest of its node).
   */
  recordLater(c: NewNodeCertificate): void {
    const r = { ...c, serial: normalSerial(c.serial), supersededAt: null, revokedAt: null };
    this.add(r);
    this.store.insertNodeCertificate(r).catch((err: unknown) => {
      this.log.error({ event: 'node.certificate_record_failed', nodeId: r.nodeId, serial: r.serial, err }, `could not record certificate ${r.serial} of ${r.nodeId}; it is adopted at its first use`);
    });
  }

  /**
   * Checks the certificate (serial, issued at, not after) a call of `nodeId` came with: refused
   * (CREDENTIAL_INVALID) if revoked, or superseded more than `graceMs` ago; adopted if unrecorded
   * but newest; the node's older serials superseded when it is newer than them. 'drain' when the
   * call may go on but its connection should be closed gracefully: the certificate is superseded
   * (within the grace) or its node has a newer one it has not presented yet.
   */
  async check(nodeId: string, presented: { serial: string; issuedAt: number; notAfter: number }, graceMs: number): Promise<'ok' | 'drain'> {
    await this.load();
    const now = this.now();
    this.sweep(now);
    const serial = normalSerial(presented.serial);
    const entry = this.bySerial.get(serial) ?? (await this.adopt(nodeId, serial, presented));
    if (entry.nodeId !== nodeId) throw certificateRefused('wrong_node', `the client certificate (serial ${serial}) was issued to ${entry.nodeId}, not ${nodeId}`);
    if (entry.revokedAt !== null) throw certificateRefused('revoked', `the client certificate (serial ${serial}) was revoked on ${iso(entry.revokedAt)}`);
    if (entry.supersededAt !== null) {
      if (now - entry.supersededAt < graceMs) return 'drain';
      throw certificateRefused('superseded', `the client certificate (serial ${serial}) was superseded on ${iso(entry.supersededAt)} by a renewed one: the agent must present its renewed certificate (or enrol again)`);
    }
    const mine = this.byNode.get(nodeId);
    if (mine === undefined || mine.newest !== entry) return 'drain';
    if (mine.open.length === 0) return 'ok';
    // In memory first, so that a concurrent call with an older serial is refused at once.
    const older = mine.open;
    mine.open = [];
    for (const c of older) c.supersededAt = now;
    try {
      await this.store.supersedeNodeCertificates(nodeId, entry.issuedAt, now);
    } catch (err) {
      // This coordinator refuses them; a coordinator taking over would not know: loud, and retried
      // by the node's next call with the new certificate.
      for (const c of older) c.supersededAt = null;
      mine.open.push(...older);
      throw err;
    }
    for (const c of older) for (const listener of this.supersededListeners.get(c.serial) ?? []) listener(now);
    return 'ok';
  }

  /**
   * How long `nodeId` must wait before it may renew again, 0 if it may now. A node renews at
   * two thirds of its certificate's lifetime (node-agent certificates.ts): presenting its newest
   * certificate, it may renew once that is `minAgeMs` old. Presenting an older one (the answer
   * of its last renewal was lost), once its newest unused one is `retryMs` old. So each renewal
   * adds at most one row per `retryMs`, never one per call.
   */
  renewalWait(nodeId: string, presentedSerial: string, minAgeMs: number, retryMs: number): number {
    const newest = this.byNode.get(nodeId)?.newest;
    if (newest === undefined) return 0;
    const age = this.now() - newest.issuedAt;
    const needed = newest.serial === normalSerial(presentedSerial) ? minAgeMs : retryMs;
    return Math.max(0, needed - age);
  }

  /**
   * Calls `listener` with the time `serial` is superseded (at once if it already is); returns
   * the function that stops it. For streams that outlive their calls' check (Session).
   */
  onSuperseded(serial: string, listener: (at: number) => void): () => void {
    const key = normalSerial(serial);
    const known = this.bySerial.get(key);
    if (known?.supersededAt != null) {
      listener(known.supersededAt);
      return () => undefined;
    }
    let set = this.supersededListeners.get(key);
    if (set === undefined) this.supersededListeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.supersededListeners.get(key) === set) this.supersededListeners.delete(key);
    };
  }

  /** Certificates of a node in memory, oldest first (tests, status). */
  certificatesOf(nodeId: string): readonly NodeCertificateRecord[] {
    const mine = this.byNode.get(nodeId);
    if (mine === undefined) return [];
    return [...this.bySerial.values()].filter((c) => c.nodeId === nodeId).sort((a, b) => a.issuedAt - b.issuedAt);
  }

  /** How many certificates a node has in its per-call list (its newest and the unsuperseded older ones). */
  openCountOf(nodeId: string): number {
    const mine = this.byNode.get(nodeId);
    return mine === undefined ? 0 : 1 + mine.open.length;
  }

  /** An unrecorded certificate of the CA: adopted if newer than every one of its node (one adoption per serial at a time). */
  private adopt(nodeId: string, serial: string, presented: { issuedAt: number; notAfter: number }): Promise<NodeCertificateRecord> {
    const inFlight = this.adopting.get(serial);
    if (inFlight !== undefined) return inFlight;
    const newest = this.byNode.get(nodeId)?.newest.issuedAt ?? -Infinity;
    if (presented.issuedAt <= newest) {
      throw certificateRefused('unrecorded', `the client certificate (serial ${serial}) is not on record and older than ${nodeId}'s newest certificate (issued ${iso(newest)}): use the renewed certificate`);
    }
    const adoption = (async () => {
      const entry: NodeCertificateRecord = { serial, nodeId, issuedAt: presented.issuedAt, notAfter: presented.notAfter, supersededAt: null, revokedAt: null };
      await this.store.insertNodeCertificate(entry);
      if (!this.bySerial.has(serial)) this.add(entry);
      this.log.warn({ event: 'node.certificate_adopted', nodeId, serial }, `certificate ${serial} of ${nodeId} was signed by the node CA but not on record (issued before the record existed, or its record was lost): recorded now`);
      return this.bySerial.get(serial) ?? entry;
    })().finally(() => this.adopting.delete(serial));
    this.adopting.set(serial, adoption);
    return adoption;
  }

  private add(r: NodeCertificateRecord): void {
    this.bySerial.set(r.serial, r);
    const mine = this.byNode.get(r.nodeId);
    if (mine === undefined) {
      this.byNode.set(r.nodeId, { newest: r, open: [] });
      return;
    }
    const older = r.issuedAt > mine.newest.issuedAt ? mine.newest : r;
    if (older === mine.newest) mine.newest = r;
    if (older.supersededAt === null) mine.open.push(older);
  }

  /** Drops expired certificates from memory, at most once per SWEEP_MS. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = now;
    for (const [serial, c] of this.bySerial) if (c.notAfter <= now) this.bySerial.delete(serial);
    for (const [nodeId, mine] of this.byNode) {
      mine.open = mine.open.filter((c) => c.notAfter > now);
      // The newest stays indexed while unexpired; once expired, an unrecorded older one could
      // not be newer anyway (it would have expired too).
      if (mine.newest.notAfter <= now && mine.open.length === 0) this.byNode.delete(nodeId);
    }
  }
}
