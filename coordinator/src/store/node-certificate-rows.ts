import type { NodeCaRecord, NodeCertificateRecord } from './records.js';
import type { Row } from './rows.js';

/**
 * The node certificate tables (migration: SQLite 12, PostgreSQL 10) as records, for both stores:
 * node_certificates (every serial issued) and node_ca (the CA certificate, one row).
 */

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A node_certificates row as a record. */
export function nodeCertificate(r: Row): NodeCertificateRecord {
  return {
    serial: String(r['serial']), nodeId: String(r['node_id']), issuedAt: num(r['issued_at']), notAfter: num(r['not_after']),
    supersededAt: numOrNull(r['superseded_at']), revokedAt: numOrNull(r['revoked_at']),
  };
}

/** The node_ca row as a record. */
export function nodeCa(r: Row): NodeCaRecord {
  return { fingerprint: String(r['fingerprint']), certificatePem: String(r['certificate_pem']), recordedAt: num(r['recorded_at']) };
}

/** What recording a newly issued certificate needs (it starts neither superseded nor revoked). */
export type NewNodeCertificate = Pick<NodeCertificateRecord, 'serial' | 'nodeId' | 'issuedAt' | 'notAfter'>;
