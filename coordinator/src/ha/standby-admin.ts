import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { toHttpError } from '../admin/http-errors.js';
import { notLeader } from './gate.js';

/**
 * The admin port of a standby coordinator (ha/ha-app.ts). A standby has no state loaded (the
 * active's writes would make any view it built stale at once), so it REFUSES the whole admin API
 * rather than serving reads: every request answers 503 with the NOT_LEADER error body naming the
 * active's gRPC address when known, and `GET /healthz` answers 503 `{"status":"standby"}` so a
 * load balancer in front of both coordinators sends operators to the active one.
 */
export async function startStandbyAdmin(options: { host: string; port: number; leader: () => string | undefined }): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    const leader = options.leader();
    const path = (req.url ?? '/').split('?')[0];
    const body = req.method === 'GET' && path === '/healthz'
      ? { status: 'standby', role: 'standby', ...(leader === undefined ? {} : { leader }) }
      : toHttpError(notLeader(leader)).body;
    const text = JSON.stringify(body);
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'retry-after': '1' });
    res.end(text);
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
