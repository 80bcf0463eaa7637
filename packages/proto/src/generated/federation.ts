import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AgentInfo as _fedlhs_v1_AgentInfo, AgentInfo__Output as _fedlhs_v1_AgentInfo__Output } from './fedlhs/v1/AgentInfo.js';
import type { AgentMessage as _fedlhs_v1_AgentMessage, AgentMessage__Output as _fedlhs_v1_AgentMessage__Output } from './fedlhs/v1/AgentMessage.js';
import type { CalibrationBin as _fedlhs_v1_CalibrationBin, CalibrationBin__Output as _fedlhs_v1_CalibrationBin__Output } from './fedlhs/v1/CalibrationBin.js';
import type { CancelTask as _fedlhs_v1_CancelTask, CancelTask__Output as _fedlhs_v1_CancelTask__Output } from './fedlhs/v1/CancelTask.js';
import type { CommittedModelRef as _fedlhs_v1_CommittedModelRef, CommittedModelRef__Output as _fedlhs_v1_CommittedModelRef__Output } from './fedlhs/v1/CommittedModelRef.js';
import type { CoordinatorMessage as _fedlhs_v1_CoordinatorMessage, CoordinatorMessage__Output as _fedlhs_v1_CoordinatorMessage__Output } from './fedlhs/v1/CoordinatorMessage.js';
import type { DownloadModelRequest as _fedlhs_v1_DownloadModelRequest, DownloadModelRequest__Output as _fedlhs_v1_DownloadModelRequest__Output } from './fedlhs/v1/DownloadModelRequest.js';
import type { DownloadReleaseFileRequest as _fedlhs_v1_DownloadReleaseFileRequest, DownloadReleaseFileRequest__Output as _fedlhs_v1_DownloadReleaseFileRequest__Output } from './fedlhs/v1/DownloadReleaseFileRequest.js';
import type { EvaluationReceipt as _fedlhs_v1_EvaluationReceipt, EvaluationReceipt__Output as _fedlhs_v1_EvaluationReceipt__Output } from './fedlhs/v1/EvaluationReceipt.js';
import type { EvaluationReport as _fedlhs_v1_EvaluationReport, EvaluationReport__Output as _fedlhs_v1_EvaluationReport__Output } from './fedlhs/v1/EvaluationReport.js';
import type { FeatureStatistics as _fedlhs_v1_FeatureStatistics, FeatureStatistics__Output as _fedlhs_v1_FeatureStatistics__Output } from './fedlhs/v1/FeatureStatistics.js';
import type { FederationClient as _fedlhs_v1_FederationClient, FederationDefinition as _fedlhs_v1_FederationDefinition } from './fedlhs/v1/Federation.js';
import type { Heartbeat as _fedlhs_v1_Heartbeat, Heartbeat__Output as _fedlhs_v1_Heartbeat__Output } from './fedlhs/v1/Heartbeat.js';
import type { Hello as _fedlhs_v1_Hello, Hello__Output as _fedlhs_v1_Hello__Output } from './fedlhs/v1/Hello.js';
import type { ListReleasesRequest as _fedlhs_v1_ListReleasesRequest, ListReleasesRequest__Output as _fedlhs_v1_ListReleasesRequest__Output } from './fedlhs/v1/ListReleasesRequest.js';
import type { ListReleasesResponse as _fedlhs_v1_ListReleasesResponse, ListReleasesResponse__Output as _fedlhs_v1_ListReleasesResponse__Output } from './fedlhs/v1/ListReleasesResponse.js';
import type { ListStudiesRequest as _fedlhs_v1_ListStudiesRequest, ListStudiesRequest__Output as _fedlhs_v1_ListStudiesRequest__Output } from './fedlhs/v1/ListStudiesRequest.js';
import type { ListStudiesResponse as _fedlhs_v1_ListStudiesResponse, ListStudiesResponse__Output as _fedlhs_v1_ListStudiesResponse__Output } from './fedlhs/v1/ListStudiesResponse.js';
import type { Metrics as _fedlhs_v1_Metrics, Metrics__Output as _fedlhs_v1_Metrics__Output } from './fedlhs/v1/Metrics.js';
import type { ModelChunk as _fedlhs_v1_ModelChunk, ModelChunk__Output as _fedlhs_v1_ModelChunk__Output } from './fedlhs/v1/ModelChunk.js';
import type { Performance as _fedlhs_v1_Performance, Performance__Output as _fedlhs_v1_Performance__Output } from './fedlhs/v1/Performance.js';
import type { PrivacyBudget as _fedlhs_v1_PrivacyBudget, PrivacyBudget__Output as _fedlhs_v1_PrivacyBudget__Output } from './fedlhs/v1/PrivacyBudget.js';
import type { Release as _fedlhs_v1_Release, Release__Output as _fedlhs_v1_Release__Output } from './fedlhs/v1/Release.js';
import type { ReleaseComparison as _fedlhs_v1_ReleaseComparison, ReleaseComparison__Output as _fedlhs_v1_ReleaseComparison__Output } from './fedlhs/v1/ReleaseComparison.js';
import type { ReleaseFile as _fedlhs_v1_ReleaseFile, ReleaseFile__Output as _fedlhs_v1_ReleaseFile__Output } from './fedlhs/v1/ReleaseFile.js';
import type { ReleaseFileChunk as _fedlhs_v1_ReleaseFileChunk, ReleaseFileChunk__Output as _fedlhs_v1_ReleaseFileChunk__Output } from './fedlhs/v1/ReleaseFileChunk.js';
import type { ReleasePerformanceReceipt as _fedlhs_v1_ReleasePerformanceReceipt, ReleasePerformanceReceipt__Output as _fedlhs_v1_ReleasePerformanceReceipt__Output } from './fedlhs/v1/ReleasePerformanceReceipt.js';
import type { ReleasePerformanceReport as _fedlhs_v1_ReleasePerformanceReport, ReleasePerformanceReport__Output as _fedlhs_v1_ReleasePerformanceReport__Output } from './fedlhs/v1/ReleasePerformanceReport.js';
import type { RenewCertificateRequest as _fedlhs_v1_RenewCertificateRequest, RenewCertificateRequest__Output as _fedlhs_v1_RenewCertificateRequest__Output } from './fedlhs/v1/RenewCertificateRequest.js';
import type { RenewCertificateResponse as _fedlhs_v1_RenewCertificateResponse, RenewCertificateResponse__Output as _fedlhs_v1_RenewCertificateResponse__Output } from './fedlhs/v1/RenewCertificateResponse.js';
import type { SeriesDataReport as _fedlhs_v1_SeriesDataReport, SeriesDataReport__Output as _fedlhs_v1_SeriesDataReport__Output } from './fedlhs/v1/SeriesDataReport.js';
import type { StageReceipt as _fedlhs_v1_StageReceipt, StageReceipt__Output as _fedlhs_v1_StageReceipt__Output } from './fedlhs/v1/StageReceipt.js';
import type { StageReport as _fedlhs_v1_StageReport, StageReport__Output as _fedlhs_v1_StageReport__Output } from './fedlhs/v1/StageReport.js';
import type { StatisticsReceipt as _fedlhs_v1_StatisticsReceipt, StatisticsReceipt__Output as _fedlhs_v1_StatisticsReceipt__Output } from './fedlhs/v1/StatisticsReceipt.js';
import type { StatisticsReport as _fedlhs_v1_StatisticsReport, StatisticsReport__Output as _fedlhs_v1_StatisticsReport__Output } from './fedlhs/v1/StatisticsReport.js';
import type { Study as _fedlhs_v1_Study, Study__Output as _fedlhs_v1_Study__Output } from './fedlhs/v1/Study.js';
import type { StudyAnnouncement as _fedlhs_v1_StudyAnnouncement, StudyAnnouncement__Output as _fedlhs_v1_StudyAnnouncement__Output } from './fedlhs/v1/StudyAnnouncement.js';
import type { StudyProgress as _fedlhs_v1_StudyProgress, StudyProgress__Output as _fedlhs_v1_StudyProgress__Output } from './fedlhs/v1/StudyProgress.js';
import type { StudyReadiness as _fedlhs_v1_StudyReadiness, StudyReadiness__Output as _fedlhs_v1_StudyReadiness__Output } from './fedlhs/v1/StudyReadiness.js';
import type { Task as _fedlhs_v1_Task, Task__Output as _fedlhs_v1_Task__Output } from './fedlhs/v1/Task.js';
import type { TaskUpdate as _fedlhs_v1_TaskUpdate, TaskUpdate__Output as _fedlhs_v1_TaskUpdate__Output } from './fedlhs/v1/TaskUpdate.js';
import type { TensorBundleHeader as _fedlhs_v1_TensorBundleHeader, TensorBundleHeader__Output as _fedlhs_v1_TensorBundleHeader__Output } from './fedlhs/v1/TensorBundleHeader.js';
import type { TensorSpec as _fedlhs_v1_TensorSpec, TensorSpec__Output as _fedlhs_v1_TensorSpec__Output } from './fedlhs/v1/TensorSpec.js';
import type { UpdateChunk as _fedlhs_v1_UpdateChunk, UpdateChunk__Output as _fedlhs_v1_UpdateChunk__Output } from './fedlhs/v1/UpdateChunk.js';
import type { UpdateHeader as _fedlhs_v1_UpdateHeader, UpdateHeader__Output as _fedlhs_v1_UpdateHeader__Output } from './fedlhs/v1/UpdateHeader.js';
import type { UploadReceipt as _fedlhs_v1_UploadReceipt, UploadReceipt__Output as _fedlhs_v1_UploadReceipt__Output } from './fedlhs/v1/UploadReceipt.js';
import type { Welcome as _fedlhs_v1_Welcome, Welcome__Output as _fedlhs_v1_Welcome__Output } from './fedlhs/v1/Welcome.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  fedlhs: {
    v1: {
      AgentInfo: MessageTypeDefinition<_fedlhs_v1_AgentInfo, _fedlhs_v1_AgentInfo__Output>
      AgentMessage: MessageTypeDefinition<_fedlhs_v1_AgentMessage, _fedlhs_v1_AgentMessage__Output>
      CalibrationBin: MessageTypeDefinition<_fedlhs_v1_CalibrationBin, _fedlhs_v1_CalibrationBin__Output>
      CancelTask: MessageTypeDefinition<_fedlhs_v1_CancelTask, _fedlhs_v1_CancelTask__Output>
      CommittedModelRef: MessageTypeDefinition<_fedlhs_v1_CommittedModelRef, _fedlhs_v1_CommittedModelRef__Output>
      CoordinatorMessage: MessageTypeDefinition<_fedlhs_v1_CoordinatorMessage, _fedlhs_v1_CoordinatorMessage__Output>
      DType: EnumTypeDefinition
      DownloadModelRequest: MessageTypeDefinition<_fedlhs_v1_DownloadModelRequest, _fedlhs_v1_DownloadModelRequest__Output>
      DownloadReleaseFileRequest: MessageTypeDefinition<_fedlhs_v1_DownloadReleaseFileRequest, _fedlhs_v1_DownloadReleaseFileRequest__Output>
      EvaluationReceipt: MessageTypeDefinition<_fedlhs_v1_EvaluationReceipt, _fedlhs_v1_EvaluationReceipt__Output>
      EvaluationReport: MessageTypeDefinition<_fedlhs_v1_EvaluationReport, _fedlhs_v1_EvaluationReport__Output>
      FeatureStatistics: MessageTypeDefinition<_fedlhs_v1_FeatureStatistics, _fedlhs_v1_FeatureStatistics__Output>
      Federation: SubtypeConstructor<typeof grpc.Client, _fedlhs_v1_FederationClient> & { service: _fedlhs_v1_FederationDefinition }
      Heartbeat: MessageTypeDefinition<_fedlhs_v1_Heartbeat, _fedlhs_v1_Heartbeat__Output>
      Hello: MessageTypeDefinition<_fedlhs_v1_Hello, _fedlhs_v1_Hello__Output>
      ListReleasesRequest: MessageTypeDefinition<_fedlhs_v1_ListReleasesRequest, _fedlhs_v1_ListReleasesRequest__Output>
      ListReleasesResponse: MessageTypeDefinition<_fedlhs_v1_ListReleasesResponse, _fedlhs_v1_ListReleasesResponse__Output>
      ListStudiesRequest: MessageTypeDefinition<_fedlhs_v1_ListStudiesRequest, _fedlhs_v1_ListStudiesRequest__Output>
      ListStudiesResponse: MessageTypeDefinition<_fedlhs_v1_ListStudiesResponse, _fedlhs_v1_ListStudiesResponse__Output>
      Metrics: MessageTypeDefinition<_fedlhs_v1_Metrics, _fedlhs_v1_Metrics__Output>
      ModelChunk: MessageTypeDefinition<_fedlhs_v1_ModelChunk, _fedlhs_v1_ModelChunk__Output>
      Performance: MessageTypeDefinition<_fedlhs_v1_Performance, _fedlhs_v1_Performance__Output>
      PrivacyBudget: MessageTypeDefinition<_fedlhs_v1_PrivacyBudget, _fedlhs_v1_PrivacyBudget__Output>
      Readiness: EnumTypeDefinition
      RejectionReason: EnumTypeDefinition
      Release: MessageTypeDefinition<_fedlhs_v1_Release, _fedlhs_v1_Release__Output>
      ReleaseComparison: MessageTypeDefinition<_fedlhs_v1_ReleaseComparison, _fedlhs_v1_ReleaseComparison__Output>
      ReleaseFile: MessageTypeDefinition<_fedlhs_v1_ReleaseFile, _fedlhs_v1_ReleaseFile__Output>
      ReleaseFileChunk: MessageTypeDefinition<_fedlhs_v1_ReleaseFileChunk, _fedlhs_v1_ReleaseFileChunk__Output>
      ReleasePerformanceReceipt: MessageTypeDefinition<_fedlhs_v1_ReleasePerformanceReceipt, _fedlhs_v1_ReleasePerformanceReceipt__Output>
      ReleasePerformanceReport: MessageTypeDefinition<_fedlhs_v1_ReleasePerformanceReport, _fedlhs_v1_ReleasePerformanceReport__Output>
      RenewCertificateRequest: MessageTypeDefinition<_fedlhs_v1_RenewCertificateRequest, _fedlhs_v1_RenewCertificateRequest__Output>
      RenewCertificateResponse: MessageTypeDefinition<_fedlhs_v1_RenewCertificateResponse, _fedlhs_v1_RenewCertificateResponse__Output>
      SeriesDataReport: MessageTypeDefinition<_fedlhs_v1_SeriesDataReport, _fedlhs_v1_SeriesDataReport__Output>
      StageReceipt: MessageTypeDefinition<_fedlhs_v1_StageReceipt, _fedlhs_v1_StageReceipt__Output>
      StageReport: MessageTypeDefinition<_fedlhs_v1_StageReport, _fedlhs_v1_StageReport__Output>
      StatisticsReceipt: MessageTypeDefinition<_fedlhs_v1_StatisticsReceipt, _fedlhs_v1_StatisticsReceipt__Output>
      StatisticsReport: MessageTypeDefinition<_fedlhs_v1_StatisticsReport, _fedlhs_v1_StatisticsReport__Output>
      Study: MessageTypeDefinition<_fedlhs_v1_Study, _fedlhs_v1_Study__Output>
      StudyAnnouncement: MessageTypeDefinition<_fedlhs_v1_StudyAnnouncement, _fedlhs_v1_StudyAnnouncement__Output>
      StudyProgress: MessageTypeDefinition<_fedlhs_v1_StudyProgress, _fedlhs_v1_StudyProgress__Output>
      StudyReadiness: MessageTypeDefinition<_fedlhs_v1_StudyReadiness, _fedlhs_v1_StudyReadiness__Output>
      StudyState: EnumTypeDefinition
      Task: MessageTypeDefinition<_fedlhs_v1_Task, _fedlhs_v1_Task__Output>
      TaskKind: EnumTypeDefinition
      TaskState: EnumTypeDefinition
      TaskUpdate: MessageTypeDefinition<_fedlhs_v1_TaskUpdate, _fedlhs_v1_TaskUpdate__Output>
      TensorBundleHeader: MessageTypeDefinition<_fedlhs_v1_TensorBundleHeader, _fedlhs_v1_TensorBundleHeader__Output>
      TensorSpec: MessageTypeDefinition<_fedlhs_v1_TensorSpec, _fedlhs_v1_TensorSpec__Output>
      UpdateChunk: MessageTypeDefinition<_fedlhs_v1_UpdateChunk, _fedlhs_v1_UpdateChunk__Output>
      UpdateHeader: MessageTypeDefinition<_fedlhs_v1_UpdateHeader, _fedlhs_v1_UpdateHeader__Output>
      UploadReceipt: MessageTypeDefinition<_fedlhs_v1_UploadReceipt, _fedlhs_v1_UploadReceipt__Output>
      Welcome: MessageTypeDefinition<_fedlhs_v1_Welcome, _fedlhs_v1_Welcome__Output>
    }
  }
}

