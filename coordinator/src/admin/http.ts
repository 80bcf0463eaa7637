import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { COORDINATOR_VERSION, type Coordinator } from '../coordinator.js';
import { CredentialThrottle } from '../credential-throttle.js';
import { OperatorAuth, requireAdmin, type Operator, type Role } from './auth.js';
import { toHttpError, withHttpStatus } from './http-errors.js';
import { ReleaseRegistry, checkStudyName, checkVersion } from '../releases/registry.js';
import { releaseDetail, releaseList } from './release-views.js';
import { seriesRoutes } from './series-routes.js';
import type { SeriesActions } from '../series/types.js';
import type { MovableClock } from '../series/clock.js';
import { NODE_PAGE_DEFAULT, nodeContributions, nodeCounts, nodeFailures, nodePage, singleNodeView, studyDetail, studyReadiness, studySummary } from './views.js';
import type { PageRequest } from '../store.js';

/** Releases listed by GET /api/v1/releases without `?limit=`. */
const RELEASE_LIST_DEFAULT = 200;
/** Sites listed per study in the status view's readiness (the rest are counted). */
const STATUS_SITES_MAX = 100;

/** `?limit=` and `?cursor=` of a paged list; a bad value is a 400 naming the parameter. */
function pageRequest(req: IncomingMessage, defaultLimit: number): PageRequest {
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
  const text = query.get('limit');
  const limit = text === null ? defaultLimit : Number(text);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new FedlhsError('INVALID_ARGUMENT', `limit: an integer from 1 to 1000 is required, got ${JSON.stringify(text)}`, { details: { field: 'limit' } });
  const cursor = query.get('cursor');
  return cursor === null || cursor === '' ? { limit } : { limit, after: cursor };
}

const MAX_BODY = 4 * 1024 * 1024;
/** Bytes an event stream may have queued for a client that does not read; past it the stream is closed. */
const EVENT_STREAM_BUFFER_MAX = 1024 * 1024;
const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'static');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json' };
// Everything the dashboard loads comes from this server: no CDN, no external fonts.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** 413: the body is larger than MAX_BODY; the connection closes after the answer (the rest is not read). */
function bodyTooLarge(): FedlhsError {
  return withHttpStatus(new FedlhsError('INVALID_ARGUMENT', `request body exceeds ${MAX_BODY} bytes`, { details: { field: 'body' } }), 413, { connection: 'close' });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) throw bodyTooLarge();
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof FedlhsError) throw err;
    // The client went away or broke the chunked encoding mid-body: its request, not our fault.
    throw new FedlhsError('INVALID_ARGUMENT', 'the request body was cut off', { details: { field: 'body' }, cause: err });
  }
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FedlhsError('INVALID_ARGUMENT', 'request body is not valid JSON', { details: { field: 'body' } });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FedlhsError('INVALID_ARGUMENT', 'request body must be a JSON object', { details: { field: 'body' } });
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
  res.end(JSON.stringify(body, null, 1));
}

/** Serves a file below `root`, refusing any path that leaves it. */
function sendFile(res: ServerResponse, root: string, path: string): void {
  const file = normalize(join(root, path));
  if (relative(root, file).startsWith('..') || !existsSync(file) || !statSync(file).isFile()) {
    send(res, 404, { error: { code: 'NOT_FOUND', message: `no file ${path}` } });
    return;
  }
  const stream = createReadStream(file);
  stream.once('open', () => {
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    stream.pipe(res);
  });
  // A file that vanished or cannot be read after the checks must not take the server down.
  stream.once('error', () => (res.headersSent ? res.destroy() : send(res, 404, { error: { code: 'NOT_FOUND', message: `cannot read ${path}` } })));
}

interface Route {
  method: string;
  pattern: RegExp;
  /** Minimum role; 'public' needs no authentication. */
  role: Role | 'public';
  handle: (m: RegExpExecArray, req: IncomingMessage, operator: Operator | undefined, res: ServerResponse) => Promise<[number, unknown] | undefined>;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  /** The bootstrap admin token (operator "admin"). */
  token: string;
  /** Directory of simulation/benchmark reports the dashboard links to ('' for none). */
  reportsDir: string;
  /**
   * What operators can do with study series (issue 13); default the coordinator's own
   * (`coordinator.series`). Without either the series are still shown, and every series action
   * answers 503 UNAVAILABLE saying so.
   */
  series?: SeriesActions | undefined;
  /** The series scheduler's clock when it is simulated (`series.simulatedClock`): POST /api/v1/series-clock moves it. */
  seriesClock?: MovableClock | undefined;
}

/**
 * The admin HTTP server: the JSON admin API (used by the CLI and the dashboard), the
 * dashboard itself, live change events (server-sent events), Prometheus /metrics and /healthz.
 * Every API route needs an operator (bearer token or dashboard session); admin actions need
 * the admin role and are recorded with who did them.
 */
export async function startAdminServer(coordinator: Coordinator, logger: Logger, options: AdminServerOptions): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const log = logger.child({ component: 'admin-api' });
  // Failed bearer tokens and dashboard logins, per source address (limits.authFailuresPerMinute).
  const throttle = new CredentialThrottle({ surface: 'admin', failuresPerMinute: coordinator.limits.authFailuresPerMinute, metrics: coordinator.metrics, log });
  const auth = new OperatorAuth(coordinator.store, options.token, throttle);
  const started = Date.now();
  const streams = new Set<ServerResponse>();
  const audit = async (operator: Operator, action: string, target: string, detail: string | null = null): Promise<void> => {
    await coordinator.store.insertAdminAction({ at: Date.now(), operator: operator.name, action, target, detail });
    log.info({ event: 'admin.action', operator: operator.name, action, target }, 'admin action');
  };

  const registry = new ReleaseRegistry({ store: coordinator.store, blobs: coordinator.checkpoints.blobs, log, chunkBytes: coordinator.chunkBytes });
  const releases = { coordinator, registry };
  // The coordinator's own series service unless the caller passes one.
  const seriesService: SeriesActions | undefined = options.series ?? (coordinator as Partial<Pick<Coordinator, 'series'>>).series;
  const seriesActions = (): SeriesActions => {
    if (seriesService === undefined) throw new FedlhsError('INVALID_STATE', 'series actions are not available: this coordinator was started without the series service');
    return seriesService;
  };
  // A release alias changed: dashboards reload (no study id, so every open view refreshes).
  const releaseChanged = (studyName: string): void => void coordinator.events.emit('change', { kind: 'release', studyName });

  const routes: Route[] = [
    {
      method: 'POST', pattern: /^\/api\/v1\/session$/, role: 'public',
      handle: async (_m, req, _o, res) => {
        const body = await readJson(req);
        if (typeof body.token !== 'string') throw new FedlhsError('INVALID_ARGUMENT', 'token: a string is required', { details: { field: 'token' } });
        const { operator, cookie } = await auth.login(body.token, req.socket.remoteAddress);
        send(res, 200, { operator }, { 'set-cookie': cookie });
        return undefined;
      },
    },
    { method: 'GET', pattern: /^\/api\/v1\/session$/, role: 'viewer', handle: async (_m, _r, operator) => [200, { operator }] },
    {
      method: 'DELETE', pattern: /^\/api\/v1\/session$/, role: 'public',
      handle: async (_m, req, _o, res) => {
        send(res, 200, { loggedOut: true }, { 'set-cookie': auth.logout(req) });
        return undefined;
      },
    },
    {
      // Paged: `?limit=` (1..1000, default 500) and `?cursor=` (the previous answer's nodesNext).
      // Every figure in it is a count or a page, so its cost does not grow with the network.
      method: 'GET', pattern: /^\/api\/v1\/status$/, role: 'viewer',
      handle: async (_m, req) => {
        const page = pageRequest(req, NODE_PAGE_DEFAULT);
        const [studies, nodes, counts] = await Promise.all([
          coordinator.store.listStudies().then((all) => Promise.all(all.map(async (s) => ({ ...studySummary(coordinator, s), readiness: await studyReadiness(coordinator, s, { maxSites: STATUS_SITES_MAX }) })))),
          nodePage(coordinator, page),
          nodeCounts(coordinator),
        ]);
        return [200, {
          coordinator: { version: COORDINATOR_VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000) },
          summary: { nodes: counts },
          studies, nodes: nodes.nodes, nodesNext: nodes.next,
        }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/join-tokens$/, role: 'admin',
      handle: async (_m, req, operator) => {
        const body = await readJson(req);
        const site = body.site;
        const ttl = body.ttlSeconds ?? 86400;
        if (typeof site !== 'string') throw new FedlhsError('INVALID_ARGUMENT', 'site: a string is required', { details: { field: 'site' } });
        if (typeof ttl !== 'number') throw new FedlhsError('INVALID_ARGUMENT', 'ttlSeconds: must be a number', { details: { field: 'ttlSeconds' } });
        const t = await coordinator.createJoinToken(site, ttl, operator!.name);
        await audit(operator!, 'join-token.create', site, `expires ${new Date(t.expiresAt).toISOString()}`);
        return [201, { token: t.token, site: t.siteName, expiresAt: new Date(t.expiresAt).toISOString() }];
      },
    },
    { method: 'GET', pattern: /^\/api\/v1\/studies$/, role: 'viewer', handle: async () => [200, { studies: (await coordinator.store.listStudies()).map((s) => studySummary(coordinator, s)) }] },
    {
      method: 'POST', pattern: /^\/api\/v1\/studies$/, role: 'admin',
      handle: async (_m, req, operator) => {
        const body = await readJson(req);
        const manifest = body.manifest;
        if (manifest === undefined) throw new FedlhsError('INVALID_ARGUMENT', 'manifest: required (the manifest object, or its JSON/YAML text)', { details: { field: 'manifest' } });
        const study = await coordinator.startStudy(typeof manifest === 'string' ? manifest : JSON.stringify(manifest), operator!.name);
        await audit(operator!, 'study.start', study.id, `manifest ${study.manifestHash}`);
        return [201, studySummary(coordinator, study)];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/studies\/([A-Za-z0-9._-]+)$/, role: 'viewer',
      handle: async (m) => {
        const study = await coordinator.store.getStudy(m[1]!);
        if (study === undefined) throw new FedlhsError('NOT_FOUND', `no study ${m[1]}`, { details: { what: 'study', id: m[1]! } });
        return [200, await studyDetail(coordinator, study)];
      },
    },
    {
      // A committed global model as raw little-endian float32 in the manifest's tensor order
      // (the bytes DownloadModel serves), wherever the blobs live (files or PostgreSQL).
      method: 'GET', pattern: /^\/api\/v1\/studies\/([A-Za-z0-9._-]+)\/rounds\/(\d{1,9})\/model$/, role: 'viewer',
      handle: async (m, _r, _o, res) => {
        const studyId = m[1]!;
        const round = Number(m[2]);
        const committed = await coordinator.store.getCommittedRound(studyId, round);
        if (committed === undefined || committed.checkpointPath === null || committed.checkpointSha256 === null) {
          throw new FedlhsError('NOT_FOUND', `study ${studyId} has no committed round ${round}`, { details: { what: 'round', id: `${studyId}/${round}` } });
        }
        const chunks = coordinator.checkpoints.read(committed.checkpointPath, coordinator.chunkBytes)[Symbol.asyncIterator]();
        // The first chunk before the status line: a missing or damaged blob is an error answer, not a cut body.
        const first = await chunks.next();
        res.writeHead(200, {
          'content-type': 'application/octet-stream', 'cache-control': 'no-store', ...SECURITY_HEADERS,
          'x-fedlhs-sha256': committed.checkpointSha256, 'content-disposition': `attachment; filename="${studyId}-round-${round}.f32"`,
        });
        for (let next = first; next.done !== true; next = await chunks.next()) {
          if (!res.write(next.value)) await new Promise<void>((resolve) => res.once('drain', resolve));
        }
        res.end();
        return undefined;
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/studies\/([A-Za-z0-9._-]+)\/stop$/, role: 'admin',
      handle: async (m, _r, operator) => {
        await coordinator.stopStudy(m[1]!, operator!.name);
        await audit(operator!, 'study.stop', m[1]!);
        return [200, { id: m[1], state: 'STOPPED' }];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/nodes\/([A-Za-z0-9_-]+)$/, role: 'viewer',
      handle: async (m) => {
        const node = await singleNodeView(coordinator, m[1]!);
        if (node === undefined) throw new FedlhsError('NOT_FOUND', `no node ${m[1]}`, { details: { what: 'node', id: m[1]! } });
        return [200, { ...node, contributions: await nodeContributions(coordinator, m[1]!), failures: await nodeFailures(coordinator, m[1]!) }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/nodes\/([A-Za-z0-9_-]+)\/revoke$/, role: 'admin',
      handle: async (m, _r, operator) => {
        await coordinator.revokeNode(m[1]!, operator!.name, grpc.status.UNAUTHENTICATED);
        await audit(operator!, 'node.revoke', m[1]!);
        return [200, { id: m[1], revoked: true }];
      },
    },
    {
      method: 'POST', pattern: /^\/api\/v1\/operators$/, role: 'admin',
      handle: async (_m, req, operator) => {
        const body = await readJson(req);
        if (typeof body.name !== 'string') throw new FedlhsError('INVALID_ARGUMENT', 'name: a string is required', { details: { field: 'name' } });
        const token = await auth.createOperator(body.name, body.role as Role, operator!.name);
        await audit(operator!, 'operator.create', body.name, String(body.role));
        return [201, { name: body.name, role: body.role, token }];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/audit$/, role: 'admin',
      handle: async () => [200, { actions: (await coordinator.store.listAdminActions(500)).map((a) => ({ ...a, at: new Date(a.at).toISOString() })) }],
    },
    {
      // Releases, newest first: `?study=<name>` for one study name, `?limit=` (1..1000, default 200).
      method: 'GET', pattern: /^\/api\/v1\/releases$/, role: 'viewer',
      handle: async (_m, req) => {
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const study = query.get('study');
        const { limit } = pageRequest(req, RELEASE_LIST_DEFAULT);
        return [200, await releaseList(releases, study === null ? undefined : checkStudyName(study, 'study'), limit)];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/releases\/([^/]+)\/([^/]+)$/, role: 'viewer',
      handle: async (m) => [200, await releaseDetail(releases, checkStudyName(m[1]), checkVersion(m[2]))],
    },
    {
      // A bundle file (or envelope.json) as stored, with its digest; the same bytes agents verify.
      method: 'GET', pattern: /^\/api\/v1\/releases\/([^/]+)\/([^/]+)\/files\/([^/]+)$/, role: 'viewer',
      handle: async (m, _r, _o, res) => {
        const release = await registry.get(checkStudyName(m[1]), checkVersion(m[2]));
        const file = registry.file(release, m[3]!);
        const chunks = file.chunks[Symbol.asyncIterator]();
        // The first chunk before the status line: a missing or damaged blob is an error answer, not a cut body.
        const first = await chunks.next();
        res.writeHead(200, {
          'content-type': file.name.endsWith('.json') ? 'application/json' : file.name.endsWith('.md') ? 'text/markdown; charset=utf-8' : 'application/octet-stream',
          'content-length': String(file.size), 'cache-control': 'no-store', ...SECURITY_HEADERS,
          'x-fedlhs-sha256': file.sha256, 'content-disposition': `attachment; filename="${release.studyName}-v${release.version}-${file.name}"`,
        });
        for (let next = first; next.done !== true; next = await chunks.next()) {
          if (!res.write(next.value)) await new Promise<void>((resolve) => res.once('drain', resolve));
        }
        res.end();
        return undefined;
      },
    },
    {
      // Body {"version": N}; audited (release.alias) with the operator's name in the same unit.
      method: 'PUT', pattern: /^\/api\/v1\/releases\/([^/]+)\/aliases\/([^/]+)$/, role: 'admin',
      handle: async (m, req, operator) => {
        const body = await readJson(req);
        if (body.version === undefined) throw new FedlhsError('INVALID_ARGUMENT', 'version: required (the release version the alias names)', { details: { field: 'version' } });
        if (typeof body.version !== 'number') throw new FedlhsError('INVALID_ARGUMENT', `version: a number is required, got ${JSON.stringify(body.version).slice(0, 80)}`, { details: { field: 'version' } });
        const change = await registry.setAlias(checkStudyName(m[1]), m[2]!, checkVersion(body.version), operator!.name);
        releaseChanged(change.studyName);
        return [200, { ...change, at: new Date(change.at).toISOString() }];
      },
    },
    {
      method: 'DELETE', pattern: /^\/api\/v1\/releases\/([^/]+)\/aliases\/([^/]+)$/, role: 'admin',
      handle: async (m, _r, operator) => {
        const change = await registry.removeAlias(checkStudyName(m[1]), m[2]!, operator!.name);
        releaseChanged(change.studyName);
        return [200, { ...change, at: new Date(change.at).toISOString() }];
      },
    },
    // Study series (issue 13): series-routes.ts.
    ...seriesRoutes({ readJson, views: releases, actions: seriesActions }),
    {
      // The series clock: real time, or (series.simulatedClock) the simulated time a simulation moves.
      method: 'GET', pattern: /^\/api\/v1\/series-clock$/, role: 'viewer',
      handle: async () => [200, { now: options.seriesClock?.now() ?? Date.now(), simulated: options.seriesClock !== undefined }],
    },
    {
      // Body {"now": ms}: moves the simulated series clock (forward only after the first move); audited.
      method: 'POST', pattern: /^\/api\/v1\/series-clock$/, role: 'admin',
      handle: async (_m, req, operator) => {
        const clock = options.seriesClock;
        if (clock === undefined) throw new FedlhsError('CLOCK_NOT_SIMULATED', 'the series clock is real time: only a coordinator started with series.simulatedClock (simulations) lets it be moved');
        const body = await readJson(req);
        if (typeof body.now !== 'number') throw new FedlhsError('INVALID_ARGUMENT', `now: a time in ms since 1970 is required, got ${JSON.stringify(body.now ?? null).slice(0, 80)}`, { details: { field: 'now' } });
        clock.set(body.now);
        await audit(operator!, 'series.clock', 'series-clock', new Date(clock.now()).toISOString());
        log.warn({ event: 'series.clock_moved', by: operator!.name, now: clock.now() }, `simulated series clock moved to ${new Date(clock.now()).toISOString()} by ${operator!.name}`);
        return [200, { now: clock.now(), simulated: true }];
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/reports$/, role: 'viewer',
      handle: async () => [200, { reports: listReports(options.reportsDir) }],
    },
    {
      method: 'GET', pattern: /^\/reports\/(.+\.html)$/, role: 'viewer',
      handle: async (m, _r, _o, res) => {
        if (options.reportsDir === '') throw new FedlhsError('NOT_FOUND', 'no reports directory configured', { details: { what: 'report' } });
        sendFile(res, options.reportsDir, decodeURIComponent(m[1]!));
        return undefined;
      },
    },
    {
      method: 'GET', pattern: /^\/api\/v1\/events$/, role: 'viewer',
      handle: async (_m, req, _o, res) => {
        openEventStream(coordinator, req, res, streams);
        return undefined;
      },
    },
  ];

  /** Any thrown value as the JSON error answer; a response already under way is cut instead. */
  const fail = (res: ServerResponse, err: unknown, path: string): void => {
    const answer = toHttpError(err);
    if (answer.internal) log.error({ event: 'admin.internal', err, path }, 'admin API error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(res, answer.status, answer.body, answer.headers);
  };

  // Every request ends in a JSON answer: whatever is malformed about it (its target, headers or
  // body) is a 4xx naming what, and only a fault of ours is a 500.
  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname;
    if (req.method === 'GET' && path === '/healthz') { const health = coordinator.health(); return send(res, health.status === 'ok' ? 200 : 503, health); }
    if (req.method === 'GET' && path === '/metrics') {
      // Prometheus scrapes without credentials; keep the admin port on an operator network.
      const text = await coordinator.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': coordinator.metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (req.method === 'GET' && (path === '/' || path === '/index.html')) return sendFile(res, STATIC_DIR, 'index.html');
    if (req.method === 'GET' && path.startsWith('/static/')) return sendFile(res, STATIC_DIR, path.slice('/static/'.length).split('/').join(sep));
    const candidates = routes.filter((r) => r.pattern.test(path));
    const route = candidates.find((r) => r.method === req.method);
    if (route === undefined) {
      if (candidates.length === 0) return send(res, 404, { error: { code: 'NOT_FOUND', status: 'NOT_FOUND', message: `no route ${req.method} ${path}` } });
      const allow = [...new Set(candidates.map((r) => r.method))].join(', ');
      throw withHttpStatus(new FedlhsError('INVALID_ARGUMENT', `${path} does not take ${req.method}; it takes ${allow}`, { details: { field: 'method' } }), 405, { allow });
    }
    if (req.method !== 'GET') checkWriteRequest(req);
    const operator = route.role === 'public' ? undefined : await auth.authenticate(req);
    if (route.role === 'admin') requireAdmin(operator!, `${req.method} ${path}`);
    const result = await route.handle(route.pattern.exec(path)!, req, operator, res);
    if (result !== undefined) send(res, result[0], result[1]);
  };

  const server = createServer((req, res) => {
    let path = '(unparsed)';
    try {
      const url = requestTarget(req);
      path = url.pathname;
      handle(req, res, url).catch((err: unknown) => fail(res, err, path));
    } catch (err) {
      fail(res, err, path);
    }
  });
  // What Node's HTTP parser refuses (a malformed request line or header, an invalid
  // Content-Length, headers too large, a request too slow) is answered in JSON too.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
        : [400, 'Bad Request'];
    log.debug({ event: 'admin.bad_request', code: err.code, status }, 'malformed HTTP request refused');
    const body = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', status: 'INVALID_ARGUMENT', message: `malformed HTTP request (${err.code ?? 'parse error'})` } });
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Cross-site request checks for state-changing calls (besides SameSite=Strict cookies): the
 * body must be JSON, which a plain HTML form cannot send, and a browser's Origin, when sent,
 * must be this server.
 */
function checkWriteRequest(req: IncomingMessage): void {
  // An Origin that is not this server's, including one that is no origin at all ("null", garbage)
  // or that cannot be compared (no Host), is refused as cross-origin: 403 ORIGIN_REFUSED.
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = origin === 'null' ? undefined : new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host === '' || req.headers.host === undefined || host !== req.headers.host) {
      throw new FedlhsError('ORIGIN_REFUSED', `cross-origin request from ${JSON.stringify(origin.slice(0, 200))} refused`);
    }
  }
  // Any body (a Content-Length above 0, or a Transfer-Encoding such as chunked) must be JSON.
  const type = req.headers['content-type'];
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (hasBody && type?.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
    throw withHttpStatus(new FedlhsError('INVALID_ARGUMENT', `request body must be application/json, not ${JSON.stringify(type?.slice(0, 100) ?? '(no Content-Type)')}`, { details: { field: 'content-type' } }), 415);
  }
  if (length !== undefined && Number(length) > MAX_BODY) throw bodyTooLarge();
}

/** The request's URL; 400 when it cannot be parsed or its path or query has malformed %-encoding. */
function requestTarget(req: IncomingMessage): URL {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://admin');
  } catch {
    throw new FedlhsError('INVALID_ARGUMENT', 'the request target is not a valid URL', { details: { field: 'path' } });
  }
  for (const [part, field] of [[url.pathname, 'path'], [url.search, 'query']] as const) {
    try {
      decodeURIComponent(part);
    } catch {
      throw new FedlhsError('INVALID_ARGUMENT', `malformed %-encoding in the request ${field} (each % must start a UTF-8 escape such as %2F)`, { details: { field } });
    }
  }
  return url;
}

/** Server-sent events: one `change` event per kind and study, coalesced over 250 ms. */
function openEventStream(coordinator: Coordinator, req: IncomingMessage, res: ServerResponse, streams: Set<ServerResponse>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', ...SECURITY_HEADERS });
  res.write(': connected\n\n');
  streams.add(res);
  const pending = new Map<string, Record<string, unknown>>();
  let timer: NodeJS.Timeout | undefined;
  // A client that stops reading is cut off once EVENT_STREAM_BUFFER_MAX bytes wait for it (it
  // reconnects and reloads, as after any drop), so it cannot make the coordinator hold its events.
  const write = (text: string): void => {
    if (res.writableLength > EVENT_STREAM_BUFFER_MAX) res.destroy();
    else res.write(text);
  };
  const flush = (): void => {
    timer = undefined;
    for (const event of pending.values()) write(`event: change\ndata: ${JSON.stringify(event)}\n\n`);
    pending.clear();
  };
  const onChange = (event: { kind: string; studyId?: string; nodeId?: string }): void => {
    pending.set(`${event.kind}/${event.studyId ?? ''}`, event);
    timer ??= setTimeout(flush, 250);
  };
  const ping = setInterval(() => write(': ping\n\n'), 15_000);
  coordinator.events.on('change', onChange);
  req.on('close', () => {
    clearInterval(ping);
    clearTimeout(timer);
    coordinator.events.off('change', onChange);
    streams.delete(res);
  });
}

/** HTML reports directly in `dir` or one level below it. */
function listReports(dir: string): { name: string; url: string }[] {
  if (dir === '' || !existsSync(dir)) return [];
  const out: { name: string; url: string }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.html')) out.push({ name: entry.name, url: `/reports/${encodeURIComponent(entry.name)}` });
    if (entry.isDirectory()) {
      for (const f of readdirSync(join(dir, entry.name))) {
        if (f.endsWith('.html')) out.push({ name: `${entry.name}/${f}`, url: `/reports/${encodeURIComponent(entry.name)}/${encodeURIComponent(f)}` });
      }
    }
  }
  return out;
}
