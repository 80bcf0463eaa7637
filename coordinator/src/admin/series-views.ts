import { nextSeriesRunAt, seriesTemplateHash, seriesVarying, validateSeriesTemplate, type PromotionDecision, type SeriesTemplate } from '@fedlhs/core';
import { FedlhsError } from '@fedlhs/core';
import type { Coordinator } from '../coordinator.js';
import type { SeriesDataProgress } from '../series/data-trigger.js';
import type { SeriesRunView } from '../series/types.js';
import type { PromotionRecord, ReleaseRecord, SeriesRecord, SeriesRunRecord } from '../store.js';
import { seriesPerformance, type SeriesRunPerformance } from './series-performance.js';

/**
 * Study series as operators see them (issue 13, Flow 7: admin API, CLI, dashboard): each
 * series' template and schedule, its runs with the champion each was compared with and the
 * decision on its release, the champion history with each decision's evidence, and per-site
 * performance over runs (series-performance.ts; small cells withheld).
 */

const iso = (ms: number): string => new Date(ms).toISOString();
/** Releases read per series to find its runs' versions (a series releases one version per run). */
const RELEASES_MAX = 1000;

/** The reader the views need: the coordinator's store and node names. */
export interface SeriesViewContext {
  /** `series` (optional: views built without a running coordinator show no data-trigger progress) holds the clinics' data reports. */
  coordinator: Pick<Coordinator, 'store' | 'nodes'> & Partial<Pick<Coordinator, 'series'>>;
}

/** One series in the list: what `series list` and the dashboard's Series page show. */
export interface SeriesSummaryView {
  name: string;
  state: SeriesRecord['state'];
  templateSha256: string;
  description: string;
  /** "cron 0 3 1 * * (UTC)" or "data: 500 newly labelled patients". */
  schedule: string | null;
  start: SeriesTemplate['start'] | null;
  promotion: SeriesTemplate['promotion'] | null;
  runCount: number;
  /** The run in progress (its study has not ended), if any. */
  currentRun: { run: number; studyId: string; studyState: string } | null;
  /** The version the `champion` alias names, if set. */
  championVersion: number | null;
  /** When the scheduler starts the next run (a past time: at once), or null with `nextRunNote` saying why. */
  nextRunAt: string | null;
  nextRunNote: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  /** Why the stored template cannot be read (then schedule, start and promotion are null). */
  error: string | null;
}

/** A run as JSON: SeriesRunView with ISO times and its template's hash instead of the template. */
export type SeriesRunJson = Omit<SeriesRunView, 'template' | 'scheduledAt' | 'startedAt' | 'decision'> & {
  scheduledAt: string;
  startedAt: string;
  /** The hash of the template the run was derived from (null: its stored template cannot be read). */
  templateSha256: string | null;
  decision: (Omit<NonNullable<SeriesRunView['decision']>, 'at'> & { at: string }) | null;
};

/** A champion decision with its evidence (null, with `error`, when the stored evidence cannot be read). */
export type PromotionView = Omit<PromotionRecord, 'evidence' | 'at'> & { at: string; evidence: (PromotionDecision & Record<string, unknown>) | null; error: string | null };

/** One series in full. */
export interface SeriesDetailView extends SeriesSummaryView {
  /** The template as stored (canonical JSON, parsed). */
  template: unknown;
  /** Manifest fields a clinic's approval of the template lets vary between runs. */
  varying: readonly string[];
  runs: SeriesRunJson[];
  promotions: PromotionView[];
  performance: SeriesRunPerformance[];
}

const TERMINAL = new Set(['COMPLETED', 'STOPPED', 'FAILED']);

function readTemplate(s: SeriesRecord): { template: SeriesTemplate; raw: unknown } | { error: string; raw: unknown } {
  let raw: unknown;
  try {
    raw = JSON.parse(s.template);
  } catch {
    return { error: `the stored template of series ${s.name} is not JSON`, raw: null };
  }
  try {
    return { template: validateSeriesTemplate(raw), raw };
  } catch (err) {
    return { error: `the stored template cannot be read: ${(err as Error).message}`, raw };
  }
}

function scheduleText(t: SeriesTemplate): string {
  return t.schedule.type === 'cron' ? `cron ${t.schedule.expression} (${t.schedule.timezone})` : `data: ${t.schedule.newLabelled} newly labelled patients`;
}

/** A champion decision as JSON, its evidence parsed (or `error` saying why it cannot be). */
export function promotionView(p: PromotionRecord): PromotionView {
  const { evidence, at, ...rest } = p;
  try {
    const parsed = JSON.parse(evidence) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { reasons?: unknown }).reasons)) throw new Error('no reasons');
    return { ...rest, at: iso(at), evidence: parsed as PromotionDecision & Record<string, unknown>, error: null };
  } catch (err) {
    return { ...rest, at: iso(at), evidence: null, error: `the evidence of decision ${p.id} cannot be read (${(err as Error).message === 'no reasons' ? 'it has no reasons' : 'not JSON'})` };
  }
}

interface SeriesData {
  series: SeriesRecord;
  runs: SeriesRunRecord[];
  studyStates: Map<string, string>;
  championVersion: number | null;
  /** A data-triggered series' reports since its last run (undefined: not data-triggered, no run yet, or not known here). */
  dataProgress: SeriesDataProgress | undefined;
}

/** "X of N newly labelled reported by M clinic(s) (S suppressed)". */
function progressText(p: SeriesDataProgress): string {
  return `${p.reported} of ${p.needed} newly labelled reported by ${p.clinics} clinic(s) (${p.suppressed} suppressed)`;
}

async function load(ctx: SeriesViewContext, s: SeriesRecord): Promise<SeriesData> {
  const store = ctx.coordinator.store;
  const [runs, aliases] = await Promise.all([store.listSeriesRuns(s.name), store.listReleaseAliases(s.name)]);
  const studies = await Promise.all(runs.map((r) => store.getStudy(r.studyId)));
  const studyStates = new Map(runs.map((r, i) => [r.studyId, studies[i]?.state ?? 'UNKNOWN']));
  const read = readTemplate(s);
  const last = runs.at(-1);
  const dataProgress = 'template' in read && read.template.schedule.type === 'data' && last !== undefined
    ? ctx.coordinator.series?.data.progress(s.name, last, read.template.schedule.newLabelled)
    : undefined;
  return { series: s, runs, studyStates, championVersion: aliases.find((a) => a.alias === 'champion')?.version ?? null, dataProgress };
}

function summary(d: SeriesData): SeriesSummaryView & { parsed: SeriesTemplate | undefined; raw: unknown } {
  const s = d.series;
  const read = readTemplate(s);
  const t = 'template' in read ? read.template : undefined;
  const last = d.runs.at(-1);
  const lastState = last === undefined ? undefined : d.studyStates.get(last.studyId);
  const running = last !== undefined && !TERMINAL.has(lastState ?? '');
  let nextRunAt: string | null = null;
  let nextRunNote: string | null = null;
  if (t === undefined) nextRunNote = 'the template cannot be read';
  else if (s.state === 'paused') nextRunNote = 'paused';
  else if (running) nextRunNote = `after run ${last.run} ends${d.dataProgress === undefined ? '' : ` (${progressText(d.dataProgress)} so far)`}`;
  else if (t.schedule.type === 'data') {
    nextRunNote = last === undefined ? 'run 1 starts at once (data-triggered series start when created)'
      : d.dataProgress === undefined ? `when ${t.schedule.newLabelled} newly labelled patients are reported` : progressText(d.dataProgress);
  }
  else {
    // As the scheduler counts it (scheduler.ts): after the last run or the series' last change (times passed while paused are not due).
    const next = nextSeriesRunAt(t, Math.max(last?.scheduledAt ?? s.createdAt, s.updatedAt));
    if (next === undefined) nextRunNote = 'the cron expression has no later time';
    else nextRunAt = iso(next);
  }
  return {
    name: s.name, state: s.state, templateSha256: s.templateSha256, description: t?.description ?? '',
    schedule: t === undefined ? null : scheduleText(t), start: t?.start ?? null, promotion: t?.promotion ?? null,
    runCount: d.runs.length,
    currentRun: running ? { run: last.run, studyId: last.studyId, studyState: lastState ?? 'UNKNOWN' } : null,
    championVersion: d.championVersion, nextRunAt, nextRunNote,
    createdBy: s.createdBy, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt),
    error: 'error' in read ? read.error : null,
    parsed: t, raw: read.raw,
  };
}

/** Every series, by name. */
export async function seriesList(ctx: SeriesViewContext): Promise<{ series: SeriesSummaryView[] }> {
  const all = await ctx.coordinator.store.listSeries();
  const views = await Promise.all(all.map(async (s) => {
    const { parsed: _, raw: __, ...view } = summary(await load(ctx, s));
    return view;
  }));
  return { series: views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

/**
 * The runs as SeriesRunView: each run's study state, the release its study made and the
 * champion decision on that release (the first one recorded: the rule's, as SeriesService.runViews).
 */
export function seriesRunViews(runs: readonly SeriesRunRecord[], studyStates: ReadonlyMap<string, string>, releases: readonly ReleaseRecord[], promotions: readonly PromotionRecord[]): SeriesRunView[] {
  return runs.map((r) => {
    const release = releases.find((x) => x.studyId === r.studyId);
    const p = release === undefined ? undefined : promotions.find((x) => x.run === r.run && x.toVersion === release.version);
    const parsed = p === undefined ? undefined : promotionView(p).evidence;
    const decision = p === undefined || parsed == null ? null : { ...p, evidence: parsed };
    return { ...r, studyState: studyStates.get(r.studyId) ?? 'UNKNOWN', releasedVersion: release?.version ?? null, decision };
  });
}

/** The hash clinics approved a run's template by (null when its stored template cannot be read). */
function runTemplateHash(json: string): string | null {
  try {
    return seriesTemplateHash(validateSeriesTemplate(JSON.parse(json)));
  } catch {
    return null;
  }
}

/** One series in full, or NOT_FOUND. */
export async function seriesDetail(ctx: SeriesViewContext, name: string): Promise<SeriesDetailView> {
  const store = ctx.coordinator.store;
  const s = await store.getSeries(name);
  if (s === undefined) throw new FedlhsError('NOT_FOUND', `no series ${name}`, { details: { what: 'study', id: name } });
  const [d, promotionRecords, releases, nodes] = await Promise.all([load(ctx, s), store.listPromotions(name), store.listReleases(name, RELEASES_MAX), ctx.coordinator.nodes.list()]);
  const names = new Map(nodes.map((n) => [n.id, n.siteName]));
  const promotions = promotionRecords.map(promotionView);
  const { parsed, raw, ...view } = summary(d);
  const runs = seriesRunViews(d.runs, d.studyStates, releases, promotionRecords).map(({ template, scheduledAt, startedAt, decision, ...r }): SeriesRunJson => ({
    ...r, scheduledAt: iso(scheduledAt), startedAt: iso(startedAt), templateSha256: runTemplateHash(template),
    decision: decision === null ? null : { ...decision, at: iso(decision.at) },
  }));
  const performance = await seriesPerformance(store, d.runs, (r) => releases.find((x) => x.studyId === r.studyId), (id) => names.get(id) ?? id);
  return { ...view, template: raw, varying: parsed === undefined ? [] : seriesVarying(parsed), runs, promotions, performance };
}

/** A series record as the actions answer it: ISO times, the template parsed. */
export function seriesRecordJson(s: SeriesRecord): Omit<SeriesRecord, 'template' | 'createdAt' | 'updatedAt'> & { template: unknown; createdAt: string; updatedAt: string } {
  const read = readTemplate(s);
  return { ...s, template: read.raw, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) };
}

/** A run record as run-now answers it: ISO times, its template's hash instead of the template. */
export function seriesRunRecordJson(r: SeriesRunRecord): Omit<SeriesRunRecord, 'template' | 'scheduledAt' | 'startedAt'> & { templateSha256: string | null; scheduledAt: string; startedAt: string } {
  const { template, ...rest } = r;
  return { ...rest, templateSha256: runTemplateHash(template), scheduledAt: iso(r.scheduledAt), startedAt: iso(r.startedAt) };
}
