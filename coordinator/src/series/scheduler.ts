import type { EventEmitter } from 'node:events';
import { nextSeriesRunAt, type SeriesTemplate } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { EngineClock } from '../engine/study-runner.js';
import type { CoordinatorStore, SeriesRecord, SeriesRunRecord } from '../store.js';
import type { SeriesDecider } from './decide.js';
import type { SeriesService } from './service.js';
import { storedTemplate } from './template.js';

/** After a storage fault (or a decision that failed), the scheduler looks again this much later. */
export const SERIES_RETRY_MS = 60_000;
/** Longest single timer: Node's setTimeout overflows past 2^31−1 ms, so far times are reached in steps. */
const MAX_TIMER_MS = 24 * 3_600_000;
/** Missed times counted at most (an every-minute cron over a long outage). */
const MAX_MISSED_COUNTED = 100_000;

export interface SeriesSchedulerOptions {
  store: CoordinatorStore;
  service: SeriesService;
  decider: SeriesDecider;
  clock: EngineClock;
  log: Logger;
  /** The coordinator's 'change' emitter: a series change ({kind: 'series'} without `run`) wakes the scheduler. */
  events: EventEmitter;
}

/**
 * Starts series runs on their cron schedules (design continuous-learning.md, flow 2) on the
 * engine's clock, and data-triggered series when the clinics' reports reach their newLabelled
 * (checkData). For each active series whose last run's study has ended (and whose release
 * has its champion decision), the next run is due at nextSeriesRunAt(template, last run's
 * scheduled time, or the series' creation); one timer waits for the earliest. Times missed
 * (the coordinator was down, or a run outlasted its period) start one run, for the latest of
 * them, with a warning (series.missed). A running run's end wakes it (`studyEnded`), as do
 * series changes; nothing polls. A storage fault is logged and retried SERIES_RETRY_MS later.
 */
export class SeriesScheduler {
  private cancelTimer: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;
  /** Runs whose missing release was already reported (series.waiting_for_release is said once per run). */
  private readonly waitingForRelease = new Set<string>();
  private readonly onChange = (e: { kind?: string; run?: number }): void => {
    if (e.kind === 'series' && e.run === undefined) this.wake();
  };

  constructor(private readonly opts: SeriesSchedulerOptions) {}

  /** Decides on releases left undecided, then schedules (coordinator start). A no-op after stop. */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    this.opts.events.on('change', this.onChange);
    await this.opts.decider.decidePending();
    this.wake();
  }

  /** Stops scheduling and waits for a pass in progress (coordinator shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.events.off('change', this.onChange);
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.running;
  }

  /** A study ended (after its release and champion decision): the next run of its series may be due. */
  studyEnded(_studyId: string): void {
    this.wake();
  }

  /** Looks at every series now (one pass at a time; a wake during a pass runs another after it). */
  wake(): void {
    if (!this.started || this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves once no pass is running (tests). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async pass(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const { store, log, clock } = this.opts;
    let next: number | undefined;
    const at = (t: number | undefined): void => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    let list: SeriesRecord[] = [];
    try {
      list = await store.listSeries();
    } catch (err) {
      log.warn({ event: 'series.scheduler_failed', err }, `cannot read the series: ${(err as Error).message} (tried again in ${SERIES_RETRY_MS / 1000} s)`);
      at(clock.now() + SERIES_RETRY_MS);
    }
    for (const s of list) {
      if (this.stopped) return;
      try {
        at(await this.check(s));
      } catch (err) {
        // One series' fault (storage, a refused start) must not stop the others nor the scheduler.
        log.warn({ event: 'series.scheduler_failed', seriesName: s.name, err }, `series ${s.name}: ${(err as Error).message} (tried again in ${SERIES_RETRY_MS / 1000} s)`);
        at(clock.now() + SERIES_RETRY_MS);
      }
    }
    if (next !== undefined && !this.stopped) this.cancelTimer = clock.setTimer(Math.min(next - clock.now(), MAX_TIMER_MS), () => this.wake());
  }

  /** Starts the series' due run, if any; returns when to look again (undefined: on a wake). */
  private async check(s: SeriesRecord): Promise<number | undefined> {
    if (s.state !== 'active') return undefined;
    const { store, clock, log, decider } = this.opts;
    const template: SeriesTemplate = storedTemplate(s.name, s.template);
    const last = (await store.listSeriesRuns(s.name)).at(-1);
    if (last !== undefined) {
      const study = await store.getStudy(last.studyId);
      // Never two runs at once: its end wakes us (studyEnded).
      if (study === undefined || study.state === 'RUNNING') return undefined;
      // A completed run without its release yet (a build failed and is retried): the next run
      // would be compared with a champion that release may replace, so it waits for it.
      if (study.state === 'COMPLETED' && (await store.releaseOfStudy(last.studyId)) === undefined) {
        if (!this.waitingForRelease.has(last.studyId)) {
          this.waitingForRelease.add(last.studyId);
          log.warn({ event: 'series.waiting_for_release', seriesName: s.name, run: last.run, studyId: last.studyId }, `series ${s.name}: run ${last.run + 1} waits for the release of run ${last.run} (not built yet)`);
        }
        return clock.now() + SERIES_RETRY_MS;
      }
      // The next run is compared with (and may start from) the champion this decision sets.
      if (!(await decider.decide(last.studyId))) return clock.now() + SERIES_RETRY_MS;
    }
    if (template.schedule.type === 'data') return this.checkData(s, template.schedule.newLabelled, last);
    // Times that passed while the series was paused (or before its template changed) are not
    // missed runs: the next run is the next time after its last run or its last change.
    const first = nextSeriesRunAt(template, Math.max(last?.scheduledAt ?? s.createdAt, s.updatedAt));
    if (first === undefined) return undefined;
    const now = clock.now();
    if (first > now) return first;
    let latest = first;
    let skipped = 0;
    for (let t = nextSeriesRunAt(template, latest); t !== undefined && t <= now && skipped < MAX_MISSED_COUNTED; t = nextSeriesRunAt(template, latest)) {
      latest = t;
      skipped++;
    }
    if (skipped > 0) {
      log.warn(
        { event: 'series.missed', seriesName: s.name, skipped, firstMissed: new Date(first).toISOString(), runAt: new Date(latest).toISOString() },
        `series ${s.name}: ${skipped}${skipped >= MAX_MISSED_COUNTED ? '+' : ''} scheduled run(s) since ${new Date(first).toISOString()} were missed; one run starts for ${new Date(latest).toISOString()}`,
      );
    }
    await this.opts.service.startRun(s.name, latest, 'schedule');
    return undefined;
  }

  /**
   * A data-triggered series (its last run, if any, ended and was decided): run 1 starts at once;
   * a later run once the clinics' reports since the last run add up to `needed`. Reports wake
   * the scheduler as they arrive (data-trigger.ts emits 'change'), so nothing waits on a timer.
   */
  private async checkData(s: SeriesRecord, needed: number, last: SeriesRunRecord | undefined): Promise<undefined> {
    const { clock, log, service } = this.opts;
    if (last !== undefined) {
      const p = service.data.progress(s.name, last, needed);
      if (p.reported < needed) return undefined;
      log.info(
        { event: 'series.data_triggered', seriesName: s.name, afterRun: last.run, reported: p.reported, needed, clinics: p.clinics, suppressed: p.suppressed },
        `series ${s.name}: ${p.reported} newly labelled patient(s) reported by ${p.clinics} clinic(s) since run ${last.run} (${needed} needed): run ${last.run + 1} starts`,
      );
    }
    await service.startRun(s.name, clock.now(), 'data');
    return undefined;
  }
}
