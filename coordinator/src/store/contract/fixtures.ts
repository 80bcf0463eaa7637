import { expect } from 'vitest';
import { FedlhsError, type ErrorCode } from '@fedlhs/core';
import type { ContributionRecord, CoordinatorStore, JoinTokenRecord, NodeRecord, RoundRecord, StudyRecord, TaskRecord } from '../../store.js';

/** Record builders shared by the contract files (plain data, no store specifics). */
export const token = (id: string, over: Partial<JoinTokenRecord> = {}): JoinTokenRecord => ({
  id, tokenHash: `hash-${id}`, siteName: 'clinic-a', createdAt: 1000, expiresAt: 9000, usedAt: null, usedByNode: null, createdBy: 'admin', ...over,
});

export const nodeRec = (id: string, over: Partial<NodeRecord> = {}): NodeRecord => ({
  id, siteName: 'clinic-a', credentialHash: `cred-${id}`, createdAt: 2000, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '', ...over,
});

export const studyRec = (id: string, over: Partial<StudyRecord> = {}): StudyRecord => ({
  id, name: `study-${id}`, manifestJson: '{}', manifestHash: 'm'.repeat(64), state: 'RUNNING', reason: null, lastCommittedRound: 0,
  strategyState: null, parameters: null, createdAt: 100, endedAt: null, modelSpec: null, ...over,
});

export const roundRec = (studyId: string, round: number, attempt: number, state: RoundRecord['state']): Omit<RoundRecord, 'id'> => ({
  studyId, round, attempt, state, reason: null, startedAt: 500 + round * 10 + attempt, endedAt: null, participants: 0, checkpointPath: null, checkpointSha256: null,
});

export const taskRec = (id: string, roundId: number, nodeId: string, state: TaskRecord['state'], createdAt: number, kind: TaskRecord['kind'] = 'TRAIN'): TaskRecord => ({
  id, roundId,
  // studyId, round and attempt are not stored on the task: they come from its round.
  studyId: '', round: 0, attempt: 0,
  nodeId, kind, state, detail: null, modelSha256: 'a'.repeat(64), deadline: 99_000, createdAt, endedAt: null,
});

export const contributionRec = (taskId: string, sha256: string, accepted: boolean, over: Partial<ContributionRecord> = {}): ContributionRecord => ({
  taskId, studyId: 's1', round: 1, attempt: 1, nodeId: 'n1', numExamples: 120, sha256, bytes: 4096, accepted,
  reasonCode: accepted ? null : 'DIGEST_MISMATCH', reason: accepted ? null : 'sha256 mismatch', receivedAt: 7000, deltaNorm: null, ...over,
});

/** Enrols a node the way the coordinator does: by redeeming a join token. */
export async function enrol(store: CoordinatorStore, id: string, over: Partial<NodeRecord> = {}): Promise<void> {
  await store.insertJoinToken(token(`jt-${id}`));
  expect(await store.redeemJoinToken(`jt-${id}`, nodeRec(id, over))).toBe(true);
}

/** A study with one round in `state`; returns the round's id. */
export async function studyWithRound(store: CoordinatorStore, studyId = 's1', state: RoundRecord['state'] = 'TRAINING', round = 1, attempt = 1): Promise<number> {
  if ((await store.getStudy(studyId)) === undefined) await store.insertStudy(studyRec(studyId));
  return store.insertRound(roundRec(studyId, round, attempt, state));
}

/** The FedlhsError code `promise` rejects with (fails the test if it resolves or rejects otherwise). */
export async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    return (err as FedlhsError).code;
  }
  throw new Error('expected a rejection');
}

/** A constraint violation, in either store's words. */
export const UNIQUE_VIOLATION = /unique/i;
export const FOREIGN_KEY_VIOLATION = /foreign key/i;
