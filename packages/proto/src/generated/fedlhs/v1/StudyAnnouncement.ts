// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Study as _fedlhs_v1_Study, Study__Output as _fedlhs_v1_Study__Output } from '../../fedlhs/v1/Study.js';

/**
 * A study the coordinator is running. Sent on every new session for each running study, again
 * when a study starts or ends, and, to agents without the "study-progress" capability, after
 * the statistics phase and after every commit (see "Announcements").
 */
export interface StudyAnnouncement {
  'study'?: (_fedlhs_v1_Study | null);
}

/**
 * A study the coordinator is running. Sent on every new session for each running study, again
 * when a study starts or ends, and, to agents without the "study-progress" capability, after
 * the statistics phase and after every commit (see "Announcements").
 */
export interface StudyAnnouncement__Output {
  'study': (_fedlhs_v1_Study__Output | null);
}
