import { FedlhsError } from './errors.js';
import type { Performance } from './release-format.js';

/** Number of equal-width bins of predicted risk in a reliability table (proto: exactly 10 or none). */
export const CALIBRATION_BINS = 10;
/** Largest |calibration slope| or |intercept| kept (proto): beyond it the fit says nothing useful. */
export const MAX_CALIBRATION_COEFFICIENT = 1000;

/** Most patients a Performance may state (proto common.proto `Performance.num_examples`). */
export const MAX_PERFORMANCE_EXAMPLES = 1e12;

/** A Performance as received (proto-loader output carries extra oneof members such as `_auc`, and may say null). */
export interface PerformanceInput {
  numExamples: number;
  positives: number;
  auc?: number | null | undefined;
  aucStandardError?: number | null | undefined;
  brier: number;
  calibrationSlope?: number | null | undefined;
  calibrationIntercept?: number | null | undefined;
  calibration?: readonly { count: number; predictedSum: number; observed: number }[] | null | undefined;
}

/**
 * Checks a Performance received from outside (an agent's report) against the proto's rules and
 * returns it as core `Performance` (absent fields undefined, extra members dropped). Throws
 * INVALID_ARGUMENT naming the impossible value, with `details.field` = `${field}.<name>`:
 * a count that is not an integer in range, positives > num_examples, a non-finite number, brier
 * or auc outside [0, 1], an AUC with a single class, an SE without an AUC or outside [0, 0.5],
 * |calibration slope or intercept| > 1000 or only one of them, a table that is not exactly 0 or
 * 10 bins, bins whose counts do not add up to num_examples and positives, a predicted_sum
 * outside [0, count], observed > count.
 */
export function checkPerformance(p: PerformanceInput, field: string): Performance {
  const bad = (name: string, value: unknown, why: string): never => {
    throw new FedlhsError('INVALID_ARGUMENT', `field ${field}.${name}: ${why} (${String(value)})`, { details: { field: `${field}.${name}` } });
  };
  const count = (name: string, v: number, max: number): number => {
    if (!Number.isSafeInteger(v) || v < 0 || v > max) bad(name, v, `not an integer in [0, ${max}]`);
    return v;
  };
  const inRange = (name: string, v: number, lo: number, hi: number): number => {
    if (!Number.isFinite(v) || v < lo || v > hi) bad(name, v, `not a finite number in [${lo}, ${hi}]`);
    return v;
  };
  const opt = (v: number | null | undefined): number | undefined => (v == null ? undefined : v);

  const numExamples = count('num_examples', p.numExamples, MAX_PERFORMANCE_EXAMPLES);
  if (numExamples === 0) bad('num_examples', numExamples, 'figures of no patient');
  const positives = count('positives', p.positives, MAX_PERFORMANCE_EXAMPLES);
  if (positives > numExamples) bad('positives', positives, `more than num_examples ${numExamples}`);
  const brier = inRange('brier', p.brier, 0, 1);
  const auc = opt(p.auc);
  if (auc !== undefined) {
    inRange('auc', auc, 0, 1);
    if (positives === 0 || positives === numExamples) bad('auc', auc, 'an AUC with a single class present');
  }
  const aucStandardError = opt(p.aucStandardError);
  if (aucStandardError !== undefined) {
    if (auc === undefined) bad('auc_standard_error', aucStandardError, 'a standard error without an AUC');
    inRange('auc_standard_error', aucStandardError, 0, 0.5);
  }
  const calibrationSlope = opt(p.calibrationSlope);
  const calibrationIntercept = opt(p.calibrationIntercept);
  if ((calibrationSlope === undefined) !== (calibrationIntercept === undefined)) {
    bad(calibrationIntercept === undefined ? 'calibration_intercept' : 'calibration_slope', calibrationSlope ?? calibrationIntercept, 'a calibration slope and intercept come together');
  }
  if (calibrationSlope !== undefined) inRange('calibration_slope', calibrationSlope, -MAX_CALIBRATION_COEFFICIENT, MAX_CALIBRATION_COEFFICIENT);
  if (calibrationIntercept !== undefined) inRange('calibration_intercept', calibrationIntercept, -MAX_CALIBRATION_COEFFICIENT, MAX_CALIBRATION_COEFFICIENT);

  const bins = p.calibration ?? [];
  if (bins.length !== 0 && bins.length !== CALIBRATION_BINS) bad('calibration', `${bins.length} bins`, `not exactly 0 or ${CALIBRATION_BINS} bins`);
  const calibration = bins.map((b, i) => {
    const name = `calibration[${i}]`;
    const c = count(`${name}.count`, b.count, numExamples);
    const observed = count(`${name}.observed`, b.observed, c);
    const predictedSum = inRange(`${name}.predicted_sum`, b.predictedSum, 0, c);
    return { count: c, predictedSum, observed };
  });
  if (calibration.length > 0) {
    const counted = calibration.reduce((s, b) => s + b.count, 0);
    if (counted !== numExamples) bad('calibration', `counts add up to ${counted}`, `bins must add up to num_examples ${numExamples}`);
    const observed = calibration.reduce((s, b) => s + b.observed, 0);
    if (observed !== positives) bad('calibration', `observed add up to ${observed}`, `bins must add up to positives ${positives}`);
  }
  return {
    numExamples,
    positives,
    auc,
    ...(aucStandardError === undefined ? {} : { aucStandardError }),
    brier,
    ...(calibrationSlope === undefined ? {} : { calibrationSlope, calibrationIntercept }),
    calibration,
  };
}
