import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { FileBlobStore } from '../blobs/file-blob-store.js';
import type { Coordinator } from '../coordinator.js';
import type { SeriesActions } from '../series/types.js';
import { SqliteStore } from '../sqlite-store.js';
import type { PromotionRecord, SeriesRecord } from '../store.js';
import { LogSink } from '../test-support.js';
import { MovableClock } from '../series/clock.js';
import { startAdminServer } from './http.js';
import { fillSeries, seriesTemplateFixture } from './series-test-support.js';

let dir: string;
let store: SqliteStore;
let server: { port: number; close: () => Promise<void> } | undefined;
let calls: unknown[][];

const TOKEN = 'a'.repeat(43);
const record = (name: string, state: SeriesRecord['state'] = 'active'): SeriesRecord => ({
  name, template: JSON.stringify(seriesTemplateFixture(name)), templateSha256: 'f'.repeat(64), state, createdBy: 'admin', createdAt: 1, updatedAt: 2,
});
const promotion: PromotionRecord = { id: 9, seriesName: 'sepsis', run: null, fromVersion: 2, toVersion: 1, action: 'rollback', decidedBy: 'operator:admin', evidence: JSON.stringify({ promote: true, reasons: ['rolled back'], tooSmall: [], worse: [] }), at: 3 };

/** Records each call; `promote` of version 7 is NOT_FOUND and `runNow` is FAILED_PRECONDITION, as the service answers them. */
const fake: SeriesActions = {
  create: async (template, by) => (calls.push(['create', template, by]), record('sepsis')),
  update: async (name, template, by) => (calls.push(['update', name, template, by]), record(name)),
  setState: async (name, state, by) => (calls.push(['setState', name, state, by]), record(name, state)),
  runNow: async (name, by) => {
    calls.push(['runNow', name, by]);
    throw new FedlhsError('SERIES_BUSY', `run 3 of series ${name} is in progress`);
  },
  promote: async (name, version, by) => {
    calls.push(['promote', name, version, by]);
    if (version === 7) throw new FedlhsError('NOT_FOUND', `no release ${name} v7`, { details: { what: 'release' } });
    return { ...promotion, action: 'promote', toVersion: version };
  },
  rollback: async (name, by) => (calls.push(['rollback', name, by]), promotion),
};

async function start(series: SeriesActions | undefined, seriesClock?: MovableClock): Promise<void> {
  const nothing = { inc: () => undefined };
  const coordinator = {
    store, events: new EventEmitter(), limits: { authFailuresPerMinute: 1000 }, metrics: { authFailures: nothing, authThrottled: nothing },
    checkpoints: { blobs: new FileBlobStore(join(dir, 'blobs')) }, chunkBytes: 1 << 16, nodes: { list: () => store.listNodes() },
  } as unknown as Coordinator;
  server = await startAdminServer(coordinator, pino({ level: 'silent' }, new LogSink()), { host: '127.0.0.1', port: 0, token: TOKEN, reportsDir: '', series, seriesClock });
}

/** An admin API call: status and parsed body (`any`: the tests read differently shaped answers). */
async function call(method: string, path: string, body?: unknown, token = TOKEN): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${server!.port}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlhs-series-http-'));
  store = new SqliteStore(join(dir, 'state.db'));
  calls = [];
  await fillSeries(store);
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('series admin routes', () => {
  it('shows series to viewers and refuses them every action', async () => {
    await start(fake);
    const viewer = (await call('POST', '/api/v1/operators', { name: 'vera', role: 'viewer' })).body.token as string;
    const list = await call('GET', '/api/v1/series', undefined, viewer);
    expect(list).toMatchObject({ status: 200, body: { series: [{ name: 'sepsis', runCount: 3, championVersion: 2 }] } });
    const detail = await call('GET', '/api/v1/series/sepsis', undefined, viewer);
    expect(detail.status).toBe(200);
    expect(detail.body.runs).toHaveLength(3);
    expect(detail.body.performance[1].sites.map((s: { site: string }) => s.site)).toEqual(['north', 'south']);
    for (const [method, path] of [['POST', '/api/v1/series'], ['PUT', '/api/v1/series/sepsis'], ['POST', '/api/v1/series/sepsis/pause'], ['POST', '/api/v1/series/sepsis/resume'],
      ['POST', '/api/v1/series/sepsis/run-now'], ['POST', '/api/v1/series/sepsis/promote'], ['POST', '/api/v1/series/sepsis/rollback']] as const) {
      const r = await call(method, path, { version: 1 }, viewer);
      expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 403, 'ROLE_REQUIRED']);
    }
    expect(calls).toEqual([]);
  });

  it('passes admin actions to the series service under the operator\'s name and answers their records', async () => {
    await start(fake);
    const template = seriesTemplateFixture('sepsis');
    const created = await call('POST', '/api/v1/series', template);
    expect(created).toMatchObject({ status: 201, body: { name: 'sepsis', state: 'active', template: { kind: 'StudySeries' }, createdAt: '1970-01-01T00:00:00.001Z' } });
    expect((await call('PUT', '/api/v1/series/sepsis', template)).status).toBe(200);
    expect((await call('POST', '/api/v1/series/sepsis/pause')).body.state).toBe('paused');
    expect((await call('POST', '/api/v1/series/sepsis/resume')).body.state).toBe('active');
    expect(await call('POST', '/api/v1/series/sepsis/promote', { version: 2 })).toMatchObject({ status: 200, body: { action: 'promote', toVersion: 2, evidence: { reasons: ['rolled back'] }, error: null } });
    expect(await call('POST', '/api/v1/series/sepsis/rollback')).toMatchObject({ status: 200, body: { action: 'rollback', fromVersion: 2, toVersion: 1, at: '1970-01-01T00:00:00.003Z' } });
    expect(calls).toEqual([
      ['create', template, 'admin'], ['update', 'sepsis', template, 'admin'], ['setState', 'sepsis', 'paused', 'admin'], ['setState', 'sepsis', 'active', 'admin'],
      ['promote', 'sepsis', 2, 'admin'], ['rollback', 'sepsis', 'admin'],
    ]);
  });

  it('answers bad input, unknown series and refused actions with errors naming the cause', async () => {
    await start(fake);
    expect(await call('GET', '/api/v1/series/nothing')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'no series nothing' } } });
    expect(await call('GET', '/api/v1/series/Bad%20Name')).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', details: { field: 'name' } } } });
    expect(await call('POST', '/api/v1/series/sepsis/promote', {})).toMatchObject({ status: 400, body: { error: { message: 'version: required (the release version to make champion)' } } });
    expect(await call('POST', '/api/v1/series/sepsis/promote', { version: '2' })).toMatchObject({ status: 400, body: { error: { message: 'version: a number is required, got "2"' } } });
    expect(await call('POST', '/api/v1/series/sepsis/promote', { version: 0 })).toMatchObject({ status: 400, body: { error: { details: { field: 'version' } } } });
    expect(await call('POST', '/api/v1/series/sepsis/promote', { version: 7 })).toMatchObject({ status: 404, body: { error: { message: 'no release sepsis v7' } } });
    expect(await call('POST', '/api/v1/series/sepsis/run-now')).toMatchObject({ status: 409, body: { error: { message: 'run 3 of series sepsis is in progress' } } });
    expect(await call('PUT', '/api/v1/series/sepsis', seriesTemplateFixture('other'))).toMatchObject({ status: 400, body: { error: { details: { field: 'name' } } } });
    expect(await call('DELETE', '/api/v1/series/sepsis')).toMatchObject({ status: 405 });
    expect(calls.map((c) => c[0])).toEqual(['promote', 'runNow']);
  });

  it('still shows series without the series service; an action is then an internal error', async () => {
    await start(undefined);
    expect((await call('GET', '/api/v1/series')).status).toBe(200);
    // A coordinator always has its series service: without one (a wiring error) an action is an internal error, logged.
    expect(await call('POST', '/api/v1/series/sepsis/rollback')).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL' } } });
  });
});

describe('the series clock (series.simulatedClock)', () => {
  it('is real time and cannot be moved on a coordinator without a simulated clock', async () => {
    await start(fake);
    const got = await call('GET', '/api/v1/series-clock');
    expect(got).toMatchObject({ status: 200, body: { simulated: false } });
    const moved = await call('POST', '/api/v1/series-clock', { now: Date.UTC(2024, 0, 1) });
    expect(moved.status).toBe(409);
    expect(moved.body.error.message).toMatch(/only a coordinator started with series\.simulatedClock/);
  });

  it('moves a simulated clock: anywhere the first time, then forward only, fires the timers it passes, audited', async () => {
    const clock = new MovableClock();
    await start(fake, clock);
    let fired = 0;
    clock.setTimer(365 * 86_400_000, () => fired++);
    // Real time goes on from where the clock was set (a few ms here).
    const first = (await call('POST', '/api/v1/series-clock', { now: Date.UTC(2023, 0, 1) })).body;
    expect(first.simulated).toBe(true);
    expect(first.now - Date.UTC(2023, 0, 1)).toBeGreaterThanOrEqual(0);
    expect(first.now - Date.UTC(2023, 0, 1)).toBeLessThan(60_000);
    const later = Date.UTC(2024, 0, 1);
    clock.setTimer(later - clock.now(), () => fired++);
    expect((await call('POST', '/api/v1/series-clock', { now: later })).status).toBe(200);
    expect(fired).toBe(1);
    const back = await call('POST', '/api/v1/series-clock', { now: Date.UTC(2023, 5, 1) });
    expect(back.status).toBe(400);
    expect(back.body.error.message).toMatch(/moves forward only/);
    expect((await call('POST', '/api/v1/series-clock', { now: 'tomorrow' })).status).toBe(400);
    expect((await store.listAdminActions(10)).filter((a) => a.action === 'series.clock').map((a) => a.detail?.slice(0, 16)).sort()).toEqual(['2023-01-01T00:00', '2024-01-01T00:00']);
  });
});
