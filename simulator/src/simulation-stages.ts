import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTestPart, validateManifest, studyFeatureNames, type StudyManifest } from '@fedlhs/core';
import { assessReadiness, extractCohort, openEhrSource, splitDataset, type CohortReport, type Dataset, type SplitDataset } from '@fedlhs/ehr';
import { FORMAT_DIRS, defaultClinics, generateClinic, type ClinicProfile, type ClinicTruth } from '@fedlhs/synth';
import type { ManagedProcess } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, startStudy, waitForRelease, waitForStudyEnd, type ReleasedRound, type StudyDetail } from './local-network.js';
import type { SimulationOptions } from './simulation-types.js';
import { t2dManifest } from './t2d-study.js';

/**
 * The stages of the default simulation shared by `fedlhs-simulate run` (simulate.ts) and
 * `dp-utility` (dp-utility.ts): the synthetic clinics and their cohorts, and one federated study
 * over real coordinator and agent processes.
 */

/** Clinics read their export in turn as Synthea CSV, FHIR bulk ndjson and OMOP CDM CSV. */
const FORMATS = ['synthea-csv', 'fhir-ndjson', 'omop-csv'] as const;
export const formatFor = (i: number): (typeof FORMATS)[number] => FORMATS[i % FORMATS.length]!;

/**
 * OMOP person_id → the generator's patient id (person_source_value), so an OMOP clinic's
 * hold-out patients can be scored with their true risk. Our own writer's person.csv has no
 * quoted cells.
 */
function omopPatientIds(dir: string): Map<string, string> {
  const [header, ...rows] = readFileSync(join(dir, 'person.csv'), 'utf8').trim().split('\n');
  const cols = header!.split(',');
  const id = cols.indexOf('person_id');
  const source = cols.indexOf('person_source_value');
  return new Map(rows.map((r) => r.split(',')).map((c) => [c[id]!, c[source]!]));
}

/**
 * The test part of a hold-out split (proto "Validation and test parts"): the patients that chose
 * nothing. The coordinator chose the released round on the others' validation figures, so
 * scoring the released model on them would flatter it.
 */
export function testPart(d: Dataset, seed: number, fraction: number): Dataset {
  return rowsWhere(d, (k) => isTestPart(k, seed, fraction));
}

/** The rows of `d` whose keys `keep` accepts, in order. */
export function rowsWhere(d: Dataset, keep: (key: string) => boolean): Dataset {
  const idx = d.keys.flatMap((k, i) => (keep(k) ? [i] : []));
  const w = d.features.length;
  const x = new Float32Array(idx.length * w);
  const y = new Float32Array(idx.length);
  idx.forEach((src, dst) => {
    x.set(d.x.subarray(src * w, (src + 1) * w), dst * w);
    y[dst] = d.y[src]!;
  });
  return { features: d.features, x, y, keys: idx.map((i) => d.keys[i]!), rows: idx.length, skipped: {} };
}

/** What the clinics of a simulation are: generated, extracted and judged as their agents will. */
export interface PreparedClinics {
  profiles: ClinicProfile[];
  truths: ClinicTruth[];
  cohorts: { split: SplitDataset; report: CohortReport; truthIds: Map<string, string> | undefined }[];
  /** Whether each clinic passes the agents' readiness rule (the others still receive the model). */
  participating: boolean[];
  /** Feature names of the study, in model order. */
  names: string[];
  /** The study's manifest as started (validated): `studyInput` with its defaults. */
  manifest: StudyManifest;
  /** The manifest sent to the coordinator (the t2d study for the participating clinics). */
  studyInput: Record<string, unknown>;
}

/** Options of the stages: the simulation's. */
export type StageOptions = SimulationOptions;

/**
 * Stages 1 and 2: generates the synthetic clinics under `o.out/clinics` (one export format each,
 * in turn) and extracts each clinic's cohort exactly as its agent will; clinics the agents'
 * readiness rule keeps out are named in the log.
 */
export async function prepareClinics(o: StageOptions): Promise<PreparedClinics> {
  const profiles: ClinicProfile[] = defaultClinics(o.clinics, o.seed).map((p) => ({ ...p, patients: Math.max(50, Math.round(p.patients * o.scale)) }));
  const truths: ClinicTruth[] = [];
  for (const p of profiles) {
    truths.push(await generateClinic(p, join(o.out, 'clinics', p.name), [formatFor(truths.length)]));
    o.log(`generated ${p.name}: ${p.patients} patients (${truths.at(-1)!.eligible} eligible, prevalence ${(truths.at(-1)!.prevalence * 100).toFixed(1)}%)`);
  }
  const probe = validateManifest(t2dManifest({ rounds: o.rounds, clinics: profiles.length, quorum: 1, seed: o.seed }));
  const names = studyFeatureNames(probe);
  const cohorts: PreparedClinics['cohorts'] = [];
  for (const [i, p] of profiles.entries()) {
    const format = formatFor(i);
    const dir = join(o.out, 'clinics', p.name, FORMAT_DIRS[format]);
    const { dataset, report } = await extractCohort(openEhrSource(format, dir), probe.data.cohort!);
    const truthIds = format === 'omop-csv' ? omopPatientIds(dir) : undefined;
    cohorts.push({ split: splitDataset(dataset, probe.seed, probe.data.holdoutFraction), report, truthIds });
  }
  // The agents' own rule (minimum cohort 20, the agent default): clinics it refuses still get the model.
  const verdicts = cohorts.map((c) => assessReadiness(c.split, { minCohort: 20, minCellCount: probe.data.minCellCount }));
  const participating = verdicts.map((v) => v.ready);
  verdicts.forEach((v, i) => {
    if (!v.ready) o.log(`${profiles[i]!.name} cannot train here: ${v.detail}; it still receives the federated model`);
  });
  const k = participating.filter(Boolean).length;
  const studyInput = t2dManifest({ rounds: o.rounds, clinics: k, quorum: Math.max(1, Math.ceil(k / 2)), seed: o.seed });
  return { profiles, truths, cohorts, participating, names, manifest: validateManifest(studyInput), studyInput };
}

/** One federated study's outcome: its detail, release and the agents' log lines. */
export interface FederatedRun {
  detail: StudyDetail;
  /** Undefined when the study did not complete. */
  released: ReleasedRound | undefined;
  studyId: string;
  manifestSha256: string;
  /** The coordinator's data directory (where the committed checkpoints are). */
  coordinatorDir: string;
  /** The agents (stopped), whose log lines stay readable (`events`). */
  agents: ManagedProcess[];
}

/**
 * Stage 3: one federated study over real processes and real gRPC: a coordinator in `net`, one
 * agent per clinic (`agentEnv` adds to each agent's environment), the study `studyInput`; waits
 * for its end, its release, and every clinic keeping the release.
 */
export async function runFederatedStudy(
  o: Pick<StageOptions, 'out' | 'log'>, prep: Pick<PreparedClinics, 'profiles' | 'participating'>, studyInput: Record<string, unknown>, net: string, agentEnv: NodeJS.ProcessEnv = {},
): Promise<FederatedRun> {
  const coordinatorDir = join(net, 'coordinator');
  const coordinator = await startCoordinator({ dataDir: coordinatorDir, heartbeatIntervalMs: 1000, selectionGraceMs: 300, env: { FEDLHS_LOG_LEVEL: 'info' } });
  const agents: ManagedProcess[] = [];
  const k = prep.participating.filter(Boolean).length;
  const rounds = Number(studyInput.rounds);
  let detail: StudyDetail;
  let released: ReleasedRound | undefined;
  let studyId: string;
  let manifestSha256: string;
  try {
    for (const [i, p] of prep.profiles.entries()) {
      const format = formatFor(i);
      const agent = {
        name: p.name, stateDir: join(net, p.name), dataFormat: format, coordinator: coordinator.address, autoApprove: true,
        dataPath: join(o.out, 'clinics', p.name, FORMAT_DIRS[format]), env: { FEDLHS_LOG_LEVEL: 'info', ...agentEnv },
      };
      await enrolAgent(coordinator, agent);
      agents.push(startAgent(agent));
    }
    const study = await startStudy(coordinator, studyInput);
    studyId = study.id;
    manifestSha256 = study.manifestSha256;
    o.log(`study ${study.id}: ${k} of ${prep.profiles.length} clinics can take part, ${rounds} rounds`);
    const onLine = (l: Record<string, unknown>): boolean => {
      if (l.studyId === study.id && l.event === 'round.committed') {
        o.log(`  round ${String(l.round).padStart(2)} committed: federated validation AUC ${typeof l.auc === 'number' ? l.auc.toFixed(3) : '-'}, loss ${typeof l.loss === 'number' ? l.loss.toFixed(4) : '-'}`);
      }
      if (l.studyId === study.id && l.event === 'statistics.derived') o.log(`  ${String(l.msg)}`);
      return false;
    };
    // A predicate that never matches: it is called for every new log line, which prints progress.
    coordinator.proc.waitForNext(onLine, 3_600_000).catch(() => undefined);
    detail = await waitForStudyEnd(coordinator, study.id, 3_600_000);
    if (detail.state === 'COMPLETED') {
      released = await waitForRelease(coordinator, study.id);
      o.log(`release ${released.studyName} v${released.version}: round ${released.round} of ${detail.lastCommittedRound} (${released.rule})`);
      // Dissemination: every clinic, those too small to train included, verifies and keeps it.
      const { studyName, version } = released;
      await Promise.all(agents.map((a) => a.waitForEvent('release.kept', { studyName, version }, 120_000)));
      o.log(`  verified and kept by all ${agents.length} clinics, including those that could not train`);
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator.stop();
  }
  return { detail, released, studyId, manifestSha256, coordinatorDir, agents };
}
