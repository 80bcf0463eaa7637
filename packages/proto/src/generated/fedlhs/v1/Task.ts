// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type { TaskKind as _fedlhs_v1_TaskKind, TaskKind__Output as _fedlhs_v1_TaskKind__Output } from '../../fedlhs/v1/TaskKind.js';
import type { Long } from '@grpc/proto-loader';

export interface Task {
  /**
   * Unique for this piece of work; stays the same when re-sent after a reconnection.
   */
  'taskId'?: (string);
  'kind'?: (_fedlhs_v1_TaskKind);
  'studyId'?: (string);
  /**
   * The manifest hash this task is for; the agent must have approved exactly this hash.
   */
  'manifestSha256'?: (string);
  /**
   * Round number, from 1. TRAIN tasks of round r start from the committed model of round
   * r - 1; EVALUATE tasks of round r evaluate round r's aggregated model.
   */
  'round'?: (number);
  /**
   * Retry count of the round (1 = first attempt). A retried round gets new task ids.
   */
  'attempt'?: (number);
  /**
   * The coordinator closes the round at this time; work arriving later is rejected.
   */
  'deadlineUnixMs'?: (number | string | Long);
  /**
   * SHA-256 of the model payload DownloadModel will return for this task.
   */
  'modelSha256'?: (Buffer | Uint8Array | string);
  /**
   * Study parameters every clinic must apply identically, as JSON; empty when there are none.
   * Currently {"normalization": {"method": "zscore", "features": [{"name", "mean", "std"}]}}:
   * before training or evaluating, each feature value v becomes (v - mean) / std, in the
   * order of the study's features, and a missing value becomes 0 (the mean). A feature with
   * "excluded": true becomes 0 for every row, whatever its value. Other keys ("source",
   * "withheldAt", "clinics") are informative.
   * With adaptive DP clipping (manifest privacy.dp.clipping.mode "adaptive") the parameters
   * also carry {"dp": {"clipNorm": C}}: the L2 norm this round's TRAIN tasks clip the model
   * change to (a finite number > 0; a TRAIN task without a valid one fails, naming
   * "Task.parameters_json dp.clipNorm"). It starts at clipping.initialNorm and, after each
   * committed round, becomes C·exp(−learningRate·(b − targetQuantile)), b the noisy fraction of
   * that round's clinics whose UpdateHeader.dp_clip_indicator said "not clipped" (Andrew et al.
   * 2021); other keys of the parameters are kept.
   */
  'parametersJson'?: (string);
  /**
   * Task-specific input for this clinic, defined per task kind by the phase that issues it
   * (reserved for later stages, e.g. secure aggregation). Empty for TRAIN, EVALUATE and
   * STATISTICS tasks in this version; an agent ignores it for kinds it knows.
   */
  'payload'?: (Buffer | Uint8Array | string);
}

export interface Task__Output {
  /**
   * Unique for this piece of work; stays the same when re-sent after a reconnection.
   */
  'taskId': (string);
  'kind': (_fedlhs_v1_TaskKind__Output);
  'studyId': (string);
  /**
   * The manifest hash this task is for; the agent must have approved exactly this hash.
   */
  'manifestSha256': (string);
  /**
   * Round number, from 1. TRAIN tasks of round r start from the committed model of round
   * r - 1; EVALUATE tasks of round r evaluate round r's aggregated model.
   */
  'round': (number);
  /**
   * Retry count of the round (1 = first attempt). A retried round gets new task ids.
   */
  'attempt': (number);
  /**
   * The coordinator closes the round at this time; work arriving later is rejected.
   */
  'deadlineUnixMs': (number);
  /**
   * SHA-256 of the model payload DownloadModel will return for this task.
   */
  'modelSha256': (Buffer);
  /**
   * Study parameters every clinic must apply identically, as JSON; empty when there are none.
   * Currently {"normalization": {"method": "zscore", "features": [{"name", "mean", "std"}]}}:
   * before training or evaluating, each feature value v becomes (v - mean) / std, in the
   * order of the study's features, and a missing value becomes 0 (the mean). A feature with
   * "excluded": true becomes 0 for every row, whatever its value. Other keys ("source",
   * "withheldAt", "clinics") are informative.
   * With adaptive DP clipping (manifest privacy.dp.clipping.mode "adaptive") the parameters
   * also carry {"dp": {"clipNorm": C}}: the L2 norm this round's TRAIN tasks clip the model
   * change to (a finite number > 0; a TRAIN task without a valid one fails, naming
   * "Task.parameters_json dp.clipNorm"). It starts at clipping.initialNorm and, after each
   * committed round, becomes C·exp(−learningRate·(b − targetQuantile)), b the noisy fraction of
   * that round's clinics whose UpdateHeader.dp_clip_indicator said "not clipped" (Andrew et al.
   * 2021); other keys of the parameters are kept.
   */
  'parametersJson': (string);
  /**
   * Task-specific input for this clinic, defined per task kind by the phase that issues it
   * (reserved for later stages, e.g. secure aggregation). Empty for TRAIN, EVALUATE and
   * STATISTICS tasks in this version; an agent ignores it for kinds it knows.
   */
  'payload': (Buffer);
}
