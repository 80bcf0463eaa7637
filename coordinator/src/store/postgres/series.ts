import type pg from 'pg';
import type { PromotionRecord, SeriesRecord, SeriesRunRecord } from '../records.js';
import { promotion, series, seriesRun, type Row } from '../rows.js';
import { seriesExists, seriesNotFound, seriesRunTaken, type SeriesOp } from '../series-errors.js';
import { exec, type Statement } from './statement.js';

const stmt = (name: string, text: string): Statement => ({ name: `fedlhs_ser_${name}`, text });

const SQL = {
  insert: stmt(
    'insert',
    `INSERT INTO series (name, template, template_sha256, state, created_by, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (name) DO NOTHING`,
  ),
  update: stmt(
    'update',
    `UPDATE series SET template = COALESCE($1, template), template_sha256 = COALESCE($2, template_sha256), state = COALESCE($3, state), updated_at = $4 WHERE name = $5`,
  ),
  // FOR SHARE: a concurrent update or delete of the series waits for this unit.
  exists: stmt('exists', `SELECT 1 FROM series WHERE name = $1 FOR SHARE`),
  // Only the run number's conflict is the race; a study that is already a run fails loudly (UNIQUE).
  run: stmt(
    'run',
    `INSERT INTO series_runs (series_name, run, study_id, scheduled_at, started_at, trigger, champion_version, template) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
     ON CONFLICT (series_name, run) DO NOTHING`,
  ),
  promotion: stmt(
    'promotion',
    `INSERT INTO promotions (series_name, run, from_version, to_version, action, decided_by, evidence, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
  ),
} as const;

/** Applies a series op on `client`, inside the caller's transaction; the semantics of store/sqlite/series.ts. */
export async function applySeriesOp(client: pg.ClientBase, op: SeriesOp): Promise<void> {
  switch (op.op) {
    case 'series.insert': {
      const s = op.s;
      const res = await exec(client, SQL.insert, [s.name, s.template, s.templateSha256, s.state, s.createdBy, s.createdAt, s.updatedAt]);
      if (res.rowCount !== 1) throw seriesExists(s.name);
      return;
    }
    case 'series.update': {
      const res = await exec(client, SQL.update, [op.template?.json ?? null, op.template?.sha256 ?? null, op.state ?? null, op.at, op.name]);
      if (res.rowCount !== 1) throw seriesNotFound(op.name);
      return;
    }
    case 'series.run': {
      const r = op.r;
      if ((await exec(client, SQL.exists, [r.seriesName])).rowCount !== 1) throw seriesNotFound(r.seriesName);
      const res = await exec(client, SQL.run, [r.seriesName, r.run, r.studyId, r.scheduledAt, r.startedAt, r.trigger, r.championVersion, r.template]);
      if (res.rowCount !== 1) throw seriesRunTaken(r.seriesName, r.run);
      return;
    }
    case 'promotion.insert': {
      const p = op.p;
      await exec(client, SQL.promotion, [p.seriesName, p.run, p.fromVersion, p.toVersion, p.action, p.decidedBy, p.evidence, p.at]);
      return;
    }
  }
}

/** The series reads (named statements run on the read pool by PostgresStore). */
export const SERIES_READ = {
  list: stmt('list', `SELECT * FROM series ORDER BY name`),
  get: stmt('get', `SELECT * FROM series WHERE name = $1`),
  runs: stmt('runs', `SELECT * FROM series_runs WHERE series_name = $1 ORDER BY run`),
  runOfStudy: stmt('run_of_study', `SELECT * FROM series_runs WHERE study_id = $1`),
  promotions: stmt('promotions', `SELECT * FROM promotions WHERE series_name = $1 ORDER BY at, id`),
  /** nodeTookPart for any study of the name: an approval, or a task in one of its rounds. */
  tookPartInName: stmt(
    'took_part_in_name',
    `SELECT 1 WHERE EXISTS (SELECT 1 FROM studies s JOIN study_approvals a ON a.study_id = s.id WHERE s.name = $2 AND a.node_id = $1)
     OR EXISTS (SELECT 1 FROM studies s JOIN rounds r ON r.study_id = s.id JOIN tasks t ON t.round_id = r.id WHERE s.name = $2 AND t.node_id = $1)`,
  ),
} as const;

/** Row mappers of the reads above. */
export const seriesRows = {
  series: (found: Row[]): SeriesRecord[] => found.map(series),
  runs: (found: Row[]): SeriesRunRecord[] => found.map(seriesRun),
  promotions: (found: Row[]): PromotionRecord[] => found.map(promotion),
};
