import { STUDY_NAME_PATTERN, checkWireCount, checkWireEnum, checkWireNumber, checkWireString } from '@fedlhs/core';
import {
  Readiness,
  TaskState,
  type AgentInfo__Output,
  type AgentMessage__Output,
  type DownloadModelRequest__Output,
  type EnrolRequest__Output,
  type EvaluationReport__Output,
  type StatisticsReport__Output,
  type UpdateChunk__Output,
} from '@fedlhs/proto';

const READINESS_NAMES = Object.values(Readiness);
const TASK_STATE_NAMES = Object.values(TaskState);

/*
 * Checks of every string and number a node sends, against the maxima and character sets of
 * @fedlhs/core wire-limits.ts (issue 11), at the gRPC edge: before anything reaches the domain
 * or the store, so an invalid message is refused whole and nothing of it is kept (not even as
 * a recorded rejection). Each throws FedlhsError('INVALID_ARGUMENT', 'field X: …',
 * { details: { field } }) naming the field; the message quotes at most a short excerpt.
 */

function checkAgentInfo(agent: AgentInfo__Output | null, prefix: string): void {
  if (agent == null) return;
  checkWireString('AgentInfo.agent_version', agent.agentVersion, `${prefix}.agent_version`);
  checkWireString('AgentInfo.training_backend', agent.trainingBackend, `${prefix}.training_backend`);
  checkWireString('AgentInfo.platform', agent.platform, `${prefix}.platform`);
}

/** One message of the control stream (Hello, StudyReadiness, TaskUpdate, SeriesDataReport; Heartbeat carries only a number). */
export function validateAgentMessage(message: AgentMessage__Output): void {
  if (message.hello) {
    const h = message.hello;
    checkAgentInfo(h.agent, 'Hello.agent');
    const ids = h.activeTaskIds ?? [];
    checkWireCount('Hello.active_task_ids', ids.length);
    ids.forEach((t, i) => checkWireString('Hello.active_task_ids', t, `Hello.active_task_ids[${i}]`));
    const caps = h.capabilities ?? [];
    checkWireCount('Hello.capabilities', caps.length);
    caps.forEach((c, i) => checkWireString('Hello.capabilities', c, `Hello.capabilities[${i}]`));
  } else if (message.readiness) {
    const r = message.readiness;
    checkWireString('StudyReadiness.study_id', r.studyId);
    checkWireString('StudyReadiness.manifest_sha256', r.manifestSha256);
    checkWireEnum('StudyReadiness.readiness', r.readiness, READINESS_NAMES);
    checkWireString('StudyReadiness.detail', r.detail);
    // training_rows is a uint32: every value is a possible cohort; the claims check bounds updates by it.
  } else if (message.taskUpdate) {
    const u = message.taskUpdate;
    checkWireString('TaskUpdate.task_id', u.taskId);
    checkWireEnum('TaskUpdate.state', u.state, TASK_STATE_NAMES);
    checkWireString('TaskUpdate.reason', u.reason);
    checkWireString('TaskUpdate.phase', u.phase);
    checkWireNumber('TaskUpdate.epoch', u.epoch);
    checkWireNumber('TaskUpdate.epochs', u.epochs);
    checkWireNumber('TaskUpdate.fraction', u.fraction);
  } else if (message.seriesData) {
    validateSeriesDataReport(message.seriesData);
  }
}

/**
 * The header of an UploadUpdate stream: ids, tensor names, counts and digest sizes. The rest
 * (tensors against the model, num_examples against the cohort, metrics) is the domain's, in
 * the proto's order of checks.
 */
export function validateUploadHeader(header: NonNullable<UpdateChunk__Output['header']>): void {
  checkWireString('UpdateHeader.task_id', header.taskId);
  checkWireString('UpdateHeader.study_id', header.studyId);
  checkWireString('UpdateHeader.node_id', header.nodeId);
  checkWireCount('UpdateHeader.base_model_sha256', header.baseModelSha256?.length ?? 0);
  // Whether the study wants it is the training phase's check (checkDpClipIndicator, below).
  if (header.dpClipIndicator !== undefined && header.dpClipIndicator !== null && !Number.isFinite(header.dpClipIndicator)) {
    throw new FedlhsError('INVALID_ARGUMENT', `field ${DP_CLIP_INDICATOR}: not a finite number (${header.dpClipIndicator})`, { details: { field: DP_CLIP_INDICATOR } });
  }
  const w = header.weights;
  if (w == null) return;
  checkWireCount('TensorBundleHeader.sha256', w.sha256?.length ?? 0, 'UpdateHeader.weights.sha256');
  const tensors = w.tensors ?? [];
  checkWireCount('TensorBundleHeader.tensors', tensors.length, 'UpdateHeader.weights.tensors');
  tensors.forEach((t, i) => {
    checkWireString('TensorSpec.name', t.name, `UpdateHeader.weights.tensors[${i}].name`);
    checkWireCount('TensorSpec.shape', t.shape?.length ?? 0, `UpdateHeader.weights.tensors[${i}].shape`);
  });
}

/** A StatisticsReport: ids, feature names and the counts of features and histogram cells. */
export function validateStatisticsReport(report: StatisticsReport__Output): void {
  checkWireString('StatisticsReport.task_id', report.taskId);
  checkWireString('StatisticsReport.study_id', report.studyId);
  const features = report.features ?? [];
  checkWireCount('StatisticsReport.features', features.length);
  features.forEach((f, i) => {
    checkWireString('FeatureStatistics.name', f.name, `StatisticsReport.features[${i}].name`);
    checkWireCount('FeatureStatistics.histogram', f.histogram?.length ?? 0, `StatisticsReport.features[${i}].histogram`);
  });
}

/**
 * An EvaluationReport: its ids. The plausibility of its metrics and of its validation and test
 * figures is the domain's (update-intake.ts, core checkPerformance): impossible ones are
 * INVALID_METRICS, recorded, and close the task.
 */
export function validateEvaluationReport(report: EvaluationReport__Output): void {
  checkWireString('EvaluationReport.task_id', report.taskId);
  checkWireString('EvaluationReport.study_id', report.studyId);
}

/** A DownloadModelRequest: the task id or the committed model's study id. */
export function validateDownloadRequest(request: DownloadModelRequest__Output): void {
  if (request.taskId !== undefined) checkWireString('DownloadModelRequest.task_id', request.taskId);
  if (request.committed != null) checkWireString('CommittedModelRef.study_id', request.committed.studyId, 'DownloadModelRequest.committed.study_id');
}

/** An EnrolRequest: the token's and the site's length and characters, and the agent's labels (the formats are the domain's). */
export function validateEnrolRequest(request: EnrolRequest__Output): void {
  checkWireString('EnrolRequest.join_token', request.joinToken);
  checkWireString('EnrolRequest.site_name', request.siteName);
  checkAgentInfo(request.agent, 'EnrolRequest.agent');
}

// ---- Releases (issue 12) ----------------------------------------------------------------
// (Imports here, not at the top: this section is edited apart from the rest of the file.)
import { FedlhsError } from '@fedlhs/core';
import type { FederationHandlers } from '@fedlhs/proto';

/** Request types of the release calls (derived: @fedlhs/proto does not export them by name). */
type ListReleasesRequest = Parameters<FederationHandlers['ListReleases']>[0]['request'];
type DownloadReleaseFileRequest = Parameters<FederationHandlers['DownloadReleaseFile']>[0]['request'];
type ReleasePerformanceReport = Parameters<FederationHandlers['ReportReleasePerformance']>[0]['request'];

/** A study name as the manifest's schema allows it (core manifest.ts `identifier`). */
const STUDY_NAME = STUDY_NAME_PATTERN;
/** A bundle file name (proto ReleaseFile.name). */
const RELEASE_FILE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** An export fingerprint: hex, at most 64 characters (proto ReleasePerformanceReport). */
const EXPORT_FINGERPRINT = /^[0-9a-f]{1,64}$/;

function invalid(field: string, why: string, value: unknown): never {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) + (value.length > 40 ? '…' : '') : String(value);
  throw new FedlhsError('INVALID_ARGUMENT', `field ${field}: ${why} (${shown})`, { details: { field } });
}

function checkStudyName(field: string, name: string, allowEmpty: boolean): void {
  if (allowEmpty && name === '') return;
  if (!STUDY_NAME.test(name)) invalid(field, 'not a study name (1-63 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit)', name);
}

function checkVersion(field: string, version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) invalid(field, 'not a release version (1 or more)', version);
}

/** A ListReleasesRequest: study_name empty (every study) or a study name. */
export function validateListReleasesRequest(request: ListReleasesRequest): void {
  checkStudyName('ListReleasesRequest.study_name', request.studyName ?? '', true);
}

/** A DownloadReleaseFileRequest: study name, version and a file name of the bundle's character set. */
export function validateDownloadReleaseFileRequest(request: DownloadReleaseFileRequest): void {
  checkStudyName('DownloadReleaseFileRequest.study_name', request.studyName ?? '', false);
  checkVersion('DownloadReleaseFileRequest.version', request.version ?? 0);
  if (!RELEASE_FILE_NAME.test(request.fileName ?? '')) invalid('DownloadReleaseFileRequest.file_name', 'not a release file name (1-64 letters, digits, ".", "-" or "_")', request.fileName ?? '');
}

/**
 * A ReleasePerformanceReport's identifiers and times (the figures themselves are the domain's:
 * core checkPerformance, INVALID_METRICS).
 */
export function validateReleasePerformanceReport(report: ReleasePerformanceReport): void {
  checkStudyName('ReleasePerformanceReport.study_name', report.studyName ?? '', false);
  checkVersion('ReleasePerformanceReport.version', report.version ?? 0);
  if (!EXPORT_FINGERPRINT.test(report.exportFingerprint ?? '')) invalid('ReleasePerformanceReport.export_fingerprint', 'not a lower-case hex fingerprint of 1-64 characters', report.exportFingerprint ?? '');
  const at = Number(report.measuredAtMs ?? 0);
  if (!Number.isSafeInteger(at) || at < 0) invalid('ReleasePerformanceReport.measured_at_ms', 'not a time in ms since the Unix epoch', at);
}

// ---- Data-triggered series (issue 13) ----------------------------------------------------
import type { SeriesDataReport__Output } from '@fedlhs/proto';

/** A template hash: sha256-hex, exactly 64 lowercase hex digits. */
const TEMPLATE_SHA256 = /^[0-9a-f]{64}$/;
/** Most newly labelled patients one report may claim (proto SeriesDataReport.new_labelled). */
const NEW_LABELLED_MAX = 1_000_000_000;

/**
 * A SeriesDataReport: a study name, a template hash, a run from 1, a count of at most 10^9, and
 * 0 when suppressed. Whether it counts (series, run, template, the node's part) is the series
 * module's (series/data-trigger.ts), which ignores rather than refuses.
 */
export function validateSeriesDataReport(report: SeriesDataReport__Output): void {
  checkStudyName('SeriesDataReport.series_name', report.seriesName ?? '', false);
  if (!TEMPLATE_SHA256.test(report.templateSha256 ?? '')) invalid('SeriesDataReport.template_sha256', 'not a sha256-hex template hash (64 lowercase hex digits)', report.templateSha256 ?? '');
  const run = Number(report.afterRun ?? 0);
  if (!Number.isSafeInteger(run) || run < 1) invalid('SeriesDataReport.after_run', 'not a run number (1 or more)', run);
  const n = Number(report.newLabelled ?? 0);
  if (!Number.isSafeInteger(n) || n < 0 || n > NEW_LABELLED_MAX) invalid('SeriesDataReport.new_labelled', `not a count from 0 to ${NEW_LABELLED_MAX}`, n);
  if (report.suppressed === true && n !== 0) invalid('SeriesDataReport.new_labelled', 'must be 0 when suppressed is true (a suppressed count is not disclosed)', n);
}

// ---- Secure aggregation v2 (issue 14): StageReport.vector ---------------------------------
import type { TaskKindName } from '../store/records.js';

/**
 * StageReport.vector against the stage of its task (proto "Secure aggregation"): the masked
 * input stage carries its packed masked input there, every other stage nothing. Its exact length
 * and padding are the round's (SecAggServer.receiveMaskedInput: INVALID_ARGUMENT naming the
 * length). Checked before a re-sent answer is compared with the accepted one, so a vector on
 * the wrong stage is always refused, never taken for a duplicate.
 */
export function checkStageVector(kind: TaskKindName, vector: Uint8Array): void {
  const field = 'StageReport.vector';
  if (kind === 'SECAGG_MASKED_INPUT') {
    if (vector.length === 0) throw new FedlhsError('INVALID_ARGUMENT', `${field}: the masked-input stage carries its masked input here, and it is empty`, { details: { field } });
  } else if (vector.length > 0) {
    throw new FedlhsError('INVALID_ARGUMENT', `${field}: only the masked-input stage carries a vector (this task is ${kind}, and ${vector.length} bytes were sent)`, { details: { field } });
  }
}

// ---- Adaptive DP clipping (issue 14): UpdateHeader.dp_clip_indicator ----------------------
import { clipIndicatorNoiseStd, type PrivacySection } from '@fedlhs/core';

const DP_CLIP_INDICATOR = 'UpdateHeader.dp_clip_indicator';
/** A noisy indicator farther than this many standard deviations of its noise share from 0 or 1 is not one (chance < 1e-88). */
const INDICATOR_MAX_SIGMAS = 20;

/**
 * UpdateHeader.dp_clip_indicator against the study's DP mechanism (proto UpdateHeader): required
 * with adaptive clipping, refused without it; finite; exactly 0 or 1 under central placement
 * (the coordinator adds the noise); with local or distributed noise within 20 standard
 * deviations of the clinic's noise share of 0 or 1 (a clinic cannot swing the norm with a huge
 * value). Returns the indicator (undefined without adaptive clipping). INVALID_ARGUMENT naming the field.
 */
export function checkDpClipIndicator(value: number | null | undefined, dp: NonNullable<PrivacySection['dp']> | undefined, clientsMin: number): number | undefined {
  const refuse = (why: string): never => {
    throw new FedlhsError('INVALID_ARGUMENT', `field ${DP_CLIP_INDICATOR}: ${why}`, { details: { field: DP_CLIP_INDICATOR } });
  };
  const adaptive = dp?.clipping.mode === 'adaptive';
  if (value === undefined || value === null) return adaptive ? refuse('required: this study uses adaptive clipping (privacy.dp.clipping.mode "adaptive")') : undefined;
  if (!adaptive || dp === undefined) return refuse(`sent (${value}), but this study does not use adaptive clipping`);
  if (!Number.isFinite(value)) return refuse(`not a finite number (${value})`);
  const share = clipIndicatorNoiseStd(dp, clientsMin) ?? 0;
  if (share === 0) return value === 0 || value === 1 ? value : refuse(`must be 0 or 1 when the clinic adds no noise to it (placement ${dp.placement}), got ${value}`);
  if (Math.abs(value - 0.5) > 0.5 + INDICATOR_MAX_SIGMAS * share) {
    refuse(`${value} is more than ${INDICATOR_MAX_SIGMAS} standard deviations of the clinic's noise share (σ=${share.toPrecision(4)}) from 0 or 1: not a noisy bit`);
  }
  return value;
}
