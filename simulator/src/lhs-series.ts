import { FedlhsError, decidePromotion, deriveSeriesRun, errorFromBody, validateSeriesTemplate, type PromotionDecision, type SeriesChampion, type SeriesTemplate, type SiteComparison } from '@fedlhs/core';
import { startStudy, type CoordinatorHandle } from './local-network.js';
import { t2dManifest } from './t2d-study.js';

/**
 * The series side of the multi-year simulation, behind one small interface so the driver
 * (lhs.ts) does not care who runs the series:
 *
 * - `coordinator`: the coordinator's own series (POST /api/v1/series, POST
 *   /api/v1/series/:name/run-now, decisions read back from GET /api/v1/series/:name). This is
 *   the real thing: the coordinator derives each run, warm-starts it from the champion, has the
 *   clinics compare challenger and champion on their test patients and decides the promotion.
 * - `studies` (INTERIM, until the coordinator's series service is wired in): each run is started
 *   as a single study with the manifest core's deriveSeriesRun gives (without its `series`
 *   block, which only the series service may start), warm-started from the champion; the
 *   promotion is decided HERE with core's decidePromotion on the clinics' paired comparisons
 *   that the driver computes on the same test patients, and the `champion` alias is set through
 *   the admin API. Loud: every run says it was decided by the simulator.
 */

/** A run as the driver needs it: its study, and once decided, what became champion and why. */
export interface SeriesRunStart {
  run: number;
  studyId: string;
  manifestSha256: string;
  /** The index window the run was derived with. */
  window: { from: string; to: string };
  /** The champion the run was derived with (warm start and comparison), if any. */
  champion: SeriesChampion | undefined;
}

/** The promotion decision on a run's release. */
export interface SeriesDecision {
  promote: boolean;
  reasons: string[];
  /** Who decided: the coordinator's series module, or the simulator's interim stand-in. */
  by: 'coordinator' | 'simulator';
  championAfter: number | null;
}

/** Who runs the series. */
export interface SeriesAdapter {
  readonly kind: 'coordinator' | 'studies';
  create(template: SeriesTemplate): Promise<void>;
  /** Starts the next run now. */
  runNow(run: number): Promise<SeriesRunStart>;
  /**
   * The decision on the run's release (`version`). The coordinator decides on its own (this
   * waits for it); the interim adapter decides with `comparisons` (challenger − champion per
   * clinic on its test patients, computed by the driver).
   */
  decision(run: SeriesRunStart, version: number, comparisons: () => Promise<SiteComparison[]>): Promise<SeriesDecision>;
}

/** The series every simulated year runs: the headline T2D study, yearly, over the last 4 index years, warm-started, promoted automatically. */
export function lhsTemplate(o: { name: string; rounds: number; seed: number; maxClinics: number }): SeriesTemplate {
  const { name: _name, ...study } = t2dManifest({ rounds: o.rounds, clinics: o.maxClinics, quorum: 2, seed: o.seed, name: o.name });
  // The network grows (a clinic joins in year 3) and a small clinic may be unable to train: any
  // two clinics can run a round, all of them are waited for (selection grace) when ready.
  study.clients = { min: 2, max: o.maxClinics, quorum: 2 };
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

type Admin = Pick<CoordinatorHandle, 'admin' | 'adminPort' | 'adminToken'>;

/** PUT on the admin API (CoordinatorHandle.admin has GET and POST only). */
async function put(c: Admin, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${c.adminPort}${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const windowOf = (m: { data: { cohort?: { index: { from: string; to: string } } | undefined } }): { from: string; to: string } => {
  const index = m.data.cohort?.index;
  if (index === undefined) throw new FedlhsError('INTERNAL', 'a series run of the T2D study has a cohort index window');
  return { from: index.from, to: index.to };
};

/** The champion alias of `name` with the SHA-256 of its weights.bin, or undefined. */
async function championOf(c: Admin, name: string): Promise<SeriesChampion | undefined> {
  const list = await c.admin<{ aliases: { alias: string; version: number }[] }>('GET', `/api/v1/releases?study=${encodeURIComponent(name)}`);
  if (list.status !== 200) throw errorFromBody((list.body as { error?: unknown }).error, `releases of ${name}: ${list.status} `);
  const alias = list.body.aliases.find((a) => a.alias === 'champion');
  if (alias === undefined) return undefined;
  const detail = await c.admin<{ files: { name: string; sha256: string }[] }>('GET', `/api/v1/releases/${encodeURIComponent(name)}/${alias.version}`);
  const weights = detail.body.files?.find((f) => f.name === 'weights.bin');
  if (detail.status !== 200 || weights === undefined) throw new FedlhsError('NOT_FOUND', `release ${name} v${alias.version} (the champion) has no weights.bin: HTTP ${detail.status}`);
  return { version: alias.version, weightsSha256: weights.sha256 };
}

/** INTERIM: single studies derived from the template, decisions by the simulator (see the file comment). */
export function studiesAdapter(c: Admin, now: () => number = Date.now): SeriesAdapter {
  let template: SeriesTemplate | undefined;
  return {
    kind: 'studies',
    async create(t) {
      template = t;
    },
    async runNow(run) {
      if (template === undefined) throw new FedlhsError('FAILED_PRECONDITION', 'the series was not created');
      const champion = await championOf(c, template.name);
      const { series: _series, ...manifest } = deriveSeriesRun(template, run, now(), champion);
      const started = await startStudy(c as CoordinatorHandle, manifest);
      return { run, studyId: started.id, manifestSha256: started.manifestSha256, window: windowOf(manifest), champion };
    },
    async decision(run, version, comparisons) {
      if (template === undefined) throw new FedlhsError('FAILED_PRECONDITION', 'the series was not created');
      let decision: PromotionDecision;
      if (run.champion === undefined) decision = { promote: true, reasons: ['first release: there is no champion to compare with'], tooSmall: [], worse: [] };
      else decision = decidePromotion(template.promotion, await comparisons(), (template.study.data as { minCellCount: number }).minCellCount);
      if (decision.promote) {
        const res = await put(c, `/api/v1/releases/${encodeURIComponent(template.name)}/aliases/champion`, { version });
        if (res.status !== 200) throw errorFromBody((res.body as { error?: unknown }).error, `champion alias → v${version}: ${res.status} `);
      }
      return { promote: decision.promote, reasons: decision.reasons, by: 'simulator', championAfter: decision.promote ? version : (run.champion?.version ?? null) };
    },
  };
}

interface SeriesDetailJson {
  runs: { run: number; studyId: string; releasedVersion: number | null; decision: { action: string; version: number; evidence: { promote?: boolean; reasons?: string[] } | null } | null }[];
  championVersion: number | null;
}

/** The coordinator's own series (POST /api/v1/series, run-now, decisions read back). */
export function coordinatorAdapter(c: Admin, waitForDecision: (run: number) => Promise<void>): SeriesAdapter {
  let name: string | undefined;
  return {
    kind: 'coordinator',
    async create(t) {
      const res = await c.admin('POST', '/api/v1/series', t);
      if (res.status !== 201) throw errorFromBody((res.body as { error?: unknown }).error, `series create: ${res.status} `);
      name = t.name;
    },
    async runNow(run) {
      if (name === undefined) throw new FedlhsError('FAILED_PRECONDITION', 'the series was not created');
      const champion = await championOf(c, name);
      const res = await c.admin<{ run: number; studyId: string }>('POST', `/api/v1/series/${encodeURIComponent(name)}/run-now`);
      if (res.status !== 201) throw errorFromBody((res.body as { error?: unknown }).error, `series run-now: ${res.status} `);
      if (res.body.run !== run) throw new FedlhsError('INTERNAL', `the coordinator started run ${res.body.run} of series ${name}, the simulation expected run ${run}`);
      const study = await c.admin<{ manifestSha256: string; manifest: { data: { cohort?: { index: { from: string; to: string } } } } }>('GET', `/api/v1/studies/${encodeURIComponent(res.body.studyId)}`);
      return { run, studyId: res.body.studyId, manifestSha256: study.body.manifestSha256, window: windowOf(study.body.manifest), champion };
    },
    async decision(run) {
      if (name === undefined) throw new FedlhsError('FAILED_PRECONDITION', 'the series was not created');
      await waitForDecision(run.run);
      const detail = await c.admin<SeriesDetailJson>('GET', `/api/v1/series/${encodeURIComponent(name)}`);
      const r = detail.body.runs?.find((x) => x.run === run.run);
      if (detail.status !== 200 || r === undefined || r.decision === null) throw new FedlhsError('NOT_FOUND', `series ${name} run ${run.run}: no promotion decision recorded (HTTP ${detail.status})`);
      return { promote: r.decision.action === 'promote', reasons: r.decision.evidence?.reasons ?? [], by: 'coordinator', championAfter: detail.body.championVersion };
    },
  };
}

/**
 * The adapter `choice` names; `auto` asks the coordinator for its series list and takes the
 * coordinator's series when its series actions answer, the interim single studies otherwise
 * (logged: a simulation never claims the coordinator decided what the simulator decided).
 */
export async function chooseAdapter(choice: 'auto' | 'coordinator' | 'studies', c: Admin, waitForDecision: (run: number) => Promise<void>, log: (line: string) => void): Promise<SeriesAdapter> {
  if (choice === 'studies') return studiesAdapter(c);
  if (choice === 'coordinator') return coordinatorAdapter(c, waitForDecision);
  // A pause of an unknown series: 503 UNAVAILABLE without the series service, 404 NOT_FOUND with it.
  const probe = await c.admin<{ error?: { code?: string } }>('POST', '/api/v1/series/lhs-probe-none/pause');
  if (probe.status === 404 && probe.body.error?.code === 'NOT_FOUND') return coordinatorAdapter(c, waitForDecision);
  log(`WARNING: this coordinator does not run study series (POST /api/v1/series/…: HTTP ${probe.status} ${probe.body.error?.code ?? ''}); each year runs as a single study and the SIMULATOR decides promotions (interim adapter)`);
  return studiesAdapter(c);
}
