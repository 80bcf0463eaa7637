import { seriesRunChanges, seriesTemplateHash, sha256Hex, validateManifest, validateSeriesTemplate, type ManifestChange, type SeriesTemplate, type StudyManifest } from '@fedlhs/core';
import type { AgentState } from './agent-state.js';

/**
 * Series approval at the clinic (issue 13, proto "Study series"): a clinic approves a series
 * once, by its template hash, and that approval covers a run exactly when the run's manifest
 * changes nothing but what the series lets vary (core seriesRunChanges). A template is only
 * ever used after it was checked against its hash; one that does not check out is refused, and
 * its run is then an ordinary study, approved by its manifest hash alone.
 */

/** What a Study announcement says about its series (the two proto fields). */
export interface AnnouncedSeries {
  seriesTemplateJson: string;
  seriesTemplateSha256: string;
}

/** An announced template: not a series run, a template that checked out, or why it was refused. */
export type TemplateCheck =
  | { kind: 'none' }
  | { kind: 'ok'; template: SeriesTemplate; hash: string; json: string }
  | { kind: 'refused'; reason: string };

/**
 * Checks a study's series template: SHA-256 of its bytes = series_template_sha256 = the
 * manifest's series.templateSha256, it validates, it is the canonical form of itself (so its
 * hash is the one seriesRunChanges compares), and it is the template of the manifest's series.
 */
export function checkAnnouncedTemplate(study: AnnouncedSeries, manifest: StudyManifest): TemplateCheck {
  const json = study.seriesTemplateJson;
  const announced = study.seriesTemplateSha256;
  if (manifest.series === undefined) {
    if (json === '' && announced === '') return { kind: 'none' };
    return { kind: 'refused', reason: 'the announcement carries a series template, but the manifest names no series' };
  }
  const named = manifest.series.templateSha256;
  if (json === '') return { kind: 'refused', reason: `the manifest is run ${manifest.series.run} of series ${manifest.series.name}, but the announcement carries no series template (an older coordinator?)` };
  const actual = sha256Hex(Buffer.from(json, 'utf8'));
  if (actual !== announced) return { kind: 'refused', reason: `the series template's bytes hash to ${actual}, the announcement says ${announced.slice(0, 64)}` };
  if (announced !== named) return { kind: 'refused', reason: `the announced series template ${announced} is not the one the manifest names (${named})` };
  let template: SeriesTemplate;
  try {
    template = validateSeriesTemplate(JSON.parse(json));
  } catch (err) {
    return { kind: 'refused', reason: `the series template does not validate: ${(err as Error).message.slice(0, 300)}` };
  }
  const canonical = seriesTemplateHash(template);
  if (canonical !== actual) return { kind: 'refused', reason: `the series template is not in its canonical form (its canonical hash is ${canonical}, its bytes hash to ${actual})` };
  if (template.name !== manifest.series.name) return { kind: 'refused', reason: `the series template is named ${JSON.stringify(template.name)}, the manifest's series ${JSON.stringify(manifest.series.name)}` };
  return { kind: 'ok', template, hash: actual, json };
}

/** How a manifest stands with this clinic's approvals, and what an operator would read. */
export interface RunApproval {
  approved: boolean;
  /** How it is approved: its own hash, or its series template. */
  via?: 'manifest' | 'series' | undefined;
  /** For a series run: the template the run names, when it is kept here. */
  series?: { name: string; hash: string; approved: boolean } | undefined;
  /** What the run changes that its approved series does not let vary (empty when covered). */
  changes: ManifestChange[];
  /** One line for the readiness detail and `review`: why it is (not) approved. */
  detail: string;
}

const short = (hash: string): string => hash.slice(0, 12);

/**
 * Whether the manifest `hash` (already recorded) is approved: by its own hash, or, when
 * `seriesTrusted` (its announcement's template checked out, or it is read back from this
 * clinic's records), by the approval of the series template it names, when seriesRunChanges is
 * empty. `manifest` may be passed when already parsed.
 */
export function runApproval(state: AgentState, hash: string, manifest: StudyManifest | undefined, seriesTrusted: boolean): RunApproval {
  const record = state.getManifest(hash);
  if (record?.approvedAt != null) return { approved: true, via: 'manifest', changes: [], detail: `manifest ${short(hash)} approved by ${record.approvedBy ?? 'the operator'}` };
  let m = manifest;
  if (m === undefined && record !== undefined) {
    try {
      m = validateManifest(JSON.parse(record.json));
    } catch {
      m = undefined;
    }
  }
  const waiting = 'waiting for this clinic\'s operator to review and approve the manifest';
  if (m?.series === undefined) return { approved: false, changes: [], detail: waiting };
  const { name, templateSha256 } = m.series;
  if (!seriesTrusted) {
    return { approved: false, changes: [], detail: `${waiting} (its series template did not check out, so a series approval cannot cover it)` };
  }
  const tpl = state.getSeriesTemplate(templateSha256);
  if (tpl === undefined) return { approved: false, changes: [], detail: `${waiting} or its series ${name} (template ${short(templateSha256)} not seen here yet)` };
  const series = { name: tpl.name, hash: tpl.hash, approved: tpl.approvedAt !== null };
  if (tpl.approvedAt === null) return { approved: false, series, changes: [], detail: `${waiting}, or series ${name} (template ${short(templateSha256)})` };
  let changes: ManifestChange[];
  try {
    // The clinic's own clock judges whether a moving window's outcomes are complete (core seriesRunChanges).
    changes = seriesRunChanges(validateSeriesTemplate(JSON.parse(tpl.json)), m, Date.now());
  } catch (err) {
    return { approved: false, series, changes: [], detail: `series ${name} approved, but its kept template no longer reads (${(err as Error).message.slice(0, 200)}): needs approval of manifest ${hash}` };
  }
  if (changes.length === 0) return { approved: true, via: 'series', series, changes, detail: `covered by the approval of series ${name} (template ${short(templateSha256)})` };
  return { approved: false, series, changes, detail: `series ${name} approved, but this run changes ${changes.map((c) => c.path).join(', ')}: needs approval of manifest ${hash}` };
}

/** Keeps a checked template in the state DB (idempotent) and returns whether it was new. */
export function rememberTemplate(state: AgentState, check: Extract<TemplateCheck, { kind: 'ok' }>): boolean {
  const known = state.getSeriesTemplate(check.hash) !== undefined;
  if (!known) state.recordSeriesTemplate({ hash: check.hash, name: check.template.name, json: check.json });
  return !known;
}

/**
 * Whether this clinic approved the manifest `hash`: by its own hash, or (a series run) through
 * the approval of its series template when the run changes nothing the series does not let
 * vary ({@link runApproval}).
 */
export function isApproved(state: AgentState, hash: string): boolean {
  const m = state.getManifest(hash);
  if (m === undefined) return false;
  if (m.approvedAt !== null) return true;
  return runApproval(state, hash, undefined, true).approved;
}
