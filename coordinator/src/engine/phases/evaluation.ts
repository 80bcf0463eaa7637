import { FedlhsError, pooledPerformance, type CloseDecision, type EvalMetrics, type Performance } from '@fedlhs/core';
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

  async accept(_ctx: PhaseContext, task: LiveTask, result: PhaseResult): Promise<Accepted> {
    if (result.kind !== 'evaluation') throw new FedlhsError('INTERNAL', `evaluation phase got a ${result.kind} result`);
    // The report's digest stays with the ACCEPTED task, so a re-sent report can be compared
    // with it after the metrics themselves are withheld (proto: duplicates).
    return {
      ops: [],
      detail: evaluationDetail(result.digest),
      apply: () => {
        this.evaluations.set(task.nodeId, result.metrics);
        if (result.validation !== undefined) this.figures.validation.set(task.nodeId, result.validation);
        if (result.test !== undefined) this.figures.test.set(task.nodeId, result.test);
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
    const metrics = [...validation, ...test];
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
      fields: { evaluatedSites: evaluated, askedSites: c.assigned, sitesWithTestFigures: this.figures.test.size, ...(global === undefined ? {} : { loss: global.loss, accuracy: global.accuracy, auc: global.auc }) },
    };
  }

  dispose(): void {
    this.evaluations.clear();
    this.figures.validation.clear();
    this.figures.test.clear();
  }
}
