// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { FeatureStatistics as _fedlhs_v1_FeatureStatistics, FeatureStatistics__Output as _fedlhs_v1_FeatureStatistics__Output } from '../../fedlhs/v1/FeatureStatistics.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Ids, feature names and counts are checked against their limits before anything else
 * (INVALID_ARGUMENT, not recorded).
 */
export interface StatisticsReport {
  /**
   * Id, at most 128 characters.
   */
  'taskId'?: (string);
  /**
   * Id, at most 128 characters.
   */
  'studyId'?: (string);
  'round'?: (number);
  /**
   * Records in this node's training split: eligible records (cohort/feature-spec eligibility,
   * label present) that are not in the hold-out split (see "Local data split"). It is the n
   * this node later sends as UpdateHeader.num_examples for the study, which may not exceed it
   * (BAD_EXAMPLE_COUNT). 0 with suppressed = true if below the minimum (then it bounds nothing).
   */
  'rows'?: (number | string | Long);
  /**
   * Positive labels; 0 with suppressed = true if it or rows - positives is below the minimum.
   */
  'positives'?: (number | string | Long);
  'suppressed'?: (boolean);
  /**
   * At most 10000 features.
   */
  'features'?: (_fedlhs_v1_FeatureStatistics)[];
}

/**
 * Ids, feature names and counts are checked against their limits before anything else
 * (INVALID_ARGUMENT, not recorded).
 */
export interface StatisticsReport__Output {
  /**
   * Id, at most 128 characters.
   */
  'taskId': (string);
  /**
   * Id, at most 128 characters.
   */
  'studyId': (string);
  'round': (number);
  /**
   * Records in this node's training split: eligible records (cohort/feature-spec eligibility,
   * label present) that are not in the hold-out split (see "Local data split"). It is the n
   * this node later sends as UpdateHeader.num_examples for the study, which may not exceed it
   * (BAD_EXAMPLE_COUNT). 0 with suppressed = true if below the minimum (then it bounds nothing).
   */
  'rows': (number);
  /**
   * Positive labels; 0 with suppressed = true if it or rows - positives is below the minimum.
   */
  'positives': (number);
  'suppressed': (boolean);
  /**
   * At most 10000 features.
   */
  'features': (_fedlhs_v1_FeatureStatistics__Output)[];
}
