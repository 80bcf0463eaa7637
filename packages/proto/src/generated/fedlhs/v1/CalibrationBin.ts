// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { Long } from '@grpc/proto-loader';

/**
 * One bin of a reliability table.
 */
export interface CalibrationBin {
  /**
   * Patients whose predicted risk falls in the bin.
   */
  'count'?: (number | string | Long);
  /**
   * Sum of their predicted risks (0 <= predicted_sum <= count).
   */
  'predictedSum'?: (number | string);
  /**
   * How many of them had the outcome (<= count).
   */
  'observed'?: (number | string | Long);
}

/**
 * One bin of a reliability table.
 */
export interface CalibrationBin__Output {
  /**
   * Patients whose predicted risk falls in the bin.
   */
  'count': (number);
  /**
   * Sum of their predicted risks (0 <= predicted_sum <= count).
   */
  'predictedSum': (number);
  /**
   * How many of them had the outcome (<= count).
   */
  'observed': (number);
}
