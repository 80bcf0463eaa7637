import type Database from 'better-sqlite3';
import { FedlhsError } from '@fedlhs/core';
import { aliasContent, aliasRef, AUDITED, auditedContent, aliasRowContent, releaseRef, type AuditRow } from '../../audit/audited-rows.js';
import { entryValues, nextEntry, type AuditKind, type ChainHead } from '../../audit/chain.js';
import type { WriteOp } from '../write-ops.js';
import type { SqliteRunner } from './releases.js';

/**
 * The audit chain on SQLite (audit/chain.ts). Entries are appended inside the unit that writes
 * the audited row, so a unit rolled back takes its entries with it; SQLite has one writer (the
 * group committer's connection, BEGIN IMMEDIATE), so two appends can never fork the chain.
 */

const INSERT = `INSERT INTO audit_chain (seq, at, kind, ref, digest, content, prev, hash) VALUES (?,?,?,?,?,?,?,?)`;

function head(db: SqliteRunner): ChainHead {
  const h = db.get(`SELECT seq, hash FROM audit_head WHERE id = 1`);
  if (h === undefined) throw new FedlhsError('INTERNAL', 'audit_head has no row: the audit chain migration did not run');
  return { seq: h.seq as number, hash: h.hash as string };
}

function append(db: SqliteRunner, kind: AuditKind, ref: string, at: number, content: object, keepContent = false): void {
  const e = nextEntry(head(db), { at, kind, ref, content, keepContent });
  db.run(INSERT, ...entryValues(e));
  db.run(`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.seq, e.hash);
}

function appendRow(db: SqliteRunner, kind: Exclude<AuditKind, 'release.alias'>, row: AuditRow | undefined): void {
  if (row === undefined) throw new FedlhsError('INTERNAL', `the audited ${kind} row just written cannot be read back`);
  const t = AUDITED[kind];
  append(db, kind, String(row.audit_ref), Number(row[t.atColumn]), auditedContent(kind, row));
}

/**
 * Chains what `op` just wrote, if it is audited; call it right after the op's statements (it
 * reads last_insert_rowid() and changes()).
 */
export function auditSqliteOp(db: SqliteRunner, op: WriteOp): void {
  switch (op.op) {
    case 'contribution.insert':
      appendRow(db, 'contribution', db.get(`SELECT *, CAST(id AS TEXT) AS audit_ref FROM contributions WHERE id = last_insert_rowid()`));
      return;
    case 'admin.action':
      appendRow(db, 'admin', db.get(`SELECT *, CAST(id AS TEXT) AS audit_ref FROM admin_actions WHERE id = last_insert_rowid()`));
      return;
    case 'release.insert': {
      const row = db.get(`SELECT * FROM releases WHERE study_name = ? AND version = ?`, op.r.studyName, op.r.version);
      appendRow(db, 'release', row === undefined ? undefined : { ...row, audit_ref: releaseRef(op.r.studyName, op.r.version) });
      return;
    }
    case 'release.alias':
      append(db, 'release.alias', aliasRef(op.studyName, op.alias), op.at, aliasContent(op), true);
      return;
    case 'node.revoke':
      // Revoking a revoked node changes nothing and is not a revocation.
      if ((db.get(`SELECT changes() AS n`)?.n as number) !== 1) return;
      appendRow(db, 'node.revoke', db.get(`SELECT *, id AS audit_ref FROM nodes WHERE id = ?`, op.id));
      return;
    default:
      return;
  }
}

const PAGE = 5000;

/**
 * Chains the audited rows written before the chain existed (once: audit_head.backfilled), in
 * this order: admin actions by id, contributions by id, releases by (created_at, study_name,
 * version), revoked nodes by (revoked_at, id), then the current aliases by (set_at, study_name,
 * alias). Runs right after the migrations, in one transaction; returns how many it chained.
 */
export function backfillSqliteAuditChain(db: Database.Database): number {
  const runner: SqliteRunner = {
    all: (sql, ...p) => db.prepare(sql).all(...p) as AuditRow[],
    get: (sql, ...p) => db.prepare(sql).get(...p) as AuditRow | undefined,
    run: (sql, ...p) => db.prepare(sql).run(...p),
  };
  return db.transaction(() => {
    const h = runner.get(`SELECT backfilled FROM audit_head WHERE id = 1`);
    if (h === undefined || h.backfilled === 1) return 0;
    let n = 0;
    for (const kind of ['admin', 'contribution', 'release', 'node.revoke'] as const) {
      const t = AUDITED[kind];
      for (let offset = 0; ; offset += PAGE) {
        const rows = runner.all(`SELECT *, ${t.refSql} AS audit_ref FROM ${t.table} ${t.where === undefined ? '' : `WHERE ${t.where}`} ORDER BY ${t.orderSql} LIMIT ? OFFSET ?`, PAGE, offset);
        for (const row of rows) appendRow(runner, kind, row);
        n += rows.length;
        if (rows.length < PAGE) break;
      }
    }
    for (const row of runner.all(`SELECT * FROM release_aliases ORDER BY set_at, study_name, alias`)) {
      append(runner, 'release.alias', aliasRef(row.study_name as string, row.alias as string), row.set_at as number, aliasRowContent(row), true);
      n++;
    }
    runner.run(`UPDATE audit_head SET backfilled = 1 WHERE id = 1`);
    return n;
  }).immediate();
}
