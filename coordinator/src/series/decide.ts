import type { EventEmitter } from 'node:events';
import { comparisonFiguresSchema, decidePromotion, pooledComparisonSchema, validateManifest, type PooledComparison, type PromotionDecision, type SiteComparison } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { CoordinatorStore, ReleaseRecord, SeriesRunRecord } from '../store.js';
import type { WriteOp } from '../store/write-ops.js';
import { CHAMPION_ALIAS, championVersion } from './champion.js';
import { storedTemplate } from './template.js';

/** Who decides under the template's rule (PromotionRecord.decidedBy, the audit row's operator). */
export const RULE = 'rule';

/** A site's comparison as the evidence shows it: small cells withheld, as in every published figure. */
export type EvidenceSite = Omit<SiteComparison, 'cases'> & { cases: number | null; withheld?: true };

/** What a decision records: core's decision and what it was made from. */
export type DecisionEvidence = PromotionDecision & {
  /** The champion version the run compared with (null: none). */
  champion: number | null;
  challenger: number;
  sites: EvidenceSite[];
  /** Sites whose evaluation of the released round was accepted but that sent no comparison. */
  missing: string[];
  /** Sites whose stored comparison could not be read or names another champion. */
  unreadable: string[];
};

export interface SeriesDeciderOptions {
  store: CoordinatorStore;
  log: Logger;
  now: () => number;
  /** The coordinator's 'change' emitter: {kind: 'series', seriesName} after a decision. */
  events: EventEmitter;
  /** The series' lock (SeriesService.locked): a decision never interleaves with an operator's promotion or rollback. */
  lock: <T>(seriesName: string, fn: () => Promise<T>) => Promise<T>;
}

/** The AUC in a stored Performance JSON, if it reads. */
function performanceAuc(json: string | null | undefined): unknown {
  if (json == null) return undefined;
  try {
    return (JSON.parse(json) as { auc?: unknown } | null)?.auc;
  } catch {
    return undefined;
  }
}

/** The evidence of one released round: the sites' paired comparisons with the champion. */
async function roundEvidence(store: CoordinatorStore, release: ReleaseRecord, champion: number): Promise<{ sites: SiteComparison[]; missing: string[]; unreadable: string[]; stored?: PooledComparison | undefined }> {
  const [rounds, metrics, nodes] = await Promise.all([store.listRounds(release.studyId), store.listMetrics(release.studyId), store.listNodes()]);
  const round = rounds.find((r) => r.round === release.round && r.state === 'COMMITTED');
  if (round === undefined) return { sites: [], missing: [], unreadable: [] };
  const names = new Map(nodes.map((n) => [n.id, n.siteName]));
  const siteName = (id: string): string => names.get(id) ?? id;
  const rows = metrics.filter((m) => m.roundId === round.id && m.nodeId !== null);
  const tests = new Map(rows.filter((m) => m.phase === 'test').map((m) => [m.nodeId!, m]));
  const evaluated = new Set((await store.listTasks(round.id)).filter((t) => t.kind === 'EVALUATE' && t.state === 'ACCEPTED').map((t) => t.nodeId));
  const sites: SiteComparison[] = [];
  const unreadable: string[] = [];
  const compared = new Set<string>();
  for (const row of rows.filter((m) => m.phase === 'comparison')) {
    const nodeId = row.nodeId!;
    compared.add(nodeId);
    let parsed;
    try {
      parsed = comparisonFiguresSchema.safeParse(JSON.parse(row.performance ?? 'null'));
    } catch {
      parsed = undefined;
    }
    // A row that does not read (or compares another champion) is named, never dropped silently.
    if (parsed?.success !== true || parsed.data.version !== champion) {
      unreadable.push(siteName(nodeId));
      continue;
    }
    const f = parsed.data;
    const auc = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
    const test = tests.get(nodeId);
    sites.push({
      siteName: siteName(nodeId), n: f.n, cases: f.cases, difference: f.difference, standardError: f.standardError,
      challengerAuc: auc(test?.auc) ?? auc(performanceAuc(test?.performance)),
      championAuc: auc(f.champion['auc']),
    });
  }
  // The pooled comparison the round stored over every site that compared, the withheld ones
  // included (evaluation phase): the decision rests on it, and it names the sites that
  // evaluated without comparing (a withheld site has no row of its own but did compare).
  const global = metrics.find((m) => m.roundId === round.id && m.nodeId === null && m.phase === 'comparison');
  let stored: PooledComparison | undefined;
  if (global !== undefined) {
    try {
      const parsed = pooledComparisonSchema.safeParse(JSON.parse(global.performance ?? 'null'));
      if (parsed.success && parsed.data.version === champion) stored = parsed.data;
      else unreadable.push('the pooled comparison');
    } catch {
      unreadable.push('the pooled comparison');
    }
  }
  const missing = (stored === undefined ? [...evaluated].filter((id) => !compared.has(id)) : stored.missing).map(siteName).sort();
  return { sites: sites.sort((a, b) => (a.siteName < b.siteName ? -1 : 1)), missing, unreadable: unreadable.sort(), stored };
}

/**
 * The champion decision on a series run's release (design continuous-learning.md, flow 6): the
 * first release of a series becomes champion; later ones are judged by the run's template rule
 * on the sites' paired comparisons of the released round. One unit records the decision, moves
 * the `champion` alias when it promotes and writes the audit row. Decisions are serialised and
 * idempotent (a run's release is decided once), so the release path, rebuilt releases and the
 * scheduler may all ask.
 */
export class SeriesDecider {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: SeriesDeciderOptions) {}

  /**
   * Decides on the release of `studyId` if it is a series run with a release not decided yet.
   * Never throws: a failure is logged (series.decision_failed, warn) and resolves false; it is
   * tried again by the scheduler before the series' next run and at every start.
   */
  decide(studyId: string): Promise<boolean> {
    const run = this.chain.then(async () => {
      try {
        await this.decideNow(studyId);
        return true;
      } catch (err) {
        this.opts.log.warn({ event: 'series.decision_failed', studyId, err }, `no champion decision on the release of study ${studyId}: ${(err as Error).message} (tried again before the series' next run and at start)`);
        return false;
      }
    });
    this.chain = run;
    return run;
  }

  /** Decides every undecided released run of every series (at start); resolves how many still failed. */
  async decidePending(): Promise<number> {
    let failed = 0;
    try {
      for (const s of await this.opts.store.listSeries()) {
        for (const r of await this.opts.store.listSeriesRuns(s.name)) if (!(await this.decide(r.studyId))) failed++;
      }
    } catch (err) {
      this.opts.log.warn({ event: 'series.decision_failed', err }, `cannot list series runs to decide on their releases: ${(err as Error).message}`);
      failed++;
    }
    return failed;
  }

  /** Resolves once no decision is running or queued. */
  async idle(): Promise<void> {
    for (let seen: Promise<unknown> | undefined; seen !== this.chain; ) {
      seen = this.chain;
      await seen.catch(() => undefined);
    }
  }

  private async decideNow(studyId: string): Promise<void> {
    const run = await this.opts.store.seriesRunOfStudy(studyId);
    if (run === undefined) return;
    await this.opts.lock(run.seriesName, () => this.decideRun(studyId, run));
  }

  private async decideRun(studyId: string, run: SeriesRunRecord): Promise<void> {
    const { store, log, events } = this.opts;
    const release = await store.releaseOfStudy(studyId);
    if (release === undefined) return;
    const name = run.seriesName;
    const history = await store.listPromotions(name);
    if (history.some((p) => p.run === run.run && p.toVersion === release.version)) return;
    const study = await store.getStudy(studyId);
    if (study === undefined) return;
    const manifest = validateManifest(JSON.parse(study.manifestJson));
    const template = storedTemplate(name, run.template);
    const k = manifest.data.minCellCount;
    const compared = manifest.series?.champion?.version ?? null;
    const current = await championVersion(store, name);
    let evidence: DecisionEvidence;
    if (compared === null) {
      evidence = current === null
        ? { promote: true, reasons: ['first release of the series: there is no champion to compare it with'], tooSmall: [], worse: [], champion: null, challenger: release.version, sites: [], missing: [], unreadable: [] }
        : {
            promote: false, reasons: [`the run was derived without a champion and v${current} became champion since: nothing was compared (an operator may promote)`],
            tooSmall: [], worse: [], champion: null, challenger: release.version, sites: [], missing: [], unreadable: [],
          };
    } else {
      const { sites, missing, unreadable, stored } = await roundEvidence(store, release, compared);
      const decision = decidePromotion(template.promotion, sites, k, stored);
      const reasons = [...decision.reasons];
      if (missing.length > 0) reasons.push(`no comparison from: ${missing.join(', ')}`);
      if (unreadable.length > 0) reasons.push(`comparison unreadable or with another champion from: ${unreadable.join(', ')}`);
      let promote = decision.promote;
      if (current !== compared) {
        promote = false;
        reasons.push(`the champion changed from v${compared} to ${current === null ? 'none' : `v${current}`} during the run: the release was compared with v${compared} only (an operator may promote)`);
      }
      const published: EvidenceSite[] = sites.map((s) =>
        decision.tooSmall.includes(s.siteName) ? { siteName: s.siteName, n: s.n, cases: null, withheld: true } : { ...s },
      );
      evidence = { ...decision, promote, reasons, champion: compared, challenger: release.version, sites: published, missing, unreadable };
    }
    await this.record(run, release, current, evidence);
    const event = evidence.promote ? 'series.promoted' : 'series.kept';
    log.info(
      { event, seriesName: name, run: run.run, version: release.version, champion: evidence.promote ? release.version : current, reasons: evidence.reasons },
      `series ${name} run ${run.run}: release v${release.version} ${evidence.promote ? 'is the champion now' : `kept out, champion stays ${current === null ? 'unset' : `v${current}`}`} (${evidence.reasons.join('; ')})`,
    );
    events.emit('change', { kind: 'series', seriesName: name });
  }

  private async record(run: SeriesRunRecord, release: ReleaseRecord, current: number | null, evidence: DecisionEvidence): Promise<void> {
    const at = this.opts.now();
    const name = run.seriesName;
    const ops: WriteOp[] = [
      { op: 'promotion.insert', p: { seriesName: name, run: run.run, fromVersion: current, toVersion: release.version, action: evidence.promote ? 'promote' : 'keep', decidedBy: RULE, evidence: JSON.stringify(evidence), at } },
    ];
    if (evidence.promote) ops.push({ op: 'release.alias', studyName: name, alias: CHAMPION_ALIAS, version: release.version, setBy: RULE, at });
    ops.push({
      op: 'admin.action',
      a: { at, operator: RULE, action: evidence.promote ? 'series.promote' : 'series.keep', target: name, detail: `run ${run.run}: v${release.version} ${evidence.promote ? `is champion${current === null ? '' : ` (was v${current})`}` : `kept out${current === null ? '' : `, champion stays v${current}`}`}` },
    });
    await this.opts.store.write(ops, evidence.promote ? 'series.promote' : 'series.keep');
  }
}
