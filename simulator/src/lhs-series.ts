import { FedlhsError, errorFromBody, validateSeriesTemplate, type PromotionDecision, type SeriesTemplate } from '@fedlhs/core';
import type { LogLine } from '@fedlhs/testing';
import type { CoordinatorHandle } from './local-network.js';
import { t2dManifest } from './t2d-study.js';

/**
 * The series side of the multi-year simulation: the coordinator's own series service, driven
 * by its cron schedule on the coordinator's simulated series clock (a coordinator started with
 * FEDLHS_SERIES_SIMULATED_CLOCK=true; POST /api/v1/series-clock moves it). The simulation never
 * starts a run itself: it moves the clock to 1 January and waits for the scheduler to start the
 * run (trigger `schedule`), then reads the coordinator's promotion decision back.
 */

/** The LOINC glucose concept set: mass (mg/dL) and molar (mmol/L, converted by core units.ts), blood and serum/plasma. */
export const GLUCOSE_CODES = ['2339-0', '2345-7', '14749-6', '15074-8'] as const;
/** Fasting insulin (LOINC 20448-7), in the unit the synthetic clinics (and most labs) report: µIU/mL. */
export const INSULIN = { code: '20448-7', unit: 'u[IU]/mL', range: [1, 300] as [number, number] };

/** A run as the scheduler started it (coordinator log `series.run_started` and GET /api/v1/studies/:id). */
export interface SeriesRunStart {
  run: number;
  studyId: string;
  manifestSha256: string;
  /** `schedule` when the cron schedule started it; `operator:<name>` for run-now. */
  trigger: string;
  scheduledAt: string;
  /** The index window the run was derived with. */
  window: { from: string; to: string };
  /** The champion version the run was derived with (warm start and comparison), or null. */
  championVersion: number | null;
}

/** The coordinator's promotion decision on a run's release, with its evidence. */
export interface SeriesDecision {
  promote: boolean;
  reasons: string[];
  pooled: NonNullable<PromotionDecision['pooled']> | null;
  tooSmall: string[];
  worse: string[];
  championAfter: number | null;
}

/**
 * The series every simulated year runs: the headline T2D study, yearly (cron 1 January), over
 * a 4-year index window, warm-started, promoted automatically. Realistic in two ways the
 * headline study is not: glucose lists the whole LOINC glucose concept set (so a laboratory
 * that switches to mmol/L under 14749-6 keeps being read), and fasting insulin is a feature
 * before any clinic measures it (missing, imputed; excluded from the normalisation while no
 * clinic has it), so the series can learn from the assay once it appears.
 */
export function lhsTemplate(o: { name: string; rounds: number; seed: number; maxClinics: number }): SeriesTemplate {
  const { name: _name, ...study } = t2dManifest({ rounds: o.rounds, clinics: o.maxClinics, quorum: 2, seed: o.seed, name: o.name }) as Record<string, unknown> & {
    model: { topology: { config: { layers: { config: { batch_input_shape?: (number | null)[] } }[] } } };
    data: { cohort: { features: Record<string, unknown>[] }; normalizationFallback?: string };
  };
  const features = study.data.cohort.features;
  const glucose = features.find((f) => f['name'] === 'glucose');
  if (glucose === undefined) throw new FedlhsError('INTERNAL', 'the T2D study has a glucose feature');
  glucose['codes'] = [...GLUCOSE_CODES];
  features.splice(features.indexOf(glucose) + 1, 0, { name: 'insulin', type: 'latest', system: 'LOINC', codes: [INSULIN.code], unit: INSULIN.unit, range: INSULIN.range });
  study.model.topology.config.layers[0]!.config.batch_input_shape = [null, features.length];
  // While no clinic measures insulin its statistics are withheld everywhere: excluded (0) rather than failing the run.
  study.data.normalizationFallback = 'exclude';
  // The network grows (a clinic joins in year 3) and a small clinic may be unable to train: any
  // two clinics can run a round, all of them are waited for (selection grace) when ready.
  (study as Record<string, unknown>)['clients'] = { min: 2, max: o.maxClinics, quorum: 2 };
  return validateSeriesTemplate({
    apiVersion: 'fedlhs.v1',
    kind: 'StudySeries',
    name: o.name,
    description: 'Continuous learning of incident T2D within 3 years (fedlhs-simulate lhs): one run a simulated year.',
    schedule: { type: 'cron', expression: '0 0 1 1 *', timezone: 'UTC' },
    // The generator's index window is 4 years (1461 days); outcomes are recorded for a year after the last horizon.
    window: { days: 1461, labelLagDays: 365 },
    start: 'champion',
    promotion: { rule: 'auto', minDelta: 0, maxSiteLoss: 0.05, minSites: 2 },
    study,
  });
}

interface SeriesDetailJson {
  runs?: { run: number; studyId: string; trigger: string; scheduledAt: string; championVersion: number | null; releasedVersion: number | null; decision: { action: string; version: number; evidence: PromotionDecision | null } | null }[];
  championVersion: number | null;
}

const fail = (what: string, res: { status: number; body: unknown }): never => {
  throw errorFromBody((res.body as { error?: unknown }).error, `${what}: HTTP ${res.status} `);
};

/** The coordinator's series, driven through its simulated clock. */
export class ScheduledSeries {
  constructor(
    private readonly c: CoordinatorHandle,
    readonly name: string,
  ) {}

  /** Checks that the coordinator's series clock can be moved, sets it to `atMs` and creates the series there. */
  async create(template: SeriesTemplate, atMs: number): Promise<void> {
    const clock = await this.c.admin<{ simulated?: boolean }>('GET', '/api/v1/series-clock');
    if (clock.status !== 200 || clock.body.simulated !== true) {
      throw new FedlhsError('SIMULATION_FAILED', `the coordinator's series clock cannot be moved (GET /api/v1/series-clock: HTTP ${clock.status}, simulated ${String(clock.body.simulated)}): start it with FEDLHS_SERIES_SIMULATED_CLOCK=true`);
    }
    await this.moveClock(atMs);
    const res = await this.c.admin('POST', '/api/v1/series', template);
    if (res.status !== 201) fail('series create', res);
  }

  /** Moves the coordinator's series clock to `atMs` (forward only after the first move). */
  async moveClock(atMs: number): Promise<void> {
    const res = await this.c.admin<{ now: number }>('POST', '/api/v1/series-clock', { now: atMs });
    if (res.status !== 200) fail(`series clock → ${new Date(atMs).toISOString()}`, res);
    // The clock runs on from where it was set (real time plus an offset): a moment later it is a little past.
    if (!(res.body.now >= atMs && res.body.now < atMs + 60_000)) throw new FedlhsError('INTERNAL', `the series clock is at ${new Date(res.body.now).toISOString()}, not ${new Date(atMs).toISOString()}`);
  }

  /**
   * Waits for the scheduler to start run `run` (its `series.run_started` line); a scheduler
   * failure on this series (`series.scheduler_failed`) fails at once with the coordinator's reason.
   */
  async waitForRun(run: number, timeoutMs = 60_000): Promise<SeriesRunStart> {
    const line = await this.c.proc.waitFor(
      (l: LogLine) => l.seriesName === this.name && ((l.event === 'series.run_started' && l.run === run) || l.event === 'series.scheduler_failed'),
      timeoutMs,
      `the scheduler to start run ${run} of series ${this.name}`,
    );
    if (line.event === 'series.scheduler_failed') throw new FedlhsError('SIMULATION_FAILED', `series ${this.name}: the scheduler did not start run ${run}: ${String(line.msg)}`);
    const studyId = String(line.studyId);
    const study = await this.c.admin<{ manifestSha256: string; manifest: { data: { cohort?: { index: { from: string; to: string } } } } }>('GET', `/api/v1/studies/${encodeURIComponent(studyId)}`);
    if (study.status !== 200) fail(`study ${studyId}`, study);
    const index = study.body.manifest.data.cohort?.index;
    if (index === undefined) throw new FedlhsError('INTERNAL', `study ${studyId}: a run of the T2D series has a cohort index window`);
    return {
      run, studyId, manifestSha256: study.body.manifestSha256, trigger: String(line.trigger), scheduledAt: String(line.scheduledAt),
      window: { from: index.from, to: index.to }, championVersion: typeof line.championVersion === 'number' ? line.championVersion : null,
    };
  }

  /** The coordinator's decision on run `run`'s release: waits for its `series.promoted|kept` line, then reads the run back. */
  async decision(run: number, timeoutMs = 120_000): Promise<SeriesDecision> {
    await this.c.proc.waitFor((l) => (l.event === 'series.promoted' || l.event === 'series.kept') && l.seriesName === this.name && l.run === run, timeoutMs, `the champion decision on run ${run}`);
    const detail = await this.detail();
    const r = detail.runs?.find((x) => x.run === run);
    if (r === undefined || r.decision === null || r.decision.evidence === null) throw new FedlhsError('NOT_FOUND', `series ${this.name} run ${run}: no promotion decision with evidence recorded`);
    const e = r.decision.evidence;
    return { promote: r.decision.action === 'promote', reasons: e.reasons ?? [], pooled: e.pooled ?? null, tooSmall: e.tooSmall ?? [], worse: e.worse ?? [], championAfter: detail.championVersion };
  }

  /** GET /api/v1/series/:name. */
  async detail(): Promise<SeriesDetailJson> {
    const res = await this.c.admin<SeriesDetailJson>('GET', `/api/v1/series/${encodeURIComponent(this.name)}`);
    if (res.status !== 200) fail(`series ${this.name}`, res);
    return res.body;
  }
}
