import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, repoRoot, startAgent, startCoordinator, startStudy, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();
const CHROMIUM = process.env.FEDLHS_CHROMIUM ?? '/usr/bin/chromium';
let browser: Browser | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
});

describe('operator dashboard in headless Chromium', () => {
  it('shows rounds and chart points arrive live, a killed clinic going offline and leaving the reporting set, and no admin controls to a viewer', async () => {
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set FEDLHS_CHROMIUM`).toBe(true);
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const agents = [];
    const nodeIds: string[] = [];
    for (const [i, name] of ['north', 'south'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 300, seed: 30 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      nodeIds.push(await enrolAgent(c, o));
      agents.push(ws.track(startAgent(o)));
    }
    // Quorum 1: the study keeps going after a clinic is killed.
    const study = await startStudy(c, learnableManifest({ name: 'watched', rounds: 400, min: 1, max: 2, quorum: 1 }));
    await c.proc.waitForEvent('round.committed', { round: 1 });
    const viewer = (await c.admin<{ token: string }>('POST', '/api/v1/operators', { name: 'vic', role: 'viewer' })).body.token;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const base = `http://127.0.0.1:${c.adminPort}`;
    await page.goto(`${base}/`);
    await page.fill('#token', c.adminToken);
    await page.click('#login');
    await page.waitForSelector('#operator');
    expect(await page.textContent('#operator')).toContain('admin');

    // Study page: rounds advance and the AUC chart gains points without a reload.
    await page.goto(`${base}/#/studies/${study.id}`);
    await page.waitForSelector(`#study[data-study-id="${study.id}"]`);
    await page.waitForSelector('#timeline tr[data-round]');
    const points = () => page.locator('svg[data-chart="global-auc"] circle.point').count();
    await page.waitForFunction(() => document.querySelectorAll('svg[data-chart="global-auc"] circle.point').length >= 1);
    const before = await points();
    const roundsBefore = await page.locator('#timeline tr[data-round]').count();
    await page.waitForFunction((n) => document.querySelectorAll('svg[data-chart="global-auc"] circle.point').length > n, before, { timeout: 60_000 });
    // The chart point and the next round's timeline row arrive separately: wait for the row
    // itself, not for its neighbour the chart point.
    await page.waitForFunction((n) => document.querySelectorAll('#timeline tr[data-round]').length > n, roundsBefore, { timeout: 60_000 });
    expect(await page.locator('#timeline tr[data-round]').count()).toBeGreaterThan(roundsBefore);
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard-study.png'), fullPage: true });

    // A clinic whose agent is killed goes offline on the overview, live.
    await page.goto(`${base}/#/`);
    await page.waitForSelector(`#clinics tr[data-node-id="${nodeIds[1]}"][data-online="true"]`);
    agents[1]!.kill('SIGKILL');
    await page.waitForSelector(`#clinics tr[data-node-id="${nodeIds[1]}"][data-online="false"]`, { timeout: 30_000 });
    mkdirSync(join(repoRoot, 'artifacts'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard.png'), fullPage: true });
    // The admin sees the admin controls.
    for (const id of ['#start-study', '#issue-token', '#create-operator', `[data-key="revoke-${nodeIds[0]}"]`, `[data-key="stop-${study.id}"]`]) {
      expect(await page.locator(id).count(), id).toBe(1);
    }

    // The study goes on with the other clinic: the killed one leaves the set of clinics the
    // global values are pooled over, which the global chart marks ("−south"), and south's line ends.
    await page.goto(`${base}/#/studies/${study.id}`);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('svg[data-chart="global-auc"] g.mark text')).some((t) => /−south/.test(t.textContent ?? '')), undefined, { timeout: 120_000 });
    expect(await page.locator('#reporting-changes li', { hasText: 'missing south' }).count()).toBeGreaterThan(0);
    // south has no point at the latest round with a global value: its line has ended.
    const lastRound = async (selector: string): Promise<number> => Math.max(0, ...(await page.$$eval(selector, (cs) => cs.map((c) => Number(c.getAttribute('data-x'))))));
    expect(await lastRound('svg[data-chart="site-auc"] g.series[data-series="south"] circle.point')).toBeLessThan(await lastRound('svg[data-chart="global-auc"] g.series[data-series="AUC"] circle.point'));
    await page.screenshot({ path: join(repoRoot, 'artifacts', 'dashboard-study-after-kill.png'), fullPage: true });

    // A viewer sees no admin controls at all; the coordinator refuses the call anyway.
    const viewerPage = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    viewerPage.on('pageerror', (e) => errors.push(e.message));
    await viewerPage.goto(`${base}/`);
    await viewerPage.fill('#token', viewer);
    await viewerPage.click('#login');
    await viewerPage.waitForSelector('#operator');
    expect(await viewerPage.textContent('#operator')).toContain('viewer');
    await viewerPage.waitForSelector(`#clinics tr[data-node-id="${nodeIds[0]}"]`);
    await viewerPage.waitForSelector(`#studies tr[data-study-id="${study.id}"]`);
    const adminControls = (): Promise<number> => viewerPage.locator('[data-admin-action], #start-study, #issue-token, #create-operator, #stop-study, [data-key^="revoke-"], [data-key^="stop-"]').count();
    expect(await adminControls()).toBe(0);
    await viewerPage.goto(`${base}/#/studies/${study.id}`);
    await viewerPage.waitForSelector(`#study[data-study-id="${study.id}"]`);
    expect(await adminControls()).toBe(0);
    const refused = await viewerPage.evaluate(async () => {
      const res = await fetch('/api/v1/join-tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ site: 'clinic-x', ttlSeconds: 3600 }) });
      return { status: res.status, body: await res.text() };
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('needs the admin role');
    const audit = await c.admin<{ actions: { action: string }[] }>('GET', '/api/v1/audit');
    // Only the two enrolments' tokens were issued (by admin); the viewer's attempt left nothing.
    expect(audit.body.actions.filter((a) => a.action === 'join-token.create')).toHaveLength(2);
    expect(errors).toEqual([]);
    await c.admin('POST', `/api/v1/studies/${study.id}/stop`);
  });
});
