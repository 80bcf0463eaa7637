import type pg from 'pg';
import type { AdminActionRecord, NodeCaRecord, NodeCertificateRecord } from '../records.js';
import { nodeCa, nodeCertificate, type NewNodeCertificate } from '../node-certificate-rows.js';
import { auditPgOp } from './audit-chain.js';
import { exec, stmt } from './statement.js';

const SQL = {
  insert: stmt('node_cert_insert', `INSERT INTO node_certificates (serial, node_id, issued_at, not_after, superseded_at, revoked_at) VALUES ($1,$2,$3,$4,NULL,(SELECT revoked_at FROM nodes WHERE id = $2))`),
  supersede: stmt('node_cert_supersede', `UPDATE node_certificates SET superseded_at = $1 WHERE node_id = $2 AND issued_at < $3 AND superseded_at IS NULL`),
  revokeAll: stmt('node_cert_revoke_all', `UPDATE node_certificates SET revoked_at = $1 WHERE node_id = $2 AND revoked_at IS NULL`),
  list: stmt('node_cert_list', `SELECT * FROM node_certificates WHERE not_after > $1 ORDER BY issued_at, serial`),
  recordCa: stmt('node_ca_record', `INSERT INTO node_ca (id, fingerprint, certificate_pem, recorded_at) VALUES (1,$1,$2,$3) ON CONFLICT (id) DO NOTHING`),
  getCa: stmt('node_ca_get', `SELECT * FROM node_ca WHERE id = 1`),
  lockCa: stmt('node_ca_lock', `SELECT * FROM node_ca WHERE id = 1 FOR UPDATE`),
  deleteCa: stmt('node_ca_delete', `DELETE FROM node_ca WHERE id = 1 AND fingerprint = $1`),
  adminAction: stmt('node_ca_admin_action', `INSERT INTO admin_actions (at, operator, action, target, detail) VALUES ($1,$2,$3,$4,$5)`),
};

/** PostgreSQL statements of the node certificate tables (migration 10); writes run inside the caller's unit. */
export const pgNodeCertificates = {
  /** A certificate of a node revoked meanwhile (a renewal racing the revocation) is recorded revoked with it. */
  async insert(client: pg.ClientBase, c: NewNodeCertificate): Promise<void> {
    await exec(client, SQL.insert, [c.serial, c.nodeId, c.issuedAt, c.notAfter]);
  },
  async supersede(client: pg.ClientBase, nodeId: string, before: number, at: number): Promise<number> {
    return (await exec(client, SQL.supersede, [at, nodeId, before])).rowCount ?? 0;
  },
  /** With the node's revocation (PostgresStore.revokeNode). */
  async revokeAll(client: pg.ClientBase, nodeId: string, at: number): Promise<void> {
    await exec(client, SQL.revokeAll, [at, nodeId]);
  },
  async list(db: pg.ClientBase | pg.Pool, notExpiredAt: number): Promise<NodeCertificateRecord[]> {
    return (await exec(db, SQL.list, [notExpiredAt])).rows.map(nodeCertificate);
  },
  async recordCa(client: pg.ClientBase, ca: NodeCaRecord): Promise<NodeCaRecord> {
    await exec(client, SQL.recordCa, [ca.fingerprint, ca.certificatePem, ca.recordedAt]);
    return nodeCa((await exec(client, SQL.getCa)).rows[0]!);
  },
  /** The recorded CA, locked until the caller's transaction ends (ca reset). */
  async lockCa(client: pg.ClientBase): Promise<NodeCaRecord | undefined> {
    const r = (await exec(client, SQL.lockCa)).rows[0];
    return r === undefined ? undefined : nodeCa(r);
  },
  /** Clears the recorded CA if it is `fingerprint`, with the audited admin action `a` (in the caller's transaction). */
  async resetCa(client: pg.ClientBase, fingerprint: string, a: AdminActionRecord): Promise<boolean> {
    const cleared = ((await exec(client, SQL.deleteCa, [fingerprint])).rowCount ?? 0) === 1;
    if (!cleared) return false;
    await exec(client, SQL.adminAction, [a.at, a.operator, a.action, a.target, a.detail]);
    await auditPgOp(client, { op: 'admin.action', a });
    return true;
  },
  async getCa(db: pg.ClientBase | pg.Pool): Promise<NodeCaRecord | undefined> {
    const r = (await exec(db, SQL.getCa)).rows[0];
    return r === undefined ? undefined : nodeCa(r);
  },
};
