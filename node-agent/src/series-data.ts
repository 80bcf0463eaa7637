import { canonicalManifestJson, deriveSeriesRun, validateManifest, validateSeriesTemplate, type SeriesTemplate, type StudyManifest } from '@fedlhs/core';
import type { AgentMessage, SeriesDataReport } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import type { AgentState } from './agent-state.js';
import { exportFingerprint, type LocalData } from './local-data.js';

/**
 * Data-triggered series at the clinic (proto "Data-triggered series"): for every series whose
 * last run's template this clinic approved and whose schedule is data, one SeriesDataReport
 * with the newly labelled patients since that run (or "suppressed" below the study's
 * minCellCount). Sent after a new session's announcements, when a run of the series ends, and
 * when the export changes (its fingerprint, looked at on the heartbeat at most once per
 * interval); at most one report per series per interval (the protocol: a minute). Each is
 * audited before it leaves. Only a count leaves: no key, no date, no record.
 */

const MS_PER_DAY = 86_400_000;
/** Most a report may claim (proto SeriesDataReport.new_labelled). */
const NEW_LABELLED_MAX = 1_000_000_000;

/** A data-triggered series this clinic reports for: its last run known here and that run's template. */
export interface DataSeriesTarget {
  name: string;
  template: SeriesTemplate;
  templateSha256: string;
  /** The last run of the series announced to this clinic, and its manifest. */
  run: number;
  manifest: StudyManifest;
}

/**
 * The data-triggered series to report for: per series name, the last run this agent recorded
 * (any template); reported only when that run's template is kept here, approved, and data-scheduled.
 */
export function dataSeriesTargets(state: AgentState): DataSeriesTarget[] {
  const approved = state.listSeriesTemplates().filter((t) => t.approvedAt !== null);
  const names = new Set<string>();
  for (const t of approved) {
    try {
      if (validateSeriesTemplate(JSON.parse(t.json)).schedule.type === 'data') names.add(t.name);
    } catch {
      // A kept template that no longer reads is refused where approval is judged (series-approval.ts).
    }
  }
  if (names.size === 0) return [];
  const last = new Map<string, StudyManifest>();
  for (const rec of state.listManifests()) {
    if (!names.has(rec.name)) continue;
    let m: StudyManifest;
    try {
      m = validateManifest(JSON.parse(rec.json));
    } catch {
      continue;
    }
    if (m.series === undefined || m.series.name !== rec.name) continue;
    const known = last.get(rec.name);
    if (known === undefined || m.series.run > known.series!.run) last.set(rec.name, m);
  }
  const targets: DataSeriesTarget[] = [];
  for (const [name, manifest] of last) {
    const s = manifest.series!;
    const rec = state.getSeriesTemplate(s.templateSha256);
    if (rec === undefined || rec.approvedAt === null) continue;
    let template: SeriesTemplate;
    try {
      template = validateSeriesTemplate(JSON.parse(rec.json));
    } catch {
      continue;
    }
    if (template.schedule.type !== 'data') continue;
    targets.push({ name, template, templateSha256: s.templateSha256, run: s.run, manifest });
  }
  return targets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const isoDay = (day: number): string => new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
const dayOf = (iso: string): number => Math.floor(Date.parse(`${iso}T00:00:00Z`) / MS_PER_DAY);

/**
 * Newly labelled patients of a data series since its last run, as the proto defines them: with
 * a window, eligible labelled patients whose index date is after the last run's index.to and at
 * or before the index.to a run derived at `nowMs` would have (the last run's study definition
 * with that index window, through the agent's own cohort extraction); without one, eligible
 * labelled records now minus those recorded when this clinic sent READY for the last run.
 * Undefined (with why) when this clinic has nothing to compare with.
 */
export async function countNewLabelled(target: DataSeriesTarget, data: LocalData, state: AgentState, nowMs: number): Promise<{ count: number } | { skip: string }> {
  const { template, manifest, run } = target;
  if (template.window !== undefined) {
    const cohort = manifest.data.cohort;
    if (cohort === undefined) return { skip: `run ${run}'s study has no cohort to move a window over` };
    const nextTo = deriveSeriesRun(template, run + 1, nowMs).data.cohort?.index.to;
    if (nextTo === undefined) return { skip: 'the template derives no index window' };
    const from = dayOf(cohort.index.to) + 1;
    if (from > dayOf(nextTo)) return { count: 0 };
    const raw = JSON.parse(canonicalManifestJson(manifest)) as { data: { cohort: { index: Record<string, unknown> } } };
    raw.data.cohort.index['from'] = isoDay(from);
    raw.data.cohort.index['to'] = nextTo;
    return { count: await data.labelledCount(validateManifest(raw), true) };
  }
  const then = state.getSeriesCount(target.name, run);
  if (then === undefined || then.templateSha256 !== target.templateSha256) return { skip: `this clinic did not take part in run ${run} (no READY recorded for it)` };
  return { count: Math.max(0, (await data.labelledCount(manifest)) - then.labelled) };
}

export interface SeriesDataReporterOptions {
  state: AgentState;
  data: LocalData;
  log: Logger;
  send: (message: AgentMessage) => void;
  /** The coordinator's address, for the audit log. */
  coordinator: string;
  /** The export whose fingerprint is watched (config data.path; empty: none). */
  dataPath: string;
  /** At most one report per series, and one fingerprint check, per this many ms (the protocol: 60 000). */
  intervalMs: number;
  now?: () => number;
}

/** Sends the SeriesDataReports (see the file comment); driven by the session's welcome, heartbeats and study ends. */
export class SeriesDataReporter {
  private readonly lastSent = new Map<string, number>();
  /** Series owed a report, with why; '*' = every data series (resolved at the next flush). */
  private readonly pending = new Map<string, string>();
  private fingerprint: string | undefined;
  private fingerprintCheckedAt = -Infinity;
  /** Whether the session's announcements may still be arriving (flushed at the first heartbeat). */
  private awaitingAnnouncements = false;
  private flushing: Promise<void> | undefined;
  private again = false;
  private readonly now: () => number;

  constructor(private readonly opts: SeriesDataReporterOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A new session: every data series is owed a report, sent at the first heartbeat (after the announcements). */
  welcomed(): void {
    this.pending.set('*', 'session');
    this.awaitingAnnouncements = true;
  }

  /** A study ended: if it is a run of a series, that series is owed a report now. */
  studyEnded(manifestSha256: string): void {
    const rec = this.opts.state.getManifest(manifestSha256);
    if (rec === undefined) return;
    let name: string | undefined;
    try {
      name = validateManifest(JSON.parse(rec.json)).series?.name;
    } catch {
      name = undefined;
    }
    if (name === undefined) return;
    this.pending.set(name, 'run_ended');
    if (!this.awaitingAnnouncements) this.flush();
  }

  /** Each heartbeat: looks at the export's fingerprint (at most once per interval), then sends what is owed and due. */
  heartbeat(): void {
    this.awaitingAnnouncements = false;
    const now = this.now();
    if (this.opts.dataPath !== '' && now - this.fingerprintCheckedAt >= this.opts.intervalMs) {
      this.fingerprintCheckedAt = now;
      let fp: string | undefined;
      try {
        fp = exportFingerprint(this.opts.dataPath);
      } catch {
        fp = undefined; // an export being replaced; readiness and the next check say more
      }
      if (fp !== undefined && this.fingerprint !== undefined && fp !== this.fingerprint) this.pending.set('*', 'export_changed');
      if (fp !== undefined) this.fingerprint = fp;
    }
    if (this.pending.size > 0) this.flush();
  }

  /** Resolves when no flush is running (tests). */
  async idle(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
  }

  /** Sends the owed reports that are due (one flush at a time; a request during one runs another after it). */
  flush(): void {
    if (this.flushing !== undefined) {
      this.again = true;
      return;
    }
    this.flushing = this.sendDue().finally(() => {
      this.flushing = undefined;
      if (this.again) {
        this.again = false;
        this.flush();
      }
    });
  }

  private async sendDue(): Promise<void> {
    const { state, log } = this.opts;
    let targets: DataSeriesTarget[];
    try {
      targets = dataSeriesTargets(state);
    } catch (err) {
      log.warn({ event: 'series.data_failed', err: (err as Error).message }, `cannot read the data-triggered series approved here: ${(err as Error).message}`);
      return;
    }
    const all = this.pending.get('*');
    this.pending.delete('*');
    if (all !== undefined) for (const t of targets) if (!this.pending.has(t.name)) this.pending.set(t.name, all);
    const names = new Set(targets.map((t) => t.name));
    for (const name of [...this.pending.keys()]) if (!names.has(name)) this.pending.delete(name);
    for (const t of targets) {
      const why = this.pending.get(t.name);
      if (why === undefined) continue;
      if (this.now() - (this.lastSent.get(t.name) ?? -Infinity) < this.opts.intervalMs) continue; // owed: a later heartbeat sends it
      this.pending.delete(t.name);
      await this.report(t, why);
    }
  }

  private async report(t: DataSeriesTarget, why: string): Promise<void> {
    const { state, log, data } = this.opts;
    let result: { count: number } | { skip: string };
    try {
      result = await countNewLabelled(t, data, state, this.now());
    } catch (err) {
      log.warn({ event: 'series.data_failed', series: t.name, err: (err as Error).message }, `series ${t.name}: could not count newly labelled patients since run ${t.run}: ${(err as Error).message} (tried again at the next trigger)`);
      return;
    }
    if ('skip' in result) {
      log.debug({ series: t.name, run: t.run, reason: result.skip }, `series ${t.name}: no data report (${result.skip})`);
      return;
    }
    const minCell = t.manifest.data.minCellCount;
    const suppressed = result.count < minCell;
    const newLabelled = suppressed ? 0 : Math.min(result.count, NEW_LABELLED_MAX);
    const report: SeriesDataReport = { seriesName: t.name, templateSha256: t.templateSha256, afterRun: t.run, newLabelled, suppressed };
    // Written down before it leaves: exactly what is sent (a suppressed count is not).
    state.audit({
      event: 'series_data_sent', coordinator: this.opts.coordinator, outcome: suppressed ? 'suppressed' : String(newLabelled), detail: why,
      series: { name: t.name, templateSha256: t.templateSha256 }, sent: { seriesData: report },
    });
    this.lastSent.set(t.name, this.now());
    this.opts.send({ seriesData: report });
    log.info(
      { event: 'series.data_sent', series: t.name, afterRun: t.run, newLabelled, suppressed, why },
      `series ${t.name}: reported ${suppressed ? `a count below minCellCount ${minCell} (suppressed)` : `${newLabelled} newly labelled patient(s)`} since run ${t.run}`,
    );
  }
}
