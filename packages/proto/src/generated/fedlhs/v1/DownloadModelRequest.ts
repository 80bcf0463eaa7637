// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { CommittedModelRef as _fedlhs_v1_CommittedModelRef, CommittedModelRef__Output as _fedlhs_v1_CommittedModelRef__Output } from '../../fedlhs/v1/CommittedModelRef.js';

export interface DownloadModelRequest {
  /**
   * The model handed out by this task (the node's own task). Id, at most 128 characters.
   */
  'taskId'?: (string);
  /**
   * A committed global model: the disseminated result of a study, for the nodes that took
   * part in it (see DownloadModel).
   */
  'committed'?: (_fedlhs_v1_CommittedModelRef | null);
  'selector'?: "taskId"|"committed";
}

export interface DownloadModelRequest__Output {
  /**
   * The model handed out by this task (the node's own task). Id, at most 128 characters.
   */
  'taskId'?: (string);
  /**
   * A committed global model: the disseminated result of a study, for the nodes that took
   * part in it (see DownloadModel).
   */
  'committed'?: (_fedlhs_v1_CommittedModelRef__Output | null);
  'selector'?: "taskId"|"committed";
}
