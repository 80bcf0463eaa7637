import type {
  AgentMessage__Output,
  DownloadModelRequest__Output,
  EvaluationReport__Output,
  StatisticsReport__Output,
  UpdateChunk__Output,
} from '@fedlhs/proto';

/**
 * Checks of every string and number a node sends, against the documented maxima and character
 * sets (issue 11), before anything reaches the domain or the store. Each throws
 * FedlhsError('INVALID_ARGUMENT', …, { details: { field } }) naming the field.
 * TODO(issue 11, session helper): implement.
 */
export function validateAgentMessage(_message: AgentMessage__Output): void {}

/** The header of an UploadUpdate stream (see validateAgentMessage). */
export function validateUploadHeader(_header: NonNullable<UpdateChunk__Output['header']>): void {}

/** A StatisticsReport (see validateAgentMessage). */
export function validateStatisticsReport(_report: StatisticsReport__Output): void {}

/** An EvaluationReport (see validateAgentMessage). */
export function validateEvaluationReport(_report: EvaluationReport__Output): void {}

/** A DownloadModelRequest (see validateAgentMessage). */
export function validateDownloadRequest(_request: DownloadModelRequest__Output): void {}
