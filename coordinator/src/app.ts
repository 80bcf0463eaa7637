import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { initBackend, initialWeights } from '@fedlhs/model';
import { FedlhsError, networkBackend, useJavaScriptNetwork } from '@fedlhs/core';
import { writeFileAtomic, type Logger } from '@fedlhs/service';
import { randomBytes } from 'node:crypto';
import { startAdminServer } from './admin/http.js';
import type { BlobStore } from './blobs/blob-store.js';
import { CachedBlobStore } from './blobs/cached-blob-store.js';
import { PostgresBlobStore } from './blobs/postgres-blob-store.js';
import { limitsOf, resolveBlobStore, type CoordinatorConfig } from './config.js';
import { Coordinator, type InitialModelBuilder } from './coordinator.js';
import type { EngineClock } from './engine/study-runner.js';
import { MovableClock } from './series/clock.js';
import { startGrpcServer, stopGrpcServer } from './grpc/server.js';
import { NodeCertificates } from './ca/node-certificates.js';
import type { CoordinatorStore } from './store.js';
import { PostgresStore, type StoreFence } from './store/postgres/postgres-store.js';

/** Lifecycle of the coordinator process. */
export type AppState = 'INITIALIZED' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'FAILED';

export interface CoordinatorApp {
  readonly coordinator: Coordinator;
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly state: AppState;
  shutdown(): Promise<void>;
}

/** The admin token from config, or the one kept in the data directory (created on first use). */
export function resolveAdminToken(config: Pick<CoordinatorConfig, 'dataDir' | 'admin'>): string {
  if (config.admin.token !== '') return config.admin.token;
  const path = join(config.dataDir, 'admin-token');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = `fat_${randomBytes(32).toString('base64url')}`;
  writeFileAtomic(path, `${token}\n`, 0o600);
  return token;
}

/**
 * The store `config.store` names: a PostgresStore (connected and migrated) for 'postgres', or
 * undefined for 'sqlite', which the coordinator opens inside its data directory. `target` says
 * where, without any password.
 */
export async function openConfiguredStore(config: Pick<CoordinatorConfig, 'dataDir' | 'store'>, logger: Logger, fence?: StoreFence): Promise<{ store: CoordinatorStore | undefined; target: string }> {
  if (config.store.kind === 'sqlite') return { store: undefined, target: join(config.dataDir, 'coordinator.db') };
  const store = await PostgresStore.open({ connection: config.store.url, poolSize: config.store.poolSize, logger: logger.child({ component: 'store' }), ...(fence === undefined ? {} : { fence }) });
  if (fence === undefined) {
    // Without ha.enabled nothing here checks a fence: beside an active/standby pair this would be a second active.
    const holder = await store.liveLeaseHolder();
    if (holder !== undefined) {
      await store.close();
      throw new FedlhsError('CONFIG_INVALID', `store.url: an active/standby coordinator (${holder}) holds the leadership lease on this database: start this one with ha.enabled too, or stop the pair`, { details: { key: 'ha.enabled' } });
    }
  }
  return { store, target: store.target };
}

/**
 * The blob store `blobs.store` names (design §2.6): undefined for files (the coordinator's
 * default, `<dataDir>/blobs`), or PostgreSQL on the store's own pool (tables from its migration
 * 2), behind a local read-through cache in `<dataDir>/blob-cache` unless `blobs.cacheBytes` is 0.
 * PostgreSQL blobs need the PostgreSQL store (config.ts refuses anything else).
 */
export function configuredBlobStore(config: Pick<CoordinatorConfig, 'dataDir' | 'store' | 'blobs'>, store: CoordinatorStore | undefined): { blobs: BlobStore | undefined; description: string } {
  if (resolveBlobStore(config) === 'files') return { blobs: undefined, description: `files in ${join(config.dataDir, 'blobs')}` };
  if (!(store instanceof PostgresStore)) {
    throw new FedlhsError('CONFIG_INVALID', "blobs.store 'postgres' needs store.kind 'postgres'", { details: { key: 'blobs.store' } });
  }
  const pgBlobs = new PostgresBlobStore(store.pool, { schemaReady: true });
  if (config.blobs.cacheBytes === 0) return { blobs: pgBlobs, description: `postgres at ${store.target} (no local cache)` };
  const dir = join(config.dataDir, 'blob-cache');
  return {
    blobs: new CachedBlobStore({ backing: pgBlobs, dir, maxBytes: config.blobs.cacheBytes }),
    description: `postgres at ${store.target}, cached in ${dir} (up to ${config.blobs.cacheBytes} bytes)`,
  };
}


/**
 * What every coordinator process does once before it serves: warn loudly about plaintext,
 * load the TensorFlow.js backend, and make the simulated series clock if configured.
 */
export async function prepareProcess(config: CoordinatorConfig, logger: Logger, overrides: CoordinatorAppOverrides = {}): Promise<{ seriesClock: EngineClock | undefined; simulatedClock: MovableClock | undefined }> {
  if (config.tls.mode === 'plaintext') {
    logger.warn(
      { event: 'tls.disabled', tlsMode: 'plaintext' },
      '!!! TLS IS DISABLED: node credentials and model weights cross the network unencrypted. Use tls.mode=plaintext only on loopback for demos and tests. !!!',
    );
  }
  const backend = await initBackend(config.backend);
  logger.info({ trainingBackend: backend.backend, unavailable: backend.attempts }, `TensorFlow.js backend: ${backend.backend}`);
  // orderStatistics 'javascript': the operator's switch away from the hand-assembled WebAssembly.
  useJavaScriptNetwork(config.orderStatistics === 'javascript');
  if (networkBackend() !== 'webassembly') {
    // Same results, about 5x slower: order-statistic strategies (median, trimmed mean, Krum, Bulyan) say so once.
    const why = config.orderStatistics === 'javascript' ? 'orderStatistics is javascript' : 'WebAssembly SIMD is not available';
    logger.warn({ event: 'aggregation.slow_order_statistics', orderStatistics: networkBackend(), configured: config.orderStatistics ?? 'auto' }, `${why}: order-statistic aggregation runs in JavaScript (same results, about 5x slower)`);
  }
  // Simulations: the series scheduler runs on a clock the admin API moves (series.simulatedClock).
  const simulatedClock = overrides.seriesClock === undefined && config.series.simulatedClock ? new MovableClock() : undefined;
  if (simulatedClock !== undefined) {
    logger.warn({ event: 'series.simulated_clock' }, '!!! SIMULATED SERIES CLOCK: study series run on a clock moved through the admin API (POST /api/v1/series-clock), not on real time. Simulations only. !!!');
  }
  return { seriesClock: overrides.seriesClock ?? simulatedClock, simulatedClock };
}

/** A coordinator built from its configuration (not started), and where its state and blobs are. */
export interface ConfiguredCoordinator {
  coordinator: Coordinator;
  storeTarget: string;
  blobStore: 'files' | 'postgres';
  /** Where blobs live, for the start-up log. */
  blobs: string;
}

/**
 * Opens the configured store (with `fence` on PostgreSQL: active/standby) and blob store and
 * builds the coordinator over them; closes the store again if that fails.
 */
export async function createConfiguredCoordinator(config: CoordinatorConfig, logger: Logger, opts: { seriesClock?: EngineClock | undefined; fence?: StoreFence } = {}): Promise<ConfiguredCoordinator> {
  const buildInitialModel: InitialModelBuilder = async (manifest) =>
    initialWeights({ topology: manifest.model.topology, loss: manifest.training.loss, optimizer: manifest.training.optimizer, seed: manifest.seed });
  const opened = await openConfiguredStore(config, logger, opts.fence);
  logger.info({ store: config.store.kind, storeTarget: opened.target }, `store: ${config.store.kind} at ${opened.target}`);
  const blobStore = resolveBlobStore(config);
  try {
    const configured = configuredBlobStore(config, opened.store);
    logger.info({ blobStore, blobs: configured.description }, `blobs: ${configured.description}`);
    const coordinator = Coordinator.create({
      dataDir: config.dataDir,
      logger,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      selectionGraceMs: config.selectionGraceMs,
      chunkBytes: config.chunkBytes,
      maxHeldUpdateBytes: config.maxHeldUpdateBytes,
      limits: limitsOf(config),
      storageProbe: { intervalMs: config.storage.probeIntervalSeconds * 1000, faultIntervalMs: config.storage.faultProbeIntervalSeconds * 1000 },
      buildInitialModel,
      ...(opened.store === undefined ? {} : { store: opened.store }),
      ...(configured.blobs === undefined ? {} : { blobs: configured.blobs }),
      blobGc: { graceMs: config.blobs.gcGraceSeconds * 1000, intervalMs: config.blobs.gcIntervalSeconds * 1000 },
      ...(opts.seriesClock === undefined ? {} : { seriesClock: opts.seriesClock }),
    });
    return { coordinator, storeTarget: opened.target, blobStore, blobs: configured.description };
  } catch (err) {
    // The data directory is locked by another coordinator (or unusable): do not keep the pool open.
    await opened.store?.close().catch(() => undefined);
    throw err;
  }
}

/**
 * The node CA (tls.clientCertificates 'issued'), opened or created in the data directory; undefined
 * with 'external'. A CA that cannot be used refuses the start (CONFIG_INVALID naming the file).
 */
export function openNodeCertificates(config: Pick<CoordinatorConfig, 'dataDir' | 'tls'>, logger: Logger): NodeCertificates | undefined {
  if (config.tls.clientCertificates !== 'issued') return undefined;
  const certificates = NodeCertificates.open({
    dataDir: config.dataDir, caValidityDays: config.tls.caValidityDays ?? 3650, nodeCertificateSeconds: config.tls.nodeCertificateSeconds ?? 604_800, now: Date.now,
    supersededGraceMs: (config.tls.supersededGraceSeconds ?? 60) * 1000, log: logger.child({ component: 'ca' }),
  });
  if (certificates.created) {
    logger.info({ event: 'ca.created', fingerprint: certificates.ca.fingerprint, notAfter: new Date(certificates.ca.certificate.validTo).toISOString() }, `created the node CA in ${join(config.dataDir, 'ca')} (ca.key mode 0600)`);
  }
  return certificates;
}

/** What a test may inject into an app started in its own process. */
export interface CoordinatorAppOverrides {
  /** The series scheduler's clock (tests move it to reach the next scheduled run without waiting). */
  seriesClock?: EngineClock;
}

/** Starts the coordinator: store, round engines, gRPC and admin servers. */
export async function startCoordinatorApp(config: CoordinatorConfig, logger: Logger, overrides: CoordinatorAppOverrides = {}): Promise<CoordinatorApp> {
  let state: AppState = 'INITIALIZED';
  const { seriesClock, simulatedClock } = await prepareProcess(config, logger, overrides);
  const { coordinator, storeTarget, blobStore, blobs } = await createConfiguredCoordinator(config, logger, { seriesClock });
  let grpcServer: grpc.Server | undefined;
  let adminServer: Server | undefined;
  let closeAdmin: (() => Promise<void>) | undefined;
  try {
    await coordinator.start();
    const nodeCertificates = openNodeCertificates(config, logger);
    const g = await startGrpcServer(coordinator, logger, {
      host: config.grpc.host, port: config.grpc.port, tls: config.tls, ...(nodeCertificates === undefined ? {} : { nodeCertificates }),
      transfer: {
        ...(config.transfer.inFlightBytes === 0 ? {} : { inFlightBytes: config.transfer.inFlightBytes }),
        uploadStreamsPerNode: config.transfer.uploadStreamsPerNode, sessionQueueMessages: config.transfer.sessionQueueMessages,
      },
    });
    grpcServer = g.server;
    // A storage fault does not stop the Federation service: sessions go on and agents may still
    // download committed models (uploads get UNAVAILABLE and are retried). Monitors see storage
    // under its own health service name (grpc_health_probe -service=fedlhs.storage).
    const setStorage = (healthy: boolean): void => g.health.setStatus('fedlhs.storage', healthy ? 'SERVING' : 'NOT_SERVING');
    setStorage(coordinator.storage.healthy);
    const offStorage = coordinator.storage.onChange((s) => setStorage(s.healthy));
    const a = await startAdminServer(coordinator, logger, { host: config.admin.host, port: config.admin.port, token: resolveAdminToken(config), reportsDir: config.reportsDir, ...(simulatedClock === undefined ? {} : { seriesClock: simulatedClock }) });
    closeAdmin = a.close;
    adminServer = a.server;
    state = 'RUNNING';
    if (coordinator.releaseKeyCreated) {
      logger.info({ event: 'release.key_created', releaseKeyFingerprint: coordinator.releaseKey.fingerprint }, `created the release signing key ${join(config.dataDir, 'release-key.pem')} (mode 0600)`);
    }
    logger.info({ event: 'coordinator.ready', releaseKeyFingerprint: coordinator.releaseKey.fingerprint, grpcPort: g.port, adminPort: a.port, tlsMode: config.tls.mode, mutualTls: config.tls.clientCa !== '' || nodeCertificates !== undefined, clientCertificates: config.tls.clientCertificates ?? 'external', ...(nodeCertificates === undefined ? {} : { nodeCaFingerprint: nodeCertificates.ca.fingerprint }), dataDir: config.dataDir, store: config.store.kind, storeTarget, blobStore, blobs }, 'coordinator ready');
    return {
      coordinator,
      grpcPort: g.port,
      adminPort: a.port,
      get state() {
        return state;
      },
      async shutdown() {
        if (state !== 'RUNNING') return;
        state = 'STOPPING';
        offStorage();
        logger.info({ event: 'coordinator.stopping' }, 'coordinator shutting down');
        g.health.setStatus('', 'NOT_SERVING');
        await closeAdmin?.();
        await stopGrpcServer(g.server, 5000);
        await coordinator.shutdown();
        state = 'STOPPED';
      },
    };
  } catch (err) {
    state = 'FAILED';
    grpcServer?.forceShutdown();
    adminServer?.close();
    await coordinator.shutdown().catch(() => undefined);
    throw err;
  }
}
