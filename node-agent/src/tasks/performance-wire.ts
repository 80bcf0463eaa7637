import type { Performance } from '@fedlhs/core';
import type { EvaluationReport } from '@fedlhs/proto';

/** proto common.proto Performance (@fedlhs/proto does not export it by name). */
export type WirePerformance = NonNullable<EvaluationReport['validation']>;

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
