import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, combineStats, computeClinicStats, deriveSeriesRun, normalizationFrom, seriesTemplateHash, studyFeatureNames, validateManifest, type Normalization, type StudyManifest } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import { DEFAULT_DRIFT, FORMAT_DIRS, LHS_FIRST_YEAR, clinicInYear, driftingNetwork, generateClinic, joinYear, yearCalendar, yearRunAt, type DriftingClinic } from '@fedlhs/synth';
import type { ManagedProcess } from '@fedlhs/testing';
import { asMatrix } from './baselines.js';
import { BOOTSTRAP_RESAMPLES, MIN_CASES_FOR_AUC, assess, pairedAucDifference, type Assessment } from './evaluation.js';
import { localScorer, releaseScorer, yearCohort, type Scorer, type YearCohort } from './lhs-eval.js';
import { lhsFindings, lhsNotHolding, lhsVerdicts } from './lhs-report.js';
import { INSULIN, ScheduledSeries, lhsTemplate } from './lhs-series.js';
import type { LhsClinicYear, LhsFirstDay, LhsOptions, LhsReport, LhsRun } from './lhs-types.js';
import { enrolAgent, startAgent, startCoordinator, waitForRelease, waitForStudyEnd, type AgentOptions, type StudyDetail } from './local-network.js';
import { formatFor } from './simulation-stages.js';

export type { LhsOptions, LhsReport } from './lhs-types.js';

const SERIES_NAME = 't2d-lhs';

function checkOptions(o: LhsOptions): void {
  const bad = (field: string, msg: string): never => {
    throw new FedlhsError('INVALID_ARGUMENT', `lhs: ${field} ${msg}`, { details: { field } });
  };
  if (!Number.isInteger(o.years) || o.years < 1 || o.years > 20) bad('years', `must be a whole number in 1..20, got ${o.years}`);
  if (!(o.scale > 0 && o.scale <= 10)) bad('scale', `must be in (0, 10], got ${o.scale}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 1000) bad('rounds', `must be a whole number in 1..1000, got ${o.rounds}`);
  if (!Number.isInteger(o.seed) || o.seed < 1) bad('seed', `must be a whole number from 1, got ${o.seed}`);
  // Clinics check a run's window against their own date: the last run must be due by today, or no clinic's series approval covers it.
  if (Number.isInteger(o.years) && yearRunAt(o.years) > Date.now()) {
    bad('years', `${o.years} reaches ${new Date(yearRunAt(o.years)).toISOString().slice(0, 10)}: simulated year 1 is ${LHS_FIRST_YEAR}, and the last run must be due by today (a clinic covers a run only when every outcome of its window is known by its own date)`);
  }
}

/** Occurrences of `code` in the files of an export directory (the new assay's footprint). */
function countCode(dir: string, code: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += readFileSync(join(dir, f), 'utf8').split(code).length - 1;
  return n;
}

/** Points `link` at `target` atomically (a new symlink renamed over the old): an agent reading `link` sees the old export or the new one, never half of one. */
function swapExport(link: string, target: string): void {
  const tmp = `${link}.next`;
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp, 'dir');
  renameSync(tmp, link);
}

/** What an agent told the coordinator about its data for `studyId`: its data.warning lines, and why it was not READY. */
function agentWarnings(agent: ManagedProcess, studyId: string): string[] {
  const out = new Set<string>();
  for (const l of agent.events('data.warning', { studyId })) for (const w of (l.warnings as string[] | undefined) ?? []) out.add(w);
  for (const l of agent.events('readiness.sent', { studyId })) if (l.readiness !== 'READINESS_READY' && typeof l.detail === 'string') out.add(`${String(l.readiness)}: ${l.detail}`);
  for (const l of agent.events('study.awaiting_approval', { studyId })) out.add(`awaiting approval: ${String(l.detail)}`);
  return [...out];
}

/**
 * The learning health system over simulated years (issue 13): clinics whose exports change
 * every year (synth drift.ts: prevalence drift, a glucose unit and code switch, a new assay, a
 * clinic joining in year 3), a series the coordinator runs on its yearly cron schedule through
 * real agent processes, and every clinic's figures per year on that year's test patients: the
 * model frozen after year 1, the champion of continuous learning, and a local-only model, with
 * 95 % intervals.
 *
 * Simulated time is the coordinator's series clock (FEDLHS_SERIES_SIMULATED_CLOCK): each year's
 * exports are written on that year's natural calendar (ending 31 December), swapped in under
 * each agent's data path, and the clock is moved to the next 1 January, where the schedule
 * starts the run itself. Agents run across all years (a new clinic's from its join year).
 */
export async function runLhs(o: LhsOptions): Promise<LhsReport> {
  checkOptions(o);
  const t0 = performance.now();
  const timings: Record<string, number> = { generate: 0, federated: 0, evaluate: 0 };
  const drift = o.drift ?? DEFAULT_DRIFT;
  const founders = o.founders ?? 4;
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const backend = await initBackend('auto');
  const network = driftingNetwork(o.seed, founders);
  const formatOf = (c: DriftingClinic): ReturnType<typeof formatFor> => formatFor(network.indexOf(c));
  const template = lhsTemplate({ name: SERIES_NAME, rounds: o.rounds, seed: o.seed, maxClinics: network.length });
  const boot = { seed: o.seed };
  const net = join(o.out, 'network');
  const coordinator = await startCoordinator({
    dataDir: join(net, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 2000,
    env: { FEDLHS_LOG_LEVEL: 'info', FEDLHS_SERIES_SIMULATED_CLOCK: 'true' },
  });
  const agents = new Map<string, ManagedProcess>();
  const nodeIds = new Map<string, string>();
  const scorers = new Map<number, Scorer>();
  const runs: LhsRun[] = [];
  const clinicYears: LhsClinicYear[] = [];
  let firstDay: LhsFirstDay | null = null;
  const insulinCounts = new Map<number, number>();
  let champion: number | null = null;
  let frozen: number | null = null;
  try {
    const series = new ScheduledSeries(coordinator, SERIES_NAME);
    // The series is created in the middle of year 1: its first scheduled run is 1 January after it.
    await series.create(template, Date.UTC(LHS_FIRST_YEAR, 6, 1));
    o.log(`series ${SERIES_NAME} created at ${LHS_FIRST_YEAR}-07-01 (simulated series clock), template sha256 ${seriesTemplateHash(template).slice(0, 16)}…; runs every 1 January`);

    for (let year = 1; year <= o.years; year++) {
      // 1. This year's exports, on its natural calendar, swapped in under each agent's data path (no run is in progress now).
      let t = performance.now();
      const runAt = yearRunAt(year);
      const expected = deriveSeriesRun(template, year, runAt);
      const present = network.filter((c) => clinicInYear(c, year, drift) !== undefined);
      const dirs = new Map<string, string>();
      for (const c of present) {
        const p = clinicInYear(c, year, drift)!;
        const profile = { ...p, patients: Math.max(50, Math.round(p.patients * o.scale)) };
        const root = join(o.out, 'clinics', c.base.name, `year-${year}`);
        const truth = await generateClinic(profile, root, [formatOf(c)], { dayOffset: yearCalendar(year).dayOffset });
        dirs.set(c.base.name, join(root, FORMAT_DIRS[formatOf(c)]));
        swapExport(join(o.out, 'clinics', c.base.name, 'export'), dirs.get(c.base.name)!);
        if (profile.insulinAssay === true) insulinCounts.set(year, (insulinCounts.get(year) ?? 0) + countCode(dirs.get(c.base.name)!, INSULIN.code));
        o.log(`year ${year} (${LHS_FIRST_YEAR + year - 1}): ${c.base.name} ${profile.patients} patients (${truth.eligible} eligible, prevalence ${(truth.prevalence * 100).toFixed(1)}%)${joinYear(c, drift) === year && year > 1 ? ' joins the network' : ''}`);
      }
      timings.generate! += Math.round(performance.now() - t);

      // 2. A clinic that joins this year enrols and starts its agent; the others keep running.
      t = performance.now();
      const joining = present.filter((c) => !agents.has(c.base.name));
      for (const c of joining) {
        const agent: AgentOptions = {
          name: c.base.name, stateDir: join(net, c.base.name), dataFormat: formatOf(c), coordinator: coordinator.address, autoApprove: true,
          dataPath: join(o.out, 'clinics', c.base.name, 'export'), env: { FEDLHS_LOG_LEVEL: 'info' },
        };
        nodeIds.set(c.base.name, await enrolAgent(coordinator, agent));
        agents.set(c.base.name, startAgent(agent));
      }
      await Promise.all(joining.map((c) => agents.get(c.base.name)!.waitForEvent('agent.connected', undefined, 60_000)));

      // 3. The clock moves to 1 January: the series' cron schedule starts the year's run.
      await series.moveClock(runAt);
      const start = await series.waitForRun(year);
      if (start.window.to !== expected.data.cohort!.index.to) {
        o.log(`WARNING: year ${year}'s run has the index window ${start.window.from}..${start.window.to}, derived at ${start.scheduledAt}; the exports were written for ..${expected.data.cohort!.index.to}: patients on the edge are lost`);
      }
      const detail = (await waitForStudyEnd(coordinator, start.studyId, 3_600_000)) as StudyDetail & { manifest: unknown; parameters: { normalization?: Normalization } | null };
      const manifest: StudyManifest = validateManifest(detail.manifest);
      const byNode = new Map([...nodeIds].map(([name, id]) => [id, name]));
      const trained = [...new Set(detail.contributions.filter((x) => x.accepted).map((x) => byNode.get(x.nodeId) ?? x.nodeId))].sort();
      const release = detail.state === 'COMPLETED' ? await waitForRelease(coordinator, start.studyId) : undefined;
      const warningsOf = new Map(present.map((c) => [c.base.name, agentWarnings(agents.get(c.base.name)!, start.studyId)]));
      timings.federated! += Math.round(performance.now() - t);
      o.log(`year ${year}: run ${year} started by ${start.trigger} at ${start.scheduledAt} (study ${start.studyId}, window ${start.window.from}..${start.window.to}) ${detail.state}, trained by ${trained.join(', ') || 'nobody'}${release === undefined ? '' : `; release v${release.version} (round ${release.round})`}`);
      for (const [name, w] of warningsOf) if (w.length > 0) o.log(`year ${year}: ${name} reported: ${w.join('; ')}`);

      // 4. The year's cohorts, the release as a scorer, and the champion decision.
      t = performance.now();
      const cohorts = new Map<string, YearCohort>();
      for (const c of present) cohorts.set(c.base.name, await yearCohort(formatOf(c), dirs.get(c.base.name)!, manifest));
      // Each agent must have trained on this year's export (the one swapped in under its data path), not a cached older one.
      const stale: string[] = [];
      for (const [name, id] of nodeIds) {
        const rows = [...new Set(detail.metrics.filter((m) => m.nodeId === id && m.phase === 'training').map((m) => m.numExamples))];
        const expectedRows = cohorts.get(name)?.split.train.rows;
        if (rows.length > 0 && expectedRows !== undefined && rows.some((n) => n !== expectedRows)) stale.push(`${name} trained on ${rows.join('/')} patients, this year's export gives ${expectedRows}`);
      }
      if (stale.length > 0) o.log(`WARNING: year ${year}: an agent did not train on this year's export: ${stale.join('; ')}`);
      const names = studyFeatureNames(manifest);
      const championBefore = champion;
      let decision: LhsRun['decision'] = null;
      if (release !== undefined) {
        const challenger = await releaseScorer(join(net, 'coordinator'), detail, manifest, release.round, release.version);
        scorers.set(release.version, challenger);
        const d = await series.decision(year);
        decision = { promote: d.promote, reasons: d.reasons, pooled: d.pooled, tooSmall: d.tooSmall, worse: d.worse };
        champion = d.championAfter;
        const pooled = d.pooled === null ? '' : ` (pooled challenger − champion ${d.pooled.difference.toFixed(3)} [${d.pooled.interval[0].toFixed(3)}, ${d.pooled.interval[1].toFixed(3)}] over ${d.pooled.sites} clinics)`;
        o.log(`year ${year}: release v${release.version} ${d.promote ? 'promoted to champion' : `kept out (champion stays v${championBefore ?? '-'})`} by the coordinator${pooled}: ${d.reasons.join('; ')}`);
      }
      if (year === 1) frozen = champion;
      runs.push({
        year, run: start.run, studyId: start.studyId, state: detail.state, manifestSha256: start.manifestSha256, trigger: start.trigger, scheduledAt: start.scheduledAt, window: start.window,
        clinics: present.map((c) => c.base.name), trained, championBefore: start.championVersion,
        warmStart: detail.rounds.some((x) => x.round === 0 && x.state === 'COMMITTED' && (x.reason ?? '').includes('warm start')),
        release: release === undefined ? null : { version: release.version, round: release.round, rule: release.rule }, decision, championAfter: champion,
        agentWarnings: [...warningsOf].flatMap(([name, w]) => w.map((x) => `${name}: ${x}`)),
        staleExports: stale,
      });
      if (start.championVersion !== championBefore) o.log(`WARNING: year ${year}'s run was derived with champion ${start.championVersion === null ? 'none' : `v${start.championVersion}`}, the simulation expected ${championBefore === null ? 'none' : `v${championBefore}`}`);

      // 5. Every clinic on its test patients: frozen, continuous, in use, local-only.
      const epochs = o.rounds * manifest.training.localEpochs;
      for (const c of present) {
        const ch = cohorts.get(c.base.name)!;
        const test = asMatrix(ch.test);
        const scoreWith = async (v: number | null): Promise<Float32Array | null> => (v === null || test.rows === 0 ? null : scorers.get(v)!.score(test));
        const [fs, cs, us, xs] = [await scoreWith(frozen), await scoreWith(champion), await scoreWith(championBefore), await scoreWith(release?.version ?? null)];
        // The clinic's own z-scores; a feature it never measures (insulin before the assay) is excluded, as the series' normalisation does.
        const local = await localScorer(manifest, ch.split.train, epochs, o.seed, (m) => normalizationFrom(combineStats([computeClinicStats(m.x, m.y, names, 0)]), { fallback: 'exclude' }));
        const ls = local === undefined || test.rows === 0 ? null : await local.score(test);
        const a = (s: Float32Array | null): Assessment | null => (s === null ? null : assess(s, test.y, boot));
        const missing = (name: string): number => {
          const f = ch.report.features.find((x) => x.name === name);
          return f === undefined || ch.report.eligible === 0 ? 0 : f.missing / ch.report.eligible;
        };
        clinicYears.push({
          clinic: c.base.name, year, format: formatOf(c), joined: joinYear(c, drift) === year,
          eligible: ch.report.eligible, prevalence: ch.report.eligible === 0 ? 0 : ch.report.positives / ch.report.eligible,
          test: { n: test.rows, cases: test.y.reduce((s, v) => s + v, 0) },
          glucoseMissing: missing('glucose'), insulinMissing: missing('insulin'),
          warnings: ch.report.warnings, agentWarnings: warningsOf.get(c.base.name) ?? [],
          frozen: a(fs), continuous: a(cs), inUse: a(us), challenger: a(xs), local: a(ls),
          continuousVsFrozen: cs === null || fs === null ? null : pairedAucDifference(cs, fs, test.y, boot),
          continuousVsLocal: cs === null || ls === null ? null : pairedAucDifference(cs, ls, test.y, boot),
          challengerVsFrozen: xs === null || fs === null || year === 1 ? null : pairedAucDifference(xs, fs, test.y, boot),
        });
        if (c.joinsLate && joinYear(c, drift) === year) {
          const all = asMatrix(ch.all);
          const onAll = championBefore === null ? null : await scorers.get(championBefore)!.score(all);
          firstDay = {
            clinic: c.base.name, year, championVersion: championBefore,
            championOnAll: onAll === null ? null : assess(onAll, all.y, boot),
            championOnTest: a(us), localOnTest: a(ls),
            championVsLocal: us === null || ls === null ? null : pairedAucDifference(us, ls, test.y, boot),
          };
        }
        local?.dispose();
      }
      timings.evaluate! += Math.round(performance.now() - t);
    }
  } finally {
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await coordinator.stop();
    for (const s of scorers.values()) s.dispose();
  }
  timings.total = Math.round(performance.now() - t0);
  const report: LhsReport = {
    kind: 'lhs',
    createdAt: new Date().toISOString(),
    settings: {
      years: o.years, scale: o.scale, seed: o.seed, rounds: o.rounds, founders, backend: backend.backend, drift: { ...drift },
      firstCalendarYear: LHS_FIRST_YEAR,
      bootstrap: { resamples: BOOTSTRAP_RESAMPLES, seed: o.seed, minCases: MIN_CASES_FOR_AUC },
    },
    series: { name: SERIES_NAME, templateSha256: seriesTemplateHash(template) },
    runs,
    clinicYears,
    firstDay,
    verdicts: [],
    notHolding: [],
    findings: [],
    timings,
  };
  report.verdicts = lhsVerdicts(report);
  report.notHolding = lhsNotHolding(report);
  report.findings = lhsFindings(report, network.find((c) => c.switchesGlucose)?.base.name, network.find((c) => c.startsInsulin)?.base.name, insulinCounts);
  return report;
}
