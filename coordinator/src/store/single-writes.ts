import type { RoundState } from '@fedlhs/core';
import type { AdminActionRecord, ContributionRecord, MetricRecord, RoundRecord, StatisticsRecord, StudyRecord, StudyStateName, TaskRecord } from './records.js';
import type { WriteOp, WriteResult } from './write-ops.js';

/**
 * The CoordinatorStore methods that are one write op each, in terms of `write`, for every store:
 * a single write is a unit of one op, group-committed like any other.
 */
export abstract class SingleWriteStore {
  abstract write(ops: readonly WriteOp[], label: string): Promise<WriteResult>;

  async touchNode(id: string, at: number, agentVersion: string, trainingBackend: string): Promise<void> {
    await this.write([{ op: 'node.seen', id, at, agentVersion, trainingBackend }], 'node.seen');
  }
  async insertStudy(s: StudyRecord): Promise<void> {
    await this.write([{ op: 'study.insert', s }], 'study.insert');
  }
  async setStudyState(id: string, state: StudyStateName, reason: string | null, at: number | null): Promise<void> {
    await this.write([{ op: 'study.state', id, state, reason, at }], 'study.state');
  }
  async setStudyParameters(id: string, parameters: string): Promise<void> {
    await this.write([{ op: 'study.parameters', id, parameters }], 'study.parameters');
  }
  async insertRound(r: Omit<RoundRecord, 'id'>): Promise<number> {
    const { roundIds } = await this.write([{ op: 'round.insert', r }], 'round.insert');
    return roundIds[0]!;
  }
  async setRoundState(id: number, state: RoundState, reason: string | null, at: number | null): Promise<void> {
    await this.write([{ op: 'round.state', id, state, reason, at }], 'round.state');
  }
  async commitRound(id: number, checkpoint: { path: string; sha256: string }, metrics: MetricRecord[], strategyState: string | null, at: number): Promise<void> {
    await this.write([{ op: 'round.commit', id, checkpoint, metrics, strategyState, at }], 'round.commit');
  }
  async insertTask(t: TaskRecord): Promise<void> {
    await this.write([{ op: 'task.insert', tasks: [t] }], 'task.insert');
  }
  async insertContribution(c: ContributionRecord): Promise<void> {
    await this.write([{ op: 'contribution.insert', c }], 'contribution.insert');
  }
  async insertMetrics(metrics: MetricRecord[]): Promise<void> {
    await this.write([{ op: 'metrics.insert', metrics }], 'metrics.insert');
  }
  async insertStatistics(s: StatisticsRecord): Promise<void> {
    await this.write([{ op: 'statistics.insert', s }], 'statistics.insert');
  }
  async insertAdminAction(a: AdminActionRecord): Promise<void> {
    await this.write([{ op: 'admin.action', a }], 'admin.action');
  }
}
