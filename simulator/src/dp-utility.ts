import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, releasePolicy, validateManifest, type Normalization, type PrivacySection } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import { asMatrix, concat, normalized, withWeights } from './baselines.js';
import { BOOTSTRAP_RESAMPLES, assess, pairedAucDifference, type Assessment, type PairedAucDifference } from './evaluation.js';
import { DP_DELTA, FALLBACK_CLIP_NORM, clinicEpsilon, medianUpdateNorm, noiseForEpsilon, privacySectionFor, type Placement } from './dp-accounting.js';
import { committedSha256, readCommittedModel, type StudyDetail } from './local-network.js';
import { prepareClinics, runFederatedStudy, testPart, type FederatedRun, type StageOptions } from './simulation-stages.js';
import { signed } from './format.js';

/** Options of `fedlhs-simulate dp-utility`. */
export interface DpUtilityOptions extends StageOptions {
  /** Target epsilons (each clinic's, at {@link DP_DELTA}, over the study's rounds). */
  epsilons: number[];
  /** Studies per target epsilon (fresh noise each; default 1): how much one draw of the noise moves the result. */
  repeats: number;
  placement: Placement;
  /** Fixed clipping norm C; undefined: the median update norm of the run without DP. */
  clip: number | undefined;
}

/** One arm: the study without DP, or with DP at one target epsilon. */
export interface DpArm {
  label: string;
  targetEpsilon: number | null;
  /** Which study of this target (1..repeats). */
  draw: number;
  /** The manifest's noise multiplier z, and the one each clinic counts (they differ for distributed). */
  noiseMultiplier: number | null;
  effectiveNoiseMultiplier: number | null;
  clipNorm: number | null;
  /** Epsilon the accountant gives for the study's rounds (what the noise was chosen for). */
  plannedEpsilon: number | null;
  /** The largest epsilon a clinic's ledger reached (its agents' privacy.spent), and the most rounds one clinic paid for. */
  spentEpsilon: number | null;
  roundsSpent: number | null;
  /** Fraction of the clinics' updates that clipping shortened. */
  clippedFraction: number | null;
  release: { round: number; of: number; rule: string };
  /** The released model on every clinic's test patients: AUC with its 95 % interval. */
  result: Assessment;
  /** The last committed round's model on the same patients (no selection): AUC with its 95 % interval. */
  lastRound: Assessment;
  /** This arm's AUC minus the arm without DP's, same patients, paired bootstrap 95 % interval. */
  vsNoDp: PairedAucDifference | null;
  seconds: number;
}

/** The dp-utility report (dp-utility.json). */
export interface DpUtilityReport {
  kind: 'dp-utility';
  createdAt: string;
  settings: { clinics: number; seed: number; rounds: number; scale: number; repeats: number; placement: Placement; delta: number; clip: { norm: number; source: string }; backend: string; bootstrap: { resamples: number; seed: number } };
  testPatients: { n: number; cases: number };
  /** The study's initial weights (round 0, the same in every arm) on the same patients: what no training gives. */
  initial: Assessment | null;
  arms: DpArm[];
  /** Per target epsilon over its draws: mean and sample sd of the released model's AUC and of Δ vs no DP (sd null with one draw). */
  byEpsilon: DpSummary[];
  seconds: number;
}

/** One target epsilon over its draws. */
export interface DpSummary {
  targetEpsilon: number;
  draws: number;
  auc: { mean: number; sd: number | null; min: number; max: number } | null;
  difference: { mean: number; sd: number | null } | null;
}

const meanSd = (xs: number[]): { mean: number; sd: number | null } => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, sd: xs.length < 2 ? null : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) };
};

/** The arms with DP grouped by target epsilon (in order of appearance). */
export function summarise(arms: readonly DpArm[]): DpSummary[] {
  const targets = [...new Set(arms.flatMap((a) => (a.targetEpsilon === null ? [] : [a.targetEpsilon])))];
  return targets.map((targetEpsilon) => {
    const of = arms.filter((a) => a.targetEpsilon === targetEpsilon);
    const aucs = of.flatMap((a) => (a.result.auc === null ? [] : [a.result.auc]));
    const diffs = of.flatMap((a) => (a.vsNoDp?.difference == null ? [] : [a.vsNoDp.difference]));
    return {
      targetEpsilon, draws: of.length,
      auc: aucs.length === 0 ? null : { ...meanSd(aucs), min: Math.min(...aucs), max: Math.max(...aucs) },
      difference: diffs.length === 0 ? null : meanSd(diffs),
    };
  });
}

/** What the agents' `privacy.spent` lines say: the highest study epsilon and round count of any clinic, and how often clipping bit. */
function agentsSpent(run: FederatedRun): { epsilon: number | null; rounds: number; clippedFraction: number | null } {
  let epsilon: number | null = null;
  let rounds = 0;
  let clipped = 0;
  let updates = 0;
  for (const agent of run.agents) {
    const lines = agent.events('privacy.spent');
    rounds = Math.max(rounds, lines.length);
    for (const l of lines) {
      const e = typeof l.epsilonStudy === 'number' ? l.epsilonStudy : l.epsilonStudy === null ? Infinity : Number.NaN;
      epsilon = Math.max(epsilon ?? 0, e);
      updates++;
      if (typeof l.clipFactor === 'number' && l.clipFactor < 1) clipped++;
    }
  }
  return { epsilon, rounds, clippedFraction: updates === 0 ? null : clipped / updates };
}

/**
 * The utility cost of differential privacy on the default simulation (issue 14): the same clinics,
 * cohorts and test patients; one federated study over real processes without DP, then one per
 * target epsilon with the manifest's privacy.dp (placement, z for the epsilon over the study's
 * rounds at delta 1e-6, clipping fixed at C); every released model scored on all clinics' test
 * patients, with its difference from the model without DP paired on the same patients. All arms
 * run in this one invocation, so their differences share the machine's conditions.
 */
export async function runDpUtility(o: DpUtilityOptions): Promise<DpUtilityReport> {
  const t0 = performance.now();
  // The noise for every target first: an unreachable target fails before minutes of training.
  const zEffective = new Map(o.epsilons.map((e) => [e, noiseForEpsilon(e, o.rounds, DP_DELTA)]));
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const backend = await initBackend('auto');
  const prep = await prepareClinics(o);
  const { manifest, names } = prep;
  const k = prep.participating.filter(Boolean).length;
  const view = { clientsMin: manifest.clients.min, trustCoordinatorNoise: o.placement === 'central' };
  const testFraction = releasePolicy(manifest).testFraction;
  const everyone = concat(prep.cohorts.map((c) => asMatrix(testPart(c.split.holdout, manifest.seed, testFraction))), names.length);
  if (everyone.rows === 0) throw new FedlhsError('STUDY_FAILED', 'no clinic has test patients: nothing to score the models on');
  o.log(`${k} clinics train; ${everyone.rows} test patients score every arm`);
  const boot = { seed: o.seed };

  const arms: DpArm[] = [];
  let noDpScores: Float32Array | undefined;
  let initial: Assessment | null = null;
  let clip: { norm: number; source: string } | undefined = o.clip === undefined ? undefined : { norm: o.clip, source: '--clip' };
  const plan = [{ target: null, draw: 1 }, ...o.epsilons.flatMap((target) => Array.from({ length: o.repeats }, (_, i) => ({ target, draw: i + 1 })))];
  for (const { target, draw } of plan) {
    const label = target === null ? 'no DP' : `ε=${target}${o.repeats > 1 ? ` #${draw}` : ''}`;
    const started = performance.now();
    let privacy: PrivacySection | undefined;
    let z: number | null = null;
    if (target !== null) {
      privacy = privacySectionFor(o.placement, zEffective.get(target)!, clip!.norm, view);
      z = privacy.dp!.noiseMultiplier;
    }
    const input = privacy === undefined ? prep.studyInput : { ...prep.studyInput, privacy };
    const armManifest = validateManifest(input);
    o.log(`\n${label}: ${privacy === undefined ? 'the study as the simulation runs it' : `${o.placement} DP, z=${z!.toPrecision(5)}, C=${clip!.norm.toPrecision(4)}`}`);
    // Central noise protects a clinic only if it counts the coordinator's noise: these clinics do.
    const env = o.placement === 'central' ? { FEDLHS_PRIVACY_TRUST_COORDINATOR_NOISE: 'true' } : {};
    const run = await runFederatedStudy(o, prep, input, join(o.out, 'runs', target === null ? 'no-dp' : `epsilon-${target}-${draw}`), env);
    const { detail, released } = run;
    if (detail.state !== 'COMPLETED' || released === undefined) throw new FedlhsError('STUDY_FAILED', `${label}: the federated study ended ${detail.state}`);
    const spent = agentsSpent(run);
    if (privacy !== undefined && o.placement !== 'central' && spent.rounds === 0) {
      throw new FedlhsError('STUDY_FAILED', `${label}: no agent logged privacy.spent, so no clinic applied DP to its updates (is node-agent built with agent-side DP?); refusing to report a model without DP as one with it`);
    }
    const normalization = (detail as StudyDetail & { parameters: { normalization: Normalization } }).parameters.normalization;
    const scoreRound = async (round: number, sha256: string | undefined): Promise<Float32Array> => {
      const model = await withWeights(armManifest, readCommittedModel({ dataDir: run.coordinatorDir }, run.studyId, round, sha256));
      const x = await model.predict(normalized(everyone, names, normalization).x);
      model.dispose();
      return x;
    };
    const scores = await scoreRound(released.round, committedSha256(detail, released.round));
    const lastRound = assess(await scoreRound(detail.lastCommittedRound, committedSha256(detail, detail.lastCommittedRound)), everyone.y, boot);
    // Round 0 is the initial model, which the study detail lists no digest for.
    if (target === null) initial = existsSync(join(run.coordinatorDir, 'studies', run.studyId, 'checkpoints', 'round-000000.f32')) ? assess(await scoreRound(0, undefined), everyone.y, boot) : null;
    if (target === null) {
      noDpScores = scores;
      if (clip === undefined) {
        const median = medianUpdateNorm(detail.contributions as { accepted: boolean; deltaNorm?: number | null }[]);
        clip = median === undefined
          ? { norm: FALLBACK_CLIP_NORM, source: 'constant (the run without DP exposed no update norms)' }
          : { norm: Number(median.toPrecision(3)), source: 'median update norm of the run without DP' };
        if (median === undefined) o.log(`WARNING: the coordinator gave no update norms; clipping at the documented constant C=${FALLBACK_CLIP_NORM}`);
        o.log(`clipping norm C=${clip.norm} (${clip.source})`);
      }
    }
    const result = assess(scores, everyone.y, boot);
    const vsNoDp = target === null ? null : pairedAucDifference(scores, noDpScores!, everyone.y, boot);
    const arm: DpArm = {
      label, targetEpsilon: target, draw, noiseMultiplier: z,
      effectiveNoiseMultiplier: target === null ? null : zEffective.get(target)!,
      clipNorm: privacy === undefined ? null : clip!.norm,
      plannedEpsilon: privacy === undefined ? null : clinicEpsilon(privacy, manifest.rounds, DP_DELTA, view),
      spentEpsilon: privacy === undefined ? null : spent.epsilon, roundsSpent: privacy === undefined ? null : spent.rounds,
      clippedFraction: privacy === undefined ? null : spent.clippedFraction,
      release: { round: released.round, of: detail.lastCommittedRound, rule: released.rule },
      result, lastRound, vsNoDp, seconds: Math.round((performance.now() - started) / 100) / 10,
    };
    arms.push(arm);
    o.log(`${label}: AUC ${fmtAuc(result)}${vsNoDp === null ? '' : `, vs no DP ${fmtDiff(vsNoDp)}`}, ${arm.seconds} s`);
  }
  return {
    kind: 'dp-utility', createdAt: new Date().toISOString(),
    settings: {
      clinics: o.clinics, seed: o.seed, rounds: manifest.rounds, scale: o.scale, repeats: o.repeats, placement: o.placement, delta: DP_DELTA,
      clip: clip ?? { norm: FALLBACK_CLIP_NORM, source: 'unused' }, backend: backend.backend, bootstrap: { resamples: BOOTSTRAP_RESAMPLES, seed: o.seed },
    },
    testPatients: { n: everyone.rows, cases: everyone.y.reduce((s, v) => s + v, 0) },
    initial,
    arms,
    byEpsilon: summarise(arms),
    seconds: Math.round((performance.now() - t0) / 1000),
  };
}

/** "0.793 [0.770, 0.815]". */
export function fmtAuc(a: Pick<Assessment, 'auc' | 'aucCi'>): string {
  if (a.auc === null) return '-';
  return `${a.auc.toFixed(3)}${a.aucCi == null ? '' : ` [${a.aucCi.low.toFixed(3)}, ${a.aucCi.high.toFixed(3)}]`}`;
}
/** "−0.012 [−0.030, +0.004]". */
export function fmtDiff(d: PairedAucDifference): string {
  if (d.difference === null) return '-';
  return `${signed(d.difference)}${d.ci === null ? '' : ` [${signed(d.ci.low)}, ${signed(d.ci.high)}]`}`;
}
