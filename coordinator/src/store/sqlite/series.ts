import type { PromotionRecord, SeriesRecord, SeriesRunRecord } from '../records.js';
import { promotion, series, seriesRun } from '../rows.js';
import { seriesExists, seriesNotFound, seriesRunTaken, type SeriesOp } from '../series-errors.js';
import type { SqliteRunner } from './releases.js';

/** Applies a series op inside the caller's unit (SqliteStore.apply); the semantics of write-ops.ts. */
export function applySeriesOp(db: SqliteRunner, op: SeriesOp): void {
  switch (op.op) {
    case 'series.insert': {
      const s = op.s;
      const res = db.run(
        `INSERT INTO series (name, template, template_sha256, state, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING`,
        s.name, s.template, s.templateSha256, s.state, s.createdBy, s.createdAt, s.updatedAt,
      );
      if (res.changes !== 1) throw seriesExists(s.name);
      return;
    }
    case 'series.update': {
      const res = db.run(
        `UPDATE series SET template = COALESCE(?, template), template_sha256 = COALESCE(?, template_sha256), state = COALESCE(?, state), updated_at = ? WHERE name = ?`,
        op.template?.json ?? null, op.template?.sha256 ?? null, op.state ?? null, op.at, op.name,
      );
      if (res.changes !== 1) throw seriesNotFound(op.name);
      return;
    }
    case 'series.run': {
      const r = op.r;
      if (db.get(`SELECT 1 FROM series WHERE name = ?`, r.seriesName) === undefined) throw seriesNotFound(r.seriesName);
      // Only the run number's conflict is the race; a study that is already a run fails loudly (UNIQUE).
      const res = db.run(
        `INSERT INTO series_runs (series_name, run, study_id, scheduled_at, started_at, trigger, champion_version, template) VALUES (?,?,?,?,?,?,?,?)
         ON CONFLICT (series_name, run) DO NOTHING`,
        r.seriesName, r.run, r.studyId, r.scheduledAt, r.startedAt, r.trigger, r.championVersion, r.template,
      );
      if (res.changes !== 1) throw seriesRunTaken(r.seriesName, r.run);
      return;
    }
    case 'promotion.insert': {
      const p = op.p;
      db.run(
        `INSERT INTO promotions (series_name, run, from_version, to_version, action, decided_by, evidence, at) VALUES (?,?,?,?,?,?,?,?)`,
        p.seriesName, p.run, p.fromVersion, p.toVersion, p.action, p.decidedBy, p.evidence, p.at,
      );
      return;
    }
  }
}

/**
 * nodeTookPartInName's query (parameters: name, node, name, node), exported for the query-plan
 * test: studies_by_name finds the name's studies, the approvals' and rounds' keys the rest.
 */
export const TOOK_PART_IN_NAME = `SELECT 1 WHERE EXISTS (SELECT 1 FROM studies s JOIN study_approvals a ON a.study_id = s.id WHERE s.name = ? AND a.node_id = ?)
  OR EXISTS (SELECT 1 FROM studies s JOIN rounds r ON r.study_id = s.id JOIN tasks t ON t.round_id = r.id WHERE s.name = ? AND t.node_id = ?)`;

/** The series reads of the CoordinatorStore interface, on SQLite. */
export const sqliteSeriesReads = {
  list(db: SqliteRunner): SeriesRecord[] {
    return db.all(`SELECT * FROM series ORDER BY name`).map(series);
  },
  get(db: SqliteRunner, name: string): SeriesRecord | undefined {
    const r = db.get(`SELECT * FROM series WHERE name = ?`, name);
    return r === undefined ? undefined : series(r);
  },
  runs(db: SqliteRunner, name: string): SeriesRunRecord[] {
    return db.all(`SELECT * FROM series_runs WHERE series_name = ? ORDER BY run`, name).map(seriesRun);
  },
  runOfStudy(db: SqliteRunner, studyId: string): SeriesRunRecord | undefined {
    const r = db.get(`SELECT * FROM series_runs WHERE study_id = ?`, studyId);
    return r === undefined ? undefined : seriesRun(r);
  },
  promotions(db: SqliteRunner, name: string): PromotionRecord[] {
    return db.all(`SELECT * FROM promotions WHERE series_name = ? ORDER BY at, id`, name).map(promotion);
  },
  /** nodeTookPart for any study of the name: an approval, or a task in one of its rounds. */
  tookPartInName(db: SqliteRunner, nodeId: string, studyName: string): boolean {
    return db.get(TOOK_PART_IN_NAME, studyName, nodeId, studyName, nodeId) !== undefined;
  },
};
