import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { startAdminServer } from '../admin/http.js';
import { createConfiguredCoordinator, prepareProcess, resolveAdminToken, type CoordinatorAppOverrides } from '../app.js';
import type { CoordinatorConfig } from '../config.js';
import type { Coordinator } from '../coordinator.js';
import { bindGrpcServer, stopGrpcServer } from '../grpc/server.js';
import { enrolmentHandlers, federationHandlers } from '../grpc/services.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { gatedService, notLeader } from './gate.js';
import { LeaseClient } from './lease.js';
import { LeadershipKeeper, type DemoteReason } from './leadership.js';
import { startStandbyAdmin } from './standby-admin.js';
import { checkPairCa, openPairNodeCertificates } from './pair-ca.js';
import { useNodeCertificates, type NodeCertificates } from '../ca/node-certificates.js';

/** A coordinator process with ha.enabled: standby or active, for as long as it runs. */
export interface HaCoordinatorApp {
  readonly grpcPort: number;
  readonly adminPort: number;
  /** 'active' while it holds the lease and serves, else 'standby'. */
  readonly role: 'active' | 'standby';
  /** The coordinator of the current term, while active. */
  readonly coordinator: Coordinator | undefined;
  shutdown(): Promise<void>;
}

/** One term as active: the coordinator built after a takeover, and what serves it. */
interface Term {
  fence: number;
  coordinator?: Coordinator;
  admin?: { close: () => Promise<void> };
  offStorage?: () => void;
  /** The start-up (activate); ending the term waits for it, so nothing it starts outlives the term. */
  starting?: Promise<void>;
  /** Demoted (or shut down): whatever the start-up still does is undone. */
  over: boolean;
}

/** How long a demoted term may take to shut down before it is left to finish in the background. */
const TERM_SHUTDOWN_MS = 15_000;

/**
 * Active/standby on PostgreSQL (issue 15). The process binds its gRPC and admin ports once and
 * keeps them; what answers behind them changes with the lease (lease.ts, leadership.ts):
 *
 * With tls.clientCertificates 'issued' the pair's node CA is opened before the port is bound
 * (pair-ca.ts: the same <dataDir>/ca on both, checked against the store's record) and each
 * term's coordinator issues and checks node certificates against the shared store.
 *
 * - standby: gRPC health NOT_SERVING; every Enrolment and Federation call refused with NOT_LEADER
 *   (gate.ts); the admin API answers 503 NOT_LEADER to everything (standby-admin.ts; /healthz
 *   says 'standby'); no store, round engine or scheduler runs.
 * - takeover (fence + 1): a fresh coordinator over a store whose every write checks the fence,
 *   started through the ordinary restart path (studies resume at their last committed round),
 *   then the real handlers and admin API, health SERVING and `coordinator.ready`.
 * - demotion (lease not renewed by its deadline, lost, or a write found a newer fence): the gate
 *   closes and health turns NOT_SERVING at once, every open call of the term is ended with
 *   NOT_LEADER, and the term's coordinator is shut down; the process stays up as a standby and
 *   may take over again once that shutdown has finished.
 */
export async function startHaCoordinatorApp(config: CoordinatorConfig, logger: Logger, overrides: CoordinatorAppOverrides = {}): Promise<HaCoordinatorApp> {
  if (config.admin.token === '' && !existsSync(join(config.dataDir, 'admin-token'))) {
    // A token generated here would differ from the other coordinator's: operators' tools would fail after a failover.
    throw new FedlhsError('CONFIG_INVALID', `ha.enabled: set admin.token (FEDLHS_ADMIN_TOKEN) to the same value on both coordinators, or copy the other one's ${join(config.dataDir, 'admin-token')}`, { details: { key: 'admin.token' } });
  }
  const log = logger.child({ component: 'ha' });
  const leaseMs = config.ha.leaseSeconds * 1000;
  const { seriesClock, simulatedClock } = await prepareProcess(config, logger, overrides);
  // Migrations first (the lease row is migration 8): both coordinators may do this at once (migrate serialises them).
  const migrated = await PostgresStore.open({ connection: config.store.url, poolSize: 1, logger: logger.child({ component: 'store' }) });
  let nodeCertificates: NodeCertificates | undefined;
  try {
    // The pair's node CA (tls.clientCertificates 'issued'), before the port that asks for its certificates is bound.
    nodeCertificates = await openPairNodeCertificates(config, migrated, logger);
  } finally {
    await migrated.close();
  }
  const adminToken = resolveAdminToken(config);
  const holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const lease = new LeaseClient({ connection: config.store.url, holder, address: config.ha.advertiseAddress, leaseMs });

  let active: { enrolment: grpc.UntypedServiceImplementation; federation: grpc.UntypedServiceImplementation } | undefined;
  let term: Term | undefined;
  /** The shutdown of the last demoted term: no takeover until it has finished (its data directory lock, its store). */
  let previous: Promise<void> = Promise.resolve();
  let previousDone = true;
  let stopping = false;
  // Built below; the gate and the callbacks only run once it is.
  // eslint-disable-next-line prefer-const
  let keeper: LeadershipKeeper;

  const transfer = {
    ...(config.transfer.inFlightBytes === 0 ? {} : { inFlightBytes: config.transfer.inFlightBytes }),
    uploadStreamsPerNode: config.transfer.uploadStreamsPerNode, sessionQueueMessages: config.transfer.sessionQueueMessages,
  };
  const g = await bindGrpcServer({ host: config.grpc.host, port: config.grpc.port, tls: config.tls }, 'NOT_SERVING', (server, proto) => {
    const leader = (): string | undefined => keeper.leaderAddress;
    server.addService(proto.fedlhs.v1.Enrolment.service, gatedService(proto.fedlhs.v1.Enrolment.service, () => active?.enrolment, leader, log));
    server.addService(proto.fedlhs.v1.Federation.service, gatedService(proto.fedlhs.v1.Federation.service, () => active?.federation, leader, log));
  }, nodeCertificates?.serverCredentials(config.tls.cert, config.tls.key));
  const setServing = (serving: boolean): void => {
    for (const name of ['', 'fedlhs.v1.Enrolment', 'fedlhs.v1.Federation']) g.health.setStatus(name, serving ? 'SERVING' : 'NOT_SERVING');
  };
  const adminOptions = { host: config.admin.host, token: adminToken, reportsDir: config.reportsDir, ...(simulatedClock === undefined ? {} : { seriesClock: simulatedClock }) };
  let standbyAdmin: { server: Server; port: number; close: () => Promise<void> } | undefined = await startStandbyAdmin({ host: config.admin.host, port: config.admin.port, leader: () => keeper.leaderAddress });
  // Kept across terms, so operators and agents find the process where they found it.
  const adminPort = standbyAdmin.port;

  const standby = (reason: 'start' | 'demoted'): void => {
    log.info({ event: 'ha.standby', reason, grpcPort: g.port, adminPort, leader: keeper.leaderAddress ?? null, holder }, `standby (${reason}): gRPC health NOT_SERVING on port ${g.port}, admin API refuses on port ${adminPort}; taking over when the lease is free`);
  };

  const activate = async (t: Term, takenAt: number): Promise<void> => {
    const keyPath = join(config.dataDir, 'release-key.pem');
    if (t.fence > 1 && !existsSync(keyPath)) {
      // Another coordinator was active before, so clinics pinned its release key: a key made here
      // would sign releases every clinic refuses, and only then (review of issue 15).
      throw new FedlhsError('CONFIG_INVALID', `ha.enabled: ${keyPath} did not exist, and another coordinator was active before (fence ${t.fence - 1}): both coordinators must sign releases with the one key clinics pinned: copy that coordinator's release-key.pem here (mode 0600)`, { details: { key: 'release-key.pem' } });
    }
    const built = await createConfiguredCoordinator(config, logger, {
      seriesClock,
      // A third of the lease: a frozen active's open batch delays a takeover by at most that much.
      fence: { token: t.fence, onFenced: () => keeper.fenced(t.fence), idleInTransactionMs: Math.max(1000, Math.floor(leaseMs / 3)) },
    });
    t.coordinator = built.coordinator;
    if (t.over) return;
    if (nodeCertificates !== undefined) {
      // Issue, renew and verify with the pair's CA, against the serials in the shared store.
      await checkPairCa(built.coordinator.store, nodeCertificates);
      useNodeCertificates(built.coordinator, nodeCertificates);
    }
    // The ordinary restart path: resumes every RUNNING study at its last committed round.
    await built.coordinator.start();
    if (t.over) return;
    const c = built.coordinator;
    c.metrics.trackLogDrops(logger);
    const setStorage = (healthy: boolean): void => g.health.setStatus('fedlhs.storage', healthy ? 'SERVING' : 'NOT_SERVING');
    setStorage(c.storage.healthy);
    t.offStorage = c.storage.onChange((s) => setStorage(s.healthy));
    await standbyAdmin?.close();
    standbyAdmin = undefined;
    const a = await startAdminServer(c, logger, { ...adminOptions, port: adminPort });
    t.admin = a;
    if (t.over) return;
    active = { enrolment: enrolmentHandlers(c, logger) as unknown as grpc.UntypedServiceImplementation, federation: federationHandlers(c, logger, transfer) as unknown as grpc.UntypedServiceImplementation };
    setServing(true);
    const takeoverMs = Math.round(performance.now() - takenAt);
    log.info({ event: 'ha.active', fence: t.fence, grpcPort: g.port, adminPort, takeoverMs }, `active with fence ${t.fence} (${takeoverMs} ms from taking the lease to serving)`);
    logger.info({
      event: 'coordinator.ready', role: 'active', fence: t.fence, releaseKeyFingerprint: c.releaseKey.fingerprint, grpcPort: g.port, adminPort, tlsMode: config.tls.mode,
      mutualTls: config.tls.clientCa !== '' || nodeCertificates !== undefined, clientCertificates: config.tls.clientCertificates ?? 'external',
      ...(nodeCertificates === undefined ? {} : { nodeCaFingerprint: nodeCertificates.authority.fingerprint }), dataDir: config.dataDir, store: config.store.kind, storeTarget: built.storeTarget, blobStore: built.blobStore, blobs: built.blobs,
    }, 'coordinator ready');
  };

  /** Ends a term: calls ended with NOT_LEADER, admin API back to refusing, the coordinator shut down (bounded). */
  const endTerm = async (t: Term): Promise<void> => {
    t.over = true;
    await t.starting?.catch(() => undefined);
    t.offStorage?.();
    const c = t.coordinator;
    if (c !== undefined) {
      const err = notLeader(undefined);
      for (const n of await c.nodes.list()) c.calls.abortAll(n.id, err);
    }
    await t.admin?.close();
    if (!stopping && standbyAdmin === undefined) standbyAdmin = await startStandbyAdmin({ host: config.admin.host, port: adminPort, leader: () => keeper.leaderAddress });
    if (c === undefined) return;
    // Its writes are fenced from now on (or cannot reach the database); a shutdown that hangs on
    // a cut-off connection is left to finish in the background, and blocks the next takeover.
    let timer: NodeJS.Timeout | undefined;
    const done = c.shutdown().then(() => 'done' as const, (err: unknown) => {
      log.warn({ event: 'ha.term_shutdown_failed', fence: t.fence, err: (err as Error).message }, `the demoted coordinator (fence ${t.fence}) did not shut down cleanly: ${(err as Error).message}`);
      return 'done' as const;
    });
    const outcome = await Promise.race([done, new Promise<'slow'>((resolve) => (timer = setTimeout(() => resolve('slow'), TERM_SHUTDOWN_MS)))]);
    clearTimeout(timer);
    if (outcome === 'slow') {
      log.warn({ event: 'ha.term_shutdown_failed', fence: t.fence, err: `not shut down after ${TERM_SHUTDOWN_MS} ms` }, `the demoted coordinator (fence ${t.fence}) is still shutting down (no takeover by this process until it has)`);
      await done;
    }
  };

  const demote = (reason: DemoteReason, fence: number): void => {
    active = undefined;
    setServing(false);
    log.error({ event: 'ha.demoted', reason, fence }, `no longer active (fence ${fence}): ${reason === 'lease_expired' ? 'the lease could not be renewed before its deadline' : reason === 'lease_lost' ? 'the lease belongs to another coordinator now' : reason === 'fenced' ? 'a write found a newer fence: another coordinator took over' : 'the start-up failed'}`);
    const t = term;
    term = undefined;
    if (t === undefined || t.fence !== fence) return;
    previousDone = false;
    previous = endTerm(t).catch((err: unknown) => {
      log.warn({ event: 'ha.term_shutdown_failed', fence, err: (err as Error).message }, `ending the term failed: ${(err as Error).message}`);
    }).finally(() => {
      previousDone = true;
      if (!stopping) standby('demoted');
    });
  };

  keeper = new LeadershipKeeper({
    lease, leaseMs, log,
    canTakeOver: () => !stopping && previousDone,
    onTakeover: (fence, previousHolder) => {
      const takenAt = performance.now();
      log.info({ event: 'ha.takeover', fence, previousHolder }, `took the leadership lease with fence ${fence}${previousHolder === null ? '' : ` (from ${previousHolder})`}: loading state`);
      const t: Term = { fence, over: false };
      term = t;
      t.starting = activate(t, takenAt);
      t.starting.catch((err: unknown) => {
        logger.error({ event: 'coordinator.start_failed', err, fence }, `could not start as active: ${(err as Error).message}`);
        void keeper.relinquish('start_failed');
      });
    },
    onDemote: demote,
  });
  // After the first look at the lease, so the lines name the active if there is one.
  await keeper.start();
  log.info({ event: 'ha.started', role: keeper.isActive ? 'active' : 'standby', grpcPort: g.port, adminPort, leader: keeper.leaderAddress ?? null, holder, leaseMs }, `started with ha.enabled (holder ${holder}, lease ${leaseMs} ms): gRPC on port ${g.port}, admin API on port ${adminPort}`);
  if (!keeper.isActive) standby('start');

  return {
    grpcPort: g.port,
    adminPort,
    get role() {
      return active === undefined ? 'standby' as const : 'active' as const;
    },
    get coordinator() {
      return term?.coordinator;
    },
    async shutdown() {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'coordinator.stopping' }, 'coordinator shutting down');
      active = undefined;
      setServing(false);
      const t = term;
      term = undefined;
      if (t !== undefined) await endTerm(t);
      await previous;
      // After the last write of the term: a standby takes over at its next check.
      const released = await keeper.stop();
      if (released !== undefined) log.info({ event: 'ha.lease_released', fence: released }, `released the leadership lease (fence ${released})`);
      await standbyAdmin?.close();
      await stopGrpcServer(g.server, 5000);
    },
  };
}
