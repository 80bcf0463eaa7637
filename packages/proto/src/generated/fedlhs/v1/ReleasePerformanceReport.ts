// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from '../../fedlhs/v1/Performance.js';
import type { Long } from '@grpc/proto-loader';

export interface ReleasePerformanceReport {
  'studyName'?: (string);
  'version'?: (number);
  /**
   * An opaque digest the agent derives from the export it scored (hex, at most 64
   * characters): the same export reported twice is one report.
   */
  'exportFingerprint'?: (string);
  /**
   * The release on the clinic's patients whose outcome is now known and that the study never
   * trained on (its hold-out split of the refreshed export). Required.
   */
  'performance'?: (_fedlhs_v1_Performance | null);
  /**
   * When the agent measured it (ms since the Unix epoch); at most 10 minutes after the
   * coordinator's clock.
   */
  'measuredAtMs'?: (number | string | Long);
}

export interface ReleasePerformanceReport__Output {
  'studyName': (string);
  'version': (number);
  /**
   * An opaque digest the agent derives from the export it scored (hex, at most 64
   * characters): the same export reported twice is one report.
   */
  'exportFingerprint': (string);
  /**
   * The release on the clinic's patients whose outcome is now known and that the study never
   * trained on (its hold-out split of the refreshed export). Required.
   */
  'performance': (_fedlhs_v1_Performance__Output | null);
  /**
   * When the agent measured it (ms since the Unix epoch); at most 10 minutes after the
   * coordinator's clock.
   */
  'measuredAtMs': (number);
}
