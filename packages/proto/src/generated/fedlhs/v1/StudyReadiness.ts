// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Readiness as _fedlhs_v1_Readiness, Readiness__Output as _fedlhs_v1_Readiness__Output } from '../../fedlhs/v1/Readiness.js';
import type { PrivacyBudget as _fedlhs_v1_PrivacyBudget, PrivacyBudget__Output as _fedlhs_v1_PrivacyBudget__Output } from '../../fedlhs/v1/PrivacyBudget.js';

export interface StudyReadiness {
  /**
   * Id, at most 128 characters. A study not running on the coordinator: the readiness is not
   * kept (counted and logged; the session goes on).
   */
  'studyId'?: (string);
  /**
   * The manifest hash this readiness is about; READY for an older hash counts as not ready.
   * sha256-hex: exactly 64 lowercase hex digits.
   */
  'manifestSha256'?: (string);
  /**
   * One of the values of Readiness; an unknown value is INVALID_ARGUMENT.
   */
  'readiness'?: (_fedlhs_v1_Readiness);
  /**
   * Human-readable reason. Must not contain patient data; counts below the study's
   * suppression threshold must not be disclosed. Text, at most 1000 characters, one line (no
   * control characters); the coordinator keeps and shows at most its first 240.
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
  /**
   * Differential privacy (see "Privacy budgets"): this clinic's own accounting for the study,
   * when the manifest asks for DP or the clinic holds a budget. Informative: the clinic enforces
   * its budget itself (it declines rounds and withdraws); the coordinator shows it to operators.
   */
  'privacy'?: (_fedlhs_v1_PrivacyBudget | null);
}

export interface StudyReadiness__Output {
  /**
   * Id, at most 128 characters. A study not running on the coordinator: the readiness is not
   * kept (counted and logged; the session goes on).
   */
  'studyId': (string);
  /**
   * The manifest hash this readiness is about; READY for an older hash counts as not ready.
   * sha256-hex: exactly 64 lowercase hex digits.
   */
  'manifestSha256': (string);
  /**
   * One of the values of Readiness; an unknown value is INVALID_ARGUMENT.
   */
  'readiness': (_fedlhs_v1_Readiness__Output);
  /**
   * Human-readable reason. Must not contain patient data; counts below the study's
   * suppression threshold must not be disclosed. Text, at most 1000 characters, one line (no
   * control characters); the coordinator keeps and shows at most its first 240.
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
  /**
   * Differential privacy (see "Privacy budgets"): this clinic's own accounting for the study,
   * when the manifest asks for DP or the clinic holds a budget. Informative: the clinic enforces
   * its budget itself (it declines rounds and withdraws); the coordinator shows it to operators.
   */
  'privacy': (_fedlhs_v1_PrivacyBudget__Output | null);
}
