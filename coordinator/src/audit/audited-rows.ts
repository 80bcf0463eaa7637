import type { AuditKind } from './chain.js';

/** A database row as both stores return it (column name → value). */
export type AuditRow = Record<string, unknown>;

type ColumnType = 'int' | 'real' | 'text' | 'bool';

/**
 * Where each row kind of the chain lives and which of its columns the digest covers: the columns
 * that never change once the event happened (a node's last-seen time moves; its revocation does
 * not). Values are normalised (BIGINT and INTEGER to numbers, BOOLEAN and 0/1 to booleans) so
 * that SQLite and PostgreSQL rows of the same content have the same digest.
 */
export interface AuditedTable {
  table: string;
  /** SQL for the ref of a row (the same text on SQLite and PostgreSQL). */
  refSql: string;
  /** Rows of the table that are audited (every one when absent). */
  where?: string;
  /** Order of pre-chain rows when a migration chains them. */
  orderSql: string;
  /** The row's own time, for the entry's `at`. */
  atColumn: string;
  columns: Readonly<Record<string, ColumnType>>;
}

/** The audited tables of each row kind (release.alias entries carry their content instead). */
export const AUDITED: Readonly<Record<Exclude<AuditKind, 'release.alias'>, AuditedTable>> = {
  admin: {
    table: 'admin_actions', refSql: 'CAST(id AS TEXT)', orderSql: 'id', atColumn: 'at',
    columns: { id: 'int', at: 'int', operator: 'text', action: 'text', target: 'text', detail: 'text' },
  },
  contribution: {
    table: 'contributions', refSql: 'CAST(id AS TEXT)', orderSql: 'id', atColumn: 'received_at',
    columns: {
      id: 'int', task_id: 'text', study_id: 'text', round: 'int', attempt: 'int', node_id: 'text', num_examples: 'int', sha256: 'text', bytes: 'int',
      accepted: 'bool', reason_code: 'text', reason: 'text', received_at: 'int', delta_norm: 'real',
    },
  },
  release: {
    table: 'releases', refSql: `study_name || ' v' || CAST(version AS TEXT)`, orderSql: 'created_at, study_name, version', atColumn: 'created_at',
    columns: { study_name: 'text', version: 'int', study_id: 'text', round: 'int', manifest_sha256: 'text', envelope: 'text', files: 'text', created_at: 'int', parent_version: 'int' },
  },
  'node.revoke': {
    table: 'nodes', refSql: 'id', where: 'revoked_at IS NOT NULL', orderSql: 'revoked_at, id', atColumn: 'revoked_at',
    columns: { id: 'text', site_name: 'text', credential_hash: 'text', created_at: 'int', revoked_at: 'int' },
  },
};

/** The ref of a release row (as AUDITED.release.refSql computes it). */
export const releaseRef = (studyName: string, version: number): string => `${studyName} v${version}`;
/** The ref of an alias (its entries' ref). */
export const aliasRef = (studyName: string, alias: string): string => `${studyName} ${alias}`;

function normalise(type: ColumnType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'int':
    case 'real':
      return typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Number(v) : v;
    case 'bool':
      return v === true || v === 1 || v === '1';
    case 'text':
      return typeof v === 'string' ? v : String(v);
  }
}

/** The content a row kind's digest covers, from a row of its table. */
export function auditedContent(kind: Exclude<AuditKind, 'release.alias'>, row: AuditRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(AUDITED[kind].columns)) out[name] = normalise(type, row[name]);
  return out;
}

/** An alias move as its entry keeps it (version null: the alias was removed). */
export function aliasContent(a: { studyName: string; alias: string; version: number | null; setBy: string; at: number }): Record<string, unknown> {
  return { study_name: a.studyName, alias: a.alias, version: a.version, set_by: a.setBy, set_at: a.at };
}

/** The alias content of a release_aliases row, to compare with the newest move's. */
export function aliasRowContent(row: AuditRow): Record<string, unknown> {
  return { study_name: row.study_name, alias: row.alias, version: normalise('int', row.version), set_by: row.set_by, set_at: normalise('int', row.set_at) };
}
