import { FedlhsError, type RoundState } from '@fedlhs/core';
import type {
  PromotionRecord,
  SeriesRecord,
  SeriesRunRecord,
  ReleaseAliasRecord,
  ReleasePerformanceRecord,
  ReleaseRecord,
  AdminActionRecord,
  ContributionRecord,
  JoinTokenRecord,
  MetricRecord,
  NodeRecord,
  OperatorRecord,
  RoundRecord,
  StatisticsRecord,
  StudyRecord,
  StudyStateName,
  TaskRecord,
  TaskStateName,
} from './records.js';

/**
 * Rows to records, for both stores: they only rename columns. PostgreSQL's type parsers
 * (postgres/connection.ts) give numbers for BIGINT and booleans for BOOLEAN; SQLite stores
 * booleans as 0/1.
 */
export type Row = Record<string, unknown>;

export const node = (r: Row): NodeRecord => ({
  id: r.id as string,
  siteName: r.site_name as string,
  credentialHash: r.credential_hash as string,
  createdAt: r.created_at as number,
  revokedAt: (r.revoked_at as number | null) ?? null,
  lastSeenAt: (r.last_seen_at as number | null) ?? null,
  agentVersion: r.agent_version as string,
  trainingBackend: r.training_backend as string,
});

export const joinToken = (r: Row): JoinTokenRecord => ({
  id: r.id as string,
  tokenHash: r.token_hash as string,
  siteName: r.site_name as string,
  createdAt: r.created_at as number,
  expiresAt: r.expires_at as number,
  usedAt: (r.used_at as number | null) ?? null,
  usedByNode: (r.used_by_node as string | null) ?? null,
  createdBy: r.created_by as string,
});

export const study = (r: Row): StudyRecord => ({
  id: r.id as string,
  name: r.name as string,
  manifestJson: r.manifest_json as string,
  manifestHash: r.manifest_hash as string,
  state: r.state as StudyStateName,
  reason: (r.reason as string | null) ?? null,
  lastCommittedRound: r.last_committed_round as number,
  strategyState: (r.strategy_state as string | null) ?? null,
  parameters: (r.parameters as string | null) ?? null,
  createdAt: r.created_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
  modelSpec: (r.model_spec as string | null) ?? null,
});

export const round = (r: Row): RoundRecord => ({
  id: r.id as number,
  studyId: r.study_id as string,
  round: r.round as number,
  attempt: r.attempt as number,
  state: r.state as RoundState,
  reason: (r.reason as string | null) ?? null,
  startedAt: r.started_at as number,
  endedAt: (r.ended_at as number | null) ?? null,
  participants: r.participants as number,
  checkpointPath: (r.checkpoint_path as string | null) ?? null,
  checkpointSha256: (r.checkpoint_sha256 as string | null) ?? null,
});

/** A task row joined with its round (`study_id`, `round`, `attempt`), optionally under a column prefix. */
/** A task from columns named `${p}id`, `${p}round_id`, … (a join's prefixed columns). */
export const prefixedTask = (r: Row, p: string): TaskRecord => ({
  id: r[`${p}id`] as string,
  roundId: r[`${p}round_id`] as number,
  studyId: r[`${p}study_id`] as string,
  round: r[`${p}round`] as number,
  attempt: r[`${p}attempt`] as number,
  nodeId: r[`${p}node_id`] as string,
  kind: r[`${p}kind`] as TaskRecord['kind'],
  state: r[`${p}state`] as TaskStateName,
  detail: (r[`${p}detail`] as string | null) ?? null,
  modelSha256: r[`${p}model_sha256`] as string,
  deadline: r[`${p}deadline`] as number,
  createdAt: r[`${p}created_at`] as number,
  endedAt: (r[`${p}ended_at`] as number | null) ?? null,
});

/** A contribution row, optionally under a column prefix. */
/** A contribution from columns named `${p}task_id`, … (a join's prefixed columns). */
export const prefixedContribution = (r: Row, p: string): ContributionRecord => ({
  taskId: r[`${p}task_id`] as string,
  studyId: r[`${p}study_id`] as string,
  round: r[`${p}round`] as number,
  attempt: r[`${p}attempt`] as number,
  nodeId: r[`${p}node_id`] as string,
  numExamples: r[`${p}num_examples`] as number,
  sha256: r[`${p}sha256`] as string,
  bytes: r[`${p}bytes`] as number,
  accepted: r[`${p}accepted`] === true || r[`${p}accepted`] === 1,
  reasonCode: (r[`${p}reason_code`] as string | null) ?? null,
  reason: (r[`${p}reason`] as string | null) ?? null,
  receivedAt: r[`${p}received_at`] as number,
  deltaNorm: (r[`${p}delta_norm`] as number | null) ?? null,
});

export const metric = (r: Row): MetricRecord & { round: number } => ({
  roundId: r.round_id as number,
  round: r.round as number,
  nodeId: (r.node_id as string | null) ?? null,
  phase: r.phase as MetricRecord['phase'],
  numExamples: r.num_examples as number,
  loss: r.loss as number,
  accuracy: r.accuracy as number,
  auc: (r.auc as number | null) ?? undefined,
  // NULL (not reported, and every row older than issue 12) reads as absent, like auc.
  performance: (r.performance as string | null) ?? undefined,
});

export const statistics = (r: Row): StatisticsRecord => ({
  studyId: r.study_id as string,
  taskId: r.task_id as string,
  nodeId: r.node_id as string,
  report: r.report as string,
  receivedAt: r.received_at as number,
});

export const operator = (r: Row): OperatorRecord => ({
  id: r.id as string,
  name: r.name as string,
  role: r.role as OperatorRecord['role'],
  tokenHash: r.token_hash as string,
  createdAt: r.created_at as number,
  createdBy: r.created_by as string,
  revokedAt: (r.revoked_at as number | null) ?? null,
});

export const adminAction = (r: Row): AdminActionRecord => ({
  at: r.at as number,
  operator: r.operator as string,
  action: r.action as string,
  target: r.target as string,
  detail: (r.detail as string | null) ?? null,
});

// One-argument forms, safe to hand to Array.map (which passes an index second).
export const task = (r: Row): TaskRecord => prefixedTask(r, '');
export const contribution = (r: Row): ContributionRecord => prefixedContribution(r, '');

const DIGEST = /^[0-9a-f]{64}$/;

/**
 * A release's `files` column (JSON `[{name, sha256, size}]`). Anything else is DATA_LOSS naming
 * the release: its digests are what blob collection keeps and what agents verify, so a reader
 * must never go on without them.
 */
export function releaseFiles(json: string, studyName: string, version: number): ReleaseRecord['files'] {
  const fail = (why: string, cause?: unknown): never => {
    throw new FedlhsError('DATA_LOSS', `release ${studyName} v${version} has a files list that ${why}`, { cause });
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    return fail('is not JSON', err);
  }
  if (!Array.isArray(parsed)) return fail('is not an array');
  return parsed.map((f: unknown) => {
    const { name, sha256, size } = (f ?? {}) as { name?: unknown; sha256?: unknown; size?: unknown };
    if (typeof name !== 'string' || typeof sha256 !== 'string' || !DIGEST.test(sha256) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      return fail('holds an entry without a name, a SHA-256 digest and a size');
    }
    return { name, sha256, size };
  });
}

export const release = (r: Row): ReleaseRecord => ({
  studyName: r.study_name as string,
  version: r.version as number,
  studyId: r.study_id as string,
  round: r.round as number,
  manifestSha256: r.manifest_sha256 as string,
  envelope: r.envelope as string,
  files: releaseFiles(r.files as string, r.study_name as string, r.version as number),
  createdAt: r.created_at as number,
  parentVersion: (r.parent_version as number | null) ?? null,
});

export const releaseAlias = (r: Row): ReleaseAliasRecord => ({
  studyName: r.study_name as string,
  alias: r.alias as string,
  version: r.version as number,
  setBy: r.set_by as string,
  setAt: r.set_at as number,
});

export const releasePerformance = (r: Row): ReleasePerformanceRecord => ({
  studyName: r.study_name as string,
  version: r.version as number,
  nodeId: r.node_id as string,
  exportFingerprint: r.export_fingerprint as string,
  performance: r.performance as string,
  measuredAt: r.measured_at as number,
  receivedAt: r.received_at as number,
});

export const series = (r: Row): SeriesRecord => ({
  name: r.name as string,
  template: r.template as string,
  templateSha256: r.template_sha256 as string,
  state: r.state as SeriesRecord['state'],
  createdBy: r.created_by as string,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
});

export const seriesRun = (r: Row): SeriesRunRecord => ({
  seriesName: r.series_name as string,
  run: r.run as number,
  studyId: r.study_id as string,
  scheduledAt: r.scheduled_at as number,
  startedAt: r.started_at as number,
  trigger: r.trigger as string,
  championVersion: (r.champion_version as number | null) ?? null,
  template: r.template as string,
});

export const promotion = (r: Row): PromotionRecord => ({
  id: r.id as number,
  seriesName: r.series_name as string,
  run: (r.run as number | null) ?? null,
  fromVersion: (r.from_version as number | null) ?? null,
  toVersion: r.to_version as number,
  action: r.action as PromotionRecord['action'],
  decidedBy: r.decided_by as string,
  evidence: r.evidence as string,
  at: r.at as number,
});
