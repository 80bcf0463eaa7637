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
  /**
   * With READY: the rows of this clinic's training split for the study (the split of
   * vectors/split.json), i.e. the most that an update's num_examples may claim. The
   * coordinator rejects an update whose num_examples exceeds the training_rows of the node's
   * READY readiness for the study (REJECTION_REASON_BAD_EXAMPLE_COUNT), or, in a study with a
   * statistics phase, the rows of its accepted statistics report. 0: not stated; an update is
   * then bounded only by the statistics report, and refused if there is none.
   */
  'trainingRows'?: (number);
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
  /**
   * With READY: the rows of this clinic's training split for the study (the split of
   * vectors/split.json), i.e. the most that an update's num_examples may claim. The
   * coordinator rejects an update whose num_examples exceeds the training_rows of the node's
   * READY readiness for the study (REJECTION_REASON_BAD_EXAMPLE_COUNT), or, in a study with a
   * statistics phase, the rows of its accepted statistics report. 0: not stated; an update is
   * then bounded only by the statistics report, and refused if there is none.
   */
  'trainingRows': (number);
}
