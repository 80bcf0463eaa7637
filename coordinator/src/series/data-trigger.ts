import type { EventEmitter } from 'node:events';
import { sha256Hex } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorStore, SeriesRunRecord } from '../store.js';
import { storedTemplate } from './template.js';

/**
 * Data-triggered series (proto "Data-triggered series"): the latest SeriesDataReport of each
 * node per series, kept in memory only (agents send one on every new session, so a restarted
 * coordinator hears them again), and the progress towards the template's newLabelled that the
 * scheduler starts the next run on. A report counts only for the series' last run and that
 * run's template; a suppressed one counts as 0 (a run may start later than N patients would
 * allow, never earlier).
 */

/** One report as the control session received it (already checked at the edge: grpc/validate.ts). */
export interface SeriesDataReportIn {
  seriesName: string;
  templateSha256: string;
  afterRun: number;
  newLabelled: number;
  suppressed: boolean;
}

/** Where a data series stands: what the clinics reported since its last run. */
export interface SeriesDataProgress {
  /** The run the reports follow. */
  afterRun: number;
  /** Newly labelled patients reported in all (suppressed reports count 0). */
  reported: number;
  /** The template's newLabelled. */
  needed: number;
  /** Clinics that reported for the last run, and how many of them sent a suppressed count. */
  clinics: number;
  suppressed: number;
}

interface Kept {
  templateSha256: string;
  afterRun: number;
  newLabelled: number;
  suppressed: boolean;
}

export interface SeriesDataReportsOptions {
  store: CoordinatorStore;
  log: Logger;
  /** The coordinator's 'change' emitter: a report that changes a series' progress emits {kind: 'series', seriesName} (wakes the scheduler, refreshes the dashboard). */
  events: EventEmitter;
}

/** The SHA-256 of a run's stored template (canonical JSON: the hash its manifest names). */
export function runTemplateSha256(run: Pick<SeriesRunRecord, 'template'>): string {
  return sha256Hex(run.template);
}

/** Why a report is not kept (the `reason` of series.data_ignored). */
type Ignored = 'unknown_series' | 'not_data_triggered' | 'no_run_yet' | 'other_run' | 'other_template' | 'not_a_participant';

/** The latest report per node and series of data-triggered series (see the file comment). */
export class SeriesDataReports {
  /** Per series, per node: its latest kept report. Bounded by series × nodes that took part. */
  private readonly reports = new Map<string, Map<string, Kept>>();

  constructor(private readonly opts: SeriesDataReportsOptions) {}

  /**
   * Keeps a node's report if it is about the series' last run and that run's template and the
   * node took part in a run of the series; otherwise logs why it is ignored (the session goes
   * on). A kept report that changes the series' figures emits 'change'.
   */
  async receive(nodeId: string, r: SeriesDataReportIn): Promise<void> {
    const why = await this.check(nodeId, r);
    if (why !== undefined) {
      const stale = why === 'other_run' || why === 'other_template';
      // A report racing a run's start is ordinary (debug); one for a series the node has no part in is worth seeing (info).
      this.opts.log[stale ? 'debug' : 'info'](
        { event: 'series.data_ignored', nodeId, seriesName: r.seriesName, afterRun: r.afterRun, templateSha256: r.templateSha256, reason: why },
        `data report of node ${nodeId} for series ${r.seriesName} (after run ${r.afterRun}) ignored: ${why.replaceAll('_', ' ')}`,
      );
      return;
    }
    let nodes = this.reports.get(r.seriesName);
    if (nodes === undefined) this.reports.set(r.seriesName, (nodes = new Map()));
    const before = nodes.get(nodeId);
    const kept: Kept = { templateSha256: r.templateSha256, afterRun: r.afterRun, newLabelled: r.suppressed ? 0 : r.newLabelled, suppressed: r.suppressed };
    nodes.set(nodeId, kept);
    const same = before !== undefined && before.templateSha256 === kept.templateSha256 && before.afterRun === kept.afterRun && before.newLabelled === kept.newLabelled && before.suppressed === kept.suppressed;
    if (same) return;
    this.opts.log.debug(
      { event: 'series.data_reported', nodeId, seriesName: r.seriesName, afterRun: r.afterRun, newLabelled: kept.newLabelled, suppressed: kept.suppressed },
      `node ${nodeId} reports ${kept.suppressed ? 'a suppressed count of' : kept.newLabelled} newly labelled patient(s) for series ${r.seriesName} since run ${r.afterRun}`,
    );
    this.opts.events.emit('change', { kind: 'series', seriesName: r.seriesName });
  }

  /**
   * The progress of `seriesName` towards `needed` since `last` (its last run): the sum of the
   * reports for that run and its template. Reports for earlier runs are dropped here.
   */
  progress(seriesName: string, last: Pick<SeriesRunRecord, 'run' | 'template'>, needed: number): SeriesDataProgress {
    const hash = runTemplateSha256(last);
    const nodes = this.reports.get(seriesName);
    let reported = 0;
    let clinics = 0;
    let suppressed = 0;
    for (const [nodeId, k] of nodes ?? []) {
      if (k.afterRun < last.run) {
        nodes!.delete(nodeId); // reports reset per run
        continue;
      }
      if (k.afterRun !== last.run || k.templateSha256 !== hash) continue;
      clinics++;
      if (k.suppressed) suppressed++;
      else reported += k.newLabelled;
    }
    if (nodes?.size === 0) this.reports.delete(seriesName);
    return { afterRun: last.run, reported, needed, clinics, suppressed };
  }

  /** Forgets a series' reports (its next run started: counts are since the last run). */
  reset(seriesName: string): void {
    this.reports.delete(seriesName);
  }

  private async check(nodeId: string, r: SeriesDataReportIn): Promise<Ignored | undefined> {
    const { store } = this.opts;
    const s = await store.getSeries(r.seriesName);
    if (s === undefined) return 'unknown_series';
    // The series' current template decides whether data triggers it (a stored template that no longer reads is the scheduler's to report).
    let dataTriggered = false;
    try {
      dataTriggered = storedTemplate(s.name, s.template).schedule.type === 'data';
    } catch {
      dataTriggered = false;
    }
    if (!dataTriggered) return 'not_data_triggered';
    const last = (await store.listSeriesRuns(r.seriesName)).at(-1);
    if (last === undefined) return 'no_run_yet';
    if (r.afterRun !== last.run) return 'other_run';
    if (r.templateSha256 !== runTemplateSha256(last)) return 'other_template';
    if (!(await store.nodeTookPartInName(nodeId, r.seriesName))) return 'not_a_participant';
    return undefined;
  }
}
