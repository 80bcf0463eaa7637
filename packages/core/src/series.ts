import canonicalizeModule from 'canonicalize';
import { Cron } from 'croner';
import { z } from 'zod';
import { FedlhsError } from './errors.js';
import { canonicalManifestJson, diffManifests, studyNameSchema, validateManifest, type ManifestChange, type StudyManifest } from './manifest.js';
import { sha256Hex } from './tensors.js';

// canonicalize is CommonJS whose typings declare an ES default export (see manifest.ts).
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

/**
 * Study series (issue 13, groundwork): a manifest template plus a schedule. Each run's manifest
 * is derived from the template deterministically (run number, data window); a clinic approves
 * the template once, and that approval covers exactly the fields in {@link SERIES_VARYING}. Pure:
 * the clock comes in as an argument, nothing is read or written.
 */

const identifier = studyNameSchema;

/** When runs start: a cron expression (croner, 5 or 6 fields) in a time zone, or new labelled patients. */
const scheduleSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('cron'),
    expression: z.string().min(1).max(200),
    timezone: z.string().min(1).max(64).default('UTC'),
  }),
  z.strictObject({
    type: z.literal('data'),
    /** A run starts once the clinics report at least this many newly labelled patients in all. */
    newLabelled: z.number().int().min(1).max(100_000_000),
  }),
]);

/** The series template: what every run shares, and how runs differ. */
export const seriesTemplateSchema = z
  .strictObject({
    apiVersion: z.literal('fedlhs.v1'),
    kind: z.literal('StudySeries'),
    /** Also every run's study name: runs release successive versions of one name. */
    name: identifier,
    description: z.string().max(4000).default(''),
    schedule: scheduleSchema,
    /**
     * cohort/v1 only: the index window moves with each run. It ends `labelLagDays` plus the
     * label horizon before the run (so every index patient's outcome window has passed) and spans
     * `days` days.
     */
    window: z.strictObject({ days: z.number().int().min(1).max(36_500), labelLagDays: z.number().int().min(0).max(3650).default(0) }).optional(),
    /** Where a run's training starts: the series' champion release, or the template's initial weights. */
    start: z.enum(['champion', 'scratch']).default('scratch'),
    /**
     * When a run's release (the challenger) replaces the champion. `auto`: the pooled paired AUC
     * difference (challenger − champion, on the same test patients at every clinic) is at least
     * `minDelta` and its 95 % interval lies above 0, at least `minSites` clinics compared, and no
     * clinic with at least minCellCount cases and non-cases is worse by more than `maxSiteLoss`.
     * `operator`: the decision is recorded as evidence and an operator promotes. Either way the
     * decision and its evidence are recorded. The series' first release becomes champion
     * (there is nothing to compare it with) under `auto`.
     */
    promotion: z
      .discriminatedUnion('rule', [
        z.strictObject({
          rule: z.literal('auto'),
          minDelta: z.number().min(-1).max(1).default(0),
          maxSiteLoss: z.number().min(0).max(1).default(0.05),
          minSites: z.number().int().min(1).max(100_000).default(1),
        }),
        z.strictObject({ rule: z.literal('operator') }),
      ])
      .default({ rule: 'auto', minDelta: 0, maxSiteLoss: 0.05, minSites: 1 }),
    /** The study every run is: a full manifest without its name (the series name) and without `series`. */
    study: z.record(z.string(), z.unknown()),
  })
  .superRefine((t, ctx) => {
    if (t.schedule.type === 'cron') {
      try {
        new Cron(t.schedule.expression, { timezone: t.schedule.timezone, paused: true });
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['schedule', 'expression'], message: `is not a cron expression croner reads: ${(err as Error).message}` });
      }
    }
    if ('name' in t.study && t.study['name'] !== t.name) ctx.addIssue({ code: 'custom', path: ['study', 'name'], message: 'must be left out (a run is named after its series)' });
    if ('series' in t.study) ctx.addIssue({ code: 'custom', path: ['study', 'series'], message: 'must be left out (each run records its series itself)' });
    const model = t.study['model'];
    if (t.start === 'champion' && typeof model === 'object' && model !== null && 'initialWeights' in model) {
      ctx.addIssue({ code: 'custom', path: ['study', 'model', 'initialWeights'], message: 'must be left out with start "champion" (each run starts from the champion of its time)' });
    }
  });

export type SeriesTemplate = z.output<typeof seriesTemplateSchema>;

/**
 * The manifest fields a series approval lets vary from run to run; a run that differs from its
 * template anywhere else needs the clinic's approval again. The split seed is not among them: a
 * patient stays in the same split in every run, so a hold-out patient is never trained on later.
 * `model.initialWeights` varies only when the template starts runs from the champion
 * ({@link seriesVarying}).
 */
export const SERIES_VARYING: readonly string[] = ['series.run', 'series.champion', 'data.cohort.index.from', 'data.cohort.index.to'];

/**
 * The fields that may vary between runs of `t`: the run and its champion always; the index
 * window only when the template moves it (`window`), and then only as the window rule allows
 * (seriesRunChanges checks its length and that its outcomes are complete); the initial weights
 * only with start "champion", and then only as the champion's (checked too).
 */
export function seriesVarying(t: SeriesTemplate): readonly string[] {
  const varying = t.window === undefined ? ['series.run', 'series.champion'] : [...SERIES_VARYING];
  return t.start === 'champion' ? [...varying, 'model.initialWeights'] : varying;
}

/** The series' champion a run is derived with: the release's version and the SHA-256 of its weights.bin. */
export interface SeriesChampion {
  version: number;
  weightsSha256: string;
}

/** Validates a series template (its study included, with a placeholder run), or throws MANIFEST_INVALID naming the field. */
export function validateSeriesTemplate(value: unknown): SeriesTemplate {
  const result = seriesTemplateSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue === undefined ? undefined : issue.path.join('.');
    throw new FedlhsError('MANIFEST_INVALID', `invalid study series: ${path === undefined || path === '' ? '' : `${path}: `}${issue?.message ?? 'invalid'}`, { details: { path } });
  }
  const t = result.data;
  // The study must be a valid manifest once named; a window needs a cohort.
  const probe = validateManifest({ ...t.study, name: t.name });
  if (t.window !== undefined && probe.data.cohort === undefined) {
    throw new FedlhsError('MANIFEST_INVALID', 'invalid study series: window: is only for cohort/v1 studies (a flat table has no index window)', { details: { path: 'window' } });
  }
  return t;
}

/** A template as canonical JSON (RFC 8785): what the coordinator stores and announces, and what its hash covers. */
export function canonicalSeriesTemplateJson(t: SeriesTemplate): string {
  const text = canonicalize(t);
  if (text === undefined) throw new FedlhsError('INTERNAL', 'series template could not be canonicalised');
  return text;
}

/** The canonical hash of a template: what a clinic approves once for the whole series. */
export function seriesTemplateHash(t: SeriesTemplate): string {
  return sha256Hex(canonicalSeriesTemplateJson(t));
}

const MS_PER_DAY = 86_400_000;
const isoDay = (day: number): string => new Date(day * MS_PER_DAY).toISOString().slice(0, 10);

/**
 * Run `run`'s manifest, derived from the template at `atMs` (the run's scheduled time): named
 * after the series, with `series` {name, run, templateSha256, champion?}, and for cohort studies
 * with a window, index.to = the run's day − labelLagDays − the label horizon and index.from =
 * index.to − days + 1. With a champion, every round's model is compared with it; with start
 * "champion" training also starts from it (model.initialWeights). The same template, run, time
 * and champion always give the same manifest (and hash).
 */
export function deriveSeriesRun(t: SeriesTemplate, run: number, atMs: number, champion?: SeriesChampion): StudyManifest {
  if (!Number.isInteger(run) || run < 1) throw new FedlhsError('INVALID_ARGUMENT', `a series run number is a whole number from 1, not ${run}`);
  if (!Number.isFinite(atMs)) throw new FedlhsError('INVALID_ARGUMENT', 'a series run needs the time it runs at');
  const study = structuredClone(t.study) as Record<string, unknown>;
  const series = { name: t.name, run, templateSha256: seriesTemplateHash(t), ...(champion === undefined ? {} : { champion: { version: champion.version, weightsSha256: champion.weightsSha256 } }) };
  const manifest = { ...study, name: t.name, series } as Record<string, unknown>;
  if (t.start === 'champion' && champion !== undefined) {
    manifest['model'] = { ...(manifest['model'] as Record<string, unknown>), initialWeights: { release: { studyName: t.name, version: champion.version, weightsSha256: champion.weightsSha256 } } };
  }
  if (t.window !== undefined) {
    const data = manifest['data'] as { cohort?: { index?: Record<string, unknown>; label?: { horizonDays?: number } } } | undefined;
    const cohort = data?.cohort;
    const horizon = cohort?.label?.horizonDays ?? 0;
    const end = Math.floor(atMs / MS_PER_DAY) - t.window.labelLagDays - horizon;
    if (cohort?.index !== undefined) {
      cohort.index['to'] = isoDay(end);
      cohort.index['from'] = isoDay(end - t.window.days + 1);
    }
  }
  return validateManifest(manifest);
}

/** A JSON value without the fields at `paths` (dotted), for comparing what a series approval does not cover. */
function withoutPaths(value: unknown, paths: readonly string[]): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const p of paths) {
    const parts = p.split('.');
    let node: unknown = copy;
    for (const part of parts.slice(0, -1)) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
    if (typeof node === 'object' && node !== null) delete (node as Record<string, unknown>)[parts[parts.length - 1]!];
  }
  return copy;
}

/**
 * What a run's manifest changes, beyond what the series lets vary ({@link seriesVarying}), from
 * what the approved template derives: empty when the series approval covers the run; otherwise
 * the run needs the clinic's approval of its own manifest. A run of another series or template
 * is all change. `nowMs` is the clinic's own time: a moving window must end early enough that
 * every index patient's outcome window has passed by then (index.to ≤ today − labelLagDays −
 * horizon) and span exactly `days` days; initial weights (start "champion") must be the named
 * champion's, and absent without one.
 */
export function seriesRunChanges(approved: SeriesTemplate, run: StudyManifest, nowMs: number): ManifestChange[] {
  if (run.series === undefined || run.series.name !== approved.name || run.series.templateSha256 !== seriesTemplateHash(approved)) {
    return [{ path: 'series', before: { name: approved.name, templateSha256: seriesTemplateHash(approved) }, after: run.series ?? null }];
  }
  const expected = deriveSeriesRun(approved, run.series.run, nowMs, run.series.champion);
  const a = JSON.parse(canonicalManifestJson(expected)) as unknown;
  const b = JSON.parse(canonicalManifestJson(run)) as unknown;
  const varying = seriesVarying(approved);
  const changes = diffManifests(withoutPaths(a, varying), withoutPaths(b, varying));
  // Initial weights vary only as the champion's: exactly what the template derives with this champion.
  if (varying.includes('model.initialWeights')) {
    const want = expected.model.initialWeights ?? null;
    const got = run.model.initialWeights ?? null;
    if (canonicalize(want) !== canonicalize(got)) changes.push({ path: 'model.initialWeights', before: want, after: got });
  }
  // The window varies only as the window rule allows.
  if (approved.window !== undefined) {
    const index = run.data.cohort?.index;
    const latest = expected.data.cohort?.index.to;
    if (index?.from === undefined || index.to === undefined || latest === undefined) {
      changes.push({ path: 'data.cohort.index', before: `a window of ${approved.window.days} days`, after: index ?? null });
    } else {
      const days = Math.round((Date.parse(index.to) - Date.parse(index.from)) / MS_PER_DAY) + 1;
      if (days !== approved.window.days) changes.push({ path: 'data.cohort.index.from', before: `${approved.window.days} days before index.to`, after: `${index.from} (${days} days)` });
      if (index.to > latest) changes.push({ path: 'data.cohort.index.to', before: `at most ${latest} (outcomes not complete after it)`, after: index.to });
    }
  }
  return changes;
}

/** The next time a cron-scheduled series runs after `afterMs`, or undefined when its expression has no later time. */
export function nextSeriesRunAt(t: SeriesTemplate, afterMs: number): number | undefined {
  if (t.schedule.type !== 'cron') return undefined;
  const next = new Cron(t.schedule.expression, { timezone: t.schedule.timezone, paused: true }).nextRun(new Date(afterMs));
  return next === null ? undefined : next.getTime();
}
