import type Database from 'better-sqlite3';
import type { ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord } from '../records.js';
import { aliasNotFound, filesJson, releaseNotFound, releaseTaken, type ReleaseOp } from '../release-errors.js';
import type { ReleaseFilesRow } from '../blob-references.js';
import { release, releaseAlias, releasePerformance, type Row } from '../rows.js';
import type { WriteResult } from '../write-ops.js';

/** The statement helpers of SqliteStore (cached prepared statements), as the release code uses them. */
export interface SqliteRunner {
  all(sql: string, ...params: unknown[]): Row[];
  get(sql: string, ...params: unknown[]): Row | undefined;
  run(sql: string, ...params: unknown[]): Database.RunResult;
}

/** Applies a release op inside the caller's unit (SqliteStore.apply); the semantics of write-ops.ts. */
export function applyReleaseOp(db: SqliteRunner, op: ReleaseOp, result: WriteResult): void {
  switch (op.op) {
    case 'release.insert': {
      const r = op.r;
      // DO NOTHING on either key (version, or a second release of the study), then say which.
      const res = db.run(
        `INSERT INTO releases (study_name, version, study_id, round, manifest_sha256, envelope, files, created_at, parent_version) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
        r.studyName, r.version, r.studyId, r.round, r.manifestSha256, r.envelope, filesJson(r), r.createdAt, r.parentVersion,
      );
      if (res.changes === 1) return;
      throw releaseTaken(r, db.get(`SELECT 1 FROM releases WHERE study_name = ? AND version = ?`, r.studyName, r.version) !== undefined);
    }
    case 'release.alias': {
      if (op.version === null) {
        if (db.run(`DELETE FROM release_aliases WHERE study_name = ? AND alias = ?`, op.studyName, op.alias).changes !== 1) throw aliasNotFound(op.studyName, op.alias);
        return;
      }
      if (db.get(`SELECT 1 FROM releases WHERE study_name = ? AND version = ?`, op.studyName, op.version) === undefined) throw releaseNotFound(op.studyName, op.version);
      db.run(
        `INSERT INTO release_aliases (study_name, alias, version, set_by, set_at) VALUES (?,?,?,?,?)
         ON CONFLICT (study_name, alias) DO UPDATE SET version = excluded.version, set_by = excluded.set_by, set_at = excluded.set_at`,
        op.studyName, op.alias, op.version, op.setBy, op.at,
      );
      return;
    }
    case 'release.performance': {
      const p = op.p;
      const res = db.run(
        `INSERT INTO release_performance (study_name, version, node_id, export_fingerprint, performance, measured_at, received_at) VALUES (?,?,?,?,?,?,?)
         ON CONFLICT (study_name, version, node_id, export_fingerprint) DO NOTHING`,
        p.studyName, p.version, p.nodeId, p.exportFingerprint, p.performance, p.measuredAt, p.receivedAt,
      );
      result.duplicates = (result.duplicates ?? 0) + (res.changes === 0 ? 1 : 0);
      return;
    }
  }
}

/** The release reads of the CoordinatorStore interface, on SQLite. */
export const sqliteReleaseReads = {
  list(db: SqliteRunner, studyName: string | undefined, limit: number): ReleaseRecord[] {
    return (
      studyName === undefined
        ? db.all(`SELECT * FROM releases ORDER BY created_at DESC, study_name, version DESC LIMIT ?`, limit)
        : db.all(`SELECT * FROM releases WHERE study_name = ? ORDER BY version DESC LIMIT ?`, studyName, limit)
    ).map(release);
  },
  get(db: SqliteRunner, studyName: string, version: number): ReleaseRecord | undefined {
    const r = db.get(`SELECT * FROM releases WHERE study_name = ? AND version = ?`, studyName, version);
    return r === undefined ? undefined : release(r);
  },
  ofStudy(db: SqliteRunner, studyId: string): ReleaseRecord | undefined {
    const r = db.get(`SELECT * FROM releases WHERE study_id = ?`, studyId);
    return r === undefined ? undefined : release(r);
  },
  aliases(db: SqliteRunner, studyName: string | undefined): ReleaseAliasRecord[] {
    return (
      studyName === undefined
        ? db.all(`SELECT * FROM release_aliases ORDER BY study_name, alias`)
        : db.all(`SELECT * FROM release_aliases WHERE study_name = ? ORDER BY alias`, studyName)
    ).map(releaseAlias);
  },
  performance(db: SqliteRunner, studyName: string, version: number): ReleasePerformanceRecord[] {
    return db.all(`SELECT * FROM release_performance WHERE study_name = ? AND version = ? ORDER BY received_at, id`, studyName, version).map(releasePerformance);
  },
  files(db: SqliteRunner): ReleaseFilesRow[] {
    return db.all(`SELECT study_name, version, files FROM releases`).map((r) => ({ studyName: r.study_name as string, version: r.version as number, files: r.files as string }));
  },
};
