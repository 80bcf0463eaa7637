import { FLAT_TABLE_SPEC, readFlatTable, splitDataset, type SplitDataset } from '@fedlhs/ehr';
import { FedlhsError, isFedlhsError, type StudyManifest } from '@fedlhs/core';
import type { Readiness__Output as Readiness } from '@fedlhs/proto';

export interface DataOptions {
  path: string;
  keyColumn: string;
  minCohort: number;
}

export type DataCheck = { ok: true; data: SplitDataset } | { ok: false; readiness: Readiness; detail: string };

/**
 * The clinic's local data as a study needs it: read once per (features, label, seed),
 * split deterministically, and checked against the minimum cohort size. Nothing here leaves
 * the agent; readiness details never carry record contents or small counts.
 */
export class LocalData {
  private readonly cache = new Map<string, Promise<SplitDataset>>();

  constructor(private readonly options: DataOptions) {}

  async check(manifest: StudyManifest): Promise<DataCheck> {
    if (manifest.data.featureSpec !== FLAT_TABLE_SPEC) {
      return { ok: false, readiness: 'READINESS_FEATURE_SPEC_UNSUPPORTED', detail: `this agent produces ${FLAT_TABLE_SPEC}, the study asks for ${manifest.data.featureSpec}` };
    }
    if (this.options.path === '') return { ok: false, readiness: 'READINESS_DATA_ERROR', detail: 'no local data configured (data.path)' };
    let data: SplitDataset;
    try {
      data = await this.load(manifest);
    } catch (err) {
      const reason = isFedlhsError(err) ? err.reason : undefined;
      return {
        ok: false,
        readiness: reason === 'FEATURE_SPEC_UNSUPPORTED' ? 'READINESS_FEATURE_SPEC_UNSUPPORTED' : 'READINESS_DATA_ERROR',
        detail: (err as Error).message,
      };
    }
    const usable = data.train.rows + data.holdout.rows;
    if (usable < this.options.minCohort || data.train.rows === 0 || data.holdout.rows === 0) {
      return {
        ok: false,
        readiness: 'READINESS_COHORT_TOO_SMALL',
        detail: `fewer than ${this.options.minCohort} usable records (the configured minimum cohort); this clinic does not train on so few`,
      };
    }
    return { ok: true, data };
  }

  /** The split data, or throws with the reason it cannot be had. */
  async require(manifest: StudyManifest): Promise<SplitDataset> {
    const result = await this.check(manifest);
    if (!result.ok) throw new FedlhsError('FAILED_PRECONDITION', result.detail, { reason: result.readiness });
    return result.data;
  }

  private load(manifest: StudyManifest): Promise<SplitDataset> {
    const key = JSON.stringify([manifest.data.features, manifest.data.label, manifest.seed, manifest.data.holdoutFraction]);
    let entry = this.cache.get(key);
    if (entry === undefined) {
      entry = readFlatTable(this.options.path, {
        features: manifest.data.features,
        label: manifest.data.label,
        keyColumn: this.options.keyColumn === '' ? undefined : this.options.keyColumn,
      }).then((d) => splitDataset(d, manifest.seed, manifest.data.holdoutFraction));
      entry.catch(() => this.cache.delete(key));
      this.cache.set(key, entry);
    }
    return entry;
  }
}
