// Original file: /work/main/proto/fedlhs/v1/federation.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AgentMessage as _fedlhs_v1_AgentMessage, AgentMessage__Output as _fedlhs_v1_AgentMessage__Output } from '../../fedlhs/v1/AgentMessage.js';
import type { CoordinatorMessage as _fedlhs_v1_CoordinatorMessage, CoordinatorMessage__Output as _fedlhs_v1_CoordinatorMessage__Output } from '../../fedlhs/v1/CoordinatorMessage.js';
import type { DownloadModelRequest as _fedlhs_v1_DownloadModelRequest, DownloadModelRequest__Output as _fedlhs_v1_DownloadModelRequest__Output } from '../../fedlhs/v1/DownloadModelRequest.js';
import type { DownloadReleaseFileRequest as _fedlhs_v1_DownloadReleaseFileRequest, DownloadReleaseFileRequest__Output as _fedlhs_v1_DownloadReleaseFileRequest__Output } from '../../fedlhs/v1/DownloadReleaseFileRequest.js';
import type { EvaluationReceipt as _fedlhs_v1_EvaluationReceipt, EvaluationReceipt__Output as _fedlhs_v1_EvaluationReceipt__Output } from '../../fedlhs/v1/EvaluationReceipt.js';
import type { EvaluationReport as _fedlhs_v1_EvaluationReport, EvaluationReport__Output as _fedlhs_v1_EvaluationReport__Output } from '../../fedlhs/v1/EvaluationReport.js';
import type { ListReleasesRequest as _fedlhs_v1_ListReleasesRequest, ListReleasesRequest__Output as _fedlhs_v1_ListReleasesRequest__Output } from '../../fedlhs/v1/ListReleasesRequest.js';
import type { ListReleasesResponse as _fedlhs_v1_ListReleasesResponse, ListReleasesResponse__Output as _fedlhs_v1_ListReleasesResponse__Output } from '../../fedlhs/v1/ListReleasesResponse.js';
import type { ListStudiesRequest as _fedlhs_v1_ListStudiesRequest, ListStudiesRequest__Output as _fedlhs_v1_ListStudiesRequest__Output } from '../../fedlhs/v1/ListStudiesRequest.js';
import type { ListStudiesResponse as _fedlhs_v1_ListStudiesResponse, ListStudiesResponse__Output as _fedlhs_v1_ListStudiesResponse__Output } from '../../fedlhs/v1/ListStudiesResponse.js';
import type { ModelChunk as _fedlhs_v1_ModelChunk, ModelChunk__Output as _fedlhs_v1_ModelChunk__Output } from '../../fedlhs/v1/ModelChunk.js';
import type { ReleaseFileChunk as _fedlhs_v1_ReleaseFileChunk, ReleaseFileChunk__Output as _fedlhs_v1_ReleaseFileChunk__Output } from '../../fedlhs/v1/ReleaseFileChunk.js';
import type { ReleasePerformanceReceipt as _fedlhs_v1_ReleasePerformanceReceipt, ReleasePerformanceReceipt__Output as _fedlhs_v1_ReleasePerformanceReceipt__Output } from '../../fedlhs/v1/ReleasePerformanceReceipt.js';
import type { ReleasePerformanceReport as _fedlhs_v1_ReleasePerformanceReport, ReleasePerformanceReport__Output as _fedlhs_v1_ReleasePerformanceReport__Output } from '../../fedlhs/v1/ReleasePerformanceReport.js';
import type { RenewCertificateRequest as _fedlhs_v1_RenewCertificateRequest, RenewCertificateRequest__Output as _fedlhs_v1_RenewCertificateRequest__Output } from '../../fedlhs/v1/RenewCertificateRequest.js';
import type { RenewCertificateResponse as _fedlhs_v1_RenewCertificateResponse, RenewCertificateResponse__Output as _fedlhs_v1_RenewCertificateResponse__Output } from '../../fedlhs/v1/RenewCertificateResponse.js';
import type { StageReceipt as _fedlhs_v1_StageReceipt, StageReceipt__Output as _fedlhs_v1_StageReceipt__Output } from '../../fedlhs/v1/StageReceipt.js';
import type { StageReport as _fedlhs_v1_StageReport, StageReport__Output as _fedlhs_v1_StageReport__Output } from '../../fedlhs/v1/StageReport.js';
import type { StatisticsReceipt as _fedlhs_v1_StatisticsReceipt, StatisticsReceipt__Output as _fedlhs_v1_StatisticsReceipt__Output } from '../../fedlhs/v1/StatisticsReceipt.js';
import type { StatisticsReport as _fedlhs_v1_StatisticsReport, StatisticsReport__Output as _fedlhs_v1_StatisticsReport__Output } from '../../fedlhs/v1/StatisticsReport.js';
import type { UpdateChunk as _fedlhs_v1_UpdateChunk, UpdateChunk__Output as _fedlhs_v1_UpdateChunk__Output } from '../../fedlhs/v1/UpdateChunk.js';
import type { UploadReceipt as _fedlhs_v1_UploadReceipt, UploadReceipt__Output as _fedlhs_v1_UploadReceipt__Output } from '../../fedlhs/v1/UploadReceipt.js';

export interface FederationClient extends grpc.Client {
  /**
   * Streams a model: one ModelChunk with the header, then the data chunks in order. The
   * agent must check total_bytes and sha256 and discard the model on any mismatch. The
   * header's tensor list is authoritative (names, order and shapes as common.proto TensorSpec
   * describes): an update for the task echoes it exactly. The coordinator sends chunks of its
   * configured chunk_size (never 0).
   * Who may fetch what: a task's model only the task's node; a committed round's model only a
   * node that took part in the study, i.e. declared for its manifest a readiness other than
   * NOT_APPROVED or WITHDRAWN (its operator approved it; selected for a round or not), or had a
   * task in it; others get PERMISSION_DENIED (fedlhs-error-code NOT_ASSIGNED).
   * Limits: a node may have limits.downloadStreamsPerNode downloads open (default 2), all nodes
   * together limits.downloadStreamsTotal (default 256); more are refused with
   * RESOURCE_EXHAUSTED (RESOURCE_LIMIT) and may be retried with backoff. A stream counts until
   * its transport has closed it. A download whose client takes no data for
   * transfer.downloadIdleSeconds (default 120) is ended (DEADLINE_EXCEEDED, DOWNLOAD_STALLED).
   * Revoking a node ends its downloads with UNAUTHENTICATED.
   * Errors: NOT_FOUND (unknown task, study or round), PERMISSION_DENIED (task of another
   * node; not a participant of the study), FAILED_PRECONDITION (task no longer open; round not
   * committed), RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  DownloadModel(argument: _fedlhs_v1_DownloadModelRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ModelChunk__Output>;
  DownloadModel(argument: _fedlhs_v1_DownloadModelRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ModelChunk__Output>;
  /**
   * Streams a model: one ModelChunk with the header, then the data chunks in order. The
   * agent must check total_bytes and sha256 and discard the model on any mismatch. The
   * header's tensor list is authoritative (names, order and shapes as common.proto TensorSpec
   * describes): an update for the task echoes it exactly. The coordinator sends chunks of its
   * configured chunk_size (never 0).
   * Who may fetch what: a task's model only the task's node; a committed round's model only a
   * node that took part in the study, i.e. declared for its manifest a readiness other than
   * NOT_APPROVED or WITHDRAWN (its operator approved it; selected for a round or not), or had a
   * task in it; others get PERMISSION_DENIED (fedlhs-error-code NOT_ASSIGNED).
   * Limits: a node may have limits.downloadStreamsPerNode downloads open (default 2), all nodes
   * together limits.downloadStreamsTotal (default 256); more are refused with
   * RESOURCE_EXHAUSTED (RESOURCE_LIMIT) and may be retried with backoff. A stream counts until
   * its transport has closed it. A download whose client takes no data for
   * transfer.downloadIdleSeconds (default 120) is ended (DEADLINE_EXCEEDED, DOWNLOAD_STALLED).
   * Revoking a node ends its downloads with UNAUTHENTICATED.
   * Errors: NOT_FOUND (unknown task, study or round), PERMISSION_DENIED (task of another
   * node; not a participant of the study), FAILED_PRECONDITION (task no longer open; round not
   * committed), RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  downloadModel(argument: _fedlhs_v1_DownloadModelRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ModelChunk__Output>;
  downloadModel(argument: _fedlhs_v1_DownloadModelRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ModelChunk__Output>;
  
  /**
   * Streams one file of a release: ReleaseFileChunk data in order; their concatenation is the
   * file. The agent checks its SHA-256 against the signed Statement before it keeps anything
   * (sizes are not signed: Release.files[].size only bounds what the agent accepts). Same participation rule and stream limits as DownloadModel.
   * Errors: NOT_FOUND (no such release or file), PERMISSION_DENIED (not a participant),
   * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  DownloadReleaseFile(argument: _fedlhs_v1_DownloadReleaseFileRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ReleaseFileChunk__Output>;
  DownloadReleaseFile(argument: _fedlhs_v1_DownloadReleaseFileRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ReleaseFileChunk__Output>;
  /**
   * Streams one file of a release: ReleaseFileChunk data in order; their concatenation is the
   * file. The agent checks its SHA-256 against the signed Statement before it keeps anything
   * (sizes are not signed: Release.files[].size only bounds what the agent accepts). Same participation rule and stream limits as DownloadModel.
   * Errors: NOT_FOUND (no such release or file), PERMISSION_DENIED (not a participant),
   * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  downloadReleaseFile(argument: _fedlhs_v1_DownloadReleaseFileRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ReleaseFileChunk__Output>;
  downloadReleaseFile(argument: _fedlhs_v1_DownloadReleaseFileRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedlhs_v1_ReleaseFileChunk__Output>;
  
  /**
   * Lists the signed releases (see "Releases") of the studies this node took part in (as for
   * a committed model in DownloadModel), and every release of a study name under which it took
   * part in any study (a series' runs share their name, so a clinic that joins a series late
   * gets its champion on its first run), newest version first per study, with their current
   * aliases. study_name narrows the list to one study name. At most 1000 releases.
   * Errors: INVALID_ARGUMENT (a study_name that is not an identifier), UNAUTHENTICATED.
   */
  ListReleases(argument: _fedlhs_v1_ListReleasesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  ListReleases(argument: _fedlhs_v1_ListReleasesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  ListReleases(argument: _fedlhs_v1_ListReleasesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  ListReleases(argument: _fedlhs_v1_ListReleasesRequest, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists the signed releases (see "Releases") of the studies this node took part in (as for
   * a committed model in DownloadModel), and every release of a study name under which it took
   * part in any study (a series' runs share their name, so a clinic that joins a series late
   * gets its champion on its first run), newest version first per study, with their current
   * aliases. study_name narrows the list to one study name. At most 1000 releases.
   * Errors: INVALID_ARGUMENT (a study_name that is not an identifier), UNAUTHENTICATED.
   */
  listReleases(argument: _fedlhs_v1_ListReleasesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  listReleases(argument: _fedlhs_v1_ListReleasesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  listReleases(argument: _fedlhs_v1_ListReleasesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  listReleases(argument: _fedlhs_v1_ListReleasesRequest, callback: grpc.requestCallback<_fedlhs_v1_ListReleasesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists studies, with their full manifests, so that a clinic operator can review them
   * before approving. Ended studies are included only when asked for.
   */
  ListStudies(argument: _fedlhs_v1_ListStudiesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _fedlhs_v1_ListStudiesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _fedlhs_v1_ListStudiesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  ListStudies(argument: _fedlhs_v1_ListStudiesRequest, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists studies, with their full manifests, so that a clinic operator can review them
   * before approving. Ended studies are included only when asked for.
   */
  listStudies(argument: _fedlhs_v1_ListStudiesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _fedlhs_v1_ListStudiesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _fedlhs_v1_ListStudiesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  listStudies(argument: _fedlhs_v1_ListStudiesRequest, callback: grpc.requestCallback<_fedlhs_v1_ListStudiesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Renews this node's TLS client certificate (see enrolment.proto, "Node certificates"): the
   * coordinator verifies the request's signature, ignores its subject, and issues a new
   * certificate for the caller's node id with a fresh validity (tls.nodeCertificateSeconds). The
   * call itself must be authenticated like every other: the node credential and, when the
   * coordinator issues certificates, the node's current, unexpired certificate. An agent renews
   * at two thirds of its certificate's lifetime and uses the new one for connections it opens
   * after; the old one stays valid until it expires (revoking the node ends both).
   * Errors: FAILED_PRECONDITION (fedlhs-error-code CERTIFICATES_NOT_ISSUED) if this coordinator
   * does not issue certificates (tls.clientCertificates "external"); INVALID_ARGUMENT (field
   * certificate_signing_request) if the request is not a PEM PKCS#10 request for an ECDSA P-256
   * key signed by that key; UNAUTHENTICATED.
   */
  RenewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  RenewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Renews this node's TLS client certificate (see enrolment.proto, "Node certificates"): the
   * coordinator verifies the request's signature, ignores its subject, and issues a new
   * certificate for the caller's node id with a fresh validity (tls.nodeCertificateSeconds). The
   * call itself must be authenticated like every other: the node credential and, when the
   * coordinator issues certificates, the node's current, unexpired certificate. An agent renews
   * at two thirds of its certificate's lifetime and uses the new one for connections it opens
   * after; the old one stays valid until it expires (revoking the node ends both).
   * Errors: FAILED_PRECONDITION (fedlhs-error-code CERTIFICATES_NOT_ISSUED) if this coordinator
   * does not issue certificates (tls.clientCertificates "external"); INVALID_ARGUMENT (field
   * certificate_signing_request) if the request is not a PEM PKCS#10 request for an ECDSA P-256
   * key signed by that key; UNAUTHENTICATED.
   */
  renewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  renewCertificate(argument: _fedlhs_v1_RenewCertificateRequest, callback: grpc.requestCallback<_fedlhs_v1_RenewCertificateResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Reports the hold-out metrics of an EVALUATE task. Idempotent per task as ReportStatistics.
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INVALID_METRICS] if metrics are missing or impossible (see Metrics), if
   * validation or test figures are impossible (see Performance; the message names the field),
   * or if validation.num_examples differs from metrics.num_examples (both are of the validation
   * part); the task then ends rejected.
   */
  ReportEvaluation(argument: _fedlhs_v1_EvaluationReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  ReportEvaluation(argument: _fedlhs_v1_EvaluationReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  ReportEvaluation(argument: _fedlhs_v1_EvaluationReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  ReportEvaluation(argument: _fedlhs_v1_EvaluationReport, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  /**
   * Reports the hold-out metrics of an EVALUATE task. Idempotent per task as ReportStatistics.
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INVALID_METRICS] if metrics are missing or impossible (see Metrics), if
   * validation or test figures are impossible (see Performance; the message names the field),
   * or if validation.num_examples differs from metrics.num_examples (both are of the validation
   * part); the task then ends rejected.
   */
  reportEvaluation(argument: _fedlhs_v1_EvaluationReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  reportEvaluation(argument: _fedlhs_v1_EvaluationReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  reportEvaluation(argument: _fedlhs_v1_EvaluationReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  reportEvaluation(argument: _fedlhs_v1_EvaluationReport, callback: grpc.requestCallback<_fedlhs_v1_EvaluationReceipt__Output>): grpc.ClientUnaryCall;
  
  /**
   * Reports how a deployed release does on this clinic's newly labelled patients (aggregates
   * only). Idempotent per (release, node, export_fingerprint): the same figures again are
   * answered with duplicate = true; other figures for the same key are refused.
   * Errors: NOT_FOUND (no such release), PERMISSION_DENIED (not a participant),
   * INVALID_ARGUMENT [INVALID_METRICS] (performance missing or impossible), INVALID_ARGUMENT
   * (measured_at_ms more than 10 minutes after the coordinator's clock), ALREADY_EXISTS
   * [DUPLICATE_CONFLICT] (other figures for an export already reported), UNAUTHENTICATED.
   */
  ReportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  ReportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  ReportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  ReportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  /**
   * Reports how a deployed release does on this clinic's newly labelled patients (aggregates
   * only). Idempotent per (release, node, export_fingerprint): the same figures again are
   * answered with duplicate = true; other figures for the same key are refused.
   * Errors: NOT_FOUND (no such release), PERMISSION_DENIED (not a participant),
   * INVALID_ARGUMENT [INVALID_METRICS] (performance missing or impossible), INVALID_ARGUMENT
   * (measured_at_ms more than 10 minutes after the coordinator's clock), ALREADY_EXISTS
   * [DUPLICATE_CONFLICT] (other figures for an export already reported), UNAUTHENTICATED.
   */
  reportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  reportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  reportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  reportReleasePerformance(argument: _fedlhs_v1_ReleasePerformanceReport, callback: grpc.requestCallback<_fedlhs_v1_ReleasePerformanceReceipt__Output>): grpc.ClientUnaryCall;
  
  /**
   * Answers a secure-aggregation stage task (see "Secure aggregation"). body: at most the
   * session's message limit. Errors: as ReportEvaluation (task ownership, kind, tag, closed
   * task); INVALID_ARGUMENT for a body that is not the stage's answer; FAILED_PRECONDITION
   * [STALE] when the stage has closed.
   */
  ReportStage(argument: _fedlhs_v1_StageReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  ReportStage(argument: _fedlhs_v1_StageReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  ReportStage(argument: _fedlhs_v1_StageReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  ReportStage(argument: _fedlhs_v1_StageReport, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  /**
   * Answers a secure-aggregation stage task (see "Secure aggregation"). body: at most the
   * session's message limit. Errors: as ReportEvaluation (task ownership, kind, tag, closed
   * task); INVALID_ARGUMENT for a body that is not the stage's answer; FAILED_PRECONDITION
   * [STALE] when the stage has closed.
   */
  reportStage(argument: _fedlhs_v1_StageReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  reportStage(argument: _fedlhs_v1_StageReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  reportStage(argument: _fedlhs_v1_StageReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  reportStage(argument: _fedlhs_v1_StageReport, callback: grpc.requestCallback<_fedlhs_v1_StageReceipt__Output>): grpc.ClientUnaryCall;
  
  /**
   * Reports the sufficient statistics of a STATISTICS task. Idempotent per task: the identical
   * report again is answered OK with duplicate = true; a different one after acceptance is
   * ALREADY_EXISTS [DUPLICATE_CONFLICT].
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INCONSISTENT_STATISTICS] if the report breaks the rules of
   * FeatureStatistics (the task then ends rejected and the phase goes on without it).
   */
  ReportStatistics(argument: _fedlhs_v1_StatisticsReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  ReportStatistics(argument: _fedlhs_v1_StatisticsReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  ReportStatistics(argument: _fedlhs_v1_StatisticsReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  ReportStatistics(argument: _fedlhs_v1_StatisticsReport, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  /**
   * Reports the sufficient statistics of a STATISTICS task. Idempotent per task: the identical
   * report again is answered OK with duplicate = true; a different one after acceptance is
   * ALREADY_EXISTS [DUPLICATE_CONFLICT].
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INCONSISTENT_STATISTICS] if the report breaks the rules of
   * FeatureStatistics (the task then ends rejected and the phase goes on without it).
   */
  reportStatistics(argument: _fedlhs_v1_StatisticsReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  reportStatistics(argument: _fedlhs_v1_StatisticsReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  reportStatistics(argument: _fedlhs_v1_StatisticsReport, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  reportStatistics(argument: _fedlhs_v1_StatisticsReport, callback: grpc.requestCallback<_fedlhs_v1_StatisticsReceipt__Output>): grpc.ClientUnaryCall;
  
  /**
   * The long-lived control stream: heartbeats, study announcements and task delivery.
   * Errors: UNAUTHENTICATED; INVALID_ARGUMENT if the first message is not Hello; ABORTED
   * when replaced by a newer session of the same node.
   */
  Session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_fedlhs_v1_AgentMessage, _fedlhs_v1_CoordinatorMessage__Output>;
  Session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_fedlhs_v1_AgentMessage, _fedlhs_v1_CoordinatorMessage__Output>;
  /**
   * The long-lived control stream: heartbeats, study announcements and task delivery.
   * Errors: UNAUTHENTICATED; INVALID_ARGUMENT if the first message is not Hello; ABORTED
   * when replaced by a newer session of the same node.
   */
  session(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_fedlhs_v1_AgentMessage, _fedlhs_v1_CoordinatorMessage__Output>;
  session(options?: grpc.CallOptions): grpc.ClientDuplexStream<_fedlhs_v1_AgentMessage, _fedlhs_v1_CoordinatorMessage__Output>;
  
  /**
   * Uploads the weights a node trained for a TRAIN task: one UpdateChunk with the header
   * first, then the data chunks in order. The coordinator answers only after it has
   * received, checked and stored the whole update.
   * Errors (trailing "fedlhs-rejection-reason" in brackets), in the order they are checked
   * (see "Order of checks"); which ones close the task: RejectionReason.
   * - NOT_FOUND [UNKNOWN_TASK] the task does not exist.
   * - PERMISSION_DENIED [NOT_ASSIGNED] the task belongs to another node, or header.node_id
   * is not the caller.
   * - FAILED_PRECONDITION [STALE] the task's kind, study or round does not match the header;
   * the study is not running; the task's round attempt is over or its deadline passed
   * while the task was still open; or base_model_sha256 is not the model the task handed
   * out. [TASK_CLOSED] the task was already rejected with a closing reason, declined,
   * failed or cancelled (as a round's open tasks are when it closes).
   * - ALREADY_EXISTS [DUPLICATE_CONFLICT] a different update was already accepted for this
   * task (an identical one is answered OK with duplicate = true); [REPLAYED] the payload is
   * byte-identical to an update accepted for another task of the same study.
   * - INVALID_ARGUMENT [BAD_HEADER] the first message is not a header, or the framing breaks
   * the rules of TensorBundleHeader; [SHAPE_MISMATCH] tensor names, shapes or dtypes differ
   * from the task's model; [INVALID_METRICS] train_metrics are present and impossible;
   * [BAD_EXAMPLE_COUNT] num_examples is 0 or more than the training rows this node
   * reported; [NON_FINITE] a NaN or infinity; [NORM_BOUND] the update is too far from the
   * global model.
   * - DATA_LOSS [LENGTH_MISMATCH] the data did not add up to total_bytes; [DIGEST_MISMATCH]
   * the data's SHA-256 differs from the header's.
   * - ABORTED (no reason) another upload for the same task is still in progress.
   * - RESOURCE_EXHAUSTED (no reason) a limit of the coordinator was reached (e.g. the updates
   * a robust strategy holds per round); "fedlhs-error-code" says which (RESOURCE_LIMIT).
   * - DEADLINE_EXCEEDED [UPLOAD_STALLED] nothing arrived for transfer.uploadIdleSeconds.
   * - UNAUTHENTICATED (no reason; "fedlhs-error-code" CREDENTIAL_INVALID) the node was revoked
   * during the call: revocation ends every in-flight call, and nothing sent after it counts.
   */
  UploadUpdate(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  UploadUpdate(metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  UploadUpdate(options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  UploadUpdate(callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  /**
   * Uploads the weights a node trained for a TRAIN task: one UpdateChunk with the header
   * first, then the data chunks in order. The coordinator answers only after it has
   * received, checked and stored the whole update.
   * Errors (trailing "fedlhs-rejection-reason" in brackets), in the order they are checked
   * (see "Order of checks"); which ones close the task: RejectionReason.
   * - NOT_FOUND [UNKNOWN_TASK] the task does not exist.
   * - PERMISSION_DENIED [NOT_ASSIGNED] the task belongs to another node, or header.node_id
   * is not the caller.
   * - FAILED_PRECONDITION [STALE] the task's kind, study or round does not match the header;
   * the study is not running; the task's round attempt is over or its deadline passed
   * while the task was still open; or base_model_sha256 is not the model the task handed
   * out. [TASK_CLOSED] the task was already rejected with a closing reason, declined,
   * failed or cancelled (as a round's open tasks are when it closes).
   * - ALREADY_EXISTS [DUPLICATE_CONFLICT] a different update was already accepted for this
   * task (an identical one is answered OK with duplicate = true); [REPLAYED] the payload is
   * byte-identical to an update accepted for another task of the same study.
   * - INVALID_ARGUMENT [BAD_HEADER] the first message is not a header, or the framing breaks
   * the rules of TensorBundleHeader; [SHAPE_MISMATCH] tensor names, shapes or dtypes differ
   * from the task's model; [INVALID_METRICS] train_metrics are present and impossible;
   * [BAD_EXAMPLE_COUNT] num_examples is 0 or more than the training rows this node
   * reported; [NON_FINITE] a NaN or infinity; [NORM_BOUND] the update is too far from the
   * global model.
   * - DATA_LOSS [LENGTH_MISMATCH] the data did not add up to total_bytes; [DIGEST_MISMATCH]
   * the data's SHA-256 differs from the header's.
   * - ABORTED (no reason) another upload for the same task is still in progress.
   * - RESOURCE_EXHAUSTED (no reason) a limit of the coordinator was reached (e.g. the updates
   * a robust strategy holds per round); "fedlhs-error-code" says which (RESOURCE_LIMIT).
   * - DEADLINE_EXCEEDED [UPLOAD_STALLED] nothing arrived for transfer.uploadIdleSeconds.
   * - UNAUTHENTICATED (no reason; "fedlhs-error-code" CREDENTIAL_INVALID) the node was revoked
   * during the call: revocation ends every in-flight call, and nothing sent after it counts.
   */
  uploadUpdate(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  uploadUpdate(metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  uploadUpdate(options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  uploadUpdate(callback: grpc.requestCallback<_fedlhs_v1_UploadReceipt__Output>): grpc.ClientWritableStream<_fedlhs_v1_UpdateChunk>;
  
}

export interface FederationHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Streams a model: one ModelChunk with the header, then the data chunks in order. The
   * agent must check total_bytes and sha256 and discard the model on any mismatch. The
   * header's tensor list is authoritative (names, order and shapes as common.proto TensorSpec
   * describes): an update for the task echoes it exactly. The coordinator sends chunks of its
   * configured chunk_size (never 0).
   * Who may fetch what: a task's model only the task's node; a committed round's model only a
   * node that took part in the study, i.e. declared for its manifest a readiness other than
   * NOT_APPROVED or WITHDRAWN (its operator approved it; selected for a round or not), or had a
   * task in it; others get PERMISSION_DENIED (fedlhs-error-code NOT_ASSIGNED).
   * Limits: a node may have limits.downloadStreamsPerNode downloads open (default 2), all nodes
   * together limits.downloadStreamsTotal (default 256); more are refused with
   * RESOURCE_EXHAUSTED (RESOURCE_LIMIT) and may be retried with backoff. A stream counts until
   * its transport has closed it. A download whose client takes no data for
   * transfer.downloadIdleSeconds (default 120) is ended (DEADLINE_EXCEEDED, DOWNLOAD_STALLED).
   * Revoking a node ends its downloads with UNAUTHENTICATED.
   * Errors: NOT_FOUND (unknown task, study or round), PERMISSION_DENIED (task of another
   * node; not a participant of the study), FAILED_PRECONDITION (task no longer open; round not
   * committed), RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  DownloadModel: grpc.handleServerStreamingCall<_fedlhs_v1_DownloadModelRequest__Output, _fedlhs_v1_ModelChunk>;
  
  /**
   * Streams one file of a release: ReleaseFileChunk data in order; their concatenation is the
   * file. The agent checks its SHA-256 against the signed Statement before it keeps anything
   * (sizes are not signed: Release.files[].size only bounds what the agent accepts). Same participation rule and stream limits as DownloadModel.
   * Errors: NOT_FOUND (no such release or file), PERMISSION_DENIED (not a participant),
   * RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNAUTHENTICATED.
   */
  DownloadReleaseFile: grpc.handleServerStreamingCall<_fedlhs_v1_DownloadReleaseFileRequest__Output, _fedlhs_v1_ReleaseFileChunk>;
  
  /**
   * Lists the signed releases (see "Releases") of the studies this node took part in (as for
   * a committed model in DownloadModel), and every release of a study name under which it took
   * part in any study (a series' runs share their name, so a clinic that joins a series late
   * gets its champion on its first run), newest version first per study, with their current
   * aliases. study_name narrows the list to one study name. At most 1000 releases.
   * Errors: INVALID_ARGUMENT (a study_name that is not an identifier), UNAUTHENTICATED.
   */
  ListReleases: grpc.handleUnaryCall<_fedlhs_v1_ListReleasesRequest__Output, _fedlhs_v1_ListReleasesResponse>;
  
  /**
   * Lists studies, with their full manifests, so that a clinic operator can review them
   * before approving. Ended studies are included only when asked for.
   */
  ListStudies: grpc.handleUnaryCall<_fedlhs_v1_ListStudiesRequest__Output, _fedlhs_v1_ListStudiesResponse>;
  
  /**
   * Renews this node's TLS client certificate (see enrolment.proto, "Node certificates"): the
   * coordinator verifies the request's signature, ignores its subject, and issues a new
   * certificate for the caller's node id with a fresh validity (tls.nodeCertificateSeconds). The
   * call itself must be authenticated like every other: the node credential and, when the
   * coordinator issues certificates, the node's current, unexpired certificate. An agent renews
   * at two thirds of its certificate's lifetime and uses the new one for connections it opens
   * after; the old one stays valid until it expires (revoking the node ends both).
   * Errors: FAILED_PRECONDITION (fedlhs-error-code CERTIFICATES_NOT_ISSUED) if this coordinator
   * does not issue certificates (tls.clientCertificates "external"); INVALID_ARGUMENT (field
   * certificate_signing_request) if the request is not a PEM PKCS#10 request for an ECDSA P-256
   * key signed by that key; UNAUTHENTICATED.
   */
  RenewCertificate: grpc.handleUnaryCall<_fedlhs_v1_RenewCertificateRequest__Output, _fedlhs_v1_RenewCertificateResponse>;
  
  /**
   * Reports the hold-out metrics of an EVALUATE task. Idempotent per task as ReportStatistics.
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INVALID_METRICS] if metrics are missing or impossible (see Metrics), if
   * validation or test figures are impossible (see Performance; the message names the field),
   * or if validation.num_examples differs from metrics.num_examples (both are of the validation
   * part); the task then ends rejected.
   */
  ReportEvaluation: grpc.handleUnaryCall<_fedlhs_v1_EvaluationReport__Output, _fedlhs_v1_EvaluationReceipt>;
  
  /**
   * Reports how a deployed release does on this clinic's newly labelled patients (aggregates
   * only). Idempotent per (release, node, export_fingerprint): the same figures again are
   * answered with duplicate = true; other figures for the same key are refused.
   * Errors: NOT_FOUND (no such release), PERMISSION_DENIED (not a participant),
   * INVALID_ARGUMENT [INVALID_METRICS] (performance missing or impossible), INVALID_ARGUMENT
   * (measured_at_ms more than 10 minutes after the coordinator's clock), ALREADY_EXISTS
   * [DUPLICATE_CONFLICT] (other figures for an export already reported), UNAUTHENTICATED.
   */
  ReportReleasePerformance: grpc.handleUnaryCall<_fedlhs_v1_ReleasePerformanceReport__Output, _fedlhs_v1_ReleasePerformanceReceipt>;
  
  /**
   * Answers a secure-aggregation stage task (see "Secure aggregation"). body: at most the
   * session's message limit. Errors: as ReportEvaluation (task ownership, kind, tag, closed
   * task); INVALID_ARGUMENT for a body that is not the stage's answer; FAILED_PRECONDITION
   * [STALE] when the stage has closed.
   */
  ReportStage: grpc.handleUnaryCall<_fedlhs_v1_StageReport__Output, _fedlhs_v1_StageReceipt>;
  
  /**
   * Reports the sufficient statistics of a STATISTICS task. Idempotent per task: the identical
   * report again is answered OK with duplicate = true; a different one after acceptance is
   * ALREADY_EXISTS [DUPLICATE_CONFLICT].
   * Errors: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION as for UploadUpdate;
   * INVALID_ARGUMENT [INCONSISTENT_STATISTICS] if the report breaks the rules of
   * FeatureStatistics (the task then ends rejected and the phase goes on without it).
   */
  ReportStatistics: grpc.handleUnaryCall<_fedlhs_v1_StatisticsReport__Output, _fedlhs_v1_StatisticsReceipt>;
  
  /**
   * The long-lived control stream: heartbeats, study announcements and task delivery.
   * Errors: UNAUTHENTICATED; INVALID_ARGUMENT if the first message is not Hello; ABORTED
   * when replaced by a newer session of the same node.
   */
  Session: grpc.handleBidiStreamingCall<_fedlhs_v1_AgentMessage__Output, _fedlhs_v1_CoordinatorMessage>;
  
  /**
   * Uploads the weights a node trained for a TRAIN task: one UpdateChunk with the header
   * first, then the data chunks in order. The coordinator answers only after it has
   * received, checked and stored the whole update.
   * Errors (trailing "fedlhs-rejection-reason" in brackets), in the order they are checked
   * (see "Order of checks"); which ones close the task: RejectionReason.
   * - NOT_FOUND [UNKNOWN_TASK] the task does not exist.
   * - PERMISSION_DENIED [NOT_ASSIGNED] the task belongs to another node, or header.node_id
   * is not the caller.
   * - FAILED_PRECONDITION [STALE] the task's kind, study or round does not match the header;
   * the study is not running; the task's round attempt is over or its deadline passed
   * while the task was still open; or base_model_sha256 is not the model the task handed
   * out. [TASK_CLOSED] the task was already rejected with a closing reason, declined,
   * failed or cancelled (as a round's open tasks are when it closes).
   * - ALREADY_EXISTS [DUPLICATE_CONFLICT] a different update was already accepted for this
   * task (an identical one is answered OK with duplicate = true); [REPLAYED] the payload is
   * byte-identical to an update accepted for another task of the same study.
   * - INVALID_ARGUMENT [BAD_HEADER] the first message is not a header, or the framing breaks
   * the rules of TensorBundleHeader; [SHAPE_MISMATCH] tensor names, shapes or dtypes differ
   * from the task's model; [INVALID_METRICS] train_metrics are present and impossible;
   * [BAD_EXAMPLE_COUNT] num_examples is 0 or more than the training rows this node
   * reported; [NON_FINITE] a NaN or infinity; [NORM_BOUND] the update is too far from the
   * global model.
   * - DATA_LOSS [LENGTH_MISMATCH] the data did not add up to total_bytes; [DIGEST_MISMATCH]
   * the data's SHA-256 differs from the header's.
   * - ABORTED (no reason) another upload for the same task is still in progress.
   * - RESOURCE_EXHAUSTED (no reason) a limit of the coordinator was reached (e.g. the updates
   * a robust strategy holds per round); "fedlhs-error-code" says which (RESOURCE_LIMIT).
   * - DEADLINE_EXCEEDED [UPLOAD_STALLED] nothing arrived for transfer.uploadIdleSeconds.
   * - UNAUTHENTICATED (no reason; "fedlhs-error-code" CREDENTIAL_INVALID) the node was revoked
   * during the call: revocation ends every in-flight call, and nothing sent after it counts.
   */
  UploadUpdate: grpc.handleClientStreamingCall<_fedlhs_v1_UpdateChunk__Output, _fedlhs_v1_UploadReceipt>;
  
}

export interface FederationDefinition extends grpc.ServiceDefinition {
  DownloadModel: MethodDefinition<_fedlhs_v1_DownloadModelRequest, _fedlhs_v1_ModelChunk, _fedlhs_v1_DownloadModelRequest__Output, _fedlhs_v1_ModelChunk__Output>
  DownloadReleaseFile: MethodDefinition<_fedlhs_v1_DownloadReleaseFileRequest, _fedlhs_v1_ReleaseFileChunk, _fedlhs_v1_DownloadReleaseFileRequest__Output, _fedlhs_v1_ReleaseFileChunk__Output>
  ListReleases: MethodDefinition<_fedlhs_v1_ListReleasesRequest, _fedlhs_v1_ListReleasesResponse, _fedlhs_v1_ListReleasesRequest__Output, _fedlhs_v1_ListReleasesResponse__Output>
  ListStudies: MethodDefinition<_fedlhs_v1_ListStudiesRequest, _fedlhs_v1_ListStudiesResponse, _fedlhs_v1_ListStudiesRequest__Output, _fedlhs_v1_ListStudiesResponse__Output>
  RenewCertificate: MethodDefinition<_fedlhs_v1_RenewCertificateRequest, _fedlhs_v1_RenewCertificateResponse, _fedlhs_v1_RenewCertificateRequest__Output, _fedlhs_v1_RenewCertificateResponse__Output>
  ReportEvaluation: MethodDefinition<_fedlhs_v1_EvaluationReport, _fedlhs_v1_EvaluationReceipt, _fedlhs_v1_EvaluationReport__Output, _fedlhs_v1_EvaluationReceipt__Output>
  ReportReleasePerformance: MethodDefinition<_fedlhs_v1_ReleasePerformanceReport, _fedlhs_v1_ReleasePerformanceReceipt, _fedlhs_v1_ReleasePerformanceReport__Output, _fedlhs_v1_ReleasePerformanceReceipt__Output>
  ReportStage: MethodDefinition<_fedlhs_v1_StageReport, _fedlhs_v1_StageReceipt, _fedlhs_v1_StageReport__Output, _fedlhs_v1_StageReceipt__Output>
  ReportStatistics: MethodDefinition<_fedlhs_v1_StatisticsReport, _fedlhs_v1_StatisticsReceipt, _fedlhs_v1_StatisticsReport__Output, _fedlhs_v1_StatisticsReceipt__Output>
  Session: MethodDefinition<_fedlhs_v1_AgentMessage, _fedlhs_v1_CoordinatorMessage, _fedlhs_v1_AgentMessage__Output, _fedlhs_v1_CoordinatorMessage__Output>
  UploadUpdate: MethodDefinition<_fedlhs_v1_UpdateChunk, _fedlhs_v1_UploadReceipt, _fedlhs_v1_UpdateChunk__Output, _fedlhs_v1_UploadReceipt__Output>
}
