/**
 * Issue 11, "Admin surface": every malformed admin request is a 4xx with a JSON error (never a
 * 500, never a crash), the CLIs print no control character a node or server chose, and failed
 * credential checks are throttled per source address on both the gRPC and the admin surface.
 *
 * FEDLHS_IT_ROOT=/work/before runs the same tests against another build (the old code), where
 * they fail.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { learnableManifest, ManagedProcess } from '@fedlhs/testing';
import { enrolOverProtocol, repoRoot, RogueNode, type CoordinatorHandle } from '@fedlhs/tests';
import { httpFrom, rawHttp, RawGrpcClient, type RawHttpAnswer } from '../src/raw-clients.js';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const ROOT = process.env.FEDLHS_IT_ROOT ?? repoRoot;
const coordinatorCli = join(ROOT, 'coordinator', 'dist', 'main.js');
/** What a terminal would act on: C0 controls but the line feed, DEL, C1 controls, bidi controls. */
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAUTHENTICATED = 16;

/** `fedlhs-coordinator serve` of the build under test, on port 0, like startCoordinator. */
async function start(name: string, env: NodeJS.ProcessEnv = {}): Promise<CoordinatorHandle> {
  const dataDir = join(ws.dir(), name);
  mkdirSync(dataDir, { recursive: true });
  const proc = ws.track(new ManagedProcess({
    name, command: process.execPath, args: [coordinatorCli, 'serve'],
    env: {
      FEDLHS_DATA_DIR: dataDir, FEDLHS_GRPC_HOST: '127.0.0.1', FEDLHS_GRPC_PORT: '0', FEDLHS_ADMIN_PORT: '0', FEDLHS_TLS_MODE: 'plaintext',
      FEDLHS_HEARTBEAT_INTERVAL_MS: '500', FEDLHS_SELECTION_GRACE_MS: '300', FEDLHS_LOG_LEVEL: 'debug', ...env,
    },
  }));
  const ready = await proc.waitForEvent('coordinator.ready', undefined, 60_000);
  const adminPort = ready.adminPort as number;
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    proc, grpcPort: ready.grpcPort as number, adminPort, adminToken, dataDir, address: `127.0.0.1:${ready.grpcPort as number}`,
    async admin<T>(method: 'GET' | 'POST', path: string, body?: unknown) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as T };
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => proc.stop(signal),
  };
}

/** A whole HTTP/1.1 request; `connection: close` so the answer ends with the connection. */
function req(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (body !== '' && headers['transfer-encoding'] === undefined && headers['content-length'] === undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const chunked = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;

/** A 4xx whose body is the admin API's JSON error; returns its code. */
function jsonError(a: RawHttpAnswer, what: string): string {
  expect(a.status, `${what}: ${a.status} ${a.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what}: ${a.body.slice(0, 300)}`).toBeLessThan(500);
  expect(a.headers['content-type'], what).toMatch(/^application\/json/);
  const body = JSON.parse(a.body) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof body.error?.code, `${what}: ${a.body}`).toBe('string');
  expect(typeof body.error?.message, what).toBe('string');
  return body.error!.code as string;
}

describe('admin HTTP: every malformed request is a 4xx with a JSON error', () => {
  it('answers bad encoding, origins, bodies, routes, methods and headers with the right 4xx', async () => {
    const reports = join(ws.dir(), 'reports');
    mkdirSync(reports, { recursive: true });
    writeFileSync(join(reports, 'a.html'), '<p>report</p>');
    const c = await start('fuzz', { FEDLHS_REPORTS_DIR: reports });
    const auth = { authorization: `Bearer ${c.adminToken}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const ask = (text: string | Buffer): Promise<RawHttpAnswer> => rawHttp(c.adminPort, text);
    const cases: [string, string | Buffer, number, string][] = [
      ['malformed %-encoding in the path', req('GET', '/api/v1/studies/%E0%A4%A', auth), 400, 'INVALID_ARGUMENT'],
      ['malformed %-encoding in a report path', req('GET', '/reports/%zz.html', auth), 400, 'INVALID_ARGUMENT'],
      ['a report path leaving the reports directory', req('GET', '/reports/..%2f..%2fadmin-token.html', auth), 404, 'NOT_FOUND'],
      ['malformed %-encoding in the query', req('GET', '/api/v1/status?limit=%zz', auth), 400, 'INVALID_ARGUMENT'],
      ['invalid UTF-8 in %-encoding', req('GET', '/api/v1/studies/%C3%28', auth), 400, 'INVALID_ARGUMENT'],
      ['a garbage Origin', req('POST', '/api/v1/join-tokens', { ...json, origin: '::garbage::' }, '{"site":"x"}'), 403, 'ORIGIN_REFUSED'],
      ['Origin "null"', req('POST', '/api/v1/join-tokens', { ...json, origin: 'null' }, '{"site":"x"}'), 403, 'ORIGIN_REFUSED'],
      ['another site\'s Origin', req('POST', '/api/v1/join-tokens', { ...json, origin: 'https://evil.example' }, '{"site":"x"}'), 403, 'ORIGIN_REFUSED'],
      ['a chunked text/plain body', req('POST', '/api/v1/join-tokens', { ...auth, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }, chunked('{"site":"x"}')), 415, 'INVALID_ARGUMENT'],
      ['a text/plain body', req('POST', '/api/v1/join-tokens', { ...auth, 'content-type': 'text/plain' }, '{"site":"x"}'), 415, 'INVALID_ARGUMENT'],
      ['a body without Content-Type', req('POST', '/api/v1/join-tokens', auth, '{"site":"x"}'), 415, 'INVALID_ARGUMENT'],
      ['application/jsonp', req('POST', '/api/v1/join-tokens', { ...auth, 'content-type': 'application/jsonp' }, '{"site":"x"}'), 415, 'INVALID_ARGUMENT'],
      ['a login form post', req('POST', '/api/v1/session', { 'content-type': 'application/x-www-form-urlencoded' }, 'token=x'), 415, 'INVALID_ARGUMENT'],
      ['a declared body over 4 MiB', req('POST', '/api/v1/studies', { ...json, 'content-length': String(5 * 1024 * 1024) }), 413, 'INVALID_ARGUMENT'],
      ['a chunked body over 4 MiB', req('POST', '/api/v1/studies', { ...json, 'transfer-encoding': 'chunked' }, chunked(`{"manifest":"${'x'.repeat(4 * 1024 * 1024)}"}`)), 413, 'INVALID_ARGUMENT'],
      ['invalid JSON', req('POST', '/api/v1/join-tokens', json, '{"site":'), 400, 'INVALID_ARGUMENT'],
      ['a JSON array', req('POST', '/api/v1/join-tokens', json, '[1]'), 400, 'INVALID_ARGUMENT'],
      ['a cut chunked body', req('POST', '/api/v1/join-tokens', { ...json, 'transfer-encoding': 'chunked' }, 'zz\r\n{"site"\r\n'), 400, 'INVALID_ARGUMENT'],
      ['an unknown route', req('GET', '/api/v1/nope', auth), 404, 'NOT_FOUND'],
      ['a wrong method', req('DELETE', '/api/v1/studies', auth), 405, 'INVALID_ARGUMENT'],
      ['OPTIONS', req('OPTIONS', '/api/v1/status', auth), 405, 'INVALID_ARGUMENT'],
      ['a malformed Authorization', req('GET', '/api/v1/status', { authorization: 'Bearer a b' }), 401, 'CREDENTIAL_INVALID'],
      ['a garbage cookie', req('GET', '/api/v1/status', { cookie: '=;;fedlhs_session;=x' }), 401, 'CREDENTIAL_INVALID'],
      ['the event stream without credentials', req('GET', '/api/v1/events'), 401, 'CREDENTIAL_INVALID'],
      ['a header line without a colon', 'GET /api/v1/status HTTP/1.1\r\nhost: x\r\nthis is no header\r\n\r\n', 400, 'INVALID_ARGUMENT'],
      ['a non-numeric Content-Length', req('POST', '/api/v1/join-tokens', { ...json, 'content-length': 'abc' }), 400, 'INVALID_ARGUMENT'],
      ['Content-Length and chunked together', req('POST', '/api/v1/join-tokens', { ...json, 'content-length': '3', 'transfer-encoding': 'chunked' }, chunked('{}')), 400, 'INVALID_ARGUMENT'],
      ['a control character in the request target', 'GET /api/v1/\x01status HTTP/1.1\r\nhost: x\r\n\r\n', 400, 'INVALID_ARGUMENT'],
      ['headers over the parser limit', req('GET', '/api/v1/status', { ...auth, 'x-big': 'y'.repeat(20_000) }), 431, 'INVALID_ARGUMENT'],
      // Last: the old code threw synchronously in its request listener here, and the process exited.
      ['a request target that is no URL', req('GET', 'http://[::1', auth), 400, 'INVALID_ARGUMENT'],
    ];
    // All answers first, compared at once: a failure shows every case that is wrong.
    const seen: string[] = [];
    for (const [what, text] of cases) {
      const a = await ask(text).catch((err: unknown) => ({ status: 0, headers: {}, body: `(no answer: ${(err as Error).message})` }) as RawHttpAnswer);
      let code = '(not a JSON error)';
      try {
        code = String((JSON.parse(a.body) as { error: { code: unknown } }).error.code);
      } catch {
        // shown as such in the comparison
      }
      seen.push(`${what}: ${a.status} ${code}${a.headers['content-type']?.startsWith('application/json') === true ? '' : ` (${a.headers['content-type'] ?? 'no content-type'})`}`);
    }
    expect(seen).toEqual(cases.map(([what, , status, code]) => `${what}: ${status} ${code}`));
    expect((await ask(req('DELETE', '/api/v1/studies', auth))).headers.allow).toBe('GET, POST');

    // The server is still up and well after all that.
    expect(c.proc.events('admin.internal')).toEqual([]);
    expect((await c.admin('GET', '/api/v1/status')).status).toBe(200);
  });

  it('never answers 5xx to a small fuzz of odd requests', async () => {
    const c = await start('fuzz-random');
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const paths = ['/api/v1/status', '/api/v1/studies', '/api/v1/studies/x', '/api/v1/studies/x/stop', '/api/v1/studies/x/rounds/1/model', '/api/v1/nodes/n', '/api/v1/nodes/n/revoke',
      '/api/v1/join-tokens', '/api/v1/operators', '/api/v1/audit', '/api/v1/reports', '/api/v1/session', '/reports/a.html', '/static/', '/', '/metrics', '/healthz'];
    const noise = ['%', '%z', '%E0%A4', '%00', '%2e%2e/', '..', '?limit=', '?limit=%', '?cursor=%ff', '//', ';', '?', '#', '%C0%AF', '\u00e9'];
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
    const bodies = ['', '{}', '{"site":"s"}', '{"token":"x"}', '{"manifest":{}}', 'not json', '[', '{"name":"o","role":"god"}', '\u0000\u0001'];
    const types = ['application/json', 'text/plain', 'application/json; charset=utf-8', 'multipart/form-data; boundary=x', ''];
    const origins = ['', `http://127.0.0.1:${c.adminPort}`, 'null', 'http://[', 'https://evil.example', '\u00ff'];
    const answers: number[] = [];
    for (let i = 0; i < 240; i++) {
      const method = pick(methods);
      const path = `${pick(paths)}${rnd(2) === 0 ? pick(noise) : ''}${rnd(3) === 0 ? pick(noise) : ''}`;
      const headers: Record<string, string> = {};
      const auth = rnd(4);
      if (auth === 0) headers.authorization = `Bearer ${c.adminToken}`;
      if (auth === 1) headers.authorization = pick(['Bearer', 'Basic xyz', 'Bearer \u00e9', `bearer\t${c.adminToken}`]);
      const type = pick(types);
      if (type !== '') headers['content-type'] = type;
      const origin = pick(origins);
      if (origin !== '') headers.origin = origin;
      const body = method === 'GET' ? '' : pick(bodies);
      if (body !== '' && rnd(2) === 0) headers['transfer-encoding'] = 'chunked';
      const text = req(method, path.replace(/ /g, '%20'), headers, headers['transfer-encoding'] === undefined ? body : chunked(body));
      const a = await rawHttp(c.adminPort, Buffer.from(text, 'latin1'));
      answers.push(a.status);
      expect(a.status, `${method} ${path} ${JSON.stringify(headers)} ${JSON.stringify(body)} → ${a.status} ${a.body.slice(0, 200)}`).toBeLessThan(500);
      if (a.status >= 400) jsonError(a, `${method} ${path}`);
    }
    // (The event stream is left out: an open stream is not an answer that ends.)
    expect(new Set(answers).size).toBeGreaterThanOrEqual(4);
    expect(c.proc.events('admin.internal')).toEqual([]);
  });
});

/** A stand-in admin API answering what a hostile network could make the coordinator hold. */
async function hostileAdmin(): Promise<{ url: string; close: () => Promise<void> }> {
  const evil = '\x1b[2K\r\x1b[1A  node_00000000  trusted-clinic  online\u009b2K\u202eenilno';
  const summary = { id: 'study-1', name: 'n', state: 'RUNNING', totalRounds: 3, lastCommittedRound: 0, manifestSha256: 'a'.repeat(64), current: null, reason: `waiting ${evil}` };
  const readiness = { ready: 0, needed: 1, deadline: null, sites: [{ siteName: `site${evil}`, readiness: `READINESS_DATA_ERROR${evil}`, detail: `detail${evil}` }] };
  const node = {
    id: `node_1${evil}`, siteName: `site${evil}`, online: false, revoked: false, trainingBackend: `cpu${evil}`, agentVersion: `1${evil}`, lastSeenAt: null, lastHeartbeatAt: null,
    lastError: { studyId: `study-1${evil}`, round: 1, kind: 'TRAIN', state: 'FAILED', reason: `boom${evil}`, at: null },
  };
  const detail = {
    ...summary, rounds: [{ round: 1, attempt: 1, state: `TRAINING${evil}`, participants: 1, reason: `r${evil}` }],
    timeline: [{ round: 1, attempt: 1, failures: [{ siteName: `site${evil}`, kind: 'TRAIN', state: 'FAILED', reason: `f${evil}` }] }],
    sites: { node_1: `site${evil}` }, readiness, metrics: [], contributions: [{ round: 1, nodeId: 'node_1', accepted: false, reasonCode: `NON_FINITE${evil}`, reason: `nan${evil}` }],
    statistics: [{ nodeId: 'node_1', rows: 10, prevalence: 0.1 }], normalization: null,
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const answer = path === '/api/v1/status' ? { coordinator: { version: `v${evil}`, uptimeSeconds: 1 }, summary: {}, studies: [{ ...summary, readiness }], nodes: [node], nodesNext: null }
      : path === '/api/v1/studies' ? { studies: [summary] }
        : path === '/api/v1/studies/study-1' ? detail
          : undefined;
    res.writeHead(answer === undefined ? 409 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer ?? { error: { code: 'STUDY_NOT_RUNNING', status: 'FAILED_PRECONDITION', message: `refused${evil}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('the coordinator CLI prints no control character it did not write', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('escapes hostile text in status, study list, study show and echoed errors', async () => {
    const admin = await hostileAdmin();
    close = admin.close;
    const env = { FEDLHS_ADMIN_URL: admin.url, FEDLHS_ADMIN_TOKEN: 'x'.repeat(20) };
    for (const args of [['status'], ['study', 'list'], ['study', 'show', 'study-1'], ['study', 'stop', 'study-1']]) {
      const r = await runCli(coordinatorCli, args, env);
      const shown = `${args.join(' ')} → ${JSON.stringify(r.stdout + r.stderr)}`;
      expect(r.stdout + r.stderr, shown).not.toMatch(CONTROLS);
      expect(r.stdout + r.stderr, shown).toContain('\\x1b[2K');
      // The fake row stays inside the row of the value that carried it.
      expect((r.stdout + r.stderr).split('\n').filter((l) => /^\s*node_00000000\s+trusted-clinic\s+online/.test(l)), shown).toEqual([]);
    }
  });

  it('a rogue node\'s readiness detail with ESC sequences draws no fake row in `status`', async () => {
    const c = await start('rogue-detail');
    const t = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'rogue-site', ttlSeconds: 600 });
    const enrolled = await enrolOverProtocol(c.address, t.body.token, 'rogue-site');
    // A detail within the wire rules' length; its control characters are what is under test.
    const detail = 'x\x1b[2K\r\x1b[1A  node_00000000  trusted-clinic  online';
    const rogue = new RogueNode(c.address, enrolled.nodeId, enrolled.nodeCredential, { readiness: { readiness: 'READINESS_DATA_ERROR', detail } });
    try {
      await rogue.connect();
      const started = await c.admin<{ id: string }>('POST', '/api/v1/studies', { manifest: learnableManifest({ name: 'esc', rounds: 1, min: 1, max: 1, quorum: 1 }) });
      expect(started.status).toBe(201);
      // Stored and shown (old code, or a coordinator that accepts the text), or refused on the wire
      // (a coordinator that refuses control characters in node strings): either way it is decided.
      const decided = await c.proc.waitFor((l) => l.nodeId === enrolled.nodeId && (l.event === 'node.readiness' || (typeof l.level === 'number' && l.level >= 40)), 60_000, 'readiness stored or refused');
      const r = await runCli(coordinatorCli, ['status'], { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, `${decided.event as string}: ${JSON.stringify(r.stdout)}`).not.toMatch(CONTROLS);
      expect(r.stdout.split('\n').filter((l) => /^\s*node_00000000\s+trusted-clinic\s+online/.test(l))).toEqual([]);
    } finally {
      rogue.close();
    }
  });
});

describe('failed credential checks are throttled per source address', () => {
  it('gRPC: 3000 wrong node credentials from one address are mostly refused unchecked; a node elsewhere is unaffected', async () => {
    // A budget of 2 failures a minute refills one every 30 s: the steps after the flood stay
    // within one refill even on a loaded machine, so what they see does not depend on timing.
    const c = await start('throttle-grpc', { FEDLHS_LIMITS_AUTH_FAILURES_PER_MINUTE: '2' });
    const t = await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site: 'good-site', ttlSeconds: 600 });
    const good = await enrolOverProtocol(c.address, t.body.token, 'good-site');

    const attacker = new RawGrpcClient(c.grpcPort, '127.0.0.2');
    const codes = new Map<string, number>();
    const started = Date.now();
    try {
      // Batches of 50: the coordinator allows 64 concurrent streams per connection.
      for (let sent = 0; sent < 3000; sent += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, i) => attacker.unary('/fedlhs.v1.Federation/ListStudies', new Uint8Array(0), `Bearer fnc_node_${(sent + i).toString(16).padStart(16, '0')}.${'A'.repeat(43)}`)));
        for (const s of batch) codes.set(`${s.code} ${s.errorCode ?? ''}`, (codes.get(`${s.code} ${s.errorCode ?? ''}`) ?? 0) + 1);
      }
      const elapsedMs = Date.now() - started;
      const refused = codes.get(`${GRPC_RESOURCE_EXHAUSTED} RATE_LIMITED`) ?? 0;
      const checked = codes.get(`${GRPC_UNAUTHENTICATED} CREDENTIAL_INVALID`) ?? 0;
      expect(Object.fromEntries(codes), `in ${elapsedMs} ms`).toEqual({ [`${GRPC_UNAUTHENTICATED} CREDENTIAL_INVALID`]: checked, [`${GRPC_RESOURCE_EXHAUSTED} RATE_LIMITED`]: refused });
      // The budget of 2, plus what refilled while the flood ran (one per 30 s).
      expect(checked).toBeLessThanOrEqual(2 + Math.ceil(elapsedMs / 30_000));
      expect(refused).toBe(3000 - checked);
      const refusal = await attacker.unary('/fedlhs.v1.Federation/ListStudies', new Uint8Array(0), 'Bearer fnc_x.y');
      expect(refusal.message).toMatch(/limits\.authFailuresPerMinute 2\b/);

      // One warn line for the episode, naming the source; the metrics count every attempt.
      const warned = c.proc.events('auth.throttled');
      expect(warned).toEqual([expect.objectContaining({ level: 40, surface: 'grpc', source: '127.0.0.2' })]);
      const metrics = await (await fetch(`http://127.0.0.1:${c.adminPort}/metrics`)).text();
      expect(metrics).toContain(`fedlhs_auth_throttled_total{surface="grpc"} ${refused + 1}`);
      expect(metrics).toContain(`fedlhs_auth_failures_total{surface="grpc"} ${checked}`);

      // The node enrolled from 127.0.0.1 works; its own credential from the throttled address does not (one NAT, one budget).
      const node = new RogueNode(c.address, good.nodeId, good.nodeCredential);
      try {
        const studies = await new Promise<unknown>((resolve, reject) => node.client.ListStudies({ includeEnded: true }, node.metadata(), (err, r) => (err === null ? resolve(r) : reject(err))));
        expect(studies).toEqual({ studies: [] });
      } finally {
        node.close();
      }
      expect((await attacker.unary('/fedlhs.v1.Federation/ListStudies', new Uint8Array(0), `Bearer ${good.nodeCredential}`)).errorCode).toBe('RATE_LIMITED');
    } finally {
      attacker.close();
    }
  });

  it('admin: wrong operator tokens and logins from one address get 429 with Retry-After; operators elsewhere are unaffected', async () => {
    const c = await start('throttle-admin', { FEDLHS_LIMITS_AUTH_FAILURES_PER_MINUTE: '2' });
    const statuses = new Map<number, number>();
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      const a = i % 2 === 0
        ? await httpFrom('127.0.0.2', c.adminPort, 'GET', '/api/v1/status', { authorization: `Bearer fat_guess_${i}` })
        : await httpFrom('127.0.0.2', c.adminPort, 'POST', '/api/v1/session', { 'content-type': 'application/json' }, JSON.stringify({ token: `fat_guess_${i}` }));
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    }
    // The budget of 2, plus what refilled while the 200 requests ran (one per 30 s).
    const allowed = 2 + Math.ceil((Date.now() - started) / 30_000);
    expect(statuses.get(401)).toBeLessThanOrEqual(allowed);
    expect(statuses.get(429)).toBeGreaterThanOrEqual(200 - allowed);
    expect([...statuses.keys()].sort()).toEqual([401, 429]);
    const refused = await httpFrom('127.0.0.2', c.adminPort, 'GET', '/api/v1/status', { authorization: `Bearer ${c.adminToken}` });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'RATE_LIMITED', status: 'RESOURCE_EXHAUSTED', details: { limit: 'limits.authFailuresPerMinute' } } });
    expect(c.proc.events('auth.throttled')).toEqual([expect.objectContaining({ level: 40, surface: 'admin', source: '127.0.0.2' })]);
    // The operator on 127.0.0.1 is unaffected.
    expect((await httpFrom('127.0.0.1', c.adminPort, 'GET', '/api/v1/status', { authorization: `Bearer ${c.adminToken}` })).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${c.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/fedlhs_auth_throttled_total\{surface="admin"\} (\d+)/);
    expect(Number(/fedlhs_auth_throttled_total\{surface="admin"\} (\d+)/.exec(metrics)![1])).toBe(statuses.get(429)! + 1);
  });
});
