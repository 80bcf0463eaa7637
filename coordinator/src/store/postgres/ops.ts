import type pg from 'pg';
import { FedlhsError } from '@fedlhs/core';
import type { MetricRecord, NodeRecord, RoundRecord, StudyRecord, TaskRecord } from '../../store.js';
import type { WriteOp, WriteResult } from '../write-ops.js';
import { applyReleaseOp } from './releases.js';
import { applySeriesOp } from './series.js';
import { auditPgOp } from './audit-chain.js';

import { exec, stmt } from './statement.js';

export { exec, type Statement } from './statement.js';

// Chunk size of unnest() inserts: one statement for a phase's assignment of 10 000 tasks.
const INSERT_CHUNK = 10_000;

export const SQL = {
  insertTasks: stmt(
    'insert_tasks',
    `INSERT INTO tasks (id, round_id, node_id, kind, state, detail, model_sha256, deadline, created_at, ended_at)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[])`,
  ),
  endTask: stmt('end_task', `UPDATE tasks SET state = $1, detail = $2, ended_at = $3 WHERE id = $4 AND state = 'ASSIGNED'`),
  taskState: stmt('task_state', `SELECT state FROM tasks WHERE id = $1`),
  cancelOpen: stmt(
    'cancel_open',
    `WITH c AS (UPDATE tasks SET state = 'CANCELLED', detail = $2, ended_at = $3 WHERE round_id = $1 AND state = 'ASSIGNED' RETURNING id, created_at)
     SELECT id FROM c ORDER BY created_at, id`,
  ),
  insertContribution: stmt(
    'insert_contribution',
    `INSERT INTO contributions (task_id, study_id, round, attempt, node_id, num_examples, sha256, bytes, accepted, reason_code, reason, received_at, delta_norm)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
  ),
  insertStatistics: stmt('insert_statistics', `INSERT INTO statistics (study_id, task_id, node_id, report, received_at) VALUES ($1,$2,$3,$4,$5)`),
  insertStudy: stmt(
    'insert_study',
    `INSERT INTO studies (id, name, manifest_json, manifest_hash, state, reason, last_committed_round, strategy_state, parameters, created_at, ended_at, model_spec)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
  ),
  studyState: stmt('study_state', `UPDATE studies SET state = $1, reason = $2, ended_at = $3 WHERE id = $4`),
  studyParameters: stmt('study_parameters', `UPDATE studies SET parameters = $1 WHERE id = $2`),
  insertRound: stmt(
    'insert_round',
    `INSERT INTO rounds (study_id, round, attempt, state, reason, started_at, ended_at, participants, checkpoint_path, checkpoint_sha256)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id`,
  ),
  roundState: stmt(
    'round_state',
    `UPDATE rounds SET state = $1, reason = COALESCE($2, reason), ended_at = COALESCE($3, ended_at), participants = COALESCE($4, participants) WHERE id = $5`,
  ),
  roundForCommit: stmt('round_for_commit', `SELECT study_id, round, state FROM rounds WHERE id = $1 FOR UPDATE`),
  commitRound: stmt('commit_round', `UPDATE rounds SET state = 'COMMITTED', ended_at = $1, checkpoint_path = $2, checkpoint_sha256 = $3 WHERE id = $4`),
  advanceStudy: stmt('advance_study', `UPDATE studies SET last_committed_round = $1, strategy_state = $2 WHERE id = $3`),
  insertMetrics: stmt(
    'insert_metrics',
    `INSERT INTO metrics (round_id, node_id, phase, num_examples, loss, accuracy, auc, performance)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[], $8::text[])`,
  ),
  nodeSeen: stmt('node_seen', `UPDATE nodes SET last_seen_at = $1, agent_version = $2, training_backend = $3 WHERE id = $4`),
  revokeNode: stmt('revoke_node', `UPDATE nodes SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`),
  recordApproval: stmt('record_approval', `INSERT INTO study_approvals (study_id, node_id, manifest_sha256, approved_at) VALUES ($1, $2, $3, $4) ON CONFLICT (study_id, node_id) DO NOTHING`),
  insertNode: stmt(
    'insert_node',
    `INSERT INTO nodes (id, site_name, credential_hash, created_at, revoked_at, last_seen_at, agent_version, training_backend) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
  ),
  insertAdminAction: stmt('insert_admin_action', `INSERT INTO admin_actions (at, operator, action, target, detail) VALUES ($1,$2,$3,$4,$5)`),
} as const;

export async function insertTasks(client: pg.ClientBase, tasks: readonly TaskRecord[]): Promise<void> {
  for (let i = 0; i < tasks.length; i += INSERT_CHUNK) {
    const chunk = tasks.slice(i, i + INSERT_CHUNK);
    await exec(client, SQL.insertTasks, [
      chunk.map((t) => t.id),
      chunk.map((t) => t.roundId),
      chunk.map((t) => t.nodeId),
      chunk.map((t) => t.kind),
      chunk.map((t) => t.state),
      chunk.map((t) => t.detail),
      chunk.map((t) => t.modelSha256),
      chunk.map((t) => t.deadline),
      chunk.map((t) => t.createdAt),
      chunk.map((t) => t.endedAt ?? null),
    ]);
  }
}

export async function insertMetrics(client: pg.ClientBase, metrics: readonly MetricRecord[]): Promise<void> {
  for (let i = 0; i < metrics.length; i += INSERT_CHUNK) {
    const chunk = metrics.slice(i, i + INSERT_CHUNK);
    await exec(client, SQL.insertMetrics, [
      chunk.map((m) => m.roundId),
      chunk.map((m) => m.nodeId),
      chunk.map((m) => m.phase),
      chunk.map((m) => m.numExamples),
      chunk.map((m) => m.loss),
      chunk.map((m) => m.accuracy),
      chunk.map((m) => m.auc ?? null),
      chunk.map((m) => m.performance ?? null),
    ]);
  }
}

export const studyValues = (s: StudyRecord): unknown[] => [
  s.id, s.name, s.manifestJson, s.manifestHash, s.state, s.reason, s.lastCommittedRound, s.strategyState, s.parameters, s.createdAt, s.endedAt, s.modelSpec ?? null,
];
export const roundValues = (r: Omit<RoundRecord, 'id'>): unknown[] => [
  r.studyId, r.round, r.attempt, r.state, r.reason, r.startedAt, r.endedAt, r.participants, r.checkpointPath, r.checkpointSha256,
];
export const nodeValues = (n: NodeRecord): unknown[] => [n.id, n.siteName, n.credentialHash, n.createdAt, n.revokedAt, n.lastSeenAt, n.agentVersion, n.trainingBackend];

/** Applies one op on `client`, inside the caller's transaction; the semantics of SqliteStore.apply. */
export async function applyOp(client: pg.ClientBase, op: WriteOp, result: WriteResult): Promise<void> {
  switch (op.op) {
    case 'task.insert':
      await insertTasks(client, op.tasks);
      return;
    case 'task.end': {
      const res = await exec(client, SQL.endTask, [op.to, op.detail, op.at, op.id]);
      if (res.rowCount === 1) return;
      const row = (await exec<{ state: string }>(client, SQL.taskState, [op.id])).rows[0];
      if (row === undefined) throw new FedlhsError('NOT_FOUND', `task ${op.id} does not exist`, { details: { what: 'task', id: op.id } });
      throw new FedlhsError('STALE', `task ${op.id} is ${row.state}, not open`);
    }
    case 'task.cancelOpen': {
      const res = await exec<{ id: string }>(client, SQL.cancelOpen, [op.roundId, op.detail, op.at]);
      result.cancelled.push(...res.rows.map((r) => r.id));
      return;
    }
    case 'contribution.insert': {
      const c = op.c;
      await exec(client, SQL.insertContribution, [
        c.taskId, c.studyId, c.round, c.attempt, c.nodeId, c.numExamples, c.sha256, c.bytes, c.accepted, c.reasonCode, c.reason, c.receivedAt, c.deltaNorm ?? null,
      ]);
      await auditPgOp(client, op);
      return;
    }
    case 'statistics.insert':
      await exec(client, SQL.insertStatistics, [op.s.studyId, op.s.taskId, op.s.nodeId, op.s.report, op.s.receivedAt]);
      return;
    case 'study.insert':
      await exec(client, SQL.insertStudy, studyValues(op.s));
      return;
    case 'study.state':
      await exec(client, SQL.studyState, [op.state, op.reason, op.at, op.id]);
      return;
    case 'study.parameters':
      await exec(client, SQL.studyParameters, [op.parameters, op.id]);
      return;
    case 'round.insert': {
      const res = await exec<{ id: number }>(client, SQL.insertRound, roundValues(op.r));
      result.roundIds.push(res.rows[0]!.id);
      return;
    }
    case 'round.state':
      await exec(client, SQL.roundState, [op.state, op.reason, op.at, op.participants ?? null, op.id]);
      return;
    case 'round.commit': {
      const r = (await exec<{ study_id: string; round: number; state: string }>(client, SQL.roundForCommit, [op.id])).rows[0];
      if (r === undefined) throw new FedlhsError('NOT_FOUND', `round ${op.id} does not exist`, { details: { what: 'round', id: String(op.id) } });
      if (r.state === 'COMMITTED' || r.state === 'FAILED') throw new FedlhsError('STALE', `round ${op.id} is already ${r.state}`);
      await exec(client, SQL.commitRound, [op.at, op.checkpoint.path, op.checkpoint.sha256, op.id]);
      await exec(client, SQL.advanceStudy, [r.round, op.strategyState, r.study_id]);
      await insertMetrics(client, op.metrics);
      return;
    }
    case 'metrics.insert':
      await insertMetrics(client, op.metrics);
      return;
    case 'node.seen':
      await exec(client, SQL.nodeSeen, [op.at, op.agentVersion, op.trainingBackend, op.id]);
      return;
    case 'node.revoke':
      await auditPgOp(client, op, (await exec(client, SQL.revokeNode, [op.at, op.id])).rowCount ?? 0);
      return;
    case 'node.insert':
      await exec(client, SQL.insertNode, nodeValues(op.n));
      return;
    case 'approval.record':
      await exec(client, SQL.recordApproval, [op.studyId, op.nodeId, op.manifestSha256, op.at]);
      return;
    case 'admin.action':
      await exec(client, SQL.insertAdminAction, [op.a.at, op.a.operator, op.a.action, op.a.target, op.a.detail]);
      await auditPgOp(client, op);
      return;
    case 'release.insert':
    case 'release.alias':
    case 'release.performance':
      await applyReleaseOp(client, op, result);
      await auditPgOp(client, op);
      return;
    case 'series.insert':
    case 'series.update':
    case 'series.run':
    case 'promotion.insert':
      await applySeriesOp(client, op);
      return;
  }
}
