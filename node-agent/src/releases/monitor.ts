import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { applyNormalization, computePerformance, studyFeatureNames, type Performance } from '@fedlhs/core';
import { createModelRuntime } from '@fedlhs/model';
import type { FederationClient } from '@fedlhs/proto';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import type { AgentState } from '../agent-state.js';
import { authMetadata, deadlineIn } from '../connection.js';
import type { DataOptions } from '../local-data.js';
import { LocalData } from '../local-data.js';
import { loadDeployedRelease, readDeployed, releasesRoot, type DeployedRelease } from './local-releases.js';

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

/** Scores the release's model on rows already scaled as the release says; one risk per row. */
export async function scoreRows(release: DeployedRelease, x: Float32Array): Promise<Float32Array> {
  const runtime = await createModelRuntime({ topology: release.modelTopology, loss: release.manifest.training.loss, optimizer: release.manifest.training.optimizer });
  try {
    runtime.setWeights(release.weights);
    return await runtime.predict(x);
  } finally {
    runtime.dispose();
  }
}

/**
 * How a deployed release does on this clinic's current hold-out split (patients the study never
 * trained on). The study's minimum cell count is not applied here (`data` is read with it at 0):
 * small figures are still measured and reported, and the coordinator withholds them.
 */
export async function measureRelease(release: DeployedRelease, data: LocalData): Promise<Performance> {
  const split = await data.require({ ...release.manifest, data: { ...release.manifest.data, minCellCount: 0 } });
  const names = studyFeatureNames(release.manifest);
  const x = applyNormalization(Float32Array.from(split.holdout.x), names, release.normalization);
  const scores = await scoreRows(release, x);
  return computePerformance(scores, split.holdout.y);
}

/** Performance as the wire carries it (proto Performance; optional fields left out when absent). */
export function wirePerformance(p: Performance): Record<string, unknown> {
  return {
    numExamples: p.numExamples, positives: p.positives, brier: p.brier,
    ...(p.auc === undefined ? {} : { auc: p.auc }),
    ...(p.aucStandardError === undefined ? {} : { aucStandardError: p.aucStandardError }),
    ...(p.calibrationSlope === undefined ? {} : { calibrationSlope: p.calibrationSlope }),
    ...(p.calibrationIntercept === undefined ? {} : { calibrationIntercept: p.calibrationIntercept }),
    calibration: p.calibration.map((b) => ({ count: b.count, predictedSum: b.predictedSum, observed: b.observed })),
  };
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
  outcome: 'sent' | 'duplicate' | 'failed' | 'unchanged';
  performance?: Performance;
  detail?: string;
}

/**
 * Live performance (issue 12, "Is it still working there?"): when the export changed since the
 * last report for a deployed release, scores the release on the hold-out split of the current
 * export and reports the aggregates with ReportReleasePerformance, audited with exactly what
 * was sent. What was last reported per release is kept in releases/monitor.json.
 */
export class ReleaseMonitor {
  private running = false;

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
      try {
        const release = loadDeployedRelease(this.options.stateDir, name, pinnedPem);
        const performance = await measureRelease(release, data);
        const duplicate = await this.report(release, fingerprint, performance);
        reported[key] = fingerprint;
        writeFileAtomic(this.statePath, `${JSON.stringify(reported, null, 1)}\n`, 0o600);
        results.push({ studyName: name, version: current.version, outcome: duplicate ? 'duplicate' : 'sent', performance });
      } catch (err) {
        log.warn({ event: 'release.performance_failed', studyName: name, version: current.version, err: (err as Error).message }, `live performance of release ${name} v${current.version} not reported: ${(err as Error).message}`);
        results.push({ studyName: name, version: current.version, outcome: 'failed', detail: (err as Error).message });
      }
    }
    return results;
  }

  private async report(release: DeployedRelease, fingerprint: string, performance: Performance): Promise<boolean> {
    const { log, state, coordinator } = this.options;
    const { studyName, version } = release;
    const minCellCount = release.manifest.data.minCellCount;
    const small = performance.numExamples < minCellCount || performance.positives < minCellCount || performance.numExamples - performance.positives < minCellCount;
    if (small) {
      log.warn({ event: 'release.performance_small_cells', studyName, version, minCellCount }, `release ${studyName} v${version}: the hold-out has fewer than ${minCellCount} patients, cases or non-cases; the figures are reported, and the coordinator withholds them from what it shows`);
    }
    const sent = { studyName, version, exportFingerprint: fingerprint, performance: wirePerformance(performance), measuredAtMs: Date.now() };
    const audit = (outcome: string): void =>
      state.audit({
        event: 'release_performance_sent', coordinator, studyId: release.descriptor.study.id, round: release.descriptor.round, numExamples: performance.numExamples,
        metrics: { auc: performance.auc, brier: performance.brier, calibrationSlope: performance.calibrationSlope, calibrationIntercept: performance.calibrationIntercept },
        outcome, ...(small ? { detail: `under minCellCount ${minCellCount}: the coordinator withholds these figures` } : {}),
        sent: { releasePerformanceReport: sent }, release: { studyName, version },
      });
    audit('sending');
    const receipt = await new Promise<{ duplicate: boolean }>((resolve, reject) => {
      this.options.client.ReportReleasePerformance(sent, authMetadata(this.options.credential), { deadline: deadlineIn(30_000) }, (err, r) => (err === null ? resolve(r!) : reject(err)));
    });
    audit(receipt.duplicate ? 'accepted (duplicate)' : 'accepted');
    log.info({ event: 'release.performance_sent', studyName, version, numExamples: performance.numExamples, auc: performance.auc, brier: performance.brier, duplicate: receipt.duplicate }, `live performance of release ${studyName} v${version} reported`);
    return receipt.duplicate;
  }
}
