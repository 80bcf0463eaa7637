import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, relative } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@fedlhs/tests';

// The dashboard's static pages against a fake admin API that answers fixed JSON: fully
// deterministic rendering checks (a site that missed a round, a figure withheld, a change in
// the set of reporting sites, a clinic awaiting approval, task failures, viewer vs admin).
// The live dashboard against a real coordinator is tests/integration/dashboard.test.ts.

const CHROMIUM = process.env.FEDLHS_CHROMIUM ?? '/usr/bin/chromium';
const STATIC = join(repoRoot, 'coordinator', 'static');
const artifacts = join(repoRoot, 'artifacts');
// The coordinator's own CSP (coordinator/src/admin/http.ts): a style="" attribute or an inline
// script in the dashboard would be refused here just as in production.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
};
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
const TOKENS: Record<string, 'admin' | 'viewer'> = { 'admin-token-0123456789': 'admin', 'viewer-token-0123456789': 'viewer' };
const PENDING_DETAIL = "waiting for this clinic's operator to review and approve the manifest";

// ---- fixtures -----------------------------------------------------------------------------------

const now = Date.now();
const iso = (msAgo: number): string => new Date(now - msAgo).toISOString();
const STUDY = 'st_gaps';
const [A, B, C] = ['n_a', 'n_b', 'n_c'];
const sites = { [A]: 'clinic-a', [B]: 'clinic-b', [C]: 'clinic-c' };

// Round 6 waits for clients.min = 2 READY clinics; only clinic-a is (clinic-b awaits approval).
const readiness = {
  needed: 2, ready: 1, deadline: new Date(now + 3 * 3600_000).toISOString(),
  sites: [
    { nodeId: A, siteName: 'clinic-a', online: true, readiness: 'READY', detail: '', lastHeartbeatAt: iso(2000) },
    { nodeId: B, siteName: 'clinic-b', online: true, readiness: 'NOT_APPROVED', detail: PENDING_DETAIL, lastHeartbeatAt: iso(3000) },
    { nodeId: C, siteName: 'clinic-c', online: true, readiness: 'DATA_ERROR', detail: 'cannot read /data/export.csv: permission denied', lastHeartbeatAt: iso(4000) },
  ],
};
const summary = {
  id: STUDY, name: 'gaps', state: 'RUNNING', reason: null, manifestSha256: 'ab'.repeat(32), totalRounds: 6, lastCommittedRound: 5,
  current: { roundId: 9, round: 6, attempt: 1, state: 'WAITING_FOR_NODES', deadline: now + 3 * 3600_000 }, createdAt: iso(600_000), endedAt: null, readiness,
};

const nodes = [
  {
    id: A, siteName: 'clinic-a', online: true, revoked: false, lastSeenAt: iso(2000), lastHeartbeatAt: iso(2000), agentVersion: '0.9.0', trainingBackend: 'tensorflow',
    readiness: { [STUDY]: { readiness: 'READINESS_READY', detail: '' } }, roundsContributed: 5, lastError: null,
  },
  {
    // What coordinators before issue 9 reported for a clinic whose operator has not approved
    // yet: the readiness detail doubled as lastError. The dashboard shows a state, not an error.
    id: B, siteName: 'clinic-b', online: true, revoked: false, lastSeenAt: iso(3000), lastHeartbeatAt: iso(3000), agentVersion: '0.9.0', trainingBackend: 'wasm',
    readiness: { [STUDY]: { readiness: 'READINESS_NOT_APPROVED', detail: PENDING_DETAIL } }, roundsContributed: 3, lastError: PENDING_DETAIL,
  },
  {
    id: C, siteName: 'clinic-c', online: true, revoked: false, lastSeenAt: iso(4000), lastHeartbeatAt: iso(4000), agentVersion: '0.9.0', trainingBackend: 'cpu',
    readiness: { [STUDY]: { readiness: 'READINESS_DATA_ERROR', detail: 'cannot read /data/export.csv: permission denied' } }, roundsContributed: 2,
    lastError: { studyId: STUDY, round: 3, attempt: 1, kind: 'TRAIN', state: 'FAILED', reason: 'out of memory', at: iso(120_000) },
  },
];

const metric = (round: number, nodeId: string | null, auc: number): Record<string, unknown> => ({ round, nodeId, phase: 'evaluation', numExamples: nodeId === null ? 300 : 100, loss: 0.7 - auc / 4, accuracy: auc - 0.05, auc });
const metrics = [
  ...[1, 2, 3, 4, 5].map((r) => metric(r, null, 0.6 + r * 0.03)),
  ...[1, 2, 3, 4, 5].map((r) => metric(r, A, 0.62 + r * 0.03)),
  // clinic-b did not report in round 3: its line must break there.
  ...[1, 2, 4, 5].map((r) => metric(r, B, 0.58 + r * 0.03)),
  // clinic-c joined in round 3; its round-4 figure is withheld (small cells).
  metric(3, C, 0.7), metric(5, C, 0.74),
];

const timelineRow = (round: number, attempt: number, state: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  round, attempt, state, reason: null, startedAt: iso((7 - round) * 60_000), endedAt: state === 'WAITING_FOR_NODES' ? null : iso((7 - round) * 60_000 - 20_000),
  durationMs: state === 'WAITING_FOR_NODES' ? null : 20_000, participants: 3, accepted: 3, stragglers: [], rejected: [], failures: [], bytesIn: 4096, bytesOut: 8192, ...extra,
});
const timeline = [
  timelineRow(1, 1, 'COMMITTED'), timelineRow(2, 1, 'COMMITTED'),
  timelineRow(3, 1, 'FAILED', {
    reason: 'quorum 2 not reached: 1 accepted (clinic-a); 1 failed training (clinic-b): out of memory while training', accepted: 1,
    failures: [{ nodeId: B, siteName: 'clinic-b', kind: 'TRAIN', state: 'FAILED', reason: 'out of memory while training', at: iso(250_000) }],
  }),
  timelineRow(3, 2, 'COMMITTED', {
    rejected: [{ nodeId: C, reasonCode: 'NON_FINITE', reason: 'update contains NaN' }],
    failures: [
      { nodeId: B, siteName: 'clinic-b', kind: 'EVALUATE', state: 'DECLINED', reason: 'not ready: cohort too small for evaluation', at: iso(200_000) },
      // Also listed under "Rejected" (with its code): not repeated among the failures.
      { nodeId: C, siteName: 'clinic-c', kind: 'TRAIN', state: 'REJECTED', reason: 'NON_FINITE: update contains NaN', at: iso(210_000) },
    ],
  }),
  timelineRow(4, 1, 'COMMITTED'), timelineRow(5, 1, 'COMMITTED'), timelineRow(6, 1, 'WAITING_FOR_NODES', { participants: 0, accepted: 0 }),
];

const study = {
  ...summary,
  manifest: { name: 'gaps', aggregation: { strategy: 'fedavg' }, data: { minCellCount: 20 } },
  parameters: null,
  normalization: {
    method: 'federated-zscore', fallback: 'range', clinics: 3,
    features: [{ name: 'age', mean: 50, std: 10, source: 'federated', withheldAt: null }, { name: 'hba1c', mean: 0, std: 1, source: 'fallback-range', withheldAt: 3 }],
    fallbackFeatures: [{ name: 'hba1c', source: 'fallback-range', withheldAt: 3 }],
  },
  rounds: [], timeline, metrics, metricsWithheld: [{ round: 4, phase: 'evaluation', nodeId: C }],
  contributions: [], rejectionsByReason: { NON_FINITE: 1 }, statistics: [], sites, readiness,
};

const nodeDetail = (id: string): Record<string, unknown> | undefined => {
  const n = nodes.find((x) => x.id === id);
  if (n === undefined) return undefined;
  return {
    ...n,
    contributions: [{ taskId: 't1', studyId: STUDY, round: 2, attempt: 1, nodeId: id, numExamples: 120, sha256: 'cd'.repeat(32), bytes: 4096, accepted: true, reasonCode: null, reason: null, receivedAt: now - 300_000 }],
    failures: id !== C ? [] : [
      { studyId: STUDY, round: 3, attempt: 2, kind: 'TRAIN', state: 'REJECTED', reason: 'NON_FINITE: update contains NaN', at: iso(210_000) },
      { studyId: STUDY, round: 3, attempt: 1, kind: 'TRAIN', state: 'FAILED', reason: 'out of memory', at: iso(120_000) },
    ],
  };
};

// ---- the fake admin API -------------------------------------------------------------------------

interface FakeApi { base: string; requests: { method: string; path: string; role: string | null }[]; close: () => Promise<void> }

async function startFakeApi(): Promise<FakeApi> {
  const requests: FakeApi['requests'] = [];
  const streams = new Set<ServerResponse>();
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers });
    res.end(JSON.stringify(body));
  };
  const roleOf = (req: IncomingMessage): 'admin' | 'viewer' | null => {
    const m = /(?:^|;\s*)fake_session=(admin|viewer)/.exec(req.headers.cookie ?? '');
    return m === null ? null : (m[1] as 'admin' | 'viewer');
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const role = roleOf(req);
    requests.push({ method: req.method ?? '', path, role });
    if (req.method === 'GET' && (path === '/' || path.startsWith('/static/'))) {
      const file = normalize(join(STATIC, path === '/' ? 'index.html' : path.slice('/static/'.length)));
      if (relative(STATIC, file).startsWith('..') || !existsSync(file)) return json(res, 404, { error: { code: 'NOT_FOUND', message: path } });
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', ...SECURITY_HEADERS });
      return res.end(readFileSync(file));
    }
    if (path === '/api/v1/session' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const given = TOKENS[(JSON.parse(body) as { token: string }).token];
        if (given === undefined) return json(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'the operator token is not valid' } });
        json(res, 200, { operator: { name: given === 'admin' ? 'ada' : 'vic', role: given } }, { 'set-cookie': `fake_session=${given}; HttpOnly; SameSite=Strict; Path=/` });
      });
      return;
    }
    if (path === '/api/v1/session' && req.method === 'DELETE') return json(res, 200, { loggedOut: true }, { 'set-cookie': 'fake_session=; Path=/; Max-Age=0' });
    if (role === null) return json(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'log in' } });
    if (req.method !== 'GET' || path === '/api/v1/audit') {
      // Every admin route: a viewer is refused, as by the coordinator. The tests never call them.
      if (role !== 'admin') return json(res, 403, { error: { code: 'PERMISSION_DENIED', message: `${req.method} ${path} needs the admin role` } });
      return json(res, path === '/api/v1/audit' ? 200 : 409, path === '/api/v1/audit' ? { actions: [] } : { error: { code: 'FAILED_PRECONDITION', message: 'fake API' } });
    }
    if (path === '/api/v1/session') return json(res, 200, { operator: { name: role === 'admin' ? 'ada' : 'vic', role } });
    if (path === '/api/v1/status') return json(res, 200, { coordinator: { version: '0.9.0-fake', uptimeSeconds: 3600 }, studies: [summary], nodes });
    if (path === '/api/v1/reports') return json(res, 200, { reports: [] });
    if (path === `/api/v1/studies/${STUDY}`) return json(res, 200, study);
    const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path);
    if (node !== null && nodeDetail(node[1]!) !== undefined) return json(res, 200, nodeDetail(node[1]!));
    if (path === '/api/v1/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.write(': connected\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    return json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${path}` } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      for (const s of streams) s.end();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// ---- browser ------------------------------------------------------------------------------------

let browser: Browser | undefined;
let fake: FakeApi | undefined;
let context: BrowserContext | undefined;
/** Page errors and console errors (a CSP refusal is a console error) of the current test. */
let problems: string[] = [];

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set FEDLHS_CHROMIUM`).toBe(true);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  fake = await startFakeApi();
  mkdirSync(artifacts, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await fake?.close();
});
afterEach(async () => {
  await context?.close();
  context = undefined;
  expect(problems).toEqual([]);
  problems = [];
});

/** A fresh browser context (own cookies) logged in with the given role, on the overview. */
async function loggedIn(role: 'admin' | 'viewer'): Promise<Page> {
  context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // 401 before login and the viewer's refused call are answers, not faults; anything else
    // (a CSP refusal, an uncaught rejection) is.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (401|403)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${fake!.base}/`);
  await page.fill('#token', Object.entries(TOKENS).find(([, r]) => r === role)![0]);
  await page.click('#login');
  await page.waitForSelector(`#operator .role-${role}`);
  await page.waitForSelector('#clinics tr[data-node-id]');
  return page;
}

/** Navigate by hash and wait until the page shows `selector`. */
async function open(page: Page, hash: string, selector: string): Promise<void> {
  await page.evaluate((h) => (location.hash = h), hash);
  await page.waitForSelector(selector);
}

/** Every admin control in the document, by id, data-key or marker. */
const adminControls = (page: Page): Promise<string[]> => page.evaluate(() =>
  Array.from(document.querySelectorAll('[data-admin-action], #start-study, #issue-token, #create-operator, #stop-study, #revoke-node, [data-key^="revoke-"], [data-key^="stop-"]'))
    .map((el) => el.id || el.getAttribute('data-key') || el.textContent || '?'));

/** Buttons the dashboard shows anyone: log in/out and the (closed) dialogs' own buttons. */
const otherButtons = (page: Page): Promise<string[]> => page.evaluate(() => {
  const allowed = new Set(['login', 'logout', 'cancel', 'confirm', 'copy-token', 'token-close']);
  return Array.from(document.querySelectorAll('button')).filter((b) => !allowed.has(b.id)).map((b) => b.id || b.textContent || '?');
});

describe('operator dashboard: honest rendering (fake admin API)', () => {
  it('shows a viewer no admin controls on any page, and calls no admin route', async () => {
    const page = await loggedIn('viewer');
    await page.waitForSelector('#studies tr[data-study-id]');
    expect(await page.isVisible('#viewer-note')).toBe(true);
    expect(await page.isHidden('#nav-audit')).toBe(true);
    expect(await page.locator('#studies thead th', { hasText: 'Actions' }).count()).toBe(0);
    expect(await page.locator('#clinics thead th', { hasText: 'Actions' }).count()).toBe(0);
    expect(await adminControls(page)).toEqual([]);
    expect(await otherButtons(page)).toEqual([]);
    await page.screenshot({ path: join(artifacts, 'dashboard-viewer.png'), fullPage: true });

    for (const [hash, ready] of [['#/clinics', '#clinics tr[data-node-id]'], [`#/studies/${STUDY}`, '#timeline tr[data-round]'], [`#/clinics/${C}`, '#node-contributions'], ['#/audit', 'h1:text("Audit log")']] as const) {
      await open(page, hash, ready);
      expect(await adminControls(page), hash).toEqual([]);
      expect(await otherButtons(page), hash).toEqual([]);
    }
    expect(await page.textContent('#view')).toContain('shown to admins only');
    // Not even a refused attempt: the viewer's page made no admin call.
    expect(fake!.requests.filter((r) => r.role === 'viewer' && (r.method !== 'GET' || r.path === '/api/v1/audit'))).toEqual([]);
    // The coordinator, not the page, is the authority: the fake refuses a viewer like it does.
    expect(await page.evaluate(async () => (await fetch('/api/v1/join-tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"site":"x"}' })).status)).toBe(403);
  });

  it('shows an admin every admin control', async () => {
    const page = await loggedIn('admin');
    await page.waitForSelector('#studies tr[data-study-id]');
    expect(await page.isHidden('#viewer-note')).toBe(true);
    expect(await page.isVisible('#nav-audit')).toBe(true);
    const overview = await adminControls(page);
    for (const id of ['start-study', 'issue-token', 'create-operator', `stop-${STUDY}`, `revoke-${A}`, `revoke-${B}`, `revoke-${C}`]) expect(overview).toContain(id);
    await open(page, `#/studies/${STUDY}`, '#timeline tr[data-round]');
    expect(await adminControls(page)).toContain('stop-study');
    await open(page, `#/clinics/${B}`, '#node-contributions');
    expect(await adminControls(page)).toContain('revoke-node');
    // The add-operator dialog opens with its fields (not submitted: the fake API is read-only).
    await open(page, '#/', '#create-operator');
    await page.click('#create-operator');
    await page.waitForSelector('#dialog[open] #operator-name');
    expect(await page.locator('#operator-role option').allTextContents()).toEqual(['viewer (read-only)', 'admin']);
    await page.click('#cancel');
    await page.waitForSelector('#dialog:not([open])', { state: 'attached' });
  });

  it('shows a clinic awaiting approval as a neutral state, not an error; failures stay errors', async () => {
    const page = await loggedIn('admin');
    const row = (id: string): string => `#clinics tr[data-node-id="${id}"]`;
    const pending = page.locator(`${row(B)} [data-readiness="NOT_APPROVED"]`);
    await pending.waitFor();
    expect(await pending.locator('.readiness-label').textContent()).toBe('awaiting approval');
    expect(await pending.getAttribute('data-tone')).toBe('pending');
    expect(await pending.textContent()).toContain(PENDING_DETAIL);
    // The readiness detail the API also gives as lastError is not shown as an error.
    expect(await page.locator(`${row(B)} .last-error, ${row(B)} .tone-problem, ${row(B)} .error`).count()).toBe(0);
    expect((await page.textContent(`${row(B)} td.error-cell`))?.trim()).toBe('none');
    const color = (selector: string): Promise<string> => page.locator(selector).first().evaluate((el) => getComputedStyle(el).color);
    expect(await color(`${row(B)} .readiness-label`)).not.toBe(await color(`${row(C)} .readiness-label.tone-problem`));
    // A real failure is still an error, with what failed, where and when.
    expect(await page.textContent(`${row(C)} .last-error`)).toBe('out of memory');
    expect(await page.textContent(`${row(C)} td.error-cell`)).toContain('training failed: out of memory');
    expect(await page.textContent(`${row(C)} td.error-cell`)).toContain('gaps, round 3');
    expect(await page.getAttribute(`${row(C)} [data-readiness="DATA_ERROR"]`, 'data-tone')).toBe('problem');
    expect(await page.textContent(`${row(C)} [data-readiness="DATA_ERROR"]`)).toContain('permission denied');
    // The study waits for a second READY clinic, and says until when.
    // (Relative times are matched loosely: no assertion depends on how long the test took.)
    expect(await page.textContent(`#studies tr[data-study-id="${STUDY}"] .readiness-summary`)).toMatch(/^1 of 2 needed clinics ready · study fails in \d+ hours? if still short$/);

    // The same on the study page's readiness table (the study's own readiness view).
    await open(page, `#/studies/${STUDY}`, '#study-readiness tr[data-node-id]');
    expect(await page.textContent(`#study-readiness tr[data-node-id="${B}"] .readiness-label`)).toBe('awaiting approval');
    expect(await page.getAttribute(`#study-readiness tr[data-node-id="${B}"] .readiness`, 'data-tone')).toBe('pending');
    expect(await page.textContent(`#study-readiness tr[data-node-id="${A}"] .readiness-label`)).toBe('ready');
    expect(await page.textContent(`#study-readiness tr[data-node-id="${C}"]`)).toContain('permission denied');
    expect(await page.textContent('#readiness-deadline')).toMatch(/fails in \d+ hours? unless/);
    // And on the clinic's own page: no last-failure box for the pending clinic, one for the failed one.
    await open(page, `#/clinics/${B}`, `#node-readiness tr[data-readiness="NOT_APPROVED"]`);
    expect(await page.locator('#node-last-error').count()).toBe(0);
    await open(page, `#/clinics/${C}`, '#node-last-error');
    expect(await page.textContent('#node-last-error')).toContain('training failed: out of memory');
    expect(await page.textContent('#node-last-error')).toContain('round 3');
    expect(await page.locator('#node-failures tbody tr').allTextContents()).toEqual([
      expect.stringContaining('update rejected: NON_FINITE: update contains NaN'), expect.stringContaining('training failed: out of memory'),
    ]);
  });

  it('breaks a site line where it did not report, marks reporting-set changes, and shows failure reasons', async () => {
    const page = await loggedIn('admin');
    await open(page, `#/studies/${STUDY}`, 'svg[data-chart="site-auc"] g.series');
    const siteChart = 'svg[data-chart="site-auc"]';
    const series = (name: string): string => `${siteChart} g.series[data-series="${name}"]`;
    const segments = (name: string): Promise<{ from: number; to: number; moves: number }[]> => page.$$eval(`${series(name)} path.segment`, (paths) =>
      paths.map((p) => ({ from: Number(p.getAttribute('data-from')), to: Number(p.getAttribute('data-to')), moves: (p.getAttribute('d') ?? '').split('M').length - 1 })));
    const points = (name: string): Promise<number[]> => page.$$eval(`${series(name)} circle.point`, (cs) => cs.map((c) => Number(c.getAttribute('data-x'))));

    // clinic-b missed round 3: two separate segments, none across round 3, and no point at 3.
    expect(await segments('clinic-b')).toEqual([{ from: 1, to: 2, moves: 1 }, { from: 4, to: 5, moves: 1 }]);
    expect(await points('clinic-b')).toEqual([1, 2, 4, 5]);
    // Geometrically too: nothing of clinic-b's line lies over round 3's x position.
    const x3 = Number(await page.getAttribute(`${series('clinic-a')} circle.point[data-x="3"]`, 'cx'));
    const spans = await page.$$eval(`${series('clinic-b')} path.segment`, (paths) => paths.map((p) => {
      const b = (p as SVGGraphicsElement).getBBox();
      return { lo: b.x, hi: b.x + b.width };
    }));
    expect(spans).toHaveLength(2);
    expect(spans.every(({ lo, hi }) => hi < x3 || lo > x3)).toBe(true);
    // clinic-c reported in rounds 3 and 5 (4 withheld): points only, no line at all.
    expect(await segments('clinic-c')).toEqual([]);
    expect(await points('clinic-c')).toEqual([3, 5]);
    expect(await segments('clinic-a')).toEqual([{ from: 1, to: 5, moves: 1 }]);
    const legend = await page.textContent(`figure:has(${siteChart}) ul.legend`);
    expect(legend).toContain('not reported in round 3');
    expect(legend).toContain('withheld in round 4');
    await page.click('details[data-key="data-site-auc"] summary');
    const table = await page.textContent('details[data-key="data-site-auc"] table');
    expect(table).toContain('not reported');
    expect(table).toContain('withheld');

    // The set of reporting clinics changed at rounds 3 (+c −b) and 4 (+b): marked on both global charts.
    for (const chart of ['global-auc', 'global-loss']) {
      const marks = await page.$$eval(`svg[data-chart="${chart}"] g.mark`, (gs) => gs.map((g) => [Number(g.getAttribute('data-round')), g.querySelector('text')?.textContent]));
      expect(marks, chart).toEqual([[3, '+clinic-c −clinic-b'], [4, '+clinic-b']]);
      expect(await page.locator(`figure:has(svg[data-chart="${chart}"]) li.legend-mark`).textContent()).toContain('reporting clinics changed');
    }
    expect(await page.getAttribute('#reporting-changes', 'data-changes')).toBe('2');
    expect(await page.textContent('#reporting-changes li[data-round="3"]')).toContain('joined clinic-c; missing clinic-b');
    // The global line itself has no gap (the global value exists every round).
    expect((await page.$$eval('svg[data-chart="global-auc"] g.series[data-series="AUC"] path.segment', (p) => p.length))).toBe(1);

    // Why round 3 failed, and which task failed or was declined, per site.
    const failed = page.locator('#timeline tr[data-round="3"][data-attempt="1"]');
    expect(await failed.locator('.fail-reason').textContent()).toBe('Failed: quorum 2 not reached: 1 accepted (clinic-a); 1 failed training (clinic-b): out of memory while training');
    expect(await failed.locator('li.task-failed').textContent()).toMatch(/^clinic-b training failed: out of memory while training · /);
    const retried = page.locator('#timeline tr[data-round="3"][data-attempt="2"]');
    expect(await retried.locator('li.task-declined').textContent()).toMatch(/^clinic-b evaluation declined: not ready: cohort too small for evaluation · /);
    expect(await retried.locator('td.task-failures li').count()).toBe(1); // clinic-c's rejection is under "Rejected"
    expect(await retried.textContent()).toContain('NON_FINITE');

    // The normalisation fallback warning and the withheld-figures note.
    expect(await page.textContent('#normalization-warning')).toContain('hba1c');
    expect(await page.textContent('#normalization-warning')).toContain('"range"');
    expect(await page.textContent('#metrics-withheld')).toContain('clinic-c (round 4)');
    expect(await page.textContent('#metrics-withheld')).toContain('minCellCount');
    await page.screenshot({ path: join(artifacts, 'dashboard-study-gaps.png'), fullPage: true });
  });
});
