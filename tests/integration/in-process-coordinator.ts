import { join } from 'node:path';
import { loadCoordinatorConfig, startCoordinatorApp, type CoordinatorApp } from '@fedlhs/coordinator';
import { createLogger } from '@fedlhs/service';
import { ShiftedClock, type CoordinatorHandle } from '@fedlhs/tests';

const ADMIN_TOKEN = 'in-process-admin-token-0123456789abcdef';

/** A coordinator 'change' event as the series tests watch them. */
export type ChangeEvent = { kind: string; seriesName?: string; run?: number; studyId?: string };

/** An in-process coordinator whose series clock a test moves, with its admin API and its change events. */
export interface InProcessCoordinator {
  app: CoordinatorApp;
  clock: ShiftedClock;
  /** An admin API call with the admin token. */
  admin<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** What enrolAgent needs of a coordinator. */
  handle: CoordinatorHandle;
  /** Resolves with the first change event (since start) that matches: events are kept, so one that came before the call counts. */
  event(match: (e: ChangeEvent) => boolean): Promise<ChangeEvent>;
  /** Every change event since start, in order. */
  seen: ChangeEvent[];
}

/**
 * Starts a coordinator in this process (real gRPC and admin servers on port 0, SQLite in `root`)
 * with a ShiftedClock as its series clock, so a test reaches a series' next scheduled run by
 * moving time instead of waiting (series tests: issue 13). The caller shuts `app` down.
 */
export async function startInProcessCoordinator(root: string): Promise<InProcessCoordinator> {
  const clock = new ShiftedClock();
  const logger = createLogger({ app: 'fedlhs-coordinator', level: 'debug', pretty: 'false', destination: join(root, 'coordinator.log') });
  const defaults = loadCoordinatorConfig({ env: {}, args: ['--tls-mode', 'plaintext', '--data-dir', join(root, 'coordinator')] });
  const app = await startCoordinatorApp(
    {
      ...defaults, dataDir: join(root, 'coordinator'), grpc: { host: '127.0.0.1', port: 0 }, tls: { mode: 'plaintext', cert: '', key: '', clientCa: '' },
      admin: { ...defaults.admin, host: '127.0.0.1', port: 0, token: ADMIN_TOKEN }, reportsDir: join(root, 'reports'),
      heartbeatIntervalMs: 1000, selectionGraceMs: 200, backend: 'cpu',
    },
    logger,
    { seriesClock: clock },
  );
  const adminUrl = `http://127.0.0.1:${app.adminPort}`;
  const admin = async <T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${adminUrl}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as T };
  };
  const seen: ChangeEvent[] = [];
  const waiters: { match: (e: ChangeEvent) => boolean; resolve: (e: ChangeEvent) => void }[] = [];
  app.coordinator.events.on('change', (e: ChangeEvent) => {
    seen.push(e);
    for (const w of [...waiters]) {
      if (!w.match(e)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  const event = (match: (e: ChangeEvent) => boolean): Promise<ChangeEvent> => {
    const found = seen.find(match);
    return found !== undefined ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ match, resolve }));
  };
  const handle = { admin, adminPort: app.adminPort, adminToken: ADMIN_TOKEN } as unknown as CoordinatorHandle;
  return { app, clock, admin, handle, event, seen };
}
