import { isDeepStrictEqual } from 'node:util';
import { FedlhsError, RELEASE_FILES, checkPerformance, type Performance, type PerformanceInput } from '@fedlhs/core';
import type { BlobStore } from '../blobs/blob-store.js';
import type { CoordinatorStore, NodeRecord, ReleaseRecord } from '../store.js';

/** How far ahead of the coordinator's clock a report's measured_at_ms may be (clock skew). */
const MAX_MEASURED_AHEAD_MS = 10 * 60 * 1000;

/** Most releases one list returns (proto ListReleases). */
const MAX_RELEASES_LISTED = 1000;

/** A release with the aliases operators gave it. */
export type ListedRelease = ReleaseRecord & { aliases: string[] };

/** A site's live performance report of a deployed release (proto ReleasePerformanceReport). */
export interface PerformanceReport {
  studyName: string;
  version: number;
  exportFingerprint: string;
  /** As received; checked here (checkPerformance). */
  performance: PerformanceInput | null | undefined;
  measuredAt: number;
}

export interface ReleaseDistributionOptions {
  store: CoordinatorStore;
  blobs: BlobStore;
  now: () => number;
  /** Told about each new (not duplicate) live performance report: the live dashboards' change event. */
  onPerformance?: (report: { studyName: string; version: number; nodeId: string }) => void;
}

/**
 * Releases as nodes and operators read them: lists with aliases, one release, a file's bytes
 * from the blob store, and sites' live performance reports. Nodes see only releases of study
 * names they took part in (store.nodeTookPartInName: any study of the name, so every release of
 * a series, its champion included, reaches each clinic that took part in one of its runs);
 * operators (no node given) see all.
 */
export class ReleaseDistribution {
  constructor(private readonly opts: ReleaseDistributionOptions) {}

  /**
   * Releases newest version first per study name (all names when `studyName` is undefined), at
   * most `limit` (≤ MAX_RELEASES_LISTED), with their aliases; with `node`, only those of
   * study names it took part in.
   */
  async list(opts: { studyName?: string | undefined; limit?: number; node?: Pick<NodeRecord, 'id'> } = {}): Promise<ListedRelease[]> {
    const { store } = this.opts;
    const limit = Math.min(opts.limit ?? MAX_RELEASES_LISTED, MAX_RELEASES_LISTED);
    const [releases, aliases] = await Promise.all([store.listReleases(opts.studyName, MAX_RELEASES_LISTED), store.listReleaseAliases(opts.studyName)]);
    let visible = releases;
    if (opts.node !== undefined) {
      // By name: a node that took part in any study of a name (a series' runs share it) sees all its releases.
      const took = new Map<string, boolean>();
      for (const name of new Set(releases.map((r) => r.studyName))) took.set(name, await store.nodeTookPartInName(opts.node.id, name));
      visible = releases.filter((r) => took.get(r.studyName) === true);
    }
    return visible.slice(0, limit).map((r) => ({
      ...r,
      aliases: aliases.filter((a) => a.studyName === r.studyName && a.version === r.version).map((a) => a.alias).sort(),
    }));
  }

  /**
   * One release, NOT_FOUND if there is none; with `node`, NOT_ASSIGNED (PERMISSION_DENIED) unless
   * it took part in a study of the release's name.
   */
  async get(studyName: string, version: number, node?: Pick<NodeRecord, 'id'>): Promise<ListedRelease> {
    const { store } = this.opts;
    const release = await store.getRelease(studyName, version);
    if (release === undefined) throw new FedlhsError('NOT_FOUND', `no release ${studyName} version ${version}`);
    if (node !== undefined && !(await store.nodeTookPartInName(node.id, studyName))) {
      throw new FedlhsError('NOT_ASSIGNED', `node ${node.id} took no part in any study named ${studyName}: only their participants may fetch its releases`);
    }
    const aliases = (await store.listReleaseAliases(studyName)).filter((a) => a.version === version).map((a) => a.alias).sort();
    return { ...release, aliases };
  }

  /**
   * A file of a release: its record and its bytes in chunks of at most `chunkBytes` from the blob
   * store. NOT_FOUND for a name that is not a bundle file; DATA_LOSS if the blob is missing.
   */
  async readFile(
    release: Pick<ReleaseRecord, 'studyName' | 'version' | 'files'>, fileName: string, chunkBytes: number, signal?: AbortSignal,
  ): Promise<{ file: ReleaseRecord['files'][number]; chunks: AsyncIterable<Uint8Array> }> {
    const file = (RELEASE_FILES as readonly string[]).includes(fileName) ? release.files.find((f) => f.name === fileName) : undefined;
    if (file === undefined) throw new FedlhsError('NOT_FOUND', `release ${release.studyName} version ${release.version} has no file ${JSON.stringify(fileName.slice(0, 64))}`);
    const ref = await this.opts.blobs.stat(file.sha256);
    if (ref === undefined || ref.length !== file.size) throw new FedlhsError('DATA_LOSS', `file ${fileName} of release ${release.studyName} version ${release.version} is missing from the blob store`);
    return { file, chunks: this.opts.blobs.read({ sha256: file.sha256, length: file.size }, { chunkBytes, ...(signal === undefined ? {} : { signal }) }) };
  }

  /**
   * Records a site's live performance of a release: NOT_FOUND (no such release), NOT_ASSIGNED
   * (not a participant), INVALID_METRICS (performance missing or impossible), INVALID_ARGUMENT
   * (measured_at_ms more than MAX_MEASURED_AHEAD_MS ahead of the coordinator's clock: it would
   * stand as the site's latest report for good). The same (release, node, export fingerprint)
   * again is kept once and answered `duplicate` if its figures are the same, DUPLICATE_CONFLICT
   * if they differ (as ReportEvaluation does: the figures of one export cannot change).
   */
  async recordPerformance(node: Pick<NodeRecord, 'id'>, report: PerformanceReport): Promise<{ duplicate: boolean }> {
    const { store } = this.opts;
    await this.get(report.studyName, report.version, node);
    if (report.performance == null) throw new FedlhsError('INVALID_METRICS', 'ReleasePerformanceReport.performance is required');
    const now = this.opts.now();
    if (report.measuredAt > now + MAX_MEASURED_AHEAD_MS) {
      throw new FedlhsError(
        'INVALID_ARGUMENT',
        `field ReleasePerformanceReport.measured_at_ms: ${new Date(report.measuredAt).toISOString()} is more than ${MAX_MEASURED_AHEAD_MS / 60_000} minutes after the coordinator's clock (${new Date(now).toISOString()}): check the node's clock`,
        { details: { field: 'ReleasePerformanceReport.measured_at_ms' } },
      );
    }
    let performance: Performance;
    try {
      performance = checkPerformance(report.performance, 'ReleasePerformanceReport.performance');
    } catch (err) {
      throw new FedlhsError('INVALID_METRICS', (err as Error).message, { cause: err });
    }
    // The store keeps a repeated (release, node, export) once and says so: no read of every report.
    const result = await store.write([{
      op: 'release.performance',
      p: {
        studyName: report.studyName, version: report.version, nodeId: node.id, exportFingerprint: report.exportFingerprint,
        performance: JSON.stringify(performance), measuredAt: report.measuredAt, receivedAt: now,
      },
    }], 'release.performance');
    if ((result.duplicates ?? 0) > 0) {
      // Only a repeat reads the stored reports: the first one kept for this export must hold the same figures.
      const kept = (await store.listReleasePerformance(report.studyName, report.version)).find((r) => r.nodeId === node.id && r.exportFingerprint === report.exportFingerprint);
      if (kept !== undefined && !isDeepStrictEqual(parseStored(kept.performance), JSON.parse(JSON.stringify(performance)))) {
        throw new FedlhsError(
          'DUPLICATE_CONFLICT',
          `release ${report.studyName} version ${report.version} already has a performance report of node ${node.id} for export ${report.exportFingerprint.slice(0, 64)} with other figures: a new measurement needs a new export fingerprint`,
        );
      }
      return { duplicate: true };
    }
    this.opts.onPerformance?.({ studyName: report.studyName, version: report.version, nodeId: node.id });
    return { duplicate: false };
  }
}

/** A stored report's Performance JSON; DATA_LOSS when it no longer parses. */
function parseStored(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', 'a stored live performance report is not JSON', { cause: err });
  }
}
