import { readdirSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, deriveSeriesRun, seriesTemplateHash, studyFeatureNames, validateManifest, type Normalization, type StudyManifest } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import { DEFAULT_DRIFT, FORMAT_DIRS, INDEX_WINDOW_END_DAY, clinicInYear, driftingNetwork, generateClinic, joinYear, type DriftingClinic } from '@fedlhs/synth';
import type { ManagedProcess } from '@fedlhs/testing';
import { asMatrix, zscoreFrom } from './baselines.js';
import { BOOTSTRAP_RESAMPLES, MIN_CASES_FOR_AUC, assess, pairedAucDifference, type Assessment } from './evaluation.js';
import { localScorer, releaseScorer, siteComparison, yearCohort, type Scorer, type YearCohort } from './lhs-eval.js';
import { lhsFindings, lhsVerdicts } from './lhs-report.js';
import { chooseAdapter, lhsTemplate } from './lhs-series.js';
import type { LhsClinicYear, LhsFirstDay, LhsOptions, LhsReport, LhsRun } from './lhs-types.js';
import { enrolAgent, startAgent, startCoordinator, waitForRelease, waitForStudyEnd, type AgentOptions, type StudyDetail } from './local-network.js';

export type { LhsOptions, LhsReport } from './lhs-types.js';

const FORMATS = ['synthea-csv', 'fhir-ndjson', 'omop-csv'] as const;
type Format = (typeof FORMATS)[number];
const SERIES_NAME = 't2d-lhs';
const MS_PER_DAY = 86_400_000;
const dayOfIso = (iso: string): number => Date.parse(`${iso}T00:00:00Z`) / MS_PER_DAY;

function checkOptions(o: LhsOptions): void {
  const bad = (field: string, msg: string): never => {
    throw new FedlhsError('INVALID_ARGUMENT', `lhs: ${field} ${msg}`, { details: { field } });
  };
  if (!Number.isInteger(o.years) || o.years < 1 || o.years > 20) bad('years', `must be a whole number in 1..20, got ${o.years}`);
  if (!(o.scale > 0 && o.scale <= 10)) bad('scale', `must be in (0, 10], got ${o.scale}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 1000) bad('rounds', `must be a whole number in 1..1000, got ${o.rounds}`);
  if (!Number.isInteger(o.seed) || o.seed < 1) bad('seed', `must be a whole number from 1, got ${o.seed}`);
}

/** Occurrences of `code` in the files of an export directory (the new assay's footprint). */
function countCode(dir: string, code: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) n += readFileSync(join(dir, f), 'utf8').split(code).length - 1;
  return n;
}

/**
 * The learning health system over simulated years (issue 13): clinics whose exports change
 * every year (synth drift.ts: prevalence drift, a glucose unit and code switch, a new assay, a
 * clinic joining in year 3), one series run a year through a real coordinator and real agent
 * processes, and every clinic's figures per year on that year's test patients: the model frozen
 * after year 1, the champion of continuous learning, and a local-only model, with 95 % intervals.
 *
 * Simulated time lives in the data: every run is derived at the real time it starts, and each
 * year's exports are written on a calendar moved so that the run's index window covers that
 * year's patients (the coordinator's clock is never moved). Agents are restarted each year on the
 * year's export: an agent keeps the cohort it extracted per data definition, and every run here
 * has the same data definition (see the report's findings).
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
  const formatOf = (c: DriftingClinic): Format => FORMATS[network.indexOf(c) % FORMATS.length]!;
  const template = lhsTemplate({ name: SERIES_NAME, rounds: o.rounds, seed: o.seed, maxClinics: network.length });
  const boot = { seed: o.seed };
  const net = join(o.out, 'network');
  const coordinator = await startCoordinator({ dataDir: join(net, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 2000, env: { FEDLHS_LOG_LEVEL: 'info' } });
  const agents = new Map<string, ManagedProcess>();
  const nodeIds = new Map<string, string>();
  const scorers = new Map<number, Scorer>();
  const runs: LhsRun[] = [];
  const clinicYears: LhsClinicYear[] = [];
  let firstDay: LhsFirstDay | null = null;
  const insulinCounts = new Map<number, number>();
  let champion: number | null = null;
  let frozen: number | null = null;
  let adapterKind: 'coordinator' | 'studies' = 'studies';
  try {
    const waitForDecision = async (run: number): Promise<void> => {
      await coordinator.proc.waitFor((l) => (l.event === 'series.promoted' || l.event === 'series.kept') && l.seriesName === SERIES_NAME && l.run === run, 120_000, `the champion decision on run ${run}`);
    };
    const adapter = await chooseAdapter(o.adapter ?? 'auto', coordinator, waitForDecision, o.log);
    adapterKind = adapter.kind;
    await adapter.create(template);
    o.log(`series ${SERIES_NAME} (${adapter.kind === 'coordinator' ? 'run by the coordinator' : 'INTERIM: single studies, promotions decided by the simulator'}), template sha256 ${seriesTemplateHash(template).slice(0, 16)}…`);

    for (let year = 1; year <= o.years; year++) {
      // 1. This year's exports, on the calendar that puts their index window where the run's is.
      let t = performance.now();
      const expected = deriveSeriesRun(template, year, Date.now());
      const dayOffset = dayOfIso(expected.data.cohort!.index.to) - INDEX_WINDOW_END_DAY;
      const present = network.filter((c) => clinicInYear(c, year, drift) !== undefined);
      const dirs = new Map<string, string>();
      for (const c of present) {
        const p = clinicInYear(c, year, drift)!;
        const profile = { ...p, patients: Math.max(50, Math.round(p.patients * o.scale)) };
        const root = join(o.out, 'clinics', c.base.name, `year-${year}`);
        const truth = await generateClinic(profile, root, [formatOf(c)], { dayOffset });
        dirs.set(c.base.name, join(root, FORMAT_DIRS[formatOf(c)]));
        if (profile.insulinAssay === true) insulinCounts.set(year, (insulinCounts.get(year) ?? 0) + countCode(dirs.get(c.base.name)!, '20448-7'));
        o.log(`year ${year}: ${c.base.name} ${profile.patients} patients (${truth.eligible} eligible, prevalence ${(truth.prevalence * 100).toFixed(1)}%)${joinYear(c, drift) === year && year > 1 ? ' joins the network' : ''}`);
      }
      timings.generate! += Math.round(performance.now() - t);

      // 2. Agents on this year's export (restarted: see the function comment); a new clinic enrols.
      t = performance.now();
      await Promise.all([...agents.values()].map((a) => a.stop()));
      agents.clear();
      for (const c of present) {
        const agent: AgentOptions = {
          name: c.base.name, stateDir: join(net, c.base.name), dataFormat: formatOf(c), coordinator: coordinator.address, autoApprove: true,
          dataPath: dirs.get(c.base.name)!, env: { FEDLHS_LOG_LEVEL: 'info' },
        };
        if (!nodeIds.has(c.base.name)) nodeIds.set(c.base.name, await enrolAgent(coordinator, agent));
        agents.set(c.base.name, startAgent(agent));
      }
      await Promise.all([...agents.values()].map((a) => a.waitForEvent('agent.connected', undefined, 60_000)));

      // 3. The year's run.
      const start = await adapter.runNow(year);
      if (start.window.to !== expected.data.cohort!.index.to) {
        o.log(`WARNING: year ${year}'s run has the index window ${start.window.from}..${start.window.to}, the exports were written for ..${expected.data.cohort!.index.to} (the day changed in between): patients on the edge are lost`);
      }
      const detail = (await waitForStudyEnd(coordinator, start.studyId, 3_600_000)) as StudyDetail & { manifest: unknown; parameters: { normalization?: Normalization } | null };
      const manifest: StudyManifest = validateManifest(detail.manifest);
      const byNode = new Map([...nodeIds].map(([name, id]) => [id, name]));
      const trained = [...new Set(detail.contributions.filter((x) => x.accepted).map((x) => byNode.get(x.nodeId) ?? x.nodeId))].sort();
      const release = detail.state === 'COMPLETED' ? await waitForRelease(coordinator, start.studyId) : undefined;
      timings.federated! += Math.round(performance.now() - t);
      o.log(`year ${year}: run ${year} (study ${start.studyId}, window ${start.window.from}..${start.window.to}) ${detail.state}, trained by ${trained.join(', ') || 'nobody'}${release === undefined ? '' : `; release v${release.version} (round ${release.round})`}`);

      // 4. The year's cohorts, the release as a scorer, and the champion decision.
      t = performance.now();
      const cohorts = new Map<string, YearCohort>();
      for (const c of present) cohorts.set(c.base.name, await yearCohort(formatOf(c), dirs.get(c.base.name)!, manifest));
      const names = studyFeatureNames(manifest);
      const championBefore = champion;
      let decision: LhsRun['decision'] = null;
      if (release !== undefined) {
        const challenger = await releaseScorer(join(net, 'coordinator'), detail, manifest, release.round, release.version);
        scorers.set(release.version, challenger);
        const d = await adapter.decision(start, release.version, async () => {
          const sites = [];
          for (const [name, ch] of cohorts) {
            if (ch.test.rows === 0 || championBefore === null) continue;
            const m = asMatrix(ch.test);
            sites.push(siteComparison(name, await challenger.score(m), await scorers.get(championBefore)!.score(m), m.y));
          }
          return sites;
        });
        decision = { promote: d.promote, reasons: d.reasons, by: d.by };
        champion = d.championAfter;
        o.log(`year ${year}: release v${release.version} ${d.promote ? 'promoted to champion' : `kept out (champion stays v${championBefore ?? '-'})`} by the ${d.by}: ${d.reasons.join('; ')}`);
      }
      if (year === 1) frozen = champion;
      runs.push({
        year, run: start.run, studyId: start.studyId, state: detail.state, manifestSha256: start.manifestSha256, window: start.window,
        clinics: present.map((c) => c.base.name), trained, championBefore: start.champion?.version ?? null,
        warmStart: detail.rounds.some((x) => x.round === 0 && x.state === 'COMMITTED' && (x.reason ?? '').includes('warm start')),
        release: release === undefined ? null : { version: release.version, round: release.round, rule: release.rule }, decision, championAfter: champion,
      });

      // 5. Every clinic on its test patients: frozen, continuous, in use, local-only.
      const epochs = o.rounds * manifest.training.localEpochs;
      for (const c of present) {
        const ch = cohorts.get(c.base.name)!;
        const test = asMatrix(ch.test);
        const scoreWith = async (v: number | null): Promise<Float32Array | null> => (v === null || test.rows === 0 ? null : scorers.get(v)!.score(test));
        const [fs, cs, us] = [await scoreWith(frozen), await scoreWith(champion), await scoreWith(championBefore)];
        const local = await localScorer(manifest, ch.split.train, epochs, o.seed, (m) => zscoreFrom([m], names));
        const ls = local === undefined || test.rows === 0 ? null : await local.score(test);
        const a = (s: Float32Array | null): Assessment | null => (s === null ? null : assess(s, test.y, boot));
        const glucose = ch.report.features.find((f) => f.name === 'glucose');
        clinicYears.push({
          clinic: c.base.name, year, format: formatOf(c), joined: joinYear(c, drift) === year,
          eligible: ch.report.eligible, prevalence: ch.report.eligible === 0 ? 0 : ch.report.positives / ch.report.eligible,
          test: { n: test.rows, cases: test.y.reduce((s, v) => s + v, 0) },
          glucoseMissing: glucose === undefined || ch.report.eligible === 0 ? 0 : glucose.missing / ch.report.eligible,
          warnings: ch.report.warnings,
          frozen: a(fs), continuous: a(cs), inUse: a(us), local: a(ls),
          continuousVsFrozen: cs === null || fs === null ? null : pairedAucDifference(cs, fs, test.y, boot),
          continuousVsLocal: cs === null || ls === null ? null : pairedAucDifference(cs, ls, test.y, boot),
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
      adapter: adapterKind,
      bootstrap: { resamples: BOOTSTRAP_RESAMPLES, seed: o.seed, minCases: MIN_CASES_FOR_AUC },
    },
    series: { name: SERIES_NAME, templateSha256: seriesTemplateHash(template) },
    runs,
    clinicYears,
    firstDay,
    verdicts: [],
    findings: [],
    timings,
  };
  report.verdicts = lhsVerdicts(report);
  report.findings = lhsFindings(report, network.find((c) => c.switchesGlucose)?.base.name, network.find((c) => c.startsInsulin)?.base.name, insulinCounts);
  return report;
}
