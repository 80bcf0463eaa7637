import { FedlhsError, computePerformance, type Performance } from '@fedlhs/core';
import type { EvaluationReport } from '@fedlhs/proto';
import { authMetadata, deadlineIn } from '../connection.js';
import { holdoutParts, type PreparedPart } from '../local-data.js';
import type { TaskContext, TaskHandler } from '../task-runner.js';

/**
 * Why a part got no figures, once per study and part (each round would say the same): an empty
 * part, or scores and labels that are not risks and outcomes (a model without a sigmoid output,
 * or a label that is not 0/1). Kept per process: a restarted agent says it once more.
 */
const explained = new Set<string>();

/** The figures of one part, or why there are none (never naming a value: the reason is logged). */
async function partPerformance(part: PreparedPart, predict: (x: Float32Array) => Promise<Float32Array>): Promise<Performance | string> {
  if (part.rows === 0) return 'the part is empty (no hold-out record fell in it)';
  const scores = await predict(part.x);
  if (!scores.every((p) => p >= 0 && p <= 1)) return 'the model\'s outputs are not risks in [0, 1] (no sigmoid output?)';
  if (!part.y.every((y) => y === 0 || y === 1)) return 'the labels are not all 0 or 1';
  return computePerformance(scores, part.y);
}

/** proto common.proto Performance (@fedlhs/proto does not export it by name). */
type WirePerformance = NonNullable<EvaluationReport['validation']>;

/** A core Performance as the wire message (absent optional fields left out). */
export function wirePerformance(p: Performance): WirePerformance {
  return {
    numExamples: p.numExamples,
    positives: p.positives,
    ...(p.auc === undefined ? {} : { auc: p.auc }),
    ...(p.aucStandardError === undefined ? {} : { aucStandardError: p.aucStandardError }),
    brier: p.brier,
    ...(p.calibrationSlope === undefined ? {} : { calibrationSlope: p.calibrationSlope }),
    ...(p.calibrationIntercept === undefined ? {} : { calibrationIntercept: p.calibrationIntercept }),
    calibration: p.calibration.map((b) => ({ count: b.count, predictedSum: b.predictedSum, observed: b.observed })),
  };
}

/**
 * An evaluation task: this round's global model on the local hold-out split, divided into its
 * validation part (the metrics, which choose the released round, and `validation` figures) and
 * its test part (`test` figures only). Only aggregates are reported; the audit entry's `sent`
 * is the very object sent.
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
    for (const name of ['validation', 'test'] as const) {
      const result = await partPerformance(parts[name], (x) => runtime.predict(x));
      if (typeof result !== 'string') {
        figures[name] = wirePerformance(result);
        continue;
      }
      const key = `${task.studyId}\u0000${name}`;
      if (!explained.has(key)) {
        explained.add(key);
        log.warn({ event: 'evaluation.part_without_figures', part: name }, `no ${name} figures sent for this study: ${result}`);
      }
    }
    const request: EvaluationReport = {
      taskId: task.taskId, studyId: task.studyId, round: task.round,
      metrics: { numExamples: metrics.numExamples, loss: metrics.loss, accuracy: metrics.accuracy, ...(metrics.auc === undefined ? {} : { auc: metrics.auc }) },
      ...figures,
    };
    const sentReport = { evaluationReport: request };
    const audited = { loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc };
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: metrics.numExamples, metrics: audited, outcome: 'sending', sent: sentReport,
    });
    await ctx.withRetry('report', () =>
      new Promise((resolve, reject) => {
        ctx.clients.federation.ReportEvaluation(request, authMetadata(ctx.credential.credential), { deadline: deadlineIn(30_000) }, (err, receipt) => (err === null ? resolve(receipt) : reject(err)));
      }),
    );
    ctx.state.audit({
      event: 'evaluation_sent', coordinator: ctx.config.coordinator.address, studyId: task.studyId, round: task.round, taskId: task.taskId,
      numExamples: metrics.numExamples, metrics: audited, outcome: 'accepted', sent: sentReport,
    });
    log.info(
      { event: 'evaluation.sent', loss: metrics.loss, accuracy: metrics.accuracy, auc: metrics.auc, validationFigures: figures.validation !== undefined, testFigures: figures.test !== undefined, testExamples: parts.test.rows },
      `round ${task.round}: hold-out evaluation reported (validation part; test part figures ${figures.test === undefined ? 'not sent' : 'sent'})`,
    );
  },
};
