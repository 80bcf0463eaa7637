import { FedlhsError, computePerformance, isFedlhsError, isTestPart, pairedAucDifference, releasePolicy, sha256Hex, studyFeatureNames, type Normalization, type StudyManifest } from '@fedlhs/core';
import type { EvaluationReport } from '@fedlhs/proto';
import { roundPerformance } from '../privacy-counts.js';
import { localNormalization } from '../releases/deploy.js';
import { releaseModel, verifyKept, type DeployedRelease } from '../releases/local-releases.js';
import { createScorer } from '../scoring/pipeline.js';
import type { TaskContext } from '../task-runner.js';
export type { ReleaseAccess } from '../task-runner.js';
import { wirePerformance } from './performance-wire.js';

/**
 * Champion and challenger at the clinic (issue 13, proto "Champion and challenger"): when a
 * series run names a champion, each evaluation also scores that release — verified with the
 * pinned key, its weights checked against the manifest's digest, with its own normalisation —
 * on exactly the test-part patients the task's model was scored on, in the same order, and
 * reports the paired AUC difference. Only aggregates leave; scores and keys stay here.
 */

/** proto ReleaseComparison (@fedlhs/proto does not export it by name). */
export type WireReleaseComparison = NonNullable<EvaluationReport['comparisons']>[number];


/**
 * Why the champion's scores on this run's test patients would not be a fair comparison, or
 * undefined: its features must be the run's (same names, same definitions), and its split the
 * run's (same seed, hold-out fraction and split column), or it may have trained on them.
 */
export function championMismatch(run: StudyManifest, champion: StudyManifest): string | undefined {
  const a = studyFeatureNames(run);
  const b = studyFeatureNames(champion);
  if (run.data.featureSpec !== champion.data.featureSpec) return `its feature spec is ${champion.data.featureSpec}, this run's ${run.data.featureSpec}`;
  if (a.length !== b.length || a.some((n, j) => n !== b[j])) return `its features (${b.join(', ')}) are not this run's (${a.join(', ')})`;
  const defs = (m: StudyManifest): string => JSON.stringify(m.data.cohort === undefined ? null : { features: m.data.cohort.features, lookbackDays: m.data.cohort.lookbackDays });
  if (defs(run) !== defs(champion)) return 'its features are defined differently from this run\'s (cohort features or lookback)';
  if (run.seed !== champion.seed || run.data.holdoutFraction !== champion.data.holdoutFraction || run.data.splitColumn !== champion.data.splitColumn) {
    return 'it was trained with another split (seed, hold-out fraction or split column), so it may have trained on this run\'s test patients';
  }
  // Its released round was chosen on its validation part: with another test fraction some of
  // this run's test patients chose it, which would bias the comparison in its favour.
  if (releasePolicy(run).testFraction !== releasePolicy(champion).testFraction) {
    return `its test fraction (${releasePolicy(champion).testFraction}) is not this run's (${releasePolicy(run).testFraction}), so this run's test patients may have chosen its released round`;
  }
  return undefined;
}

/**
 * Scores the run's champion on the test part and compares it with the task model's test
 * scores (`challenger`, in the order of the test part). Throws, naming the reason, when the
 * champion cannot be obtained, verified or fairly scored: the caller then sends no comparison.
 */
export async function championComparison(ctx: TaskContext, challenger: Float32Array, labels: Float32Array): Promise<WireReleaseComparison> {
  const run = ctx.manifest;
  const champion = run.series?.champion;
  if (run.series === undefined || champion === undefined) throw new FedlhsError('INTERNAL', 'the study names no champion');
  const name = run.series.name;
  const label = `release ${name} v${champion.version}`;
  const access = ctx.releases;
  if (access === undefined) throw new FedlhsError('INTERNAL', `this agent gave the task no access to its kept releases, so ${label} cannot be obtained`);
  if (access.pinnedPem === undefined) throw new FedlhsError('SIGNATURE_INVALID', `no release key was pinned at enrolment, so ${label} cannot be verified`, { details: { why: 'key' } });
  let kept;
  try {
    kept = verifyKept(ctx.config.stateDir, name, champion.version, access.pinnedPem);
  } catch (err) {
    if (!isFedlhsError(err, 'NOT_FOUND')) throw err;
    await access.fetchRelease(name, champion.version);
    kept = verifyKept(ctx.config.stateDir, name, champion.version, access.pinnedPem);
  }
  const weightsSha256 = sha256Hex(kept.files['weights.bin']);
  if (weightsSha256 !== champion.weightsSha256) {
    throw new FedlhsError('SIGNATURE_INVALID', `${label}: its weights.bin hashes to ${weightsSha256}, the run's manifest names champion weights ${champion.weightsSha256}`, { details: { why: 'digest', file: 'weights.bin' } });
  }
  const { manifest, modelTopology, weights } = releaseModel(kept);
  const unfair = championMismatch(run, manifest);
  if (unfair !== undefined) throw new FedlhsError('INVALID_ARGUMENT', `${label} is not comparable on this run's patients: ${unfair}`);
  // The champion's own normalisation: federated from its release.json, or this clinic's as deploying it computes.
  const method = kept.descriptor.normalization.method;
  const normalization: Normalization =
    kept.descriptor.normalization.method === 'federated-zscore'
      ? { method: 'zscore', features: kept.descriptor.normalization.features.map((f) => ({ name: f.name, mean: f.mean, std: f.std, impute: f.impute, ...(f.excluded === true ? { excluded: true } : {}) })) }
      : await localNormalization(ctx.data, manifest, method as 'none' | 'local-zscore');
  const release: DeployedRelease = { studyName: name, version: champion.version, dir: kept.dir, descriptor: kept.descriptor, manifest, modelTopology, weights, normalization };
  // The raw test part of this run's hold-out split, in the order holdoutParts gives the task's model.
  const split = await ctx.data.require(run);
  const names = studyFeatureNames(run);
  const d = names.length;
  const { testFraction } = releasePolicy(run);
  const rows = split.holdout.keys.flatMap((key, i) => (isTestPart(key, run.seed, testFraction) ? [i] : []));
  const x = new Float32Array(rows.length * d);
  rows.forEach((src, dst) => x.set(split.holdout.x.subarray(src * d, (src + 1) * d), dst * d));
  const testLabels = Float32Array.from(rows, (i) => split.holdout.y[i]!);
  if (testLabels.length !== labels.length || testLabels.some((y, i) => y !== labels[i])) {
    throw new FedlhsError('INTERNAL', 'the test part read again does not match the one the task\'s model was scored on');
  }
  const scorer = await createScorer(release);
  let scores: Float32Array;
  try {
    const scored = await scorer.score({ names, keys: rows.map((i) => split.holdout.keys[i]!), indexDays: rows.map(() => undefined), x });
    scores = Float32Array.from(scored, (s) => s.risk);
  } finally {
    scorer.dispose();
  }
  const paired = pairedAucDifference(challenger, scores, labels);
  // The champion's counts are the test part's, so they leave rounded exactly as the task model's do
  // (privacy.counts); the caller compares only when the task model's test figures could be sent.
  const test = roundPerformance(run, computePerformance(scores, labels));
  if (typeof test === 'string') throw new FedlhsError('INTERNAL', `${label}: its test figures cannot be sent: ${test}`);
  return {
    studyName: name,
    version: champion.version,
    test: wirePerformance(test),
    ...(paired.difference === undefined ? {} : { aucDifference: paired.difference }),
    ...(paired.standardError === undefined ? {} : { aucDifferenceStandardError: paired.standardError }),
  };
}
