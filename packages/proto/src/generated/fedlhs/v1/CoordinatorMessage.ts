// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Welcome as _fedlhs_v1_Welcome, Welcome__Output as _fedlhs_v1_Welcome__Output } from '../../fedlhs/v1/Welcome.js';
import type { Heartbeat as _fedlhs_v1_Heartbeat, Heartbeat__Output as _fedlhs_v1_Heartbeat__Output } from '../../fedlhs/v1/Heartbeat.js';
import type { StudyAnnouncement as _fedlhs_v1_StudyAnnouncement, StudyAnnouncement__Output as _fedlhs_v1_StudyAnnouncement__Output } from '../../fedlhs/v1/StudyAnnouncement.js';
import type { Task as _fedlhs_v1_Task, Task__Output as _fedlhs_v1_Task__Output } from '../../fedlhs/v1/Task.js';
import type { CancelTask as _fedlhs_v1_CancelTask, CancelTask__Output as _fedlhs_v1_CancelTask__Output } from '../../fedlhs/v1/CancelTask.js';
import type { StudyProgress as _fedlhs_v1_StudyProgress, StudyProgress__Output as _fedlhs_v1_StudyProgress__Output } from '../../fedlhs/v1/StudyProgress.js';

export interface CoordinatorMessage {
  'welcome'?: (_fedlhs_v1_Welcome | null);
  'heartbeat'?: (_fedlhs_v1_Heartbeat | null);
  'study'?: (_fedlhs_v1_StudyAnnouncement | null);
  'task'?: (_fedlhs_v1_Task | null);
  'cancel'?: (_fedlhs_v1_CancelTask | null);
  /**
   * Only to agents whose Hello.capabilities contains "study-progress" (see "Announcements").
   */
  'progress'?: (_fedlhs_v1_StudyProgress | null);
  'kind'?: "welcome"|"heartbeat"|"study"|"task"|"cancel"|"progress";
}

export interface CoordinatorMessage__Output {
  'welcome'?: (_fedlhs_v1_Welcome__Output | null);
  'heartbeat'?: (_fedlhs_v1_Heartbeat__Output | null);
  'study'?: (_fedlhs_v1_StudyAnnouncement__Output | null);
  'task'?: (_fedlhs_v1_Task__Output | null);
  'cancel'?: (_fedlhs_v1_CancelTask__Output | null);
  /**
   * Only to agents whose Hello.capabilities contains "study-progress" (see "Announcements").
   */
  'progress'?: (_fedlhs_v1_StudyProgress__Output | null);
  'kind'?: "welcome"|"heartbeat"|"study"|"task"|"cancel"|"progress";
}
