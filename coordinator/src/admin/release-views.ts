import { FedlhsError, type Performance, type PublishedPerformance, type ReleaseDescriptor } from '@fedlhs/core';
import type { Coordinator } from '../coordinator.js';
import { releaseDrift, siteTestFigures, type DriftVerdict, type LiveReport, type ReleaseDrift } from '../releases/drift.js';
import type { ReleaseRegistry } from '../releases/registry.js';
import type { ReleaseAliasRecord, ReleasePerformanceRecord, ReleaseRecord } from '../store.js';

/**
 * The release registry as operators see it (admin API, CLI, dashboard): each release's
 * published validation and test figures beside its live performance per site, with the drift
 * verdict (releases/drift.ts). Only figures the small-cell rules let through appear here.
 */

const iso = (ms: number): string => new Date(ms).toISOString();

/** A published figure set, shortened to what a list shows. */
export interface FigureSummary {
  numExamples: number;
  auc: number | null;
  aucInterval: [number, number] | null;
}

/** A site's live verdict, named. */
export type SiteDriftView = DriftVerdict & { nodeId: string; siteName: string; measuredAt: string; exportFingerprint: string };

/** One release in the list: what the dashboard's Releases panel and `release list` show. */
export interface ReleaseSummaryView {
  studyName: string;
  version: number;
  studyId: string;
  round: number;
  createdAt: string;
  parentVersion: number | null;
  aliases: string[];
  /** From release.json (null when it cannot be read: `error` says why). */
  selection: { rule: string; reason: string; warnings: string[] } | null;
  validation: FigureSummary | null;
  test: FigureSummary | null;
  live: { reference: ReleaseDrift['reference']; pooled: (DriftVerdict & { sites: number }) | null; sites: SiteDriftView[] } | null;
  /** Why the release's figures cannot be shown (a damaged or missing release.json, an unreadable report). */
  error: string | null;
}

/** One release in full: the summary, its files, the whole release.json and the live verdicts. */
export interface ReleaseDetailView extends ReleaseSummaryView {
  manifestSha256: string;
  files: { name: string; sha256: string; size: number; url: string }[];
  descriptor: ReleaseDescriptor | null;
  /** The release's own per-site test figures beside each site's live ones (by site name). */
  testBySite: Record<string, PublishedPerformance>;
  /** How many live reports were received (the verdicts use the latest of each site). */
  reports: number;
}

const summary = (p: PublishedPerformance | null | undefined): FigureSummary | null =>
  p == null ? null : { numExamples: p.numExamples, auc: p.auc, aucInterval: p.aucInterval };

function parseReport(r: ReleasePerformanceRecord): LiveReport {
  let performance: Performance;
  try {
    performance = JSON.parse(r.performance) as Performance;
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `the live performance report of node ${r.nodeId} (export ${r.exportFingerprint.slice(0, 12)}) is not JSON`, { cause: err });
  }
  return { nodeId: r.nodeId, exportFingerprint: r.exportFingerprint, measuredAt: r.measuredAt, receivedAt: r.receivedAt, performance };
}

/** The reader the views need: the coordinator's store and node names, and the registry. */
export interface ReleaseViewContext {
  coordinator: Pick<Coordinator, 'store' | 'nodes'>;
  registry: ReleaseRegistry;
}

async function siteNames(ctx: ReleaseViewContext): Promise<Map<string, string>> {
  return new Map((await ctx.coordinator.nodes.list()).map((n) => [n.id, n.siteName]));
}

/** `reportsRead`: the release's live reports when the caller already read them (one read per request). */
async function summarize(ctx: ReleaseViewContext, r: ReleaseRecord, aliases: readonly ReleaseAliasRecord[], names: Map<string, string>, reportsRead?: readonly ReleasePerformanceRecord[]): Promise<ReleaseSummaryView & { descriptor: ReleaseDescriptor | null }> {
  const base = {
    studyName: r.studyName, version: r.version, studyId: r.studyId, round: r.round, createdAt: iso(r.createdAt), parentVersion: r.parentVersion,
    aliases: aliases.filter((a) => a.studyName === r.studyName && a.version === r.version).map((a) => a.alias).sort(),
  };
  let descriptor: ReleaseDescriptor;
  try {
    descriptor = await ctx.registry.descriptor(r);
  } catch (err) {
    return { ...base, selection: null, validation: null, test: null, live: null, descriptor: null, error: `release.json cannot be read: ${(err as Error).message}` };
  }
  const figures = {
    selection: { rule: descriptor.selection.rule, reason: descriptor.selection.reason, warnings: descriptor.selection.warnings },
    validation: summary(descriptor.metrics.validation.pooled), test: summary(descriptor.metrics.test.pooled),
  };
  try {
    const reports = (reportsRead ?? (await ctx.coordinator.store.listReleasePerformance(r.studyName, r.version))).map(parseReport);
    const drift = releaseDrift(reports, descriptor.metrics.test.pooled, descriptor.metrics.minCellCount, siteTestFigures(descriptor.metrics.test, (id) => names.get(id)));
    const sites = drift.sites.map((s) => ({ ...s, siteName: names.get(s.nodeId) ?? s.nodeId, measuredAt: iso(s.measuredAt) }))
      .sort((a, b) => (a.siteName < b.siteName ? -1 : a.siteName > b.siteName ? 1 : a.nodeId < b.nodeId ? -1 : 1));
    return { ...base, ...figures, live: { reference: drift.reference, pooled: drift.pooled, sites }, descriptor, error: null };
  } catch (err) {
    return { ...base, ...figures, live: null, descriptor, error: `live performance cannot be shown: ${(err as Error).message}` };
  }
}

/** Releases (newest first; of one study name when given) with their aliases. */
export async function releaseList(ctx: ReleaseViewContext, studyName: string | undefined, limit: number): Promise<{ releases: ReleaseSummaryView[]; aliases: (Omit<ReleaseAliasRecord, 'setAt'> & { setAt: string })[] }> {
  const [records, aliases, names] = await Promise.all([ctx.coordinator.store.listReleases(studyName, limit), ctx.registry.aliases(studyName), siteNames(ctx)]);
  const releases = await Promise.all(records.map(async (r) => {
    const { descriptor: _, ...view } = await summarize(ctx, r, aliases, names);
    return view;
  }));
  return { releases, aliases: aliases.map((a) => ({ ...a, setAt: iso(a.setAt) })) };
}

/** One release in full, or NOT_FOUND. */
export async function releaseDetail(ctx: ReleaseViewContext, studyName: string, version: number): Promise<ReleaseDetailView> {
  const r = await ctx.registry.get(studyName, version);
  const [aliases, names, reports] = await Promise.all([ctx.registry.aliases(studyName), siteNames(ctx), ctx.coordinator.store.listReleasePerformance(studyName, version)]);
  const view = await summarize(ctx, r, aliases, names, reports);
  const base = `/api/v1/releases/${encodeURIComponent(r.studyName)}/${r.version}/files`;
  return {
    ...view,
    manifestSha256: r.manifestSha256,
    files: [...r.files.map((f) => ({ ...f, url: `${base}/${encodeURIComponent(f.name)}` })), { name: 'envelope.json', sha256: ctx.registry.file(r, 'envelope.json').sha256, size: Buffer.byteLength(r.envelope), url: `${base}/envelope.json` }],
    testBySite: Object.fromEntries((view.descriptor?.metrics.test.sites ?? []).map((s) => [s.site, s.performance])),
    reports: reports.length,
  };
}
