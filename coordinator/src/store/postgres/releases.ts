import type pg from 'pg';
import type { ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord } from '../records.js';
import { aliasNotFound, filesJson, releaseNotFound, releaseTaken, type ReleaseOp } from '../release-errors.js';
import type { ReleaseFilesRow } from '../blob-references.js';
import { release, releaseAlias, releasePerformance, type Row } from '../rows.js';
import type { WriteResult } from '../write-ops.js';
import { exec, type Statement } from './statement.js';

const stmt = (name: string, text: string): Statement => ({ name: `fedlhs_rel_${name}`, text });

const SQL = {
  // DO NOTHING on either key (version, or a second release of the study; also a racing
  // coordinator's row), then say which.
  insert: stmt(
    'insert',
    `INSERT INTO releases (study_name, version, study_id, round, manifest_sha256, envelope, files, created_at, parent_version)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING`,
  ),
  exists: stmt('exists', `SELECT 1 FROM releases WHERE study_name = $1 AND version = $2`),
  deleteAlias: stmt('delete_alias', `DELETE FROM release_aliases WHERE study_name = $1 AND alias = $2`),
  setAlias: stmt(
    'set_alias',
    `INSERT INTO release_aliases (study_name, alias, version, set_by, set_at) VALUES ($1,$2,$3,$4,$5)
     ON CONFLICT (study_name, alias) DO UPDATE SET version = excluded.version, set_by = excluded.set_by, set_at = excluded.set_at`,
  ),
  performance: stmt(
    'performance',
    `INSERT INTO release_performance (study_name, version, node_id, export_fingerprint, performance, measured_at, received_at) VALUES ($1,$2,$3,$4,$5,$6,$7)
     ON CONFLICT (study_name, version, node_id, export_fingerprint) DO NOTHING`,
  ),
} as const;

/** Applies a release op on `client`, inside the caller's transaction; the semantics of store/sqlite/releases.ts. */
export async function applyReleaseOp(client: pg.ClientBase, op: ReleaseOp, result: WriteResult): Promise<void> {
  switch (op.op) {
    case 'release.insert': {
      const r = op.r;
      const res = await exec(client, SQL.insert, [r.studyName, r.version, r.studyId, r.round, r.manifestSha256, r.envelope, filesJson(r), r.createdAt, r.parentVersion]);
      if (res.rowCount === 1) return;
      throw releaseTaken(r, (await exec(client, SQL.exists, [r.studyName, r.version])).rowCount === 1);
    }
    case 'release.alias': {
      if (op.version === null) {
        if ((await exec(client, SQL.deleteAlias, [op.studyName, op.alias])).rowCount !== 1) throw aliasNotFound(op.studyName, op.alias);
        return;
      }
      if ((await exec(client, SQL.exists, [op.studyName, op.version])).rowCount !== 1) throw releaseNotFound(op.studyName, op.version);
      await exec(client, SQL.setAlias, [op.studyName, op.alias, op.version, op.setBy, op.at]);
      return;
    }
    case 'release.performance': {
      const p = op.p;
      const res = await exec(client, SQL.performance, [p.studyName, p.version, p.nodeId, p.exportFingerprint, p.performance, p.measuredAt, p.receivedAt]);
      result.duplicates = (result.duplicates ?? 0) + (res.rowCount === 0 ? 1 : 0);
      return;
    }
  }
}

/** The release reads (named statements run on the read pool by PostgresStore). */
export const RELEASE_READ = {
  listAll: stmt('list_all', `SELECT * FROM releases ORDER BY created_at DESC, study_name, version DESC LIMIT $1`),
  listOf: stmt('list_of', `SELECT * FROM releases WHERE study_name = $1 ORDER BY version DESC LIMIT $2`),
  get: stmt('get', `SELECT * FROM releases WHERE study_name = $1 AND version = $2`),
  ofStudy: stmt('of_study', `SELECT * FROM releases WHERE study_id = $1`),
  aliasesAll: stmt('aliases_all', `SELECT * FROM release_aliases ORDER BY study_name, alias`),
  aliasesOf: stmt('aliases_of', `SELECT * FROM release_aliases WHERE study_name = $1 ORDER BY alias`),
  performance: stmt('performance_of', `SELECT * FROM release_performance WHERE study_name = $1 AND version = $2 ORDER BY received_at, id`),
  files: stmt('files', `SELECT study_name, version, files FROM releases`),
} as const;

/** Row mappers of the reads above. */
export const releaseRows = {
  releases: (found: Row[]): ReleaseRecord[] => found.map(release),
  aliases: (found: Row[]): ReleaseAliasRecord[] => found.map(releaseAlias),
  performance: (found: Row[]): ReleasePerformanceRecord[] => found.map(releasePerformance),
  files: (found: Row[]): ReleaseFilesRow[] => found.map((r) => ({ studyName: r.study_name as string, version: r.version as number, files: r.files as string })),
};
