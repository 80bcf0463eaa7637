import type pg from 'pg';
import { FedlhsError } from '@fedlhs/core';
import { aliasContent, aliasRef, AUDITED, auditedContent, aliasRowContent, releaseRef, type AuditRow } from '../../audit/audited-rows.js';
import { entryValues, nextEntry, type AuditKind, type ChainHead } from '../../audit/chain.js';
import type { WriteOp } from '../write-ops.js';
import { exec, stmt } from './statement.js';

/**
 * The audit chain on PostgreSQL (audit/chain.ts). Entries are appended inside the unit that
 * writes the audited row. Every append first locks the one row of `audit_head` (SELECT … FOR
 * UPDATE), so coordinators writing to the same database (active and standby) queue there and
 * can never fork the chain; the lock is held to COMMIT (or released with a rolled-back unit's
 * savepoint, which takes its entries with it).
 */

const SQL = {
  lockHead: stmt('audit_lock_head', `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`),
  insert: stmt('audit_insert', `INSERT INTO audit_chain (seq, at, kind, ref, digest, content, prev, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`),
  setHead: stmt('audit_set_head', `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`),
  contribution: stmt('audit_contribution', `SELECT *, CAST(id AS TEXT) AS audit_ref FROM contributions WHERE id = currval(pg_get_serial_sequence('contributions', 'id'))`),
  admin: stmt('audit_admin', `SELECT *, CAST(id AS TEXT) AS audit_ref FROM admin_actions WHERE id = currval(pg_get_serial_sequence('admin_actions', 'id'))`),
  release: stmt('audit_release', `SELECT * FROM releases WHERE study_name = $1 AND version = $2`),
  node: stmt('audit_node', `SELECT *, id AS audit_ref FROM nodes WHERE id = $1`),
} as const;

async function lockedHead(client: pg.ClientBase): Promise<ChainHead> {
  const h = (await exec(client, SQL.lockHead)).rows[0];
  if (h === undefined) throw new FedlhsError('INTERNAL', 'audit_head has no row: the audit chain migration did not run');
  return { seq: Number(h.seq), hash: h.hash as string };
}

async function append(client: pg.ClientBase, kind: AuditKind, ref: string, at: number, content: object, keepContent = false): Promise<void> {
  const e = nextEntry(await lockedHead(client), { at, kind, ref, content, keepContent });
  await exec(client, SQL.insert, entryValues(e));
  await exec(client, SQL.setHead, [e.seq, e.hash]);
}

async function appendRow(client: pg.ClientBase, kind: Exclude<AuditKind, 'release.alias'>, row: AuditRow | undefined): Promise<void> {
  if (row === undefined) throw new FedlhsError('INTERNAL', `the audited ${kind} row just written cannot be read back`);
  await append(client, kind, String(row.audit_ref), Number(row[AUDITED[kind].atColumn]), auditedContent(kind, row));
}

/**
 * Chains what `op` just wrote, if it is audited; call it right after the op's statements.
 * `changed`: the row count of a node.revoke's UPDATE (0: the node was revoked already).
 */
export async function auditPgOp(client: pg.ClientBase, op: WriteOp, changed?: number): Promise<void> {
  switch (op.op) {
    case 'contribution.insert':
      await appendRow(client, 'contribution', (await exec(client, SQL.contribution)).rows[0]);
      return;
    case 'admin.action':
      await appendRow(client, 'admin', (await exec(client, SQL.admin)).rows[0]);
      return;
    case 'release.insert': {
      const row = (await exec(client, SQL.release, [op.r.studyName, op.r.version])).rows[0];
      await appendRow(client, 'release', row === undefined ? undefined : { ...row, audit_ref: releaseRef(op.r.studyName, op.r.version) });
      return;
    }
    case 'release.alias':
      await append(client, 'release.alias', aliasRef(op.studyName, op.alias), op.at, aliasContent(op), true);
      return;
    case 'node.revoke':
      if (changed !== 1) return;
      await appendRow(client, 'node.revoke', (await exec(client, SQL.node, [op.id])).rows[0]);
      return;
    default:
      return;
  }
}

const PAGE = 5000;

/**
 * Chains the audited rows written before the chain existed, once (audit_head.backfilled), in
 * the order of backfillSqliteAuditChain; in one transaction holding the head lock, so two
 * coordinators opening together chain them once. Returns how many it chained.
 */
export async function backfillPgAuditChain(client: pg.ClientBase): Promise<number> {
  await client.query('BEGIN');
  try {
    const h = (await client.query(`SELECT backfilled FROM audit_head WHERE id = 1 FOR UPDATE`)).rows[0] as AuditRow | undefined;
    let n = 0;
    if (h !== undefined && Number(h.backfilled) !== 1) {
      for (const kind of ['admin', 'contribution', 'release', 'node.revoke'] as const) {
        const t = AUDITED[kind];
        for (let offset = 0; ; offset += PAGE) {
          const rows = (await client.query(`SELECT *, ${t.refSql} AS audit_ref FROM ${t.table} ${t.where === undefined ? '' : `WHERE ${t.where}`} ORDER BY ${t.orderSql} LIMIT $1 OFFSET $2`, [PAGE, offset])).rows as AuditRow[];
          for (const row of rows) await appendRow(client, kind, row);
          n += rows.length;
          if (rows.length < PAGE) break;
        }
      }
      for (const row of (await client.query(`SELECT * FROM release_aliases ORDER BY set_at, study_name, alias`)).rows as AuditRow[]) {
        await append(client, 'release.alias', aliasRef(row.study_name as string, row.alias as string), Number(row.set_at), aliasRowContent(row), true);
        n++;
      }
      await client.query(`UPDATE audit_head SET backfilled = 1 WHERE id = 1`);
    }
    await client.query('COMMIT');
    return n;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
