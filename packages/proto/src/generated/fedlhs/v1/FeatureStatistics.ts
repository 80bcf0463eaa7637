// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Sufficient statistics of one feature over the clinic's training split, in the order of the
 * study's features. Values are in the feature's own unit, before any normalisation; missing
 * values are counted, not included. Every count below the study's data.minCellCount is
 * suppressed: count, sum and sum_of_squares become 0 with suppressed = true, a missing count
 * below it becomes 0, and histogram cells below it become 0.
 */
export interface FeatureStatistics {
  'name'?: (string);
  'count'?: (number | string | Long);
  'sum'?: (number | string);
  'sumOfSquares'?: (number | string);
  'missing'?: (number | string | Long);
  'suppressed'?: (boolean);
  /**
   * Counts per equal-width bin over [histogram_min, histogram_max], values outside clamped
   * into the end bins. Empty when the feature has no declared range.
   */
  'histogram'?: (number | string | Long)[];
  'histogramMin'?: (number | string);
  'histogramMax'?: (number | string);
}

/**
 * Sufficient statistics of one feature over the clinic's training split, in the order of the
 * study's features. Values are in the feature's own unit, before any normalisation; missing
 * values are counted, not included. Every count below the study's data.minCellCount is
 * suppressed: count, sum and sum_of_squares become 0 with suppressed = true, a missing count
 * below it becomes 0, and histogram cells below it become 0.
 */
export interface FeatureStatistics__Output {
  'name': (string);
  'count': (number);
  'sum': (number);
  'sumOfSquares': (number);
  'missing': (number);
  'suppressed': (boolean);
  /**
   * Counts per equal-width bin over [histogram_min, histogram_max], values outside clamped
   * into the end bins. Empty when the feature has no declared range.
   */
  'histogram': (number)[];
  'histogramMin': (number);
  'histogramMax': (number);
}
