import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FedlhsError, combineStats, computeClinicStats, histogramRanges, normalizationFrom, releasePolicy, type Normalization } from '@fedlhs/core';
import { initBackend } from '@fedlhs/model';
import { asMatrix, concat, normalized, trainCentral, withWeights, zscoreFrom } from './baselines.js';
import { BOOTSTRAP_RESAMPLES, MIN_CASES_FOR_AUC, assess, pairedAucDifference, type Assessment, type PairedAucDifference } from './evaluation.js';
import { committedSha256, readCommittedModel, type StudyDetail } from './local-network.js';
import { simulationHeadline } from './simulation-report.js';
import { formatFor, prepareClinics, runFederatedStudy, testPart } from './simulation-stages.js';
import type { ClinicResult, Method, SimulationOptions, SimulationReport } from './simulation-types.js';

export type { ClinicResult, Method, SimulationOptions, SimulationReport } from './simulation-types.js';

/**
 * The ML-LHS simulation: generates synthetic clinics whose truth is known, runs the real
 * federated process (a coordinator and one agent process per clinic over gRPC) on them, and
 * trains pooled and local-only baselines on identical splits, so every clinic's federated,
 * pooled, local and oracle performance can be compared.
 */
export async function runSimulation(o: SimulationOptions): Promise<SimulationReport> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number): number => {
    timings[name] = Math.round(performance.now() - since);
    return performance.now();
  };
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(o.out, { recursive: true });
  const backend = await initBackend('auto');

  // 1. Synthetic clinics, one export format each, and 2. each clinic's cohort, extracted exactly as its agent will.
  const { profiles, truths, cohorts, participating, names, manifest, studyInput } = await prepareClinics(o);
  let t = lap('generate', t0); // generation and extraction

  // 3. The federated run: real processes, real gRPC.
  const net = join(o.out, 'network');
  const { detail, released, studyId, manifestSha256 } = await runFederatedStudy(o, { profiles, participating }, studyInput, net);
  t = lap('federated', t);
  if (detail.state !== 'COMPLETED' || released === undefined) throw new FedlhsError('STUDY_FAILED', `the federated study ended ${detail.state}`);
  const release = released;
  const testFraction = releasePolicy(manifest).testFraction;

  // 4. Baselines and evaluation on identical hold-outs.
  const fedNormalization = (detail as StudyDetail & { parameters: { normalization: Normalization } }).parameters.normalization;
  const trainSets = cohorts.filter((_, i) => participating[i]).map((c) => asMatrix(c.split.train));
  const pooledNormalization = zscoreFrom(trainSets, names);
  const maxDiff = (n: Normalization): number =>
    Math.max(...fedNormalization.features.flatMap((f, j) => [Math.abs(f.mean - n.features[j]!.mean), Math.abs(f.std - n.features[j]!.std)]));
  // What the clinics' reports imply (small cells suppressed, as each agent does): the
  // coordinator's normalisation must equal it; the pooled data's differs only by suppression.
  const reported = normalizationFrom(combineStats(trainSets.map((t) => computeClinicStats(t.x, t.y, names, manifest.data.minCellCount, histogramRanges(manifest), { seed: manifest.seed }))));
  const normalizationMaxAbsDiff = maxDiff(reported);
  const suppressionEffect = maxDiff(pooledNormalization);
  const epochs = o.rounds * manifest.training.localEpochs;
  // "federated" is the released model: the round the coordinator chose on validation figures.
  const federated = await withWeights(manifest, readCommittedModel({ dataDir: join(net, 'coordinator') }, studyId, release.round, committedSha256(detail, release.round)));
  const pooled = await trainCentral(manifest, concat(trainSets.map((m) => normalized(m, names, pooledNormalization)), names.length), { epochs, batchSize: manifest.training.batchSize, seed: o.seed });
  const boot = { seed: o.seed };
  // Every clinic's test patients (its hold-out split's test part), in clinic order: where local
  // models are compared with the released one.
  const tests = cohorts.map((c) => testPart(c.split.holdout, manifest.seed, testFraction));
  const everyone = concat(tests.map(asMatrix), names.length);
  const federatedOnAll = everyone.rows === 0 ? new Float32Array(0) : await federated.predict(normalized(everyone, names, fedNormalization).x);
  const all: Record<Method, { scores: number[]; labels: number[] }> = { federated: { scores: [], labels: [] }, pooled: { scores: [], labels: [] }, local: { scores: [], labels: [] }, oracle: { scores: [], labels: [] } };
  const record = (m: Method, scores: ArrayLike<number>, labels: ArrayLike<number>): Assessment => {
    all[m].scores.push(...Array.from(scores));
    all[m].labels.push(...Array.from(labels));
    return assess(scores, labels, boot);
  };
  const clinics: ClinicResult[] = [];
  for (const [i, p] of profiles.entries()) {
    const { split, report } = cohorts[i]!;
    const holdoutSet = tests[i]!;
    const holdout = asMatrix(holdoutSet);
    const results: Partial<Record<Method, Assessment>> = {};
    let localOnAll: Assessment | null = null;
    let gainPaired: PairedAucDifference | null = null;
    let gainOnAll: PairedAucDifference | null = null;
    if (holdout.rows > 0) {
      const fedScores = await federated.predict(normalized(holdout, names, fedNormalization).x);
      results.federated = record('federated', fedScores, holdout.y);
      results.pooled = record('pooled', await pooled.predict(normalized(holdout, names, pooledNormalization).x), holdout.y);
      const risk = new Map(truths[i]!.patients.map((pt) => [pt.patientId, pt.risk]));
      const truthId = (key: string): string => cohorts[i]!.truthIds?.get(key) ?? key;
      results.oracle = record('oracle', holdoutSet.keys.map((key) => risk.get(truthId(key)) ?? Number.NaN), holdout.y);
      const train = asMatrix(split.train);
      const positives = train.y.reduce((s, v) => s + v, 0);
      if (train.rows >= 10 && positives > 0 && positives < train.rows) {
        const own = zscoreFrom([train], names);
        const local = await trainCentral(manifest, normalized(train, names, own), { epochs, batchSize: manifest.training.batchSize, seed: o.seed });
        const localScores = await local.predict(normalized(holdout, names, own).x);
        results.local = record('local', localScores, holdout.y);
        gainPaired = pairedAucDifference(fedScores, localScores, holdout.y, boot);
        const localEveryone = await local.predict(normalized(everyone, names, own).x);
        localOnAll = assess(localEveryone, everyone.y, boot);
        gainOnAll = pairedAucDifference(federatedOnAll, localEveryone, everyone.y, boot);
        local.dispose();
      }
    }
    const fa = results.federated?.auc;
    const la = results.local?.auc;
    clinics.push({
      name: p.name, format: formatFor(i), patients: p.patients, eligible: report.eligible, train: split.train.rows, holdout: holdoutSet.rows,
      prevalence: report.eligible === 0 ? 0 : report.positives / report.eligible, participated: participating[i]!, cohort: report, results,
      gain: fa == null || la == null ? null : fa - la,
      gainPaired,
      localOnAll,
      gainOnAll,
    });
  }
  federated.dispose();
  pooled.dispose();
  const fedAll = all.federated;
  const federatedVsPooled = fedAll.scores.length === 0 ? null : pairedAucDifference(fedAll.scores, all.pooled.scores, fedAll.labels, boot);
  // Each committed round's model on the same patients, so the curve carries intervals too.
  const holdoutByRound = new Map<number, Assessment>();
  if (everyone.rows > 0) {
    for (let r = 1; r <= detail.lastCommittedRound; r++) {
      const model = await withWeights(manifest, readCommittedModel({ dataDir: join(net, 'coordinator') }, studyId, r, committedSha256(detail, r)));
      holdoutByRound.set(r, assess(await model.predict(normalized(everyone, names, fedNormalization).x), everyone.y, boot));
      model.dispose();
    }
  }
  lap('baselines', t);
  timings.total = Math.round(performance.now() - t0);

  const overall: Partial<Record<Method, Assessment>> = {};
  for (const m of ['federated', 'pooled', 'local', 'oracle'] as Method[]) if (all[m].scores.length > 0) overall[m] = assess(all[m].scores, all[m].labels, boot);
  const rounds = Array.from({ length: detail.lastCommittedRound }, (_, k) => {
    const g = detail.metrics.find((m) => m.round === k + 1 && m.phase === 'evaluation' && m.nodeId === null);
    return { round: k + 1, loss: g?.loss ?? null, accuracy: g?.accuracy ?? null, auc: g?.auc ?? null, holdout: holdoutByRound.get(k + 1) ?? null };
  });
  const report: SimulationReport = {
    kind: 'simulation',
    createdAt: new Date().toISOString(),
    settings: {
      clinics: o.clinics, seed: o.seed, rounds: o.rounds, scale: o.scale, backend: backend.backend,
      bootstrap: { resamples: BOOTSTRAP_RESAMPLES, seed: o.seed, minCases: MIN_CASES_FOR_AUC },
    },
    study: { id: studyId, state: detail.state, manifestSha256, roundsCommitted: detail.lastCommittedRound },
    release: { ...release, testFraction },
    rounds,
    clinics,
    overall,
    federatedVsPooled,
    headline: '',
    normalizationMaxAbsDiff,
    suppressionEffect,
    timings,
  };
  report.headline = simulationHeadline(report);
  return report;
}
