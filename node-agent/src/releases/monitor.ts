import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computePerformance, studyFeatureNames, type Performance } from '@fedlhs/core';
import type { FederationClient } from '@fedlhs/proto';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import { authMetadata, deadlineIn } from '../connection.js';
import type { DataOptions } from '../local-data.js';
import { LocalData, exportFingerprint, holdoutParts } from '../local-data.js';
import { createScorer } from '../scoring/pipeline.js';
import { wirePerformance } from '../tasks/evaluate.js';
export { exportFingerprint } from '../local-data.js';
import { loadDeployedRelease, readDeployed, releasesRoot, type DeployedRelease } from './local-releases.js';


/**
 * How a deployed release does on the TEST part of this clinic's current hold-out split
 * (patients the study never trained on, and whose figures did not choose the released round:
 * the validation part did; core isTestPart with the manifest's release.testFraction). The
 * study's minimum cell count is not applied while reading (`data` is read with it at 0): the
 * caller decides what may be sent.
 */
export async function measureRelease(release: DeployedRelease, data: LocalData): Promise<Performance> {
  const split = await data.require({ ...release.manifest, data: { ...release.manifest.data, minCellCount: 0 } });
  const { test } = holdoutParts({ x: split.holdout.x, y: split.holdout.y, rows: split.holdout.rows, keys: split.holdout.keys }, release.manifest);
  // The same scorer as `fedlhs-agent score` (scales with the release's normalisation, checks the risks).
  const scorer = await createScorer(release);
  try {
    // Row numbers as keys: only the risks are used, in row order.
    const rows = Array.from({ length: test.rows }, (_, i) => String(i));
    const scores = await scorer.score({ names: studyFeatureNames(release.manifest), keys: rows, indexDays: rows.map(() => undefined), x: test.x });
    return computePerformance(scores.map((s) => s.risk), test.y);
  } finally {
    scorer.dispose();
  }
}

/** Whether figures over `p` have fewer than `minCellCount` patients, cases or non-cases (never sent). */
export function smallCells(p: Pick<Performance, 'numExamples' | 'positives'>, minCellCount: number): boolean {
  return p.numExamples < minCellCount || p.positives < minCellCount || p.numExamples - p.positives < minCellCount;
}

export interface ReleaseMonitorOptions {
  stateDir: string;
  state: AgentState;
  client: Pick<FederationClient, 'ReportReleasePerformance'>;
  credential: string;
  /** The pinned release key (PEM); absent: nothing deployed can be verified, so nothing is measured. */
  pinnedPem: string | undefined;
  data: DataOptions;
  coordinator: string;
  log: Logger;
}

/** One measurement sent (or why not), for logs and tests. */
export interface MonitorResult {
  studyName: string;
  version: number;
  /**
   * sent / duplicate: reported; unchanged: the export is the one last measured (or the baseline);
   * baseline: first look at this release, the export recorded and nothing sent; small: measured
   * but under minCellCount, not sent; refused: this data cannot be monitored safely; failed.
   */
  outcome: 'sent' | 'duplicate' | 'failed' | 'unchanged' | 'baseline' | 'small' | 'refused';
  performance?: Performance;
  detail?: string;
}

/**
 * Live performance (issue 12, "Is it still working there?"): when the export changed since the
 * last report for a deployed release, scores the release on the hold-out test part of the
 * current export and reports the aggregates with ReportReleasePerformance, audited with exactly
 * what was sent. What was last measured per release is kept in releases/monitor.json; the first
 * look at a release records the export as its baseline and sends nothing (the figures would be
 * those of the export the study already evaluated). Figures under the study's minCellCount are
 * not sent. A flat table without data.keyColumn is not monitored: its keys are row numbers,
 * which move when rows are inserted, so the hold-out could hold patients the study trained on.
 */
export class ReleaseMonitor {
  private running = false;
  private unkeyedSaid = false;

  constructor(private readonly options: ReleaseMonitorOptions) {}

  private get statePath(): string {
    return join(releasesRoot(this.options.stateDir), 'monitor.json');
  }

  private reported(): Record<string, string> {
    if (!existsSync(this.statePath)) return {};
    try {
      return JSON.parse(readFileSync(this.statePath, 'utf8')) as Record<string, string>;
    } catch (err) {
      this.options.log.warn({ event: 'release.monitor_state_unreadable', path: this.statePath, err: (err as Error).message }, 'the record of reported measurements is unreadable; measuring every deployed release again');
      return {};
    }
  }

  /** One pass over the deployed releases; a pass already running makes this one a no-op. */
  async tick(): Promise<MonitorResult[]> {
    if (this.running) return [];
    this.running = true;
    try {
      return await this.pass();
    } finally {
      this.running = false;
    }
  }

  private async pass(): Promise<MonitorResult[]> {
    const { log, pinnedPem } = this.options;
    const deployed = readDeployed(this.options.stateDir);
    const names = Object.keys(deployed.current).sort();
    if (names.length === 0 || this.options.data.path === '') return [];
    if (pinnedPem === undefined) {
      log.warn({ event: 'release.monitor_no_key' }, 'no release key is pinned: deployed releases cannot be verified, so their live performance is not measured (re-enrol)');
      return [];
    }
    if (this.options.data.format === 'flat-table' && this.options.data.keyColumn === '') {
      if (!this.unkeyedSaid) {
        this.unkeyedSaid = true;
        log.warn({ event: 'release.monitor_unkeyed', studies: names }, 'live performance is not measured: the flat-table export has no data.keyColumn, so its records are keyed by row number, which moves when rows are inserted, and the hold-out could hold patients the study trained on; set data.keyColumn to a stable patient key to monitor deployed releases');
      }
      return names.map((name) => ({ studyName: name, version: deployed.current[name]!.version, outcome: 'refused', detail: 'flat-table export without data.keyColumn' }));
    }
    const fingerprint = exportFingerprint(this.options.data.path);
    const reported = this.reported();
    // A fresh reader each pass: the agent's own LocalData caches the export it read first.
    // (and no minimum cohort: a small refreshed export is still measured, its figures withheld upstream).
    const data = new LocalData({ ...this.options.data, minCohort: 1 });
    const results: MonitorResult[] = [];
    for (const name of names) {
      const current = deployed.current[name]!;
      const key = `${name}@${current.version}`;
      if (reported[key] === fingerprint) {
        results.push({ studyName: name, version: current.version, outcome: 'unchanged' });
        continue;
      }
      if (reported[key] === undefined) {
        // First look: this export is the baseline; only a changed export is news.
        reported[key] = fingerprint;
        writeFileAtomic(this.statePath, `${JSON.stringify(reported, null, 1)}\n`, 0o600);
        log.info({ event: 'release.monitor_baseline', studyName: name, version: current.version }, `release ${name} v${current.version}: the current export is the baseline; live performance is reported when the export changes`);
        results.push({ studyName: name, version: current.version, outcome: 'baseline' });
        continue;
      }
      try {
        const release = loadDeployedRelease(this.options.stateDir, name, pinnedPem);
        const performance = await measureRelease(release, data);
        const sent = await this.report(release, fingerprint, performance);
        reported[key] = fingerprint;
        writeFileAtomic(this.statePath, `${JSON.stringify(reported, null, 1)}\n`, 0o600);
        results.push({ studyName: name, version: current.version, outcome: sent, performance });
      } catch (err) {
        log.warn({ event: 'release.performance_failed', studyName: name, version: current.version, err: (err as Error).message }, `live performance of release ${name} v${current.version} not reported: ${(err as Error).message}`);
        results.push({ studyName: name, version: current.version, outcome: 'failed', detail: (err as Error).message });
      }
    }
    return results;
  }

  /** Sends the figures (or, under minCellCount, says why not): the outcome for MonitorResult. */
  private async report(release: DeployedRelease, fingerprint: string, performance: Performance): Promise<'sent' | 'duplicate' | 'small'> {
    const { log, state, coordinator } = this.options;
    const { studyName, version } = release;
    const minCellCount = release.manifest.data.minCellCount;
    if (smallCells(performance, minCellCount)) {
      // Not even the counts: the figures of a small cell stay at the clinic.
      log.warn({ event: 'release.performance_small_cells', studyName, version, minCellCount }, `release ${studyName} v${version}: the hold-out test part has fewer than ${minCellCount} patients, cases or non-cases; live performance not sent`);
      state.audit({
        event: 'release_performance_sent', coordinator, studyId: release.descriptor.study.id, round: release.descriptor.round,
        outcome: 'not sent (small cells)', detail: `fewer than minCellCount ${minCellCount} patients, cases or non-cases in the hold-out test part: nothing sent`, release: { studyName, version },
      });
      return 'small';
    }
    const sent = { studyName, version, exportFingerprint: fingerprint, performance: wirePerformance(performance), measuredAtMs: Date.now() };
    const audit = (outcome: string): void =>
      state.audit({
        event: 'release_performance_sent', coordinator, studyId: release.descriptor.study.id, round: release.descriptor.round, numExamples: performance.numExamples,
        metrics: { auc: performance.auc, brier: performance.brier, calibrationSlope: performance.calibrationSlope, calibrationIntercept: performance.calibrationIntercept },
        outcome, sent: { releasePerformanceReport: sent }, release: { studyName, version },
      });
    audit('sending');
    const receipt = await new Promise<{ duplicate: boolean }>((resolve, reject) => {
      this.options.client.ReportReleasePerformance(sent, authMetadata(this.options.credential), { deadline: deadlineIn(30_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
    });
    audit(receipt.duplicate ? 'accepted (duplicate)' : 'accepted');
    log.info({ event: 'release.performance_sent', studyName, version, numExamples: performance.numExamples, auc: performance.auc, brier: performance.brier, duplicate: receipt.duplicate }, `live performance of release ${studyName} v${version} reported`);
    return receipt.duplicate ? 'duplicate' : 'sent';
  }
}
