import { FedlhsError, pooledDifference, pooledPerformance, type CloseDecision, type ComparisonFigures, type EvalMetrics, type Performance, type PooledComparison, type StudyManifest } from '@fedlhs/core';
import { disclosableMetrics, withheldFigures } from '../../disclosure.js';
import type { MetricRecord } from '../../store.js';
import type { Accepted, LiveTask, Phase, PhaseContext, PhaseCounters, PhaseOutput, PhasePlan, PhaseResult } from '../phase.js';

/**
 * A phase's metrics as stored: the example-weighted global value (if it covers at least
 * minCellCount examples) and each site's own, except the sites withheld by the small-cell
 * rule (disclosure.ts), whose figures count only in the global value.
 */
export function storedMetrics(ctx: PhaseContext, phase: MetricRecord['phase'], sites: (EvalMetrics & { nodeId: string | null })[]): MetricRecord[] {
  const k = ctx.study.manifest.data.minCellCount;
  const { shown, global, withheld } = disclosableMetrics(sites, k);
  if (withheld > 0) ctx.log.info({ event: 'metrics.withheld', round: ctx.attempt.round, phase, sites: withheld, minCellCount: k }, `${withheld} site(s)' ${phase} metrics kept only in the global value (small cells)`);
  const roundId = ctx.attempt.roundId;
  return [...shown.map((m) => ({ ...m, roundId, phase })), ...(global === undefined ? [] : [{ ...global, roundId, nodeId: null, phase }])];
}

/**
 * Attaches the figures of one part (validation or test) to its stored rows as `performance`
 * JSON, under complementary suppression over patients, cases and non-cases (disclosure.ts
 * withheldByCounts), run over the sites that sent figures and again over those with an AUC
 * (the pooled AUC averages only those): a site with fewer than minCellCount of any is withheld,
 * and the next smallest with it until the withheld group holds at least minCellCount of each,
 * so that pooled minus the shown sites never gives a small group's case count away. A withheld
 * site's row is dropped altogether (its AUC, loss and accuracy are figures of the same small
 * group), so the release counts it as withheld; a site without figures keeps its row. The
 * pooled figures (core pooledPerformance) go on the global row only if they cover at least
 * minCellCount patients, without AUC if its sites hold fewer.
 */
export function withPerformance(rows: MetricRecord[], figures: ReadonlyMap<string, Performance>, minCell: number): MetricRecord[] {
  const hidden = withheldFigures(figures, minCell);
  let pooled = pooledPerformance([...figures.values()]);
  if (pooled !== undefined && pooled.numExamples < minCell) pooled = undefined;
  const aucExamples = [...figures.values()].reduce((s, p) => s + (p.auc === undefined ? 0 : p.numExamples), 0);
  if (pooled !== undefined && aucExamples < minCell) pooled = { ...pooled, auc: undefined, aucStandardError: undefined };
  return rows.flatMap((row) => {
    if (row.nodeId !== null && hidden.has(row.nodeId)) return [];
    const p = row.nodeId === null ? pooled : figures.get(row.nodeId);
    return [p === undefined ? row : { ...row, performance: JSON.stringify(p) }];
  });
}

/**
 * A test-part Performance as the EvalMetrics of a 'test' row: `loss` is the Brier score (the
 * mean squared error of the predicted risk, what the test part reports instead of the model's
 * loss), `accuracy` the share on the right side of 0.5 read from the reliability table (bins
 * 0-4 are risks below 0.5, bins 5-9 at or above it), or 0 when the node sent no table.
 */
function testMetrics(p: Performance): EvalMetrics {
  const bins = p.calibration;
  const accuracy = bins.length === 10 && p.numExamples > 0
    ? bins.reduce((s, b, i) => s + (i < 5 ? b.count - b.observed : b.observed), 0) / p.numExamples
    : 0;
  return { numExamples: p.numExamples, loss: p.brier, accuracy, auc: p.auc };
}

const DETAIL_PREFIX = 'report sha256 ';

/** The detail of an ACCEPTED EVALUATE task: the digest of the report it accepted. */
export function evaluationDetail(digest: string): string {
  return `${DETAIL_PREFIX}${digest}`;
}

/** The report digest an ACCEPTED EVALUATE task holds, or undefined (accepted before digests were kept). */
export function evaluationDigest(detail: string | null): string | undefined {
  return detail !== null && /^report sha256 [0-9a-f]{64}$/.test(detail) ? detail.slice(DETAIL_PREFIX.length) : undefined;
}

/**
 * Hold-out evaluation of the candidate by every READY clinic, without a quorum: the model is
 * committed with whatever sites reported in time. A round that gathers no evaluation at all is
 * never committed silently: `round.unevaluated` (warn) and the round's reason say "0 of N sites
 * evaluated", and the status views show that reason.
 */
export class EvaluationPhase implements Phase {
  readonly name = 'evaluation';
  readonly roundState = 'EVALUATING' as const;
  readonly taskKinds = ['EVALUATE'] as const;
  readonly overCohort = false;
  readonly failurePrefix = 'evaluation: ';
  private readonly evaluations = new Map<string, EvalMetrics>();
  /** Figures per node on the validation and test parts, for those that sent them. */
  private readonly figures = { validation: new Map<string, Performance>(), test: new Map<string, Performance>() };
  /** Paired comparisons with the series' champion per node (proto ReleaseComparison), for those that sent one. */
  private readonly comparisons = new Map<string, ComparisonFigures>();

  plan(ctx: PhaseContext): PhasePlan {
    const candidate = ctx.attempt.candidate;
    if (candidate === undefined) throw new FedlhsError('INTERNAL', 'evaluation planned without a candidate model');
    return {
      tasks: ctx.readyNodes().map((nodeId) => ({ nodeId, kind: 'EVALUATE', model: candidate })),
      deadline: ctx.now() + ctx.study.manifest.deadlines.evaluationSeconds * 1000,
      quorum: 'none',
    };
  }

  /**
   * No quorum: close at the deadline, or once no task is open. Early, while the only open tasks
   * are offline clinics', only if some evaluation is in: a phase with none yet waits for them to
   * reconnect (sessions dropping under load must not commit an unevaluated model at once).
   */
  decide(_ctx: PhaseContext, c: PhaseCounters, deadlinePassed: boolean): CloseDecision {
    if (deadlinePassed || c.openOnline + c.openOffline === 0) return { action: 'close' };
    if (c.openOnline > 0) return { action: 'wait' };
    return c.accepted > 0 ? { action: 'close' } : { action: 'wait' };
  }

  async accept(ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted> {
    if (result.kind !== 'evaluation') throw new FedlhsError('INTERNAL', `evaluation phase got a ${result.kind} result`);
    const comparison = championComparison(ctx.study.manifest, result.comparisons ?? []);
    // The report's digest stays with the ACCEPTED task, so a re-sent report can be compared
    // with it after the metrics themselves are withheld (proto: duplicates).
    return {
      ops: [],
      detail: evaluationDetail(result.digest),
      apply: () => {
        this.evaluations.set(task.nodeId, result.metrics);
        if (result.validation !== undefined) this.figures.validation.set(task.nodeId, result.validation);
        if (result.test !== undefined) this.figures.test.set(task.nodeId, result.test);
        if (comparison !== undefined) this.comparisons.set(task.nodeId, comparison);
      },
    };
  }

  async complete(ctx: PhaseContext, c: PhaseCounters): Promise<PhaseOutput> {
    const { round, attempt } = ctx.attempt;
    const k = ctx.study.manifest.data.minCellCount;
    const figured = (phase: 'evaluation' | 'test', rows: MetricRecord[], figures: ReadonlyMap<string, Performance>): MetricRecord[] => {
      const kept = withPerformance(rows, figures, k);
      const dropped = rows.length - kept.length;
      if (dropped > 0) ctx.log.info({ event: 'figures.withheld', round, phase, sites: dropped, minCellCount: k }, `${dropped} site(s)' ${phase} figures kept only in the pooled value (fewer than minCellCount patients, cases or non-cases, or needed to protect such a site)`);
      return kept;
    };
    const validation = figured('evaluation', storedMetrics(ctx, 'evaluation', [...this.evaluations].map(([nodeId, m]) => ({ ...m, nodeId }))), this.figures.validation);
    // The test part's rows: published with a release only, never used to choose a round.
    const test = figured('test', storedMetrics(ctx, 'test', [...this.figures.test].map(([nodeId, p]) => ({ ...testMetrics(p), nodeId }))), this.figures.test);
    const metrics = [...validation, ...test, ...comparisonRows(ctx, this.comparisons, test, this.evaluations.keys())];
    const global = validation.find((m) => m.nodeId === null);
    const evaluated = this.evaluations.size;
    let summary: string | undefined;
    if (evaluated === 0) {
      summary = `committed unevaluated: 0 of ${c.assigned} site(s) evaluated the new model by the deadline`;
      ctx.metrics?.roundsUnevaluated.inc();
      ctx.log.warn({ event: 'round.unevaluated', round, attempt, evaluatedSites: 0, askedSites: c.assigned, failed: c.ended, open: c.openOnline + c.openOffline }, summary);
    } else if (global === undefined) {
      ctx.log.warn({ event: 'evaluation.missing', round }, `the evaluation covers fewer than minCellCount (${ctx.study.manifest.data.minCellCount}) examples: no global metric stored`);
    }
    return {
      metrics,
      ...(summary === undefined ? {} : { summary }),
      fields: { evaluatedSites: evaluated, askedSites: c.assigned, sitesWithTestFigures: this.figures.test.size, ...(ctx.study.manifest.series?.champion === undefined ? {} : { sitesCompared: this.comparisons.size }), ...(global === undefined ? {} : { loss: global.loss, accuracy: global.accuracy, auc: global.auc }) },
    };
  }

  dispose(): void {
    this.evaluations.clear();
    this.figures.validation.clear();
    this.figures.test.clear();
    this.comparisons.clear();
  }
}

/**
 * The comparison a report must carry: with the manifest's series.champion, at most one, of that
 * release (the series' name and the champion's version); without one, none. Anything else is
 * INVALID_METRICS (the task closes: the agent compared the wrong model).
 */
function championComparison(manifest: StudyManifest, comparisons: readonly ComparisonFigures[]): ComparisonFigures | undefined {
  const champion = manifest.series?.champion;
  if (comparisons.length === 0) return undefined;
  if (champion === undefined) throw new FedlhsError('INVALID_METRICS', 'comparisons: this study names no champion to compare with (manifest series.champion)');
  if (comparisons.length > 1) throw new FedlhsError('INVALID_METRICS', `comparisons: one comparison with the champion, not ${comparisons.length}`);
  const c = comparisons[0]!;
  if (c.studyName !== manifest.series!.name || c.version !== champion.version) {
    throw new FedlhsError('INVALID_METRICS', `comparisons[0]: compares ${c.studyName} version ${c.version}, but the champion is ${manifest.series!.name} version ${champion.version}`);
  }
  return c;
}

/**
 * The round's 'comparison' rows: one per site whose test figures are shown (a site withheld from
 * the test rows is withheld here too: the same patients), with the champion's figures as its
 * metrics (`loss` is the champion's Brier score, `auc` its AUC) and the comparison as
 * `performance` JSON (core comparisonFiguresSchema); and a global row (nodeId null) whose
 * `performance` is the pooled difference over every site that compared, withheld ones included
 * (core pooledComparisonSchema). None when the study has no champion.
 */
function comparisonRows(ctx: PhaseContext, comparisons: ReadonlyMap<string, ComparisonFigures>, testRows: readonly MetricRecord[], evaluated: Iterable<string>): MetricRecord[] {
  const champion = ctx.study.manifest.series?.champion;
  if (champion === undefined) return [];
  const roundId = ctx.attempt.roundId;
  const hidden = withheldComparisons(comparisons, new Set(testRows.flatMap((r) => (r.nodeId === null ? [] : [r.nodeId]))), ctx.study.manifest.data.minCellCount);
  const rows: MetricRecord[] = [];
  for (const [nodeId, c] of comparisons) {
    if (hidden.has(nodeId)) continue;
    rows.push({ roundId, nodeId, phase: 'comparison', numExamples: c.n, loss: c.champion.brier, accuracy: 0, auc: c.champion.auc, performance: JSON.stringify(c) });
  }
  const pooled = pooledDifference([...comparisons.values()]);
  // Sites that evaluated but sent no comparison: an agent's failure, not a small cell, so named.
  const missing = [...evaluated].filter((id) => !comparisons.has(id)).sort();
  const summary: PooledComparison = { studyName: ctx.study.manifest.series!.name, version: champion.version, ...(pooled === undefined ? {} : { pooled }), reported: comparisons.size, withheld: hidden.size, missing };
  if (comparisons.size === 0) {
    ctx.log.warn({ event: 'comparison.missing', round: ctx.attempt.round, champion: champion.version }, `no clinic compared round ${ctx.attempt.round}'s model with champion version ${champion.version}`);
  }
  rows.push({ roundId, nodeId: null, phase: 'comparison', numExamples: 0, loss: 0, accuracy: 0, auc: undefined, performance: JSON.stringify(summary) });
  return rows;
}

/**
 * The sites whose comparison is withheld: those whose test figures are (the same patients; the
 * champion's AUC plus the difference would give their AUC away), those whose own counts are
 * small, and then, as complementary suppression over the comparisons themselves, the smallest
 * shown ones until the withheld group holds at least minCellCount cases and non-cases, so the
 * pooled difference minus the shown sites never isolates one small site's figures.
 */
function withheldComparisons(comparisons: ReadonlyMap<string, ComparisonFigures>, testShown: ReadonlySet<string>, k: number): Set<string> {
  const hidden = withheldFigures([...comparisons].map(([id, c]) => [id, c.champion] as const), k);
  for (const id of comparisons.keys()) if (!testShown.has(id)) hidden.add(id);
  if (hidden.size === 0) return hidden;
  const counts = (id: string): [number, number] => {
    const c = comparisons.get(id)!;
    return [c.cases, c.n - c.cases];
  };
  let cases = 0;
  let controls = 0;
  for (const id of hidden) {
    const [a, b] = counts(id);
    cases += a;
    controls += b;
  }
  const shown = [...comparisons.keys()].filter((id) => !hidden.has(id)).sort((x, y) => Math.min(...counts(x)) - Math.min(...counts(y)) || x.localeCompare(y));
  for (const id of shown) {
    if (cases >= k && controls >= k) break;
    hidden.add(id);
    const [a, b] = counts(id);
    cases += a;
    controls += b;
  }
  return hidden;
}
