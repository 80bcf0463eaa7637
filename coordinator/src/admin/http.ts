import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FedlhsError, isFedlhsError, type FedlhsErrorCode } from '@fedlhs/core';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '@fedlhs/service';
import { COORDINATOR_VERSION, type Coordinator } from '../coordinator.js';
import type { StudyRecord } from '../store.js';

const HTTP_STATUS: Partial<Record<FedlhsErrorCode, number>> = {
  INVALID_MANIFEST: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  FAILED_PRECONDITION: 409,
  ALREADY_EXISTS: 409,
};

const MAX_BODY = 4 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new FedlhsError('INVALID_ARGUMENT', `request body exceeds ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FedlhsError('INVALID_ARGUMENT', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FedlhsError('INVALID_ARGUMENT', 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 1);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** Public view of a study for operators. */
function studySummary(coordinator: Coordinator, s: StudyRecord): Record<string, unknown> {
  const manifest = JSON.parse(s.manifestJson) as { rounds: number };
  const current = coordinator.runner(s.id)?.current;
  return {
    id: s.id, name: s.name, state: s.state, reason: s.reason, manifestSha256: s.manifestHash, totalRounds: manifest.rounds,
    lastCommittedRound: s.lastCommittedRound, current: current ?? null, createdAt: new Date(s.createdAt).toISOString(),
    endedAt: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
  };
}

/**
 * The admin HTTP API (JSON), used by the CLI. Every route but /healthz needs
 * "Authorization: Bearer <admin token>".
 */
export async function startAdminServer(
  coordinator: Coordinator,
  logger: Logger,
  options: { host: string; port: number; token: string },
): Promise<{ server: Server; port: number }> {
  const log = logger.child({ component: 'admin-api' });
  const expected = Buffer.from(`Bearer ${options.token}`);
  const started = Date.now();

  const routes: { method: string; pattern: RegExp; handle: (m: RegExpExecArray, req: IncomingMessage) => Promise<[number, unknown]> }[] = [
    {
      method: 'GET', pattern: /^\/api\/v1\/status$/,
      handle: async () => {
        const studies = await coordinator.store.listStudies();
        const nodes = await coordinator.store.listNodes();
        return [200, {
          coordinator: { version: COORDINATOR_VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) },
          studies: studies.map((s) => studySummary(coordinator, s)),
          nodes: nodes.map((n) => {
            const session = coordinator.sessions.get(n.id);
            return {
              id: n.id, siteName: n.siteName, online: session !== undefined, revoked: n.revokedAt !== null,
              lastSeenAt: n.lastSeenAt === null ? null : new Date(n.lastSeenAt).toISOString(),
              agentVersion: session?.agent.agentVersion ?? n.agentVersion, trainingBackend: session?.agent.trainingBackend ?? n.trainingBackend,
              readiness: session === undefined ? {} : Object.fromEntries([...session.readiness].map(([k, v]) => [k, { readiness: v.readiness, detail: v.detail }])),
            };
          }),
        }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/join-tokens$/,
      handle: async (_m, req) => {
        const body = await readJson(req);
        const site = body.site;
        const ttl = body.ttlSeconds ?? 86400;
        if (typeof site !== 'string') throw new FedlhsError('INVALID_ARGUMENT', 'site: a string is required');
        if (typeof ttl !== 'number') throw new FedlhsError('INVALID_ARGUMENT', 'ttlSeconds: must be a number');
        const t = await coordinator.createJoinToken(site, ttl, 'admin-api');
        return [201, { token: t.token, site: t.siteName, expiresAt: new Date(t.expiresAt).toISOString() }];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/studies$/,
      handle: async () => [200, { studies: (await coordinator.store.listStudies()).map((s) => studySummary(coordinator, s)) }],
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/studies$/,
      handle: async (_m, req) => {
        const body = await readJson(req);
        const manifest = body.manifest;
        const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
        if (manifest === undefined) throw new FedlhsError('INVALID_ARGUMENT', 'manifest: required (the manifest object, or its JSON/YAML text)');
        const study = await coordinator.startStudy(text, 'admin-api');
        return [201, studySummary(coordinator, study)];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/studies\/([A-Za-z0-9._-]+)$/,
      handle: async (m) => {
        const study = await coordinator.store.getStudy(m[1]!);
        if (study === undefined) throw new FedlhsError('NOT_FOUND', `no study ${m[1]}`);
        const rounds = await coordinator.store.listRounds(study.id);
        const metrics = await coordinator.store.listMetrics(study.id);
        const contributions = await coordinator.store.listContributions({ studyId: study.id });
        // Cohort size and label prevalence per clinic (already suppressed below the minimum cell count).
        const statistics = (await coordinator.store.listStatistics(study.id)).map((s) => {
          const r = JSON.parse(s.report) as { rows: number; positives: number; suppressed: boolean };
          return { nodeId: s.nodeId, rows: r.rows, positives: r.suppressed ? null : r.positives, prevalence: r.suppressed || r.rows === 0 ? null : r.positives / r.rows };
        });
        const rejectionsByReason: Record<string, number> = {};
        for (const c of contributions) if (!c.accepted && c.reasonCode !== null) rejectionsByReason[c.reasonCode] = (rejectionsByReason[c.reasonCode] ?? 0) + 1;
        return [200, {
          ...studySummary(coordinator, study), manifest: JSON.parse(study.manifestJson), parameters: study.parameters === null ? null : JSON.parse(study.parameters),
          rounds, metrics, contributions, rejectionsByReason, statistics,
        }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/studies\/([A-Za-z0-9._-]+)\/stop$/,
      handle: async (m) => {
        await coordinator.stopStudy(m[1]!, 'admin-api');
        return [200, { id: m[1], state: 'STOPPED' }];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/nodes\/([A-Za-z0-9_-]+)$/,
      handle: async (m) => {
        const node = await coordinator.store.getNode(m[1]!);
        if (node === undefined) throw new FedlhsError('NOT_FOUND', `no node ${m[1]}`);
        const contributions = await coordinator.store.listContributions({ nodeId: node.id });
        const { credentialHash: _hidden, ...visible } = node;
        return [200, { ...visible, online: coordinator.sessions.isOnline(node.id), contributions }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/nodes\/([A-Za-z0-9_-]+)\/revoke$/,
      handle: async (m) => {
        await coordinator.revokeNode(m[1]!, 'admin-api', grpc.status.UNAUTHENTICATED);
        return [200, { id: m[1], revoked: true }];
      },
    },
  ];

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
      return send(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'missing or wrong admin token (Authorization: Bearer <token>)' } });
    }
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const route = candidates.find((r) => r.method === req.method);
    if (route === undefined) {
      return send(res, candidates.length > 0 ? 405 : 404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` } });
    }
    route.handle(route.pattern.exec(url.pathname)!, req).then(
      ([status, body]) => send(res, status, body),
      (err: unknown) => {
        if (isFedlhsError(err)) return send(res, HTTP_STATUS[err.code] ?? 500, { error: { code: err.code, message: err.message } });
        log.error({ err, path: url.pathname }, 'admin API error');
        return send(res, 500, { error: { code: 'INTERNAL', message: 'internal error (see coordinator log)' } });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
