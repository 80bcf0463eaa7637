import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '@fedlhs/coordinator';
import { coordinatorMain, repoRoot, startCoordinator } from '@fedlhs/tests';
import { fillSeries, seriesTemplateFixture } from '../../coordinator/src/admin/series-test-support.js';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const CHROMIUM = process.env.FEDLHS_CHROMIUM ?? '/usr/bin/chromium';
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
});

/**
 * The operators' surfaces of a series (issue 13, Flow 7) on a real coordinator whose store
 * holds series "sepsis" with released runs, champion decisions and per-site figures
 * (series-test-support.ts): the CLI's list and show, its input errors, and the dashboard's
 * Series pages with small cells withheld, admin controls behind a confirmation, none for
 * viewers, and a live refresh when the champion alias moves.
 */
describe('series surfaces (CLI and dashboard)', () => {
  it('lists and shows a series from the CLI and the dashboard, small cells withheld, controls for admins only', async () => {
    const dataDir = join(ws.dir(), 'coordinator');
    mkdirSync(dataDir, { recursive: true });
    const seeded = new SqliteStore(join(dataDir, 'coordinator.db'));
    // Runs on 1 January of the last three years: all decided before anything done here, the next run not due yet.
    const year = new Date().getUTCFullYear();
    await fillSeries(seeded, { running: false, firstYear: year - 2 });
    await seeded.close();
    const c = ws.track(await startCoordinator({ dataDir }));
    const vic = (await c.admin<{ token: string }>('POST', '/api/v1/operators', { name: 'vic', role: 'viewer' })).body.token;

    // The CLI.
    const env = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_ADMIN_TOKEN: c.adminToken };
    const list = await runCli(coordinatorMain, ['series', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`\\nsepsis +active +cron 0 3 1 1 \\* \\(UTC\\) +champion +auto +3 +- +v2 +${year + 1}-01-01T03:00:00.000Z\\n`));
    const show = await runCli(coordinatorMain, ['series', 'show', 'sepsis'], { ...env, FEDLHS_ADMIN_TOKEN: vic });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('kept v1 as champion over v2, by rule (run 2)\n    pooled AUC difference +0.020\n');
    expect(show.stdout).toMatch(/\n3 +sepsis-run3 +FAILED .* +schedule +v2 +- +-\n/);
    expect(show.stdout).toMatch(/\nnorth +0\.800 \[0\.761, 0\.839\] +0\.820 \[0\.781, 0\.859\] Δ \+0\.030 \[\+0\.010, \+0\.050\]\n/);
    expect(show.stdout).not.toMatch(/\b(tiny|east|west)\b/);
    const missing = await runCli(coordinatorMain, ['series', 'show', 'nothing'], env);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('404 NOT_FOUND: no series nothing')]);
    const badVersion = await runCli(coordinatorMain, ['series', 'promote', 'sepsis', 'latest'], env);
    expect([badVersion.code, badVersion.stderr]).toEqual([2, expect.stringContaining('version "latest": a release version (a whole number from 1) is required')]);
    const noFile = await runCli(coordinatorMain, ['series', 'create', join(ws.dir(), 'absent.json')], env);
    expect([noFile.code, noFile.stderr]).toEqual([2, expect.stringContaining('cannot read series template')]);
    writeFileSync(join(ws.dir(), 'broken.json'), '{"kind": "StudySeries",');
    const broken = await runCli(coordinatorMain, ['series', 'create', join(ws.dir(), 'broken.json')], env);
    expect([broken.code, broken.stderr]).toEqual([2, expect.stringContaining('broken.json is not JSON')]);
    writeFileSync(join(ws.dir(), 'template.json'), JSON.stringify(seriesTemplateFixture('other')));
    const viewerCreate = await runCli(coordinatorMain, ['series', 'create', join(ws.dir(), 'template.json')], { ...env, FEDLHS_ADMIN_TOKEN: vic });
    expect([viewerCreate.code, viewerCreate.stderr]).toEqual([1, expect.stringContaining('403 ROLE_REQUIRED')]);

    // The dashboard.
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
      await page.click('#nav a[href="#/series"]');
      await page.waitForSelector('#series-list tr[data-series="sepsis"]').catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\npage errors: ${errors.join(' | ')}\npage: ${await page.textContent('main')}`);
      });
      return page;
    };
    const page = await login(c.adminToken);
    expect(await page.locator('#series-list tr[data-series="sepsis"]').textContent()).toContain('v2');
    await page.click('[data-key="series-link-sepsis"]');
    await page.waitForSelector('#series[data-series="sepsis"] #series-performance');
    expect(await page.locator('#series-runs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')))).toEqual(['3', '2', '1']);
    expect(await page.locator('#series-runs tr[data-run="2"]').textContent()).toContain('Kept v1; v2 not promoted');
    expect(await page.locator('#series-history li[data-action]').evaluateAll((lis) => lis.map((l) => l.getAttribute('data-action')))).toEqual(['promote', 'keep', 'promote']);
    expect(await page.locator('#series-history li[data-action="keep"] .reasons').textContent()).toContain('its 95 % interval does not lie above 0');
    expect(await page.locator('#series-performance tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-site')))).toEqual(['north', 'south', 'pooled']);
    expect(await page.locator('#series-performance tr[data-site="north"]').textContent()).toContain('Δ +0.030 [+0.010, +0.050]');
    expect(await page.locator('svg[data-chart="series-auc-sepsis"] circle.point').count()).toBe(4);
    expect(await page.textContent('#series')).toContain('Run 2: 3 clinic(s) withheld');
    expect(await page.textContent('#series')).not.toMatch(/\b(tiny|east|west)\b/);
    expect(await page.locator('#series-rollback').isEnabled()).toBe(true);
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard-series.png'), fullPage: true });
    // Promote goes through the confirmation dialog; once done, v2 is the one that can be promoted.
    await page.click('[data-key="promote-sepsis-1"]');
    expect(await page.textContent('#dialog-message')).toContain('Make v1 the champion of sepsis in place of v2?');
    await page.click('#confirm');
    await page.waitForSelector('#series-runs tr[data-run="2"] [data-key="promote-sepsis-2"]');
    expect(await page.locator('#series-history li[data-action]').evaluateAll((lis) => lis.map((l) => l.getAttribute('data-action')))).toEqual(['promote', 'keep', 'promote', 'promote']);
    expect(await page.locator('#series-history li[data-action]').last().textContent()).toContain('promoted by operator admin');

    // The champion moves outside the page (the CLI; a 'series' change event): the open page follows without a reload.
    const promoted = await runCli(coordinatorMain, ['series', 'promote', 'sepsis', '2'], env);
    expect([promoted.code, promoted.stdout], promoted.stderr).toEqual([0, expect.stringMatching(/^\S+Z {2}promoted v2 \(was v1\), by operator:admin \(run 2\)\n {4}promoted by operator admin\n/)]);
    await page.waitForSelector('#series-runs tr[data-run="1"] [data-key="promote-sepsis-1"]');
    const same = await runCli(coordinatorMain, ['series', 'promote', 'sepsis', '2'], env);
    expect([same.code, same.stderr]).toEqual([1, expect.stringMatching(/409 [A-Z_]+: release sepsis v2 is the champion already/)]);

    // A viewer sees the pages and no control on them.
    const viewerPage = await login(vic);
    expect(await viewerPage.locator('[data-admin-action]').count()).toBe(0);
    await viewerPage.click('[data-key="series-link-sepsis"]');
    await viewerPage.waitForSelector('#series-performance tr[data-site="north"]');
    expect(await viewerPage.locator('[data-admin-action]').count()).toBe(0);
    expect(errors).toEqual([]);

    // The actions from the CLI, as the admin: create, update, pause, resume, run now, roll back.
    const created = await runCli(coordinatorMain, ['series', 'create', join(ws.dir(), 'template.json')], env);
    expect([created.code, created.stdout], created.stderr).toEqual([0, 'other\n']);
    expect(created.stderr).toMatch(/fedlhs-agent approve [0-9a-f]{64}/);
    const again = await runCli(coordinatorMain, ['series', 'create', join(ws.dir(), 'template.json')], env);
    expect([again.code, again.stderr]).toEqual([1, expect.stringMatching(/409 [A-Z_]+: series other already exists/)]);
    writeFileSync(join(ws.dir(), 'template2.json'), JSON.stringify(seriesTemplateFixture('other', { description: 'changed' })));
    const updated = await runCli(coordinatorMain, ['series', 'update', 'other', join(ws.dir(), 'template2.json')], env);
    expect([updated.code, updated.stdout], updated.stderr).toEqual([0, expect.stringMatching(/^series other updated, template sha256 [0-9a-f]{64}\n$/)]);
    const renamed = await runCli(coordinatorMain, ['series', 'update', 'sepsis', join(ws.dir(), 'template2.json')], env);
    expect([renamed.code, renamed.stderr]).toEqual([1, expect.stringContaining('400 INVALID_ARGUMENT: name: the template names series "other", the request series sepsis')]);
    expect((await runCli(coordinatorMain, ['series', 'pause', 'other'], env)).stdout).toBe('series other is paused\n');
    expect((await runCli(coordinatorMain, ['series', 'resume', 'other'], env)).stdout).toBe('series other is active\n');
    const ran = await runCli(coordinatorMain, ['series', 'run-now', 'other'], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stderr).toMatch(/^run 1 of series other started as study \S+\n$/);
    const twice = await runCli(coordinatorMain, ['series', 'run-now', 'other'], env);
    expect([twice.code, twice.stderr]).toEqual([1, expect.stringMatching(/409 [A-Z_]+: run 1 of series other .* is still running/)]);
    const rolled = await runCli(coordinatorMain, ['series', 'rollback', 'sepsis'], env);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toMatch(/rolled back to v1 \(from v2\), by operator:admin/);
    const after = await runCli(coordinatorMain, ['series', 'list'], env);
    expect(after.stdout).toMatch(/\nother +active +.* +1 +run 1 \(RUNNING\) +- +- \(after run 1 ends\)\n/);
    expect(after.stdout).toMatch(/\nsepsis +active .* +v1 +/);
    expect(c.proc.events('admin.internal')).toEqual([]);
  });
});
