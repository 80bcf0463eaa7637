/**
 * An in-process coordinator for the conformance suite: real gRPC and admin servers on
 * 127.0.0.1 port 0, a throwaway data directory, and the admin calls a test needs to set the
 * scene (join tokens, studies). Only the scene is set through the admin API; everything the
 * suite checks goes through tests/src/conformance-client.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCoordinatorConfig, startCoordinatorApp, type CoordinatorApp } from '@fedlhs/coordinator';
import { createLogger } from '@fedlhs/service';
import { createTestSchema, type TestPostgresScope } from '@fedlhs/testing';
import { afterAll, afterEach } from 'vitest';
import { ConformanceClient, enrol } from '../src/conformance-client.js';

const ADMIN_TOKEN = 'conformance-admin-token-0123456789';

export interface TestCoordinator {
  address: string;
  adminUrl: string;
  adminToken: string;
  app: CoordinatorApp;
  /** An admin API call with the admin token (or the given Authorization value). */
  admin<T = unknown>(method: string, path: string, body?: unknown, authorization?: string): Promise<{ status: number; body: T }>;
  joinToken(site: string): Promise<string>;
  startStudy(manifest: unknown): Promise<{ id: string; manifestSha256: string }>;
  /** Enrols a node for `site` and returns a client for it (closed after the test). */
  node(site: string): Promise<ConformanceClient>;
}

type Started = { app: CoordinatorApp; dir: string; clients: ConformanceClient[]; schema: TestPostgresScope | undefined };
const perTest: Started[] = [];
const perFile: Started[] = [];

async function stopAll(list: Started[]): Promise<void> {
  for (const s of list.splice(0)) {
    for (const c of s.clients) c.close();
    await s.app.shutdown();
    await s.schema?.drop();
    rmSync(s.dir, { recursive: true, force: true });
  }
}
afterEach(() => stopAll(perTest));
afterAll(() => stopAll(perFile));

/**
 * The store the suite runs against: FEDLHS_CONFORMANCE_STORE=postgres puts each coordinator in a
 * fresh schema of the run's test PostgreSQL server (packages/testing/src/postgres.ts); the
 * default is SQLite in the data directory.
 */
const STORE = process.env.FEDLHS_CONFORMANCE_STORE === 'postgres' ? 'postgres' : 'sqlite';

/**
 * Starts a coordinator, shut down after the test (or, with `perFile`, after the file's last
 * test, for a table of tests that share one coordinator).
 */
export async function startTestCoordinator(options: { heartbeatIntervalMs?: number; perFile?: boolean } = {}): Promise<TestCoordinator> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-conformance-'));
  const logger = createLogger({ app: 'fedlhs-coordinator', level: 'info', pretty: 'false', destination: join(dir, 'coordinator.log') });
  // Defaults for every key (including ones added later), then what the suite needs.
  const schema = STORE === 'postgres' ? await createTestSchema('conformance') : undefined;
  const defaults = loadCoordinatorConfig({ env: {}, args: ['--tls-mode', 'plaintext', '--data-dir', join(dir, 'data')] });
  let app: CoordinatorApp;
  try {
    app = await startCoordinatorApp(
      {
        ...defaults,
        dataDir: join(dir, 'data'),
        grpc: { host: '127.0.0.1', port: 0 },
        tls: { mode: 'plaintext', cert: '', key: '', clientCa: '' },
        admin: { ...defaults.admin, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN },
        reportsDir: join(dir, 'reports'),
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
        selectionGraceMs: 200,
        backend: 'cpu',
        ...(schema === undefined ? {} : { store: { ...defaults.store, kind: 'postgres' as const, url: schema.url } }),
      },
      logger,
    );
  } catch (err) {
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // A run that asked for PostgreSQL must not pass on SQLite.
  if (app.coordinator.store.kind !== STORE) throw new Error(`conformance run asked for the ${STORE} store but the coordinator uses ${app.coordinator.store.kind}`);
  const entry: Started = { app, dir, clients: [], schema };
  (options.perFile === true ? perFile : perTest).push(entry);
  const address = `127.0.0.1:${app.grpcPort}`;
  const adminUrl = `http://127.0.0.1:${app.adminPort}`;
  const admin = async <T,>(method: string, path: string, body?: unknown, authorization = `Bearer ${ADMIN_TOKEN}`): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${adminUrl}${path}`, {
      method,
      headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };
  const joinToken = async (site: string): Promise<string> => {
    const r = await admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 });
    if (r.status !== 201) throw new Error(`join token: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.token;
  };
  return {
    address,
    adminUrl,
    adminToken: ADMIN_TOKEN,
    app,
    admin,
    joinToken,
    async startStudy(manifest) {
      const r = await admin<{ id: string; manifestSha256: string }>('POST', '/api/v1/studies', { manifest });
      if (r.status !== 201) throw new Error(`study start: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async node(site) {
      const creds = await enrol(address, await joinToken(site), site);
      const client = new ConformanceClient(address, creds.nodeId, creds.nodeCredential);
      entry.clients.push(client);
      return client;
    },
  };
}

/** A small study manifest (one clinic suffices) with the given layers. */
export function manifest(overrides: { rounds?: number; layers?: unknown[]; features?: number; normalization?: string; clients?: number; roundSeconds?: number } = {}): Record<string, unknown> {
  const d = overrides.features ?? 4;
  const n = overrides.clients ?? 1;
  return {
    apiVersion: 'fedlhs.v1',
    kind: 'Study',
    name: 'conformance',
    model: {
      format: 'tfjs-layers',
      topology: {
        class_name: 'Sequential',
        config: {
          layers: overrides.layers ?? [
            { class_name: 'Dense', config: { name: 'hidden', units: 3, activation: 'relu', batch_input_shape: [null, d] } },
            { class_name: 'Dense', config: { name: 'output', units: 1, activation: 'sigmoid' } },
          ],
        },
      },
    },
    training: { loss: 'binaryCrossentropy', optimizer: { name: 'sgd', learningRate: 0.05 }, localEpochs: 1, batchSize: 32 },
    rounds: overrides.rounds ?? 1,
    clients: { min: n, max: n, quorum: n },
    deadlines: { roundSeconds: overrides.roundSeconds ?? 60, evaluationSeconds: 30, maxRoundAttempts: 1 },
    data: { featureSpec: 'flat-table/v1', features: Array.from({ length: d }, (_, i) => `x${i}`), label: 'label', holdoutFraction: 0.25, ...(overrides.normalization === undefined ? {} : { normalization: overrides.normalization }) },
    aggregation: { strategy: 'fedavg' },
    seed: 7,
  };
}
