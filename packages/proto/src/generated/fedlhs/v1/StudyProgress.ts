// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { StudyState as _fedlhs_v1_StudyState, StudyState__Output as _fedlhs_v1_StudyState__Output } from '../../fedlhs/v1/StudyState.js';

/**
 * What changed in a running study since its last announcement: sent instead of a full
 * StudyAnnouncement to agents that advertise the "study-progress" capability, after the
 * statistics phase derived parameters and after every committed round. The manifest is
 * unchanged (a changed manifest is a new study). An agent applies it exactly as it would a
 * re-announcement with the same manifest_sha256.
 */
export interface StudyProgress {
  'studyId'?: (string);
  'state'?: (_fedlhs_v1_StudyState);
  /**
   * Last round whose global model was committed (see Study.last_committed_round).
   */
  'lastCommittedRound'?: (number);
  /**
   * The study's parameters (see Task.parameters_json), only when they changed since the
   * previous announcement or progress message; empty means "unchanged", not "none".
   */
  'parametersJson'?: (string);
}

/**
 * What changed in a running study since its last announcement: sent instead of a full
 * StudyAnnouncement to agents that advertise the "study-progress" capability, after the
 * statistics phase derived parameters and after every committed round. The manifest is
 * unchanged (a changed manifest is a new study). An agent applies it exactly as it would a
 * re-announcement with the same manifest_sha256.
 */
export interface StudyProgress__Output {
  'studyId': (string);
  'state': (_fedlhs_v1_StudyState__Output);
  /**
   * Last round whose global model was committed (see Study.last_committed_round).
   */
  'lastCommittedRound': (number);
  /**
   * The study's parameters (see Task.parameters_json), only when they changed since the
   * previous announcement or progress message; empty means "unchanged", not "none".
   */
  'parametersJson': (string);
}
