import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import { CoordinatorMetrics } from './metrics.js';
import { StorageHealth, directoryProbe, storageFaultKind, toStorageFault, type StorageProbe } from './storage-health.js';
import { LogSink, ManualClock } from './test-support.js';

const errno = (code: string, message = `${code}: failed`): Error => Object.assign(new Error(message), { code });

describe('storageFaultKind: one classification of storage errors', () => {
  it.each([
    ['ENOSPC', 'disk_full'], ['EDQUOT', 'disk_full'], ['EROFS', 'read_only'], ['EACCES', 'read_only'], ['EIO', 'io_error'],
    ['SQLITE_FULL', 'disk_full'], ['SQLITE_READONLY_DBMOVED', 'read_only'], ['SQLITE_IOERR_FSYNC', 'io_error'], ['SQLITE_CANTOPEN', 'unavailable'], ['SQLITE_BUSY', 'unavailable'],
    ['53100', 'disk_full'], ['25006', 'read_only'], ['57P03', 'unavailable'], ['08006', 'unavailable'],
  ])('%s → %s', (code, kind) => {
    expect(storageFaultKind(errno(code))).toBe(kind);
  });

  it('looks through causes and STORE_UNAVAILABLE, and leaves everything else alone', () => {
    expect(storageFaultKind(new Error('wrapped', { cause: errno('ENOSPC') }))).toBe('disk_full');
    expect(storageFaultKind(new FedlhsError('STORE_UNAVAILABLE', 'x', { details: { why: 'read_only' } } as never))).toBe('read_only');
    // A store closed at shutdown is not a fault.
    expect(storageFaultKind(new FedlhsError('STORE_UNAVAILABLE', 'the coordinator database is closed'))).toBeUndefined();
    for (const other of [errno('ENOENT'), errno('SQLITE_CONSTRAINT_UNIQUE'), errno('23505'), new FedlhsError('STALE', 'x'), new Error('plain'), undefined]) {
      expect(storageFaultKind(other)).toBeUndefined();
    }
  });

  it('a real SQLite read-only write is read_only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-sh-'));
    try {
      const db = new Database(join(dir, 'x.db'));
      db.exec('CREATE TABLE t (x)');
      db.pragma('query_only = 1');
      let caught: unknown;
      try {
        db.exec('INSERT INTO t VALUES (1)');
      } catch (err) {
        caught = err;
      }
      db.close();
      expect(storageFaultKind(caught)).toBe('read_only');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('toStorageFault names what failed and where', () => {
    const fault = toStorageFault(errno('ENOSPC', 'ENOSPC: no space left on device, write'), 'write the candidate model', '/data/blobs');
    expect(fault).toMatchObject({ code: 'STORAGE_FAULT', details: { kind: 'disk_full', op: 'write the candidate model' } });
    expect(fault?.message).toMatchInlineSnapshot(`"disk full at /data/blobs: could not write the candidate model (ENOSPC: no space left on device, write)"`);
    expect(toStorageFault(new Error('bug'), 'x')).toBeUndefined();
  });
});

describe('StorageHealth', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function setup(probes?: StorageProbe[]) {
    const clock = new ManualClock(1_000);
    const log = new LogSink();
    const metrics = new CoordinatorMetrics();
    let down = false;
    const health = new StorageHealth({
      log: pino({ level: 'debug' }, log), metrics, now: () => clock.now(), setTimer: (ms, fn) => clock.setTimer(ms, fn), intervalMs: 10_000, faultIntervalMs: 1_000,
      probes: probes ?? [{ name: 'disk', run: async () => {
        if (down) throw errno('EROFS', 'EROFS: read-only file system');
      } }],
    });
    const gauge = async (): Promise<number | undefined> => (await metrics.storageHealthy.get()).values[0]?.value;
    const faults = async (kind: string): Promise<number> => (await metrics.storageFaults.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
    return { clock, log, health, gauge, faults, setDown: (d: boolean) => (down = d) };
  }

  it('a reported fault makes it degraded (log storage.fault once, gauge 0, counter); the first passing probe recovers it and releases the waiters', async () => {
    const s = setup();
    s.health.start();
    expect(s.health.health()).toEqual({ status: 'ok', storage: { healthy: true, kind: null, since: null, detail: null, faults: 0 } });
    s.setDown(true);
    const fault = s.health.report(errno('ENOSPC', 'ENOSPC: no space left on device'), 'write the database', '/data/coordinator.db');
    s.health.report(errno('ENOSPC'), 'write again');
    expect(fault?.code).toBe('STORAGE_FAULT');
    expect(s.health.health()).toMatchObject({ status: 'degraded', storage: { healthy: false, kind: 'disk_full', since: 1_000, faults: 2 } });
    expect(s.health.status().detail).toContain('/data/coordinator.db');
    expect(s.log.lines.filter((l) => l.event === 'storage.fault')).toHaveLength(1);
    expect(await s.gauge()).toBe(0);
    expect(await s.faults('disk_full')).toBe(2);
    // Not a storage fault: ignored.
    expect(s.health.report(new Error('bug'), 'x')).toBeUndefined();

    let released = false;
    const waiting = s.health.whenHealthy().then(() => (released = true));
    s.clock.advance(1_000);
    await new Promise((r) => setImmediate(r));
    expect(released).toBe(false);
    expect(s.health.status().kind).toBe('disk_full'); // the episode keeps its first kind
    s.setDown(false);
    s.clock.advance(1_000);
    await waiting;
    expect(s.health.healthy).toBe(true);
    expect(await s.gauge()).toBe(1);
    expect(s.log.lines.find((l) => l.event === 'storage.recovered')).toMatchObject({ kind: 'disk_full', faultMs: 2_000 });
    s.health.stop();
  });

  it('the periodic probe finds a fault nobody reported; whenHealthy resolves at once when healthy, on abort, and on stop', async () => {
    const s = setup();
    s.health.start();
    await s.health.whenHealthy();
    s.setDown(true);
    s.clock.advance(10_000);
    await s.log.waitFor((l) => l.event === 'storage.fault');
    expect(s.health.status()).toMatchObject({ healthy: false, kind: 'read_only' });
    const abort = new AbortController();
    const aborted = s.health.whenHealthy(abort.signal);
    abort.abort();
    await aborted;
    const stopped = s.health.whenHealthy();
    s.health.stop();
    await stopped;
  });

  it('a probe failing for another reason is logged and does not pin it degraded', async () => {
    const s = setup([{ name: 'broken', run: async () => {
      throw new Error('a bug in the probe');
    } }]);
    expect(await s.health.probe()).toBe(true);
    expect(s.log.lines.find((l) => l.event === 'storage.probe_failed')).toMatchObject({ probe: 'broken' });
  });

  it('directoryProbe writes, fsyncs and removes a file in each directory (creating it), leaving nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-probe-'));
    dirs.push(dir);
    await directoryProbe('data directory', () => [dir, join(dir, 'spool')]).run();
    expect(readdirSync(dir)).toEqual(['spool']);
    expect(readdirSync(join(dir, 'spool'))).toEqual([]);
  });
});
