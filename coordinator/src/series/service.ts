import type { EventEmitter } from 'node:events';
import { FedlhsError, canonicalManifestJson, deriveSeriesRun, type PromotionDecision } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorStore, PromotionRecord, SeriesRecord, SeriesRunRecord, StudyRecord } from '../store.js';
import { releaseNotFound } from '../store/release-errors.js';
import { seriesNotFound } from '../store/series-errors.js';
import type { WriteOp } from '../store/write-ops.js';
import type { StudyStartExtras } from '../studies.js';
import { forgetSeriesTemplate, rememberSeriesTemplate } from '../wire.js';
import { CHAMPION_ALIAS, championStack, championVersion, currentChampion } from './champion.js';
import { SeriesDataReports } from './data-trigger.js';
import type { SeriesActions, SeriesRunView } from './types.js';
import { acceptTemplate, storedTemplate } from './template.js';

export interface SeriesServiceOptions {
  store: CoordinatorStore;
  log: Logger;
  now: () => number;
  /** The coordinator's 'change' emitter: {kind: 'series', seriesName} after every change, with `run` when a run started. */
  events: EventEmitter;
  /** The operators' study start (studies.ts): validation, memory checks, warm start, announcement. */
  startStudy: (manifestText: string, by: string, extras: StudyStartExtras) => Promise<StudyRecord>;
}

/** Emitted on `events` when a run started: {kind: 'series', seriesName, run}. */
export interface SeriesRunStarted {
  kind: 'series';
  seriesName: string;
  run: number;
}

/**
 * What operators (and the scheduler) do with series: each action is one unit of work with its
 * audit row, and emits 'change' {kind: 'series', seriesName}. Runs of one series start one at a
 * time (a lock per series here; the store's run-number guard against another coordinator).
 */
export class SeriesService implements SeriesActions {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Studies whose series template this service told wire.ts about (forgotten at stop). */
  private readonly remembered = new Set<string>();
  /** The clinics' latest SeriesDataReports of data-triggered series (control-session.ts hands them here; the scheduler reads them). */
  readonly data: SeriesDataReports;

  constructor(private readonly opts: SeriesServiceOptions) {
    this.data = new SeriesDataReports({ store: opts.store, log: opts.log, events: opts.events });
  }

  /** Remembers the template of every RUNNING series run (before studies resume and are announced). */
  async load(): Promise<void> {
    const { store } = this.opts;
    for (const s of await store.listSeries()) {
      for (const r of await store.listSeriesRuns(s.name)) {
        if ((await store.getStudy(r.studyId))?.state === 'RUNNING') this.remember(r.studyId, r.template);
      }
    }
  }

  /** Forgets the templates this service remembered (coordinator shutdown). */
  stop(): void {
    for (const id of this.remembered) forgetSeriesTemplate(id);
    this.remembered.clear();
  }

  async create(value: unknown, by: string): Promise<SeriesRecord> {
    const { template, json, sha256 } = acceptTemplate(value);
    const at = this.opts.now();
    const record: SeriesRecord = { name: template.name, template: json, templateSha256: sha256, state: 'active', createdBy: by, createdAt: at, updatedAt: at };
    await this.opts.store.write([
      { op: 'series.insert', s: record },
      { op: 'admin.action', a: { at, operator: by, action: 'series.create', target: template.name, detail: `template ${sha256}` } },
    ], 'series.create');
    this.changed('series.created', template.name, by, `series ${template.name} created (template ${sha256})`, { templateSha256: sha256 });
    return record;
  }

  async update(name: string, value: unknown, by: string): Promise<SeriesRecord> {
    const { template, json, sha256 } = acceptTemplate(value);
    if (template.name !== name) throw new FedlhsError('INVALID_ARGUMENT', `name: the template names series ${template.name}, not ${name} (a series cannot be renamed)`, { details: { field: 'name' } });
    const before = await this.series(name);
    const at = this.opts.now();
    await this.opts.store.write([
      { op: 'series.update', name, template: { json, sha256 }, at },
      { op: 'admin.action', a: { at, operator: by, action: 'series.update', target: name, detail: `template ${sha256} (was ${before.templateSha256})` } },
    ], 'series.update');
    this.changed('series.updated', name, by, `series ${name} has template ${sha256} now (clinics approve it again)`, { templateSha256: sha256, previous: before.templateSha256 });
    return { ...before, template: json, templateSha256: sha256, updatedAt: at };
  }

  async setState(name: string, state: SeriesRecord['state'], by: string): Promise<SeriesRecord> {
    if (state !== 'active' && state !== 'paused') throw new FedlhsError('INVALID_ARGUMENT', `state: "active" or "paused" is required, got ${JSON.stringify(state)?.slice(0, 40)}`, { details: { field: 'state' } });
    const before = await this.series(name);
    // Nothing to change (and the time of the last change, which the schedule counts from, stays).
    if (before.state === state) return before;
    const at = this.opts.now();
    await this.opts.store.write([
      { op: 'series.update', name, state, at },
      { op: 'admin.action', a: { at, operator: by, action: state === 'paused' ? 'series.pause' : 'series.resume', target: name, detail: `was ${before.state}` } },
    ], 'series.state');
    this.changed('series.state_changed', name, by, `series ${name} is ${state}`, { state, previous: before.state });
    return { ...before, state, updatedAt: at };
  }

  runNow(name: string, by: string): Promise<SeriesRunRecord> {
    return this.startRun(name, this.opts.now(), `operator:${by}`, by);
  }

  /**
   * Starts the series' next run, derived at `scheduledAt` with the current champion, through the
   * operators' study start; its SeriesRunRecord is written in the study's own unit.
   * FAILED_PRECONDITION while the series' last run is still running.
   */
  startRun(name: string, scheduledAt: number, trigger: string, operator?: string): Promise<SeriesRunRecord> {
    return this.locked(name, async () => {
      const { store, log } = this.opts;
      const s = await this.series(name);
      const last = (await store.listSeriesRuns(name)).at(-1);
      if (last !== undefined) {
        const study = await store.getStudy(last.studyId);
        if (study?.state === 'RUNNING') throw new FedlhsError('SERIES_BUSY', `run ${last.run} of series ${name} (study ${last.studyId}) is still running: a series runs one study at a time`);
        // A completed run's release decides the champion the next run is compared with (and starts from).
        if (study?.state === 'COMPLETED') {
          const release = await store.releaseOfStudy(last.studyId);
          if (release === undefined) throw new FedlhsError('SERIES_BUSY', `run ${last.run} of series ${name} completed but its release is not built yet: the next run waits for it (and for the champion decision on it)`);
          const decided = (await store.listPromotions(name)).some((p) => p.run === last.run && p.toVersion === release.version);
          if (!decided) throw new FedlhsError('SERIES_BUSY', `run ${last.run} of series ${name}: no champion decision on its release v${release.version} yet: the next run waits for it`);
        }
      }
      const template = storedTemplate(name, s.template);
      const champion = await currentChampion(store, name);
      const run = (last?.run ?? 0) + 1;
      const manifest = deriveSeriesRun(template, run, scheduledAt, champion);
      let record: SeriesRunRecord | undefined;
      const by = operator ?? `series ${name}`;
      await this.opts.startStudy(canonicalManifestJson(manifest), by, {
        ops: (study) => {
          record = { seriesName: name, run, studyId: study.id, scheduledAt, startedAt: this.opts.now(), trigger, championVersion: champion?.version ?? null, template: s.template };
          const ops: WriteOp[] = [{ op: 'series.run', r: record }];
          if (operator !== undefined) ops.push({ op: 'admin.action', a: { at: record.startedAt, operator, action: 'series.run-now', target: name, detail: `run ${run}: study ${study.id}` } });
          return ops;
        },
        // Before the study is announced: its announcement carries the template.
        recorded: (study) => this.remember(study.id, s.template),
      });
      const r = record!;
      // A data series counts newly labelled patients since its last run: this one now.
      this.data.reset(name);
      log.info(
        { event: 'series.run_started', seriesName: name, run, studyId: r.studyId, scheduledAt: new Date(scheduledAt).toISOString(), trigger, championVersion: r.championVersion },
        `series ${name} run ${run} started as study ${r.studyId}${champion === undefined ? ' (no champion yet)' : ` against champion v${champion.version}`}`,
      );
      this.opts.events.emit('change', { kind: 'series', seriesName: name, run } satisfies SeriesRunStarted);
      return r;
    });
  }

  promote(name: string, version: number, by: string): Promise<PromotionRecord> {
    return this.locked(name, () => this.promoteNow(name, version, by));
  }

  private async promoteNow(name: string, version: number, by: string): Promise<PromotionRecord> {
    const { store } = this.opts;
    await this.series(name);
    const release = await store.getRelease(name, version);
    if (release === undefined) throw releaseNotFound(name, version);
    const current = await championVersion(store, name);
    if (current === version) throw new FedlhsError('CHAMPION_UNCHANGED', `release ${name} v${version} is the champion already`);
    const run = await store.seriesRunOfStudy(release.studyId);
    // The evidence of the run's own decision, if the rule judged this release.
    const earlier = run === undefined ? undefined : (await store.listPromotions(name)).filter((p) => p.run === run.run && p.toVersion === version).at(-1);
    const prior = earlier === undefined ? undefined : (JSON.parse(earlier.evidence) as PromotionDecision & Record<string, unknown>);
    const evidence = {
      ...(prior ?? { tooSmall: [], worse: [] }),
      promote: true,
      reasons: [`promoted by operator ${by}`, ...(prior === undefined ? ['no rule decision on this release to show'] : prior.reasons.map((r) => `${earlier!.decidedBy}: ${r}`))],
      ...(earlier === undefined ? {} : { earlierAction: earlier.action }),
    };
    return this.moveChampion(name, { run: run?.run ?? null, fromVersion: current, toVersion: version, action: 'promote', evidence }, by);
  }

  rollback(name: string, by: string): Promise<PromotionRecord> {
    return this.locked(name, () => this.rollbackNow(name, by));
  }

  private async rollbackNow(name: string, by: string): Promise<PromotionRecord> {
    const { store } = this.opts;
    await this.series(name);
    const current = await championVersion(store, name);
    const stack = championStack(await store.listPromotions(name));
    // The latest recorded champion other than the current one: after an alias moved outside the
    // series (`release alias`), the current version may not be the top of the history, and
    // "rolling back" to the version already in use would change nothing while saying it did.
    const target = [...stack].reverse().find((v) => v !== current);
    if (current === null || target === undefined) throw new FedlhsError('CHAMPION_UNCHANGED', `series ${name} has no earlier champion to roll back to`);
    const outside = stack.at(-1) !== current ? ` (v${current} was made champion outside the series' decisions)` : '';
    const evidence = { promote: true, reasons: [`rolled back by operator ${by} from v${current} to v${target}, the champion before it${outside}`], tooSmall: [], worse: [] };
    return this.moveChampion(name, { run: null, fromVersion: current, toVersion: target, action: 'rollback', evidence }, by);
  }

  /** The runs of a series as the views show them, oldest first (NOT_FOUND for no such series). */
  async runViews(name: string): Promise<SeriesRunView[]> {
    const { store } = this.opts;
    await this.series(name);
    const [runs, promotions] = await Promise.all([store.listSeriesRuns(name), store.listPromotions(name)]);
    const views: SeriesRunView[] = [];
    for (const r of runs) {
      const [study, release] = await Promise.all([store.getStudy(r.studyId), store.releaseOfStudy(r.studyId)]);
      const decided = release === undefined ? undefined : promotions.filter((p) => p.run === r.run && p.toVersion === release.version).at(0);
      views.push({
        ...r, studyState: study?.state ?? 'UNKNOWN', releasedVersion: release?.version ?? null,
        decision: decided === undefined ? null : { ...decided, evidence: JSON.parse(decided.evidence) as PromotionDecision & Record<string, unknown> },
      });
    }
    return views;
  }

  private async moveChampion(name: string, p: Pick<PromotionRecord, 'run' | 'fromVersion' | 'toVersion' | 'action'> & { evidence: object }, by: string): Promise<PromotionRecord> {
    const at = this.opts.now();
    const decidedBy = `operator:${by}`;
    const row = { seriesName: name, run: p.run, fromVersion: p.fromVersion, toVersion: p.toVersion, action: p.action, decidedBy, evidence: JSON.stringify(p.evidence), at };
    await this.opts.store.write([
      { op: 'promotion.insert', p: row },
      { op: 'release.alias', studyName: name, alias: CHAMPION_ALIAS, version: p.toVersion, setBy: by, at },
      { op: 'admin.action', a: { at, operator: by, action: `series.${p.action}`, target: name, detail: `champion v${p.toVersion}${p.fromVersion === null ? '' : ` (was v${p.fromVersion})`}` } },
    ], `series.${p.action}`);
    const stored = (await this.opts.store.listPromotions(name)).filter((x) => x.at === at && x.toVersion === p.toVersion && x.decidedBy === decidedBy).at(-1);
    this.changed(p.action === 'rollback' ? 'series.rolled_back' : 'series.promoted', name, by, `series ${name}: champion v${p.toVersion}${p.fromVersion === null ? '' : ` (was v${p.fromVersion})`}, by ${by}`, { version: p.toVersion, previous: p.fromVersion });
    return stored ?? { id: 0, ...row };
  }

  private async series(name: string): Promise<SeriesRecord> {
    const s = await this.opts.store.getSeries(name);
    if (s === undefined) throw seriesNotFound(name);
    return s;
  }

  private remember(studyId: string, templateJson: string): void {
    rememberSeriesTemplate(studyId, templateJson);
    this.remembered.add(studyId);
  }

  private changed(event: string, seriesName: string, by: string, message: string, fields: Record<string, unknown>): void {
    this.opts.log.info({ event, seriesName, by, ...fields }, message);
    this.opts.events.emit('change', { kind: 'series', seriesName });
  }

  /**
   * Runs `fn` after every earlier action on the same series: run starts, operators' promotions
   * and rollbacks, and the rule's decisions (decide.ts takes this lock too) never interleave,
   * so none reads a champion another is about to move.
   */
  locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve();
    const next = before.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.locks.set(name, tail);
    void tail.then(() => {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return next;
  }
}
