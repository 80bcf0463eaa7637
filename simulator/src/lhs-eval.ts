import { isTestPart, releasePolicy, studyFeatureNames, type Normalization, type StudyManifest } from '@fedlhs/core';
import { extractCohort, openEhrSource, splitDataset, type CohortReport, type Dataset, type SplitDataset } from '@fedlhs/ehr';
import { asMatrix, normalized, trainCentral, withWeights, type Matrix } from './baselines.js';
import { committedSha256, readCommittedModel, type StudyDetail } from './local-network.js';
import { rowsWhere } from './simulation-stages.js';

/**
 * The multi-year simulation's evaluation pieces: each clinic's cohort of a year extracted
 * exactly as its agent does (the run's own manifest), its test patients, the released models
 * as scorers, and local-only models.
 */

/** A clinic's data in one year's run. */
export interface YearCohort {
  split: SplitDataset;
  report: CohortReport;
  /** The test part of the hold-out split: the patients every figure of the year is measured on. */
  test: Dataset;
  /** Every labelled patient (train and hold-out): what the joining clinic's first day is measured on. */
  all: Dataset;
}

/** A model with the normalisation it was trained under. */
export interface Scorer {
  version: number;
  score(data: Matrix): Promise<Float32Array>;
  dispose(): void;
}


/** Extracts a clinic's cohort for the run's manifest and splits it as the agent does. */
export async function yearCohort(format: 'synthea-csv' | 'fhir-ndjson' | 'omop-csv', dir: string, manifest: StudyManifest): Promise<YearCohort> {
  const { dataset, report } = await extractCohort(openEhrSource(format, dir), manifest.data.cohort!);
  const split = splitDataset(dataset, manifest.seed, manifest.data.holdoutFraction);
  const { testFraction } = releasePolicy(manifest);
  const test = rowsWhere(split.holdout, (k) => isTestPart(k, manifest.seed, testFraction));
  return { split, report, test, all: dataset };
}

/** A released model of a run as a scorer: its committed round's weights (checked against their digest) and the run's normalisation. */
export async function releaseScorer(dataDir: string, detail: StudyDetail & { parameters?: { normalization?: Normalization } | null }, manifest: StudyManifest, round: number, version: number): Promise<Scorer> {
  const model = await withWeights(manifest, readCommittedModel({ dataDir }, detail.id, round, committedSha256(detail, round)));
  const names = studyFeatureNames(manifest);
  const normalization = detail.parameters?.normalization;
  return {
    version,
    score: async (m) => (m.rows === 0 ? new Float32Array(0) : model.predict(normalized(m, names, normalization).x)),
    dispose: () => model.dispose(),
  };
}

/** A local-only model: the study's model trained on this clinic's training patients alone, with its own z-scores; undefined with under 10 patients or one class. */
export async function localScorer(manifest: StudyManifest, train: Dataset, epochs: number, seed: number, zscore: (m: Matrix) => Normalization): Promise<Scorer | undefined> {
  const m = asMatrix(train);
  const positives = m.y.reduce((s, v) => s + v, 0);
  if (m.rows < 10 || positives === 0 || positives === m.rows) return undefined;
  const names = studyFeatureNames(manifest);
  const own = zscore(m);
  const model = await trainCentral(manifest, normalized(m, names, own), { epochs, batchSize: manifest.training.batchSize, seed });
  return {
    version: 0,
    score: async (x) => (x.rows === 0 ? new Float32Array(0) : model.predict(normalized(x, names, own).x)),
    dispose: () => model.dispose(),
  };
}
