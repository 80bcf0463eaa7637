// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { Hello as _fedlhs_v1_Hello, Hello__Output as _fedlhs_v1_Hello__Output } from '../../fedlhs/v1/Hello.js';
import type { Heartbeat as _fedlhs_v1_Heartbeat, Heartbeat__Output as _fedlhs_v1_Heartbeat__Output } from '../../fedlhs/v1/Heartbeat.js';
import type { StudyReadiness as _fedlhs_v1_StudyReadiness, StudyReadiness__Output as _fedlhs_v1_StudyReadiness__Output } from '../../fedlhs/v1/StudyReadiness.js';
import type { TaskUpdate as _fedlhs_v1_TaskUpdate, TaskUpdate__Output as _fedlhs_v1_TaskUpdate__Output } from '../../fedlhs/v1/TaskUpdate.js';
import type { SeriesDataReport as _fedlhs_v1_SeriesDataReport, SeriesDataReport__Output as _fedlhs_v1_SeriesDataReport__Output } from '../../fedlhs/v1/SeriesDataReport.js';

export interface AgentMessage {
  'hello'?: (_fedlhs_v1_Hello | null);
  'heartbeat'?: (_fedlhs_v1_Heartbeat | null);
  'readiness'?: (_fedlhs_v1_StudyReadiness | null);
  'taskUpdate'?: (_fedlhs_v1_TaskUpdate | null);
  /**
   * For data-triggered series the agent approved (see "Data-triggered series").
   */
  'seriesData'?: (_fedlhs_v1_SeriesDataReport | null);
  'kind'?: "hello"|"heartbeat"|"readiness"|"taskUpdate"|"seriesData";
}

export interface AgentMessage__Output {
  'hello'?: (_fedlhs_v1_Hello__Output | null);
  'heartbeat'?: (_fedlhs_v1_Heartbeat__Output | null);
  'readiness'?: (_fedlhs_v1_StudyReadiness__Output | null);
  'taskUpdate'?: (_fedlhs_v1_TaskUpdate__Output | null);
  /**
   * For data-triggered series the agent approved (see "Data-triggered series").
   */
  'seriesData'?: (_fedlhs_v1_SeriesDataReport__Output | null);
  'kind'?: "hello"|"heartbeat"|"readiness"|"taskUpdate"|"seriesData";
}
