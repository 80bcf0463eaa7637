import { mkdirSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { ManagedProcess } from '@fedlhs/testing';
import { coordinatorMain, type CoordinatorHandle } from '@fedlhs/tests';

/** An active/standby coordinator process (ha.enabled) and what the shared helpers need of it. */
export interface HaCoordinator extends CoordinatorHandle {
  name: string;
}

export interface HaCoordinatorOptions {
  name: string;
  dataDir: string;
  storeUrl: string;
  leaseSeconds: number;
  /** The same for both, so one admin client talks to whichever is active. */
  adminToken: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `fedlhs-coordinator serve` with ha.enabled on port 0 and waits for `ha.started` (logged
 * after its first look at the lease, with the ports it keeps for its lifetime).
 */
export async function startHaCoordinator(o: HaCoordinatorOptions): Promise<HaCoordinator> {
  mkdirSync(o.dataDir, { recursive: true });
  const proc = new ManagedProcess({
    name: o.name,
    command: process.execPath,
    args: [coordinatorMain, 'serve'],
    env: {
      FEDLHS_DATA_DIR: o.dataDir,
      FEDLHS_GRPC_HOST: '127.0.0.1',
      FEDLHS_GRPC_PORT: '0',
      FEDLHS_ADMIN_PORT: '0',
      FEDLHS_ADMIN_TOKEN: o.adminToken,
      FEDLHS_HEARTBEAT_INTERVAL_MS: '500',
      FEDLHS_SELECTION_GRACE_MS: '300',
      FEDLHS_LOG_LEVEL: 'debug',
      FEDLHS_TLS_MODE: 'plaintext',
      FEDLHS_STORE: 'postgres',
      FEDLHS_STORE_URL: o.storeUrl,
      FEDLHS_HA_ENABLED: 'true',
      FEDLHS_HA_LEASE_SECONDS: String(o.leaseSeconds),
      ...o.env,
    },
  });
  const first = await proc.waitForEvent('ha.started', undefined, 60_000);
  const grpcPort = first.grpcPort as number;
  const adminPort = first.adminPort as number;
  return {
    name: o.name, proc, grpcPort, adminPort, adminToken: o.adminToken, dataDir: o.dataDir,
    address: `127.0.0.1:${grpcPort}`,
    async admin<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method,
        headers: { authorization: `Bearer ${o.adminToken}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => proc.stop(signal),
  };
}

/** The grpc.health.v1 status ('' service) of a coordinator, as grpc_health_probe would see it. */
export function healthOf(address: string): Promise<string> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<string>((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>('/grpc.health.v1.Health/Check', (b) => b, (b) => b, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, answer) => {
      client.close();
      if (err !== null || answer === undefined) return resolve(`unreachable: ${err?.code}`);
      resolve(['UNKNOWN', 'SERVING', 'NOT_SERVING'][answer.length >= 2 ? answer[1]! : 0] ?? 'other');
    });
  });
}

/** What a Federation call answers (ListStudies, no credential): the status code and trailers. */
export function federationRefusal(address: string): Promise<{ code: number; details: string; errorCode: string | undefined; leader: string | undefined }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest<Buffer, Buffer>('/fedlhs.v1.Federation/ListStudies', (b) => b, (b) => b, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      resolve({
        code: err?.code ?? 0,
        details: err?.details ?? '',
        errorCode: err?.metadata.get('fedlhs-error-code')[0]?.toString(),
        leader: err?.metadata.get('fedlhs-leader')[0]?.toString(),
      });
    });
  });
}

/**
 * A TCP proxy to PostgreSQL's Unix socket that the test controls: `partition()` stops forwarding
 * in both directions while keeping every connection open (a network cut neither side sees), new
 * connections included; `heal()` forwards again, whatever was held back first.
 */
export interface DatabaseProxy {
  port: number;
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startDatabaseProxy(socketPath: string): Promise<DatabaseProxy> {
  let flowing = true;
  const pairs: { a: Socket; b: Socket }[] = [];
  const pump = (from: Socket, to: Socket): void => {
    from.on('data', (d: Buffer) => {
      if (!to.write(d)) from.pause();
    });
    to.on('drain', () => {
      if (flowing) from.resume();
    });
    from.on('close', () => to.destroy());
    from.on('error', () => to.destroy());
  };
  const server: Server = createServer((client) => {
    const upstream = connect({ path: socketPath });
    pairs.push({ a: client, b: upstream });
    pump(client, upstream);
    pump(upstream, client);
    if (!flowing) {
      client.pause();
      upstream.pause();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    partition() {
      flowing = false;
      for (const { a, b } of pairs) {
        a.pause();
        b.pause();
      }
    },
    heal() {
      flowing = true;
      for (const { a, b } of pairs) {
        a.resume();
        b.resume();
      }
    },
    async close() {
      for (const { a, b } of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** State tables whose committed writes the audit trigger records (with the writer's application_name). */
export const AUDITED_TABLES = ['studies', 'rounds', 'tasks', 'contributions', 'metrics', 'statistics', 'nodes', 'join_tokens', 'admin_actions'] as const;

/**
 * Installs, in the test's database, a trigger recording every committed insert, update and delete
 * of the state tables with the writing connection's application_name and the database clock:
 * rolled-back (fenced) writes leave no row, so the table says exactly who wrote what, when.
 */
export async function installWriteAudit(connection: pg.ClientConfig): Promise<void> {
  const c = new pg.Client(connection);
  await c.connect();
  try {
    await c.query(`CREATE TABLE IF NOT EXISTS test_write_audit (id BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, app TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)`);
    await c.query(`CREATE OR REPLACE FUNCTION test_write_audit_fn() RETURNS trigger AS $$
      BEGIN
        INSERT INTO test_write_audit (tbl, op, app, at) VALUES (TG_TABLE_NAME, TG_OP, current_setting('application_name'), clock_timestamp());
        RETURN NULL;
      END $$ LANGUAGE plpgsql`);
    for (const t of AUDITED_TABLES) {
      await c.query(`DROP TRIGGER IF EXISTS test_write_audit_${t} ON ${t}`);
      await c.query(`CREATE TRIGGER test_write_audit_${t} AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION test_write_audit_fn()`);
    }
  } finally {
    await c.end();
  }
}

/** One query on a fresh connection. */
export async function query<R extends pg.QueryResultRow>(connection: pg.ClientConfig, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client(connection);
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}
