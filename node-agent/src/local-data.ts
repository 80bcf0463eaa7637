import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FLAT_TABLE_SPEC, assessReadiness, extractCohort, openEhrSource, readFlatTable, splitDataset, type CohortReport, type DataFormat, type SplitDataset, type TextEncoding } from '@fedlhs/ehr';
import {
  FedlhsError,
  applyNormalization,
  combineStats,
  computeClinicStats,
  histogramRanges,
  isFedlhsError,
  isTestPart,
  normalizationFrom,
  releasePolicy,
  studyFeatureNames,
  type ClinicStats,
  type Normalization,
  type NotReady,
  type StudyManifest,
} from '@fedlhs/core';

export interface DataOptions {
  format: DataFormat;
  path: string;
  keyColumn: string;
  minCohort: number;
  /** Text encoding of the local files (config data.encoding). */
  encoding?: TextEncoding | undefined;
}

/** Rows of a prepared (scaled) matrix: `rows` × features values in `x`, one label each in `y`. */
export interface PreparedPart {
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

/**
 * The hold-out split divided into its validation part (used to choose the released round) and
 * its test part (figures published with a release), by the study's seed and
 * release.testFraction (core `isTestPart`; proto "Validation and test parts"). Keys stay here.
 */
export function holdoutParts(holdout: PreparedPart & { keys: readonly string[] }, manifest: StudyManifest): { validation: PreparedPart; test: PreparedPart } {
  if (holdout.keys.length !== holdout.rows) throw new FedlhsError('INTERNAL', `the hold-out split has ${holdout.rows} rows but ${holdout.keys.length} keys`);
  const d = holdout.rows === 0 ? 0 : holdout.x.length / holdout.rows;
  const { testFraction } = releasePolicy(manifest);
  const rows: { validation: number[]; test: number[] } = { validation: [], test: [] };
  holdout.keys.forEach((key, i) => rows[isTestPart(key, manifest.seed, testFraction) ? 'test' : 'validation'].push(i));
  const pick = (idx: number[]): PreparedPart => {
    const x = new Float32Array(idx.length * d);
    const y = new Float32Array(idx.length);
    idx.forEach((src, dst) => {
      x.set(holdout.x.subarray(src * d, (src + 1) * d), dst * d);
      y[dst] = holdout.y[src]!;
    });
    return { x, y, rows: idx.length };
  };
  return { validation: pick(rows.validation), test: pick(rows.test) };
}

/** What a study gets from this clinic's data: READY with the split (and warnings to show the operator), or why not. */
export type DataCheck =
  | { ok: true; data: SplitDataset; report: CohortReport | undefined; warnings: string[] }
  | { ok: false; readiness: NotReady; detail: string };

/**
 * A fingerprint of the export (SHA-256, hex) over the data path's file names (relative),
 * sizes and modification times: it changes when the export is refreshed, without reading a
 * record. Only this digest leaves the clinic (as ReleasePerformanceReport.export_fingerprint).
 */
export function exportFingerprint(path: string): string {
  const hash = createHash('sha256');
  const visit = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const entry of readdirSync(p).sort()) visit(join(p, entry));
    } else if (st.isFile()) {
      hash.update(`${relative(path, p) || '.'}\u0000${st.size}\u0000${st.mtimeMs}\n`);
    }
  };
  visit(path);
  return hash.digest('hex');
}

/**
 * The clinic's local data as a study needs it: read once per study definition, split
 * deterministically, and checked against the minimum cohort size. Nothing here leaves the
 * agent; readiness details never carry record contents or small counts.
 */
export class LocalData {
  private readonly cache = new Map<string, Promise<{ data: SplitDataset; report: CohortReport | undefined }>>();
  /** The export the cached entries were read from. */
  private fingerprint: string | undefined;

  constructor(private readonly options: DataOptions) {}

  async check(manifest: StudyManifest): Promise<DataCheck> {
    const spec = manifest.data.featureSpec;
    const flat = this.options.format === 'flat-table';
    if ((spec === FLAT_TABLE_SPEC) !== flat) {
      return { ok: false, readiness: 'READINESS_FEATURE_SPEC_UNSUPPORTED', detail: `this agent reads ${this.options.format} data, the study asks for ${spec}` };
    }
    if (this.options.path === '') return { ok: false, readiness: 'READINESS_DATA_ERROR', detail: 'no local data configured (data.path)' };
    let loaded: { data: SplitDataset; report: CohortReport | undefined };
    try {
      loaded = await this.load(manifest);
    } catch (err) {
      return {
        ok: false,
        readiness: isFedlhsError(err, 'FEATURE_SPEC_UNSUPPORTED') ? 'READINESS_FEATURE_SPEC_UNSUPPORTED' : 'READINESS_DATA_ERROR',
        detail: (err as Error).message,
      };
    }
    const { data } = loaded;
    const verdict = assessReadiness(data, { minCohort: this.options.minCohort, minCellCount: manifest.data.minCellCount });
    if (!verdict.ready) return { ok: false, readiness: 'READINESS_COHORT_TOO_SMALL', detail: verdict.detail };
    return { ok: true, data, report: loaded.report, warnings: loaded.report?.warnings ?? [] };
  }

  /**
   * How many eligible, labelled records the study definition finds in the export now (both
   * splits), read as check() reads them; no readiness verdict (a count is wanted even when small).
   * `fresh`: read without keeping the result (a moving window would fill the cache with one entry
   * per day). Throws FEATURE_SPEC_UNSUPPORTED or the reader's error; nothing here leaves the agent.
   */
  async labelledCount(manifest: StudyManifest, fresh = false): Promise<number> {
    if ((manifest.data.featureSpec === FLAT_TABLE_SPEC) !== (this.options.format === 'flat-table')) {
      throw new FedlhsError('FEATURE_SPEC_UNSUPPORTED', `this agent reads ${this.options.format} data, the study asks for ${manifest.data.featureSpec}`);
    }
    if (this.options.path === '') throw new FedlhsError('DATA_NOT_READY', 'no local data configured (data.path)', { details: { readiness: 'READINESS_DATA_ERROR' } });
    const { data } = await (fresh ? this.read(manifest) : this.load(manifest));
    return data.train.rows + data.holdout.rows;
  }

  /** The split data, or throws DATA_NOT_READY with the readiness this clinic reports and why. */
  async require(manifest: StudyManifest): Promise<SplitDataset> {
    const result = await this.check(manifest);
    if (!result.ok) throw new FedlhsError('DATA_NOT_READY', result.detail, { details: { readiness: result.readiness } });
    return result.data;
  }

  /** Sufficient statistics of the training split, suppressed below the study's minimum cell count. */
  async statistics(manifest: StudyManifest): Promise<ClinicStats> {
    const data = await this.require(manifest);
    return computeClinicStats(data.train.x, data.train.y, studyFeatureNames(manifest), manifest.data.minCellCount, histogramRanges(manifest), { seed: manifest.seed });
  }

  /**
   * Copies of the train and hold-out matrices scaled as the study says: with the study's
   * federated normalisation, with this clinic's own training statistics ('local-zscore'),
   * or unscaled; missing values become the mean (0 after scaling).
   */
  async prepared(manifest: StudyManifest, studyNormalization: Normalization | undefined): Promise<{ train: PreparedPart; holdout: PreparedPart & { keys: readonly string[] } }> {
    const data = await this.require(manifest);
    const names = studyFeatureNames(manifest);
    let normalization: Normalization | undefined;
    if (manifest.data.normalization === 'none') {
      // No scaling, but missing values still become this clinic's training mean (not 0).
      const stats = combineStats([computeClinicStats(data.train.x, data.train.y, names, 0)]);
      normalization = { method: 'zscore', features: stats.features.map((f) => ({ name: f.name, mean: 0, std: 1, impute: f.mean })) };
    } else if (manifest.data.normalization === 'federated-zscore') {
      if (studyNormalization === undefined) {
        throw new FedlhsError('INVALID_ARGUMENT', 'the study uses federated normalisation but the task carries none', { details: { field: 'normalization' } });
      }
      normalization = studyNormalization;
    } else if (manifest.data.normalization === 'local-zscore') {
      normalization = normalizationFrom(combineStats([computeClinicStats(data.train.x, data.train.y, names, 0)]));
    }
    return {
      train: { x: applyNormalization(Float32Array.from(data.train.x), names, normalization), y: data.train.y, rows: data.train.rows },
      holdout: { x: applyNormalization(Float32Array.from(data.holdout.x), names, normalization), y: data.holdout.y, rows: data.holdout.rows, keys: data.holdout.keys },
    };
  }

  /**
   * Read once per study definition and export: the cache key holds the export's fingerprint, so
   * a refreshed export (a series' next run, live monitoring) is read again instead of answering
   * from the old one; entries of an older export are dropped.
   */
  private load(manifest: StudyManifest): Promise<{ data: SplitDataset; report: CohortReport | undefined }> {
    const fingerprint = this.options.path === '' ? '' : exportFingerprint(this.options.path);
    if (fingerprint !== this.fingerprint) {
      this.cache.clear();
      this.fingerprint = fingerprint;
    }
    const key = JSON.stringify([manifest.data, manifest.seed]);
    let entry = this.cache.get(key);
    if (entry === undefined) {
      entry = this.read(manifest);
      entry.catch(() => this.cache.delete(key));
      this.cache.set(key, entry);
    }
    return entry;
  }

  private async read(manifest: StudyManifest): Promise<{ data: SplitDataset; report: CohortReport | undefined }> {
    const { format, path, keyColumn, encoding } = this.options;
    if (format === 'flat-table') {
      const table = await readFlatTable(path, {
        features: studyFeatureNames(manifest),
        label: manifest.data.label,
        keyColumn: keyColumn === '' ? undefined : keyColumn,
        splitColumn: manifest.data.splitColumn,
        encoding,
      });
      return { data: splitDataset(table, manifest.seed, manifest.data.holdoutFraction), report: undefined };
    }
    const { dataset, report } = await extractCohort(openEhrSource(format, path, { encoding }), manifest.data.cohort!);
    return { data: splitDataset(dataset, manifest.seed, manifest.data.holdoutFraction), report };
  }
}

/** Histogram ranges of a study's features: moved to @fedlhs/core (the coordinator checks reports against them). */
export { histogramRanges };
