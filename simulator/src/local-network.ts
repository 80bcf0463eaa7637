import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FedlhsError, errorFromBody } from '@fedlhs/core';
import { ManagedProcess, type LogLine } from '@fedlhs/testing';

const run = promisify(execFile);

/** Repository root (simulator/dist/../..). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const coordinatorMain = join(repoRoot, 'coordinator', 'dist', 'main.js');
export const agentMain = join(repoRoot, 'node-agent', 'dist', 'main.js');

export interface TlsFiles {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert?: string;
  clientKey?: string;
  /** Require client certificates (mutual TLS). */
  mutual?: boolean;
}

export interface CoordinatorHandle {
  proc: ManagedProcess;
  grpcPort: number;
  adminPort: number;
  adminToken: string;
  dataDir: string;
  address: string;
  admin<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface CoordinatorStartOptions {
  dataDir: string;
  tls?: TlsFiles;
  heartbeatIntervalMs?: number;
  selectionGraceMs?: number;
  /** Fixed gRPC port (to restart on the same port); 0 by default. */
  grpcPort?: number;
  env?: NodeJS.ProcessEnv;
  name?: string;
  /** Extra Node.js flags for the coordinator process (e.g. --cpu-prof when profiling). */
  nodeArgs?: string[];
  /** The coordinator build to run (its dist/main.js); default this checkout's. Tests of a fix run it against the code before it. */
  main?: string;
}

/** Starts `fedlhs-coordinator serve` on port 0 and waits until it logs its ports. */
export async function startCoordinator(options: CoordinatorStartOptions): Promise<CoordinatorHandle> {
  mkdirSync(options.dataDir, { recursive: true });
  const tlsEnv: NodeJS.ProcessEnv = options.tls === undefined
    ? { FEDLHS_TLS_MODE: 'plaintext' }
    : { FEDLHS_TLS_MODE: 'tls', FEDLHS_TLS_CERT: options.tls.serverCert, FEDLHS_TLS_KEY: options.tls.serverKey, ...(options.tls.mutual === true ? { FEDLHS_TLS_CLIENT_CA: options.tls.caCert } : {}) };
  const proc = new ManagedProcess({
    name: options.name ?? 'coordinator',
    command: process.execPath,
    args: [...(options.nodeArgs ?? []), options.main ?? coordinatorMain, 'serve'],
    env: {
      FEDLHS_DATA_DIR: options.dataDir,
      FEDLHS_GRPC_HOST: '127.0.0.1',
      FEDLHS_GRPC_PORT: String(options.grpcPort ?? 0),
      FEDLHS_ADMIN_PORT: '0',
      FEDLHS_HEARTBEAT_INTERVAL_MS: String(options.heartbeatIntervalMs ?? 500),
      FEDLHS_SELECTION_GRACE_MS: String(options.selectionGraceMs ?? 300),
      FEDLHS_LOG_LEVEL: 'debug',
      ...tlsEnv,
      ...options.env,
    },
  });
  const ready = await proc.waitForEvent('coordinator.ready', undefined, 60_000);
  const grpcPort = ready.grpcPort as number;
  const adminPort = ready.adminPort as number;
  const adminToken = readFileSync(join(options.dataDir, 'admin-token'), 'utf8').trim();
  return {
    proc, grpcPort, adminPort, adminToken, dataDir: options.dataDir,
    address: `${options.tls === undefined ? '127.0.0.1' : 'localhost'}:${grpcPort}`,
    async admin<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => proc.stop(signal),
  };
}

export interface AgentOptions {
  name: string;
  stateDir: string;
  dataPath: string;
  /** Local data format (default flat-table). */
  dataFormat?: 'flat-table' | 'synthea-csv' | 'fhir-ndjson' | 'omop-csv';
  coordinator: string;
  tls?: TlsFiles;
  autoApprove?: boolean;
  minCohort?: number;
  env?: NodeJS.ProcessEnv;
}

function agentEnv(o: AgentOptions): NodeJS.ProcessEnv {
  const tls: NodeJS.ProcessEnv = o.tls === undefined
    ? { FEDLHS_TLS_MODE: 'plaintext' }
    : {
        FEDLHS_TLS_MODE: 'tls', FEDLHS_TLS_CA: o.tls.caCert,
        ...(o.tls.clientCert === undefined ? {} : { FEDLHS_TLS_CERT: o.tls.clientCert, FEDLHS_TLS_KEY: o.tls.clientKey }),
      };
  return {
    FEDLHS_SITE: o.name,
    FEDLHS_STATE_DIR: o.stateDir,
    FEDLHS_DATA_PATH: o.dataPath,
    FEDLHS_DATA_FORMAT: o.dataFormat ?? 'flat-table',
    FEDLHS_DATA_KEY_COLUMN: 'record_id',
    FEDLHS_COORDINATOR: o.coordinator,
    FEDLHS_AUTO_APPROVE: o.autoApprove === true ? 'true' : 'false',
    FEDLHS_MIN_COHORT: String(o.minCohort ?? 20),
    FEDLHS_RECONNECT_BASE_MS: '200',
    FEDLHS_RECONNECT_CAP_MS: '2000',
    FEDLHS_LOG_LEVEL: 'debug',
    ...tls,
    ...o.env,
  };
}

/** Runs an agent CLI command to completion and returns its output. */
export async function agentCli(o: AgentOptions, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [agentMain, ...args], { env: { ...process.env, ...agentEnv(o), FEDLHS_LOG_PRETTY: 'false' } });
}

/** Issues a join token and enrols the agent with the real `fedlhs-agent enrol` command. */
export async function enrolAgent(coordinator: CoordinatorHandle, o: AgentOptions): Promise<string> {
  const t = await coordinator.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: o.name, ttlSeconds: 600 });
  if (t.status !== 201) throw errorFromBody((t.body as { error?: unknown }).error, `join token: ${t.status} `);
  await agentCli(o, ['enrol', '--join-token', t.body.token]);
  const cred = JSON.parse(readFileSync(join(o.stateDir, 'node-credential.json'), 'utf8')) as { nodeId: string };
  return cred.nodeId;
}

/** Starts `fedlhs-agent run` as a separate OS process. */
export function startAgent(o: AgentOptions): ManagedProcess {
  return new ManagedProcess({ name: o.name, command: process.execPath, args: [agentMain, 'run'], env: agentEnv(o) });
}

export interface StudyDetail {
  id: string;
  state: string;
  lastCommittedRound: number;
  rounds: { round: number; attempt: number; state: string; reason: string | null; checkpointPath: string | null; checkpointSha256: string | null; participants: number }[];
  metrics: { round: number; nodeId: string | null; phase: string; numExamples: number; loss: number; accuracy: number; auc?: number }[];
  contributions: { taskId: string; nodeId: string; round: number; attempt: number; accepted: boolean; reasonCode: string | null; reason: string | null }[];
}

/** Waits (on the coordinator's own log) until the study ends, then returns its detail. */
/** The events that end a study (coordinator log). */
const STUDY_END_EVENTS: ReadonlySet<string> = new Set(['study.completed', 'study.failed', 'study.stopped']);

export async function waitForStudyEnd(c: CoordinatorHandle, studyId: string, timeoutMs = 240_000): Promise<StudyDetail> {
  await c.proc.waitFor((l: LogLine) => l.studyId === studyId && STUDY_END_EVENTS.has(String(l.event)), timeoutMs, `end of study ${studyId}`);
  return (await c.admin<StudyDetail>('GET', `/api/v1/studies/${studyId}`)).body;
}

/** What the coordinator released for a study (its `release.created` log line). */
export interface ReleasedRound {
  studyName: string;
  version: number;
  round: number;
  rule: string;
}

/**
 * Waits (on the coordinator's own log) for the release of a completed study: `release.created`,
 * or `release.failed`, which throws with the coordinator's reason (a study whose result was not
 * released is not reported as if it had been).
 */
export async function waitForRelease(c: CoordinatorHandle, studyId: string, timeoutMs = 120_000): Promise<ReleasedRound> {
  const line = await c.proc.waitFor((l: LogLine) => l.studyId === studyId && (l.event === 'release.created' || l.event === 'release.failed'), timeoutMs, `release of study ${studyId}`);
  if (line.event === 'release.failed') throw new Error(`the coordinator could not release study ${studyId}: ${String(line.reason ?? line.msg ?? 'no reason logged')}`);
  return { studyName: String(line.studyName), version: Number(line.version), round: Number(line.round), rule: String(line.rule) };
}

/**
 * A committed global model of a study, fetched from the admin API
 * (`GET /api/v1/studies/{id}/rounds/{n}/model`), so it works wherever the coordinator keeps its
 * blobs (files or PostgreSQL). The bytes are checked against the digest the coordinator sends.
 */
export async function fetchCommittedModel(c: Pick<CoordinatorHandle, 'adminPort' | 'adminToken'>, studyId: string, round: number): Promise<Float32Array> {
  const res = await fetch(`http://127.0.0.1:${c.adminPort}/api/v1/studies/${encodeURIComponent(studyId)}/rounds/${round}/model`, {
    headers: { authorization: `Bearer ${c.adminToken}` },
  });
  if (res.status !== 200) throw new FedlhsError('NOT_FOUND', `committed model of study ${studyId} round ${round}: HTTP ${res.status} ${await res.text()}`, { details: { what: 'model', id: `${studyId}/${round}` } });
  const bytes = Buffer.from(await res.arrayBuffer());
  const expected = res.headers.get('x-fedlhs-sha256');
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (expected === null || actual !== expected) throw new FedlhsError('DATA_LOSS', `committed model of study ${studyId} round ${round} hashes to ${actual}, the coordinator says ${expected ?? '(no digest)'}`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/**
 * A committed global model of a study, read from the coordinator's data directory: the round's
 * named checkpoint, which the default (file) blob store keeps there. With `expectedSha256` (the
 * round's `checkpointSha256` in the study detail) the bytes are checked against it. A coordinator
 * with PostgreSQL blobs (store.kind postgres) keeps no checkpoint files: this then fails, naming
 * why, rather than reading something else.
 */
export function readCommittedModel(c: Pick<CoordinatorHandle, 'dataDir'>, studyId: string, round: number, expectedSha256?: string): Float32Array {
  const path = join(c.dataDir, 'studies', studyId, 'checkpoints', `round-${String(round).padStart(6, '0')}.f32`);
  if (!existsSync(path)) {
    throw new FedlhsError('NOT_FOUND', `no checkpoint file ${path}: the coordinator keeps committed models there only with the file blob store (blobs.store files); with PostgreSQL blobs, use fetchCommittedModel (the admin API)`);
  }
  const bytes = readFileSync(path);
  if (expectedSha256 !== undefined) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== expectedSha256) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} hashes to ${actual}, recorded ${expectedSha256}`);
  }
  // A copy: Buffer's memory may be pooled and need not be 4-byte aligned.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The recorded digest of a study's committed checkpoint of `round` (for readCommittedModel). */
export function committedSha256(detail: Pick<StudyDetail, 'id' | 'rounds'>, round: number): string {
  const sha = detail.rounds.find((r) => r.round === round && r.state === 'COMMITTED')?.checkpointSha256;
  if (sha == null) throw new FedlhsError('NOT_FOUND', `study ${detail.id} has no committed round ${round}`);
  return sha;
}

/** Starts a study through the admin API. */
export async function startStudy(c: CoordinatorHandle, manifest: unknown): Promise<{ id: string; manifestSha256: string }> {
  const res = await c.admin<{ id: string; manifestSha256: string }>('POST', '/api/v1/studies', { manifest });
  if (res.status !== 201) throw errorFromBody((res.body as { error?: unknown }).error, `study start failed: ${res.status} `);
  return res.body;
}
