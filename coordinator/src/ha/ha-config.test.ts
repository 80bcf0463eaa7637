import { describe, expect, it } from 'vitest';
import { isFedlhsError } from '@fedlhs/core';
import { loadCoordinatorConfig } from '../config.js';

const PG = { FEDLHS_TLS_MODE: 'plaintext', FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: 'postgres://u:pw@db/fedlhs' };
const refused = (env: Record<string, string>): { message: string; key: unknown } => {
  try {
    loadCoordinatorConfig({ env, args: [] });
  } catch (err) {
    expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
    return { message: (err as Error).message, key: (err as { details?: { key?: unknown } }).details?.key };
  }
  throw new Error('expected CONFIG_INVALID');
};

describe('ha.* configuration', () => {
  it('is off by default, and on with PostgreSQL state and blobs', () => {
    expect(loadCoordinatorConfig({ env: PG, args: [] }).ha).toEqual({ enabled: false, leaseSeconds: 10, advertiseAddress: '' });
    const c = loadCoordinatorConfig({ env: { ...PG, FEDLHS_HA_ENABLED: 'true', FEDLHS_HA_LEASE_SECONDS: '4', FEDLHS_HA_ADVERTISE_ADDRESS: 'coord-a.example:7443' }, args: [] });
    expect(c.ha).toEqual({ enabled: true, leaseSeconds: 4, advertiseAddress: 'coord-a.example:7443' });
    expect(loadCoordinatorConfig({ env: PG, args: ['--ha-enabled', '--ha-lease-seconds', '6'] }).ha).toMatchObject({ enabled: true, leaseSeconds: 6 });
  });

  it('refuses active/standby without a shared database or with file blobs, naming the key', () => {
    expect(refused({ FEDLHS_TLS_MODE: 'plaintext', FEDLHS_HA_ENABLED: 'true' })).toEqual({ message: "ha.enabled: active/standby needs store.kind 'postgres' (both coordinators on one database)", key: 'ha.enabled' });
    expect(refused({ ...PG, FEDLHS_HA_ENABLED: 'true', FEDLHS_BLOB_STORE: 'files' }).key).toBe('blobs.store');
  });

  it('refuses a lease out of range and an advertised address that is not host:port', () => {
    expect(refused({ ...PG, FEDLHS_HA_ENABLED: 'true', FEDLHS_HA_LEASE_SECONDS: '1' }).message).toBe('ha.leaseSeconds: must be from 2 to 300: value was 1');
    expect(refused({ ...PG, FEDLHS_HA_ADVERTISE_ADDRESS: 'a:1,b:2' })).toEqual({ message: 'ha.advertiseAddress: must be host:port with a port from 1 to 65535 (or empty): value was "a:1,b:2"', key: 'ha.advertiseAddress' });
  });
});

describe('ha.enabled start-up', () => {
  it('refuses to start without an admin token shared with the other coordinator (a generated one would differ), before touching the database', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { startHaCoordinatorApp } = await import('./ha-app.js');
    const pino = (await import('pino')).default;
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-ha-token-'));
    try {
      const config = loadCoordinatorConfig({ env: { ...PG, FEDLHS_HA_ENABLED: 'true', FEDLHS_DATA_DIR: dir }, args: [] });
      const err = await startHaCoordinatorApp(config, pino({ level: 'silent' })).then(() => undefined, (e: unknown) => e);
      expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toBe(`ha.enabled: set admin.token (FEDLHS_ADMIN_TOKEN) to the same value on both coordinators, or copy the other one's ${join(dir, 'admin-token')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
