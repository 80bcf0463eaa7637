import type { NodeCaRecord, NodeCertificateRecord } from '../records.js';
import { nodeCa, nodeCertificate, type NewNodeCertificate } from '../node-certificate-rows.js';
import type { SqliteRunner } from './releases.js';

/** SQLite statements of the node certificate tables (migration 12); each runs inside the caller's unit. */
export const sqliteNodeCertificates = {
  /** A certificate of a node revoked meanwhile (a renewal racing the revocation) is recorded revoked with it. */
  insert(db: SqliteRunner, c: NewNodeCertificate): void {
    db.run(
      `INSERT INTO node_certificates (serial, node_id, issued_at, not_after, superseded_at, revoked_at) VALUES (?,?,?,?,NULL,(SELECT revoked_at FROM nodes WHERE id = ?))`,
      c.serial, c.nodeId, c.issuedAt, c.notAfter, c.nodeId,
    );
  },
  supersede(db: SqliteRunner, nodeId: string, before: number, at: number): number {
    return db.run(`UPDATE node_certificates SET superseded_at = ? WHERE node_id = ? AND issued_at < ? AND superseded_at IS NULL`, at, nodeId, before).changes;
  },
  /** With the node's revocation (SqliteStore.revokeNode). */
  revokeAll(db: SqliteRunner, nodeId: string, at: number): void {
    db.run(`UPDATE node_certificates SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL`, at, nodeId);
  },
  list(db: SqliteRunner, notExpiredAt: number): NodeCertificateRecord[] {
    return db.all(`SELECT * FROM node_certificates WHERE not_after > ? ORDER BY issued_at, serial`, notExpiredAt).map(nodeCertificate);
  },
  recordCa(db: SqliteRunner, ca: NodeCaRecord): NodeCaRecord {
    db.run(`INSERT INTO node_ca (id, fingerprint, certificate_pem, recorded_at) VALUES (1,?,?,?) ON CONFLICT (id) DO NOTHING`, ca.fingerprint, ca.certificatePem, ca.recordedAt);
    return nodeCa(db.get(`SELECT * FROM node_ca WHERE id = 1`)!);
  },
  getCa(db: SqliteRunner): NodeCaRecord | undefined {
    const r = db.get(`SELECT * FROM node_ca WHERE id = 1`);
    return r === undefined ? undefined : nodeCa(r);
  },
};
