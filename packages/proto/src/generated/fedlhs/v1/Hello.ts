// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { AgentInfo as _fedlhs_v1_AgentInfo, AgentInfo__Output as _fedlhs_v1_AgentInfo__Output } from '../../fedlhs/v1/AgentInfo.js';

/**
 * First message of every session.
 */
export interface Hello {
  'agent'?: (_fedlhs_v1_AgentInfo | null);
  /**
   * Ids of the tasks the agent is working on right now (empty after a restart). Informative:
   * the coordinator logs them; it re-sends open tasks regardless. At most 64 ids (each an id,
   * at most 128 characters).
   */
  'activeTaskIds'?: (string)[];
  /**
   * Optional protocol features the agent understands. Unknown entries are ignored. Defined:
   * - "study-progress": send StudyProgress instead of re-sending the full StudyAnnouncement
   * after statistics and after every commit (see "Announcements").
   * At most 32 entries, each text of at most 64 characters.
   */
  'capabilities'?: (string)[];
}

/**
 * First message of every session.
 */
export interface Hello__Output {
  'agent': (_fedlhs_v1_AgentInfo__Output | null);
  /**
   * Ids of the tasks the agent is working on right now (empty after a restart). Informative:
   * the coordinator logs them; it re-sends open tasks regardless. At most 64 ids (each an id,
   * at most 128 characters).
   */
  'activeTaskIds': (string)[];
  /**
   * Optional protocol features the agent understands. Unknown entries are ignored. Defined:
   * - "study-progress": send StudyProgress instead of re-sending the full StudyAnnouncement
   * after statistics and after every commit (see "Announcements").
   * At most 32 entries, each text of at most 64 characters.
   */
  'capabilities': (string)[];
}
