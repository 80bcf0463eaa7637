// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Readiness as _fedlhs_v1_Readiness, Readiness__Output as _fedlhs_v1_Readiness__Output } from '../../fedlhs/v1/Readiness.js';

export interface StudyReadiness {
  'studyId'?: (string);
  /**
   * The manifest hash this readiness is about; READY for an older hash counts as not ready.
   */
  'manifestSha256'?: (string);
  'readiness'?: (_fedlhs_v1_Readiness);
  /**
   * Human-readable reason. Must not contain patient data; counts below the study's
   * suppression threshold must not be disclosed.
   */
  'detail'?: (string);
}

export interface StudyReadiness__Output {
  'studyId': (string);
  /**
   * The manifest hash this readiness is about; READY for an older hash counts as not ready.
   */
  'manifestSha256': (string);
  'readiness': (_fedlhs_v1_Readiness__Output);
  /**
   * Human-readable reason. Must not contain patient data; counts below the study's
   * suppression threshold must not be disclosed.
   */
  'detail': (string);
}
