// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Sufficient statistics of one feature over the clinic's training split, in the order of the
 * study's features. Values are in the feature's own unit, before any normalisation; missing
 * values are counted, not included. What would disclose a group smaller than the study's
 * data.minCellCount (k) is withheld. With n rows and, for this feature, c non-missing and
 * m = n - c missing values:
 * - c < k: the feature is withheld: suppressed = true, and count, sum, sum_of_squares,
 * missing and every histogram cell are 0.
 * - 0 < m < k: only the missing count is withheld: missing = 0, missing_suppressed = true,
 * and count, sum, sum_of_squares and histogram cover exactly n - k of the c values (the
 * agent leaves k - m of them out, chosen pseudorandomly but reproducibly), so count is
 * n - k whatever m is and m cannot be recovered by differencing. If n - k < k the feature
 * is withheld instead.
 * - Otherwise count = c and missing = m (0 or at least k).
 * - A 0/1 feature (sum = sum_of_squares, an integer) whose reported ones or zeros number
 * fewer than k is withheld (its sum is that count).
 * - Histogram cells (over the reported values) below k become 0; when exactly one cell was
 * zeroed, the smallest other non-empty cell is zeroed too.
 * The coordinator rejects a report that breaks these rules or that no set of values in the
 * feature's declared range could produce (see RejectionReason INCONSISTENT_STATISTICS).
 */
export interface FeatureStatistics {
  /**
   * Text, 1 to 256 characters.
   */
  'name'?: (string);
  'count'?: (number | string | Long);
  'sum'?: (number | string);
  'sumOfSquares'?: (number | string);
  'missing'?: (number | string | Long);
  'suppressed'?: (boolean);
  /**
   * Counts per equal-width bin over [histogram_min, histogram_max], values outside clamped
   * into the end bins. Empty when the feature has no declared range. At most 64 cells.
   */
  'histogram'?: (number | string | Long)[];
  'histogramMin'?: (number | string);
  'histogramMax'?: (number | string);
  /**
   * True if only the missing count was withheld (0 < m < k, see above): missing is 0 and
   * count is rows - k.
   */
  'missingSuppressed'?: (boolean);
}

/**
 * Sufficient statistics of one feature over the clinic's training split, in the order of the
 * study's features. Values are in the feature's own unit, before any normalisation; missing
 * values are counted, not included. What would disclose a group smaller than the study's
 * data.minCellCount (k) is withheld. With n rows and, for this feature, c non-missing and
 * m = n - c missing values:
 * - c < k: the feature is withheld: suppressed = true, and count, sum, sum_of_squares,
 * missing and every histogram cell are 0.
 * - 0 < m < k: only the missing count is withheld: missing = 0, missing_suppressed = true,
 * and count, sum, sum_of_squares and histogram cover exactly n - k of the c values (the
 * agent leaves k - m of them out, chosen pseudorandomly but reproducibly), so count is
 * n - k whatever m is and m cannot be recovered by differencing. If n - k < k the feature
 * is withheld instead.
 * - Otherwise count = c and missing = m (0 or at least k).
 * - A 0/1 feature (sum = sum_of_squares, an integer) whose reported ones or zeros number
 * fewer than k is withheld (its sum is that count).
 * - Histogram cells (over the reported values) below k become 0; when exactly one cell was
 * zeroed, the smallest other non-empty cell is zeroed too.
 * The coordinator rejects a report that breaks these rules or that no set of values in the
 * feature's declared range could produce (see RejectionReason INCONSISTENT_STATISTICS).
 */
export interface FeatureStatistics__Output {
  /**
   * Text, 1 to 256 characters.
   */
  'name': (string);
  'count': (number);
  'sum': (number);
  'sumOfSquares': (number);
  'missing': (number);
  'suppressed': (boolean);
  /**
   * Counts per equal-width bin over [histogram_min, histogram_max], values outside clamped
   * into the end bins. Empty when the feature has no declared range. At most 64 cells.
   */
  'histogram': (number)[];
  'histogramMin': (number);
  'histogramMax': (number);
  /**
   * True if only the missing count was withheld (0 < m < k, see above): missing is 0 and
   * count is rows - k.
   */
  'missingSuppressed': (boolean);
}
