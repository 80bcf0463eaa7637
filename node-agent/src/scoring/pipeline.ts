/**
 * The one scoring pipeline (issue 12): features for a deployed release from the clinic's data,
 * through the study's own cohort and feature code (extractCohort with an index rule), scaled
 * with the release's normalisation and run through the released model. `fedlhs-agent score`
 * and the scoring service both use it, so one patient gets one risk whichever asks.
 */
import { FedlhsError, applyNormalization, riskBand, studyFeatureNames } from '@fedlhs/core';
import { FLAT_TABLE_SPEC, extractCohort, openEhrSource, readFlatTable, type CohortReport, type DataFormat, type EhrSource, type IndexRule, type TextEncoding, type UnconvertedUnit } from '@fedlhs/ehr';
import { createModelRuntime, type ModelRuntime } from '@fedlhs/model';
import type { DeployedRelease } from '../releases/local-releases.js';

export type { DeployedRelease };

/** Where the clinic's export is and how to read it (config `data`). */
export interface ScoringData {
  format: DataFormat;
  path: string;
  /** Flat tables: the column keying each row (empty: the row number). */
  keyColumn?: string | undefined;
  encoding?: TextEncoding | undefined;
}

/** Raw (unscaled) features of the patients a release can score, and why the others cannot be. */
export interface ReleaseFeatures {
  names: readonly string[];
  keys: string[];
  /** Index day per row (days since 1970-01-01); undefined for flat tables (no index date). */
  indexDays: (number | undefined)[];
  /** Row-major rows × names; NaN = missing (imputed when scaled). */
  x: Float32Array;
  /** Records or patients not scored, by reason (counts only). */
  excluded: Record<string, number>;
  /** Per feature: values dropped because their unit cannot be converted, with the units. */
  unitMismatch: UnconvertedUnit[];
  warnings: string[];
  /** The cohort report (cohort/v1 releases only). */
  report?: CohortReport | undefined;
}

/** One patient's score. */
export interface Score {
  key: string;
  indexDay: number | undefined;
  risk: number;
  band: string;
}

/** The release's feature spec must be what this clinic's data format can give: FEATURE_SPEC_UNSUPPORTED otherwise. */
export function checkDataFormat(release: DeployedRelease, format: DataFormat): void {
  const spec = release.descriptor.features.featureSpec;
  if ((spec === FLAT_TABLE_SPEC) !== (format === 'flat-table')) {
    throw new FedlhsError('FEATURE_SPEC_UNSUPPORTED', `release ${release.studyName} v${release.version} needs ${spec} features, but this agent reads ${format} data (config data.format): it cannot score this export`);
  }
  const names = studyFeatureNames(release.manifest);
  const declared = release.descriptor.features.names;
  if (names.length !== declared.length || names.some((n, j) => n !== declared[j])) {
    throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version}: release.json's features (${declared.join(', ')}) are not the manifest's (${names.join(', ')})`);
  }
}

/** One score per patient: DATA_INVALID naming how many keys are empty or repeated (never which: they are patient keys). */
function checkKeys(keys: readonly string[], column: string): void {
  const seen = new Map<string, number>();
  for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);
  const empty = seen.get('') ?? 0;
  const repeated = [...seen].filter(([k, n]) => k !== '' && n > 1);
  const problems: string[] = [];
  if (empty > 0) problems.push(`${empty} ${empty === 1 ? 'row has' : 'rows have'} an empty ${column}`);
  if (repeated.length > 0) {
    const rows = repeated.reduce((sum, [, n]) => sum + n, 0);
    problems.push(`${repeated.length} ${repeated.length === 1 ? 'key appears' : 'keys appear'} on more than one row (${rows} rows in all)`);
  }
  if (problems.length > 0) throw new FedlhsError('DATA_INVALID', `column ${column}: ${problems.join('; ')}; each patient needs exactly one row with its own key, or one patient would get two different scores`);
}

/** Features of every patient in the clinic's export, with `index` (cohort/v1) or the table's rows (flat-table/v1). */
export async function releaseFeatures(release: DeployedRelease, data: ScoringData, index: IndexRule): Promise<ReleaseFeatures> {
  checkDataFormat(release, data.format);
  if (data.path === '') throw new FedlhsError('CONFIG_INVALID', 'no local data configured (data.path): nothing to score');
  if (data.format === 'flat-table') {
    const names = release.descriptor.features.names;
    // Without a key column a row is known only by its number, which names no patient (and
    // another patient once a row is added): a score must say whose it is.
    if (data.keyColumn === undefined || data.keyColumn === '') {
      throw new FedlhsError('CONFIG_INVALID', 'scoring a flat table needs data.keyColumn (--data-key-column): the column holding each row\'s patient key; row numbers are not patient keys, so the scores would name nobody');
    }
    // Scoring needs no outcome: rows without a label (today's patients) are scored too.
    const table = await readFlatTable(data.path, { features: names, label: release.descriptor.features.label, keyColumn: data.keyColumn, encoding: data.encoding, labels: 'none' });
    checkKeys(table.keys, data.keyColumn);
    return { names, keys: table.keys, indexDays: table.keys.map(() => undefined), x: table.x, excluded: { ...table.skipped }, unitMismatch: [], warnings: [] };
  }
  return sourceFeatures(release, openEhrSource(data.format, data.path, { encoding: data.encoding }), index);
}

/** Features from any EHR source (an export, or a CDS Hooks prefetch) for a cohort/v1 release. */
export async function sourceFeatures(release: DeployedRelease, source: EhrSource, index: IndexRule): Promise<ReleaseFeatures> {
  checkDataFormat(release, source.format);
  const spec = release.manifest.data.cohort;
  if (spec === undefined) throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version}: its manifest has no cohort definition`);
  const { dataset, report, unconvertedUnits } = await extractCohort(source, spec, { index, labels: 'none' });
  const excluded: Record<string, number> = { ...report.excluded };
  for (const [why, n] of Object.entries(report.patientLosses)) excluded[`patient record unreadable: ${why}`] = n;
  return { names: dataset.features, keys: dataset.keys, indexDays: dataset.indexDays, x: dataset.x, excluded, unitMismatch: unconvertedUnits, warnings: report.warnings, report };
}

/** A release's model, built once and reused for every scoring call. */
export interface Scorer {
  readonly release: DeployedRelease;
  /** Scores raw features (scaled here with the release's normalisation), row by row. */
  score(features: Pick<ReleaseFeatures, 'names' | 'keys' | 'indexDays' | 'x'>): Promise<Score[]>;
  dispose(): void;
}

/**
 * Builds the released model (topology and training settings from the manifest, weights from the
 * bundle). The normalisation must be there unless the release declares none.
 */
export async function createScorer(release: DeployedRelease): Promise<Scorer> {
  const names = release.descriptor.features.names;
  if (release.normalization === undefined && release.descriptor.normalization.method !== 'none') {
    throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version} uses ${release.descriptor.normalization.method} but no normalisation was loaded for it`);
  }
  const runtime: ModelRuntime = await createModelRuntime({ topology: release.modelTopology, loss: release.manifest.training.loss, optimizer: release.manifest.training.optimizer });
  try {
    if (runtime.inputDim !== names.length) throw new FedlhsError('DATA_LOSS', `release ${release.studyName} v${release.version}: the model takes ${runtime.inputDim} features, release.json names ${names.length}`);
    runtime.setWeights(release.weights);
  } catch (err) {
    runtime.dispose();
    throw err;
  }
  // predict() must not overlap a setWeights; one call at a time keeps the runtime simple.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    release,
    async score(features) {
      if (features.names.length !== names.length || features.names.some((n, j) => n !== names[j])) {
        throw new FedlhsError('INVALID_ARGUMENT', `features (${features.names.join(', ')}) are not the release's (${names.join(', ')})`);
      }
      const x = applyNormalization(Float32Array.from(features.x), names, release.normalization);
      const run = queue.then(() => runtime.predict(x));
      queue = run.catch(() => undefined);
      const risks = await run;
      return features.keys.map((key, i) => {
        const risk = risks[i]!;
        if (!Number.isFinite(risk) || risk < 0 || risk > 1) {
          throw new FedlhsError('INTERNAL', `release ${release.studyName} v${release.version} gave ${risk} for a patient, not a risk in [0, 1]: is its output a sigmoid?`);
        }
        return { key, indexDay: features.indexDays[i], risk, band: riskBand(risk, release.descriptor.riskBands) };
      });
    },
    dispose: () => runtime.dispose(),
  };
}

/** A whole export scored: one row per scorable patient, sorted by key, and what was not scored. */
export interface ScoredExport {
  release: DeployedRelease;
  scores: Score[];
  features: ReleaseFeatures;
}

/** Scores the clinic's export with a release (what `fedlhs-agent score` runs). */
export async function scoreExport(release: DeployedRelease, data: ScoringData, index: IndexRule): Promise<ScoredExport> {
  const features = await releaseFeatures(release, data, index);
  const scorer = await createScorer(release);
  try {
    const scores = await scorer.score(features);
    scores.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { release, scores, features };
  } finally {
    scorer.dispose();
  }
}

/** Risk as printed and answered everywhere: 6 decimals, so the CSV and the service say the same number. */
export const riskText = (risk: number): string => risk.toFixed(6);
