import { FedlhsError, computePerformance, type Performance } from '@fedlhs/core';
import type { EvaluationReport } from '@fedlhs/proto';
import { authMetadata, deadlineIn } from '../connection.js';
import { holdoutParts, type PreparedPart } from '../local-data.js';
import type { TaskContext, TaskHandler } from '../task-runner.js';
import { championComparison, type WireReleaseComparison } from './champion.js';
import { wirePerformance, type WirePerformance } from './performance-wire.js';
import { roundCount, roundPerformance } from '../privacy-counts.js';

/**
 * Why a part got no figures, once per study and part (each round would say the same): an empty
 * part, or scores and labels that are not risks and outcomes (a model without a sigmoid output,
 * or a label that is not 0/1). Kept per process: a restarted agent says it once more.
 */
const explained = new Set<string>();

/** The figures of one part, or why there are none (never naming a value: the reason is logged). */
async function partPerformance(part: PreparedPart, predict: (x: Float32Array) => Promise<Float32Array>): Promise<{ performance: Performance; scores: Float32Array } | string> {
  if (part.rows === 0) return 'the part is empty (no hold-out record fell in it)';
  const scores = await predict(part.x);
  if (!scores.every((p) => p >= 0 && p <= 1)) return 'the model\'s outputs are not risks in [0, 1] (no sigmoid output?)';
  if (!part.y.every((y) => y === 0 || y === 1)) return 'the labels are not all 0 or 1';
  return { performance: computePerformance(scores, part.y), scores };
}

/**
 * The comparison with the series' champion when the run names one, or none with a warning
 * saying why: a champion that cannot be obtained or verified never fails the evaluation.
 */
async function compareWithChampion(ctx: TaskContext, task: { studyId: string; round: number; taskId: string }, test: { scores: Float32Array; labels: Float32Array } | undefined): Promise<WireReleaseComparison[]> {
  const series = ctx.manifest.series;
  if (series?.champion === undefined) return [];
  const champion = `${series.name} v${series.champion.version}`;
  let reason: string;
  if (test === undefined) reason = 'the test part has no figures, so there is nothing to compare on';
  else {
    try {
      const comparison = await championComparison(ctx, test.scores, test.labels);
      ctx.log.info({ event: 'evaluation.champion_compared', champion, aucDifference: comparison.aucDifference, standardError: comparison.aucDifferenceStandardError }, `champion ${champion} scored on the same test patients; paired comparison added`);
      return [comparison];
    } catch (err) {
      reason = (err as Error).message;
    }
  }
  ctx.log.warn({ event: 'evaluation.champion_unavailable', champion, reason }, `no comparison with the champion ${champion} sent: ${reason}`);
  // In the audit log too: a champion that does not verify (a weights digest that does not match,
  // a bad signature) may be tampering, and the clinic's record must show it, not only a log line.
  ctx.state.audit({ event: 'champion_unavailable', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId, outcome: `${champion}: ${reason}`.slice(0, 1000) });
  return [];
}

// Moved to performance-wire.ts (champion.ts uses it too); re-exported for existing importers.
export { wirePerformance, type WirePerformance } from './performance-wire.js';

/**
 * An evaluation task: this round's global model on the local hold-out split, divided into its
 * validation part (the metrics, which choose the released round, and `validation` figures) and
 * its test part (`test` figures only), and for a series run with a champion the paired
 * comparison with it on that test part (champion.ts). Only aggregates are reported; the audit
 * entry's `sent` is the very object sent.
 */
export const evaluateTask: TaskHandler = {
  kind: 'TASK_KIND_EVALUATE',
  name: 'evaluate',
  sentEvent: 'evaluation_sent',
  async run(task, ctx: TaskContext): Promise<void> {
    const { log } = ctx;
    const { data, runtime } = await ctx.loadModel();
    const parts = holdoutParts(data.holdout, ctx.manifest);
    if (parts.validation.rows === 0) {
      // The metrics choose the released round: test records must not stand in for them. The
      // reason is sent with the FAILED task, so it names no count.
      throw new FedlhsError('DATA_NOT_READY', 'the validation part of the hold-out split is empty: nothing to report metrics on (a larger data.holdoutFraction or a smaller release.testFraction helps)', { details: { readiness: 'READINESS_COHORT_TOO_SMALL' } });
    }
    const metrics = await runtime.evaluate(parts.validation.x, parts.validation.y);
    const figures: { validation?: WirePerformance; test?: WirePerformance } = {};
    let testScores: { scores: Float32Array; labels: Float32Array } | undefined;
    for (const name of ['validation', 'test'] as const) {
      const computed = await partPerformance(parts[name], (x) => runtime.predict(x));
      // Counts that leave are rounded when the manifest's privacy.counts says so (privacy-counts.ts).
      const rounded = typeof computed === 'string' ? computed : roundPerformance(ctx.manifest, computed.performance);
      const result = typeof rounded === 'string' ? rounded : { ...(computed as Exclude<typeof computed, string>), wire: wirePerformance(rounded) };
      if (typeof result !== 'string') {
        figures[name] = result.wire;
        if (name === 'test') testScores = { scores: result.scores, labels: parts.test.y };
        continue;
      }
      const key = `${task.studyId}\u0000${name}`;
      if (!explained.has(key)) {
        explained.add(key);
        log.warn({ event: 'evaluation.part_without_figures', part: name }, `no ${name} figures sent for this study: ${result}`);
      }
    }
    const comparisons = await compareWithChampion(ctx, task, testScores);
    const sentExamples = roundCount(ctx.manifest, metrics.numExamples);
    const request: EvaluationReport = {
      taskId: task.taskId, studyId: task.studyId, round: task.round,
      metrics: { numExamples: sentExamples, loss: metrics.loss, accuracy: metrics.accuracy, ...(metrics.auc === undefined ? {} : { auc: metrics.auc }) },
      ...figures,
      ...(comparisons.length === 0 ? {} : { comparisons }),
    };
    const sentReport = { evaluationReport: request };
    const audited = { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc };
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: sentExamples, metrics: audited, outcome: 'sending', sent: sentReport,
    });
    await ctx.withRetry('report', () =>
      new Promise((resolve, reject) => {
        ctx.clients.federation.ReportEvaluation(request, authMetadata(ctx.credential.credential), { deadline: deadlineIn(30_000) }, (err, receipt) => (err === null ? resolve(receipt) : reject(err)));
      }),
    );
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: sentExamples, metrics: audited, outcome: 'accepted', sent: sentReport,
    });
    log.info(
      { event: 'evaluation.sent', loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc, validationFigures: figures.validation !== undefined, testFigures: figures.test !== undefined, testExamples: parts.test.rows, comparisons: comparisons.length },
      `round ${task.round}: hold-out evaluation reported (validation part; test part figures ${figures.test === undefined ? 'not sent' : 'sent'})`,
    );
  },
};
