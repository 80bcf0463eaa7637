import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseDescriptorSchema, type Performance } from '@fedlhs/core';
import { loadFedlhsProto } from '@fedlhs/proto';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { coordinatorMain, enrolAgent, repoRoot, startAgent, startCoordinator, startStudy, waitForRelease, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const CHROMIUM = process.env.FEDLHS_CHROMIUM ?? '/usr/bin/chromium';
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
});

/**
 * An admin API call with any method and token: status, parsed body and headers. `body` is `any`
 * on purpose: the test reads many differently shaped JSON answers and asserts on their fields.
 */
async function call(c: CoordinatorHandle, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers; bytes: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${c.adminPort}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    // a file download
  }
  return { status: res.status, body: parsed, headers: res.headers, bytes };
}

/**
 * A clinic's live performance report, sent with its own node credential over the protocol (as
 * its agent's release monitor would after deploying the release and refreshing its export).
 */
async function reportLive(c: CoordinatorHandle, stateDir: string, performance: Performance, exportFingerprint: string): Promise<{ duplicate: boolean }> {
  const { credential } = JSON.parse(readFileSync(join(stateDir, 'node-credential.json'), 'utf8')) as { credential: string };
  const client = new (loadFedlhsProto().fedlhs.v1.Federation)(c.address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${credential}`);
  return new Promise((resolve, reject) => {
    client.ReportReleasePerformance({ studyName: 'registry', version: 1, exportFingerprint, performance, measuredAtMs: Date.now() }, md, (err, r) => {
      client.close();
      if (err === null) resolve({ duplicate: r!.duplicate });
      else reject(err);
    });
  });
}

/** 200 patients, 40 with the outcome, all in one reliability bin with the given mean prediction. */
const livePerformance = (auc: number, slope: number, meanPredicted: number): Performance => ({
  numExamples: 200, positives: 40, auc, aucStandardError: 0.02, brier: 0.12, calibrationSlope: slope, calibrationIntercept: 0,
  calibration: Array.from({ length: 10 }, (_, b) => (b === 2 ? { count: 200, predictedSum: 200 * meanPredicted, observed: 40 } : { count: 0, predictedSum: 0, observed: 0 })),
});

/** "0.801 [0.760, 0.842]", as the dashboard writes a published AUC. */
const aucOf = (f: { auc: number | null; aucInterval: [number, number] | null } | null): string =>
  f === null || f.auc === null ? '—' : `${f.auc.toFixed(3)}${f.aucInterval === null ? '' : ` [${f.aucInterval[0].toFixed(3)}, ${f.aucInterval[1].toFixed(3)}]`}`;

describe('release registry (admin API, CLI and dashboard)', () => {
  it('lists the release of a finished study, sets and removes aliases from the CLI, the API and the dashboard, every change audited by name', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const stateDirs: string[] = [];
    for (const [i, name] of ['north', 'south'].entries()) {
      const dir = join(ws.dir(), name);
      stateDirs.push(join(dir, 'state'));
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 400, seed: 40 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      ws.track(startAgent(o));
    }
    const study = await startStudy(c, learnableManifest({ name: 'registry', rounds: 2, min: 2, max: 2, quorum: 2 }));
    const released = await waitForRelease(c, study.id);
    expect(released).toMatchObject({ studyName: 'registry', version: 1 });
    const detail = await waitForStudyEnd(c, study.id);
    // The study view keeps to validation and training rows (test rows belong to the release).
    expect(detail.metrics.every((m) => m.phase === 'evaluation' || m.phase === 'training')).toBe(true);

    const olivia = (await c.admin<{ token: string }>('POST', '/api/v1/operators', { name: 'olivia', role: 'admin' })).body.token;
    const vic = (await c.admin<{ token: string }>('POST', '/api/v1/operators', { name: 'vic', role: 'viewer' })).body.token;

    // The list and the detail, as a viewer.
    const list = await call(c, vic, 'GET', '/api/v1/releases?study=registry');
    expect(list.status).toBe(200);
    expect(list.body.releases).toHaveLength(1);
    const r = list.body.releases[0];
    expect(r).toMatchObject({ studyName: 'registry', version: 1, studyId: study.id, round: released.round, aliases: [], error: null, selection: { rule: released.rule } });
    expect(r.live).toMatchObject({ pooled: null, sites: [] });
    const shown = await call(c, vic, 'GET', '/api/v1/releases/registry/1');
    expect(shown.status).toBe(200);
    expect(shown.body.files.map((f: { name: string }) => f.name)).toEqual(['manifest.json', 'model.json', 'weights.bin', 'release.json', 'model-card.md', 'envelope.json']);
    expect(releaseDescriptorSchema.safeParse(shown.body.descriptor).success).toBe(true);

    // Each file downloads with the digest the release lists (release.json parses as the format).
    for (const f of shown.body.files as { name: string; sha256: string; url: string }[]) {
      const got = await call(c, vic, 'GET', f.url);
      expect(got.status, f.name).toBe(200);
      expect(got.headers.get('x-fedlhs-sha256'), f.name).toBe(f.sha256);
      expect(createHash('sha256').update(got.bytes).digest('hex'), f.name).toBe(f.sha256);
    }

    // Bad input: a 4xx naming the field; a viewer may not change aliases.
    const field = async (method: string, path: string, body?: unknown): Promise<[number, string | undefined]> => {
      const a = await call(c, olivia, method, path, body);
      return [a.status, a.body?.error?.details?.field ?? a.body?.error?.code];
    };
    expect(await field('PUT', '/api/v1/releases/registry/aliases/7', { version: 1 })).toEqual([400, 'alias']);
    expect(await field('PUT', '/api/v1/releases/registry/aliases/Champion', { version: 1 })).toEqual([400, 'alias']);
    expect(await field('PUT', '/api/v1/releases/registry/aliases/champion', {})).toEqual([400, 'version']);
    expect(await field('PUT', '/api/v1/releases/registry/aliases/champion', { version: 'one' })).toEqual([400, 'version']);
    expect(await field('PUT', '/api/v1/releases/registry/aliases/champion', { version: 2 })).toEqual([404, 'NOT_FOUND']);
    expect(await field('PUT', '/api/v1/releases/Bad!/aliases/champion', { version: 1 })).toEqual([400, 'name']);
    expect(await field('GET', '/api/v1/releases/registry/abc')).toEqual([400, 'version']);
    expect(await field('GET', '/api/v1/releases?study=NO%20SUCH')).toEqual([400, 'study']);
    expect(await field('GET', '/api/v1/releases/registry/1/files/coordinator.db')).toEqual([400, 'file']);
    expect(await field('DELETE', '/api/v1/releases/registry/aliases/champion')).toEqual([404, 'NOT_FOUND']);
    expect((await call(c, vic, 'PUT', '/api/v1/releases/registry/aliases/champion', { version: 1 })).status).toBe(403);

    // The CLI, as olivia.
    const env = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_ADMIN_TOKEN: olivia };
    const alias = await runCli(coordinatorMain, ['release', 'alias', 'registry', 'champion', '1'], env);
    expect([alias.code, alias.stdout], alias.stderr).toEqual([0, 'registry@champion now names version 1\n']);
    const cliList = await runCli(coordinatorMain, ['release', 'list', '--study', 'registry'], env);
    expect(cliList.code, cliList.stderr).toBe(0);
    expect(cliList.stdout).toMatch(new RegExp(`registry\\s+v1\\s+${released.round}\\s+${released.rule}\\s+.*champion\\s+no reports`));
    const cliShow = await runCli(coordinatorMain, ['release', 'show', 'registry', '1'], env);
    expect(cliShow.code, cliShow.stderr).toBe(0);
    expect(cliShow.stdout).toContain('aliases: champion');
    expect(cliShow.stdout).toContain('live performance: no site has reported yet');
    expect(cliShow.stdout).toMatch(/release\.json\s+\d+\s+[0-9a-f]{64}/);
    expect(cliShow.stdout).toContain('model card: intended use:');
    const badVersion = await runCli(coordinatorMain, ['release', 'show', 'registry', 'latest'], env);
    expect([badVersion.code, badVersion.stderr]).toEqual([2, expect.stringContaining('version "latest": a release version (a whole number from 1) is required')]);
    const badAlias = await runCli(coordinatorMain, ['release', 'alias', 'registry', '42', '1'], env);
    expect([badAlias.code, badAlias.stderr]).toEqual([1, expect.stringContaining('400 INVALID_ARGUMENT: alias: an alias cannot be a number')]);
    const missing = await runCli(coordinatorMain, ['release', 'alias', 'registry', 'champion', '9'], env);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('404 NOT_FOUND: release registry v9 does not exist')]);
    const viewerCli = await runCli(coordinatorMain, ['release', 'unalias', 'registry', 'champion'], { ...env, FEDLHS_ADMIN_TOKEN: vic });
    expect([viewerCli.code, viewerCli.stderr]).toEqual([1, expect.stringContaining('403 ROLE_REQUIRED')]);
    const unalias = await runCli(coordinatorMain, ['release', 'unalias', 'registry', 'champion'], env);
    expect([unalias.code, unalias.stdout], unalias.stderr).toEqual([0, 'registry@champion removed (was version 1)\n']);
    const again = await runCli(coordinatorMain, ['release', 'unalias', 'registry', 'champion'], env);
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('404 NOT_FOUND: release alias registry:champion is not set')]);

    // Live performance from both clinics: north's calibration has drifted (slope 0.5), south's holds.
    expect(await reportLive(c, stateDirs[0]!, livePerformance(0.97, 0.5, 0.2), 'aa01')).toEqual({ duplicate: false });
    expect(await reportLive(c, stateDirs[1]!, livePerformance(0.97, 1.0, 0.2), 'bb01')).toEqual({ duplicate: false });
    expect(await reportLive(c, stateDirs[1]!, livePerformance(0.97, 1.0, 0.2), 'bb01')).toEqual({ duplicate: true });
    const live = (await call(c, vic, 'GET', '/api/v1/releases/registry/1')).body;
    expect(live.reports).toBe(2);
    expect(live.live.sites.map((x: { siteName: string; status: string }) => [x.siteName, x.status])).toEqual([['north', 'drift'], ['south', 'ok']]);
    expect(live.live.sites[0].reason).toBe('drift: calibration slope 0.500 is outside [0.8, 1.25]');
    expect(live.live.pooled).toMatchObject({ sites: 2, live: { numExamples: 400, positives: 80 } });
    const liveCli = await runCli(coordinatorMain, ['release', 'list'], env);
    expect(liveCli.stdout).toMatch(/2 site\(s\): 1 drift, 1 ok/);
    const liveShow = await runCli(coordinatorMain, ['release', 'show', 'registry', '1'], env);
    expect(liveShow.stdout).toMatch(/north\s+DRIFT\s+200\s+0\.970 \[0\.931, 1\.000\]\s+0\.500\s+20\.0% \/ 20\.0%/);
    expect(liveShow.stdout).toContain('north: drift: calibration slope 0.500 is outside [0.8, 1.25]');

    // The dashboard: the Releases panel shows the version; olivia sets an alias through the dialog.
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set FEDLHS_CHROMIUM`).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    const errors: string[] = [];
    const login = async (token: string) => {
      const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${c.adminPort}/`);
      await page.fill('#token', token);
      await page.click('#login');
      await page.waitForSelector('#operator');
      await page.goto(`http://127.0.0.1:${c.adminPort}/#/releases`);
      await page.waitForSelector('tr[data-release="registry@1"]').catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\npage errors: ${errors.join(' | ')}\npage: ${await page.textContent('main')}`);
      });
      return page;
    };
    const page = await login(olivia);
    const row = page.locator('tr[data-release="registry@1"]');
    expect(await row.textContent()).toContain(`Round ${released.round}`);
    expect(await row.locator('li[data-site]').evaluateAll((els) => els.map((e) => `${e.querySelector('.site')?.textContent}:${e.getAttribute('data-drift')}`)))
      .toEqual(['north:drift', 'south:ok', 'All 2 reporting clinics:drift']);
    await page.click('[data-key="alias-registry-1"]');
    await page.fill('#alias-name', 'challenger');
    expect(await page.textContent('#dialog-message')).toContain('Point registry@challenger at version 1?');
    await page.click('#confirm');
    await page.waitForSelector('tr[data-release="registry@1"] li[data-alias="challenger"]');
    // Removing it again goes through the confirmation dialog too.
    await page.click('[data-key="unalias-registry-challenger"]');
    await page.click('#confirm');
    await page.waitForSelector('tr[data-release="registry@1"] li[data-alias="challenger"]', { state: 'detached' });
    await page.click('[data-key="alias-registry-1"]');
    await page.fill('#alias-name', 'champion');
    await page.click('#confirm');
    await page.waitForSelector('tr[data-release="registry@1"] li[data-alias="champion"]');
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard-releases.png'), fullPage: true });

    // The release's own page: each clinic's published figures beside its live verdict, and the signed files.
    await page.click('[data-key="release-link-registry-1"]');
    await page.waitForSelector('#release[data-release="registry@1"] #release-sites tr[data-site="north"][data-drift="drift"]');
    expect(await page.locator('#release-sites tr[data-site="south"][data-drift="ok"]').count()).toBe(1);
    expect(await page.locator('#release-sites tr[data-site="pooled"]').textContent()).toContain(aucOf(r.test));
    const links = await page.locator('#release ul.files a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect(links).toEqual(shown.body.files.map((f: { url: string }) => f.url));
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard-release.png'), fullPage: true });

    // A viewer sees the panel and no control on it.
    const viewerPage = await login(vic);
    await viewerPage.waitForSelector('tr[data-release="registry@1"] li[data-alias="champion"]');
    expect(await viewerPage.locator('[data-admin-action]').count()).toBe(0);
    await viewerPage.goto(`http://127.0.0.1:${c.adminPort}/#/releases/registry/1`);
    await viewerPage.waitForSelector('#release-sites tr[data-site="north"]');
    expect(await viewerPage.locator('[data-admin-action]').count()).toBe(0);
    expect(errors).toEqual([]);

    // Every change is in the audit trail under the operator's name, and logged.
    const audit = (await c.admin<{ actions: { operator: string; action: string; target: string; detail: string | null }[] }>('GET', '/api/v1/audit')).body.actions
      .filter((a) => a.action.startsWith('release.')).reverse().map((a) => [a.operator, a.action, a.target, a.detail]);
    expect(audit).toEqual([
      ['olivia', 'release.alias', 'registry@champion', 'version 1'],
      ['olivia', 'release.unalias', 'registry@champion', 'was version 1'],
      ['olivia', 'release.alias', 'registry@challenger', 'version 1'],
      ['olivia', 'release.unalias', 'registry@challenger', 'was version 1'],
      ['olivia', 'release.alias', 'registry@champion', 'version 1'],
    ]);
    expect(c.proc.events('release.alias_set').map((l) => [l.alias, l.operator])).toEqual([['champion', 'olivia'], ['challenger', 'olivia'], ['champion', 'olivia']]);
    expect(c.proc.events('admin.internal')).toEqual([]);
  });
});
