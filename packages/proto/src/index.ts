/**
 * The fedlhs.v1 wire contract: the runtime loader for `proto/fedlhs/v1/*.proto` and the
 * TypeScript types generated from the same files with the same options.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import loaderOptions from './loader-options.json' with { type: 'json' };
import type { ProtoGrpcType as EnrolmentProto } from './generated/enrolment.js';
import type { ProtoGrpcType as FederationProto } from './generated/federation.js';

/** Directory holding `fedlhs/v1/*.proto` (the include root). */
export const protoRoot: string = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto');

/** The options passed to `loadSync`; `scripts/generate.mjs` passes the same to the type generator. */
export const protoLoaderOptions: protoLoader.Options = {
  keepCase: loaderOptions.keepCase,
  longs: loaderOptions.longs === 'Number' ? Number : String,
  enums: String,
  defaults: loaderOptions.defaults,
  oneofs: loaderOptions.oneofs,
  includeDirs: [protoRoot],
};

export type FedlhsProto = EnrolmentProto & FederationProto;

let cached: FedlhsProto | undefined;

/** Loads (once) the fedlhs.v1 services and messages as grpc-js service definitions. */
export function loadFedlhsProto(): FedlhsProto {
  if (cached === undefined) {
    const definition = protoLoader.loadSync(['fedlhs/v1/enrolment.proto', 'fedlhs/v1/federation.proto'], protoLoaderOptions);
    cached = grpc.loadPackageDefinition(definition) as unknown as FedlhsProto;
  }
  return cached;
}

/** Trailing metadata key naming the reason a contribution was rejected. */
export const REJECTION_REASON_KEY = 'fedlhs-rejection-reason';

export * from './generated/fedlhs/v1/AgentInfo.js';
export * from './generated/fedlhs/v1/AgentMessage.js';
export * from './generated/fedlhs/v1/CancelTask.js';
export * from './generated/fedlhs/v1/CommittedModelRef.js';
export * from './generated/fedlhs/v1/CoordinatorMessage.js';
export * from './generated/fedlhs/v1/DownloadModelRequest.js';
export * from './generated/fedlhs/v1/DType.js';
export * from './generated/fedlhs/v1/EnrolRequest.js';
export * from './generated/fedlhs/v1/EnrolResponse.js';
export * from './generated/fedlhs/v1/Enrolment.js';
export * from './generated/fedlhs/v1/EvaluationReceipt.js';
export * from './generated/fedlhs/v1/EvaluationReport.js';
export * from './generated/fedlhs/v1/Federation.js';
export * from './generated/fedlhs/v1/Heartbeat.js';
export * from './generated/fedlhs/v1/Hello.js';
export * from './generated/fedlhs/v1/ListStudiesRequest.js';
export * from './generated/fedlhs/v1/ListStudiesResponse.js';
export * from './generated/fedlhs/v1/Metrics.js';
export * from './generated/fedlhs/v1/ModelChunk.js';
export * from './generated/fedlhs/v1/Readiness.js';
export * from './generated/fedlhs/v1/RejectionReason.js';
export * from './generated/fedlhs/v1/RenewCertificateRequest.js';
export * from './generated/fedlhs/v1/RenewCertificateResponse.js';
export * from './generated/fedlhs/v1/ReleaseComparison.js';
export * from './generated/fedlhs/v1/StageReceipt.js';
export * from './generated/fedlhs/v1/StageReport.js';
export * from './generated/fedlhs/v1/PrivacyBudget.js';
export * from './generated/fedlhs/v1/SeriesDataReport.js';
export * from './generated/fedlhs/v1/Study.js';
export * from './generated/fedlhs/v1/StatisticsReport.js';
export * from './generated/fedlhs/v1/StatisticsReceipt.js';
export * from './generated/fedlhs/v1/FeatureStatistics.js';
export * from './generated/fedlhs/v1/StudyAnnouncement.js';
export * from './generated/fedlhs/v1/StudyProgress.js';
export * from './generated/fedlhs/v1/StudyReadiness.js';
export * from './generated/fedlhs/v1/StudyState.js';
export * from './generated/fedlhs/v1/Task.js';
export * from './generated/fedlhs/v1/TaskKind.js';
export * from './generated/fedlhs/v1/TaskState.js';
export * from './generated/fedlhs/v1/TaskUpdate.js';
export * from './generated/fedlhs/v1/TensorBundleHeader.js';
export * from './generated/fedlhs/v1/TensorSpec.js';
export * from './generated/fedlhs/v1/UpdateChunk.js';
export * from './generated/fedlhs/v1/UpdateHeader.js';
export * from './generated/fedlhs/v1/UploadReceipt.js';
export * from './generated/fedlhs/v1/Welcome.js';
