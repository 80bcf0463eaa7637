import { FedlhsError } from '@fedlhs/core';
import type { AgentMessage__Output, UpdateChunk__Output } from '@fedlhs/proto';
import { describe, expect, it } from 'vitest';
import {
  validateAgentMessage,
  validateDownloadRequest,
  validateEnrolRequest,
  validateEvaluationReport,
  validateStatisticsReport,
  validateUploadHeader,
} from './validate.js';

const HASH = 'ab'.repeat(32);
const MIB = 1024 * 1024;

function field(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('INVALID_ARGUMENT');
    expect((err as FedlhsError).message.length).toBeLessThan(300);
    return ((err as FedlhsError).details as { field?: string }).field;
  }
  return undefined;
}

const readiness = (over: Record<string, unknown> = {}) =>
  ({ readiness: { studyId: 'heart-0a1b2c', manifestSha256: HASH, readiness: 'READINESS_READY', detail: '', trainingRows: 120, ...over } }) as unknown as AgentMessage__Output;
const taskUpdate = (over: Record<string, unknown> = {}) =>
  ({ taskUpdate: { taskId: 'task_1', state: 'TASK_STATE_RUNNING', reason: '', phase: 'train', epoch: 1, epochs: 3, fraction: 0.3, ...over } }) as unknown as AgentMessage__Output;
const hello = (over: Record<string, unknown> = {}) =>
  ({ hello: { agent: { agentVersion: 'fedlhs-agent/0.1.0', trainingBackend: 'tensorflow', platform: 'linux-x64 node-20.20.2' }, activeTaskIds: [], capabilities: ['study-progress'], ...over } }) as unknown as AgentMessage__Output;

describe('validateAgentMessage', () => {
  it('passes what our agent sends', () => {
    for (const m of [hello(), readiness(), readiness({ readiness: 'READINESS_DATA_ERROR', detail: 'cannot read /data/x.csv: permission denied' }), taskUpdate(), { heartbeat: { sentUnixMs: Date.now() } }]) {
      expect(field(() => validateAgentMessage(m as AgentMessage__Output))).toBeUndefined();
    }
  });

  it('names the field that breaks a limit', () => {
    expect(field(() => validateAgentMessage(readiness({ detail: 'x'.repeat(4 * MIB) })))).toBe('StudyReadiness.detail');
    expect(field(() => validateAgentMessage(readiness({ detail: '\u001b[32m online' })))).toBe('StudyReadiness.detail');
    expect(field(() => validateAgentMessage(readiness({ studyId: 'y'.repeat(3 * MIB) })))).toBe('StudyReadiness.study_id');
    expect(field(() => validateAgentMessage(readiness({ manifestSha256: 'nothex' })))).toBe('StudyReadiness.manifest_sha256');
    expect(field(() => validateAgentMessage(readiness({ readiness: 42 })))).toBe('StudyReadiness.readiness');
    expect(field(() => validateAgentMessage(taskUpdate({ taskId: 'x'.repeat(3 * MIB) })))).toBe('TaskUpdate.task_id');
    expect(field(() => validateAgentMessage(taskUpdate({ reason: 'r'.repeat(1001) })))).toBe('TaskUpdate.reason');
    expect(field(() => validateAgentMessage(taskUpdate({ phase: 'p'.repeat(33) })))).toBe('TaskUpdate.phase');
    expect(field(() => validateAgentMessage(taskUpdate({ fraction: Number.POSITIVE_INFINITY })))).toBe('TaskUpdate.fraction');
    expect(field(() => validateAgentMessage(hello({ capabilities: Array.from({ length: 1000 }, () => 'c') })))).toBe('Hello.capabilities');
    expect(field(() => validateAgentMessage(hello({ activeTaskIds: ['ok', 'bad id'] })))).toBe('Hello.active_task_ids[1]');
    expect(field(() => validateAgentMessage(hello({ agent: { agentVersion: 'v', trainingBackend: 'b'.repeat(129), platform: '' } })))).toBe('Hello.agent.training_backend');
  });
});

describe('report, upload, download and enrol checks', () => {
  const header = (over: Record<string, unknown> = {}, weights: Record<string, unknown> = {}) =>
    ({
      taskId: 'task_1', studyId: 'heart-0a1b2c', round: 1, nodeId: 'node_0123456789abcdef', baseModelSha256: Buffer.alloc(32), numExamples: 10, trainMetrics: null,
      weights: { tensors: [{ name: 'dense_0/kernel', shape: [3, 1], dtype: 'DTYPE_FLOAT32' }], totalBytes: 12, sha256: Buffer.alloc(32), chunkSize: 0, ...weights },
      ...over,
    }) as unknown as NonNullable<UpdateChunk__Output['header']>;

  it('upload header', () => {
    expect(field(() => validateUploadHeader(header()))).toBeUndefined();
    expect(field(() => validateUploadHeader(header({ taskId: 't'.repeat(3 * MIB) })))).toBe('UpdateHeader.task_id');
    expect(field(() => validateUploadHeader(header({ baseModelSha256: Buffer.alloc(MIB) })))).toBe('UpdateHeader.base_model_sha256');
    expect(field(() => validateUploadHeader(header({}, { tensors: [{ name: '\u0000', shape: [1] }] })))).toBe('UpdateHeader.weights.tensors[0].name');
    expect(field(() => validateUploadHeader(header({}, { tensors: Array.from({ length: 5000 }, () => ({ name: 'a', shape: [1] })) })))).toBe('UpdateHeader.weights.tensors');
    expect(field(() => validateUploadHeader(header({}, { tensors: [{ name: 'a', shape: new Array(100).fill(1) }] })))).toBe('UpdateHeader.weights.tensors[0].shape');
  });

  it('statistics and evaluation reports', () => {
    const stats = { taskId: 'task_1', studyId: 's-1', round: 1, rows: 10, positives: 3, suppressed: false, features: [{ name: 'age', histogram: new Array(20).fill(0) }] };
    expect(field(() => validateStatisticsReport(stats as never))).toBeUndefined();
    expect(field(() => validateStatisticsReport({ ...stats, features: [{ name: 'n'.repeat(MIB), histogram: [] }] } as never))).toBe('StatisticsReport.features[0].name');
    expect(field(() => validateStatisticsReport({ ...stats, features: [{ name: 'age', histogram: new Array(1000).fill(0) }] } as never))).toBe('StatisticsReport.features[0].histogram');
    expect(field(() => validateEvaluationReport({ taskId: 'task_1', studyId: 's\n1', round: 1, metrics: null } as never))).toBe('EvaluationReport.study_id');
  });

  it('download requests and enrolment', () => {
    expect(field(() => validateDownloadRequest({ taskId: 'task_1', selector: 'taskId' }))).toBeUndefined();
    expect(field(() => validateDownloadRequest({ committed: { studyId: 'x'.repeat(MIB), round: 0 }, selector: 'committed' }))).toBe('DownloadModelRequest.committed.study_id');
    const enrol = { joinToken: `fjt_${'a'.repeat(43)}`, siteName: 'clinic-a', agent: { agentVersion: 'v', trainingBackend: 'cpu', platform: 'linux' }, certificateSigningRequest: '' };
    expect(field(() => validateEnrolRequest(enrol))).toBeUndefined();
    expect(field(() => validateEnrolRequest({ ...enrol, joinToken: 'x'.repeat(MIB) }))).toBe('EnrolRequest.join_token');
    expect(field(() => validateEnrolRequest({ ...enrol, siteName: 'clinic a' }))).toBe('EnrolRequest.site_name');
    expect(field(() => validateEnrolRequest({ ...enrol, agent: { ...enrol.agent, platform: 'p'.repeat(MIB) } }))).toBe('EnrolRequest.agent.platform');
  });
});
