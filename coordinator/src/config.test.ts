import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import convict from 'convict';
import { describe, expect, it } from 'vitest';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import { coordinatorConfigSchema, loadCoordinatorConfig, resolveBlobStore, type LoadConfigOptions } from './config.js';

const PLAINTEXT = { FEDLHS_TLS_MODE: 'plaintext' };

function configError(options: LoadConfigOptions): FedlhsError<'CONFIG_INVALID'> {
  try {
    loadCoordinatorConfig(options);
  } catch (err) {
    expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
    return err as FedlhsError<'CONFIG_INVALID'>;
  }
  throw new Error('expected CONFIG_INVALID, the configuration loaded');
}

function jsonFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-coordinator-config-'));
  const path = join(dir, 'coordinator.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

describe('loadCoordinatorConfig', () => {
  it('loads the defaults with tls.mode plaintext', () => {
    expect(loadCoordinatorConfig({ env: PLAINTEXT, args: [] })).toEqual({
      dataDir: './.fedlhs/coordinator',
      store: { kind: 'sqlite', url: '', poolSize: 8 },
      ha: { enabled: false, leaseSeconds: 10, advertiseAddress: '' },
      series: { simulatedClock: false },
      blobs: { store: 'auto', cacheBytes: 1073741824, gcGraceSeconds: 3600, gcIntervalSeconds: 3600 },
      transfer: { inFlightBytes: 0, uploadStreamsPerNode: 1, sessionQueueMessages: 64, uploadIdleSeconds: 120, downloadIdleSeconds: 120 },
      storage: { probeIntervalSeconds: 10, faultProbeIntervalSeconds: 1 },
      limits: {
        downloadStreamsPerNode: 2, downloadStreamsTotal: 256, sessionMessagesPerSecond: 20, sessionMessageBurst: 200,
        maxExamplesPerUpdate: 10_000_000, modelMemoryBytes: 0, authFailuresPerMinute: 30,
      },
      grpc: { host: '0.0.0.0', port: 7443 },
      tls: { mode: 'plaintext', cert: '', key: '', clientCa: '', clientCertificates: 'external', nodeCertificateSeconds: 604800, caValidityDays: 3650, supersededGraceSeconds: 60 },
      admin: { host: '127.0.0.1', port: 7480, token: '' },
      heartbeatIntervalMs: 5000,
      maxHeldUpdateBytes: 4294967296,
      reportsDir: '',
      selectionGraceMs: 2000,
      chunkBytes: 1048576,
      orderStatistics: 'auto',
      backend: 'auto',
      log: { level: 'info', pretty: 'auto' },
    });
  });

  it('reads every kind of value from the environment', () => {
    const c = loadCoordinatorConfig({
      env: {
        ...PLAINTEXT,
        FEDLHS_DATA_DIR: '/var/lib/fedlhs',
        FEDLHS_GRPC_PORT: '9443',
        FEDLHS_ADMIN_TOKEN: 'tok',
        FEDLHS_CHUNK_BYTES: '2097152',
        FEDLHS_BACKEND: 'wasm',
        FEDLHS_ORDER_STATISTICS: 'javascript',
        FEDLHS_LOG_LEVEL: 'debug',
      },
    });
    expect(c.orderStatistics).toBe('javascript');
    expect(c.dataDir).toBe('/var/lib/fedlhs');
    expect(c.grpc.port).toBe(9443);
    expect(c.admin.token).toBe('tok');
    expect(c.chunkBytes).toBe(2097152);
    expect(c.backend).toBe('wasm');
    expect(c.log.level).toBe('debug');
  });

  it('accepts tls mode with both cert and key', () => {
    const c = loadCoordinatorConfig({ env: { FEDLHS_TLS_CERT: '/etc/fedlhs/cert.pem', FEDLHS_TLS_KEY: '/etc/fedlhs/key.pem' } });
    expect(c.tls).toEqual({ mode: 'tls', cert: '/etc/fedlhs/cert.pem', key: '/etc/fedlhs/key.pem', clientCa: '', clientCertificates: 'external', nodeCertificateSeconds: 604800, caValidityDays: 3650, supersededGraceSeconds: 60 });
  });

  it('rejects a port out of range, naming grpc.port and the value', () => {
    const err = configError({ env: { ...PLAINTEXT, FEDLHS_GRPC_PORT: '70000' } });
    expect(err.message).toMatchInlineSnapshot(`"grpc.port: must be a port number from 0 to 65535: value was 70000"`);
  });

  it('rejects a non-numeric port, naming grpc.port and the value as given', () => {
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_GRPC_PORT: 'abc' } }).message).toMatchInlineSnapshot(`"grpc.port: must be a port number from 0 to 65535: value was "abc""`);
    expect(configError({ env: PLAINTEXT, args: ['--grpc-port', 'http'] }).message).toBe('grpc.port: must be a port number from 0 to 65535: value was "http"');
  });

  // Regression: convict coerces 'port'/'nat' values with parseInt, which silently drops trailing
  // characters: '7443x' loads as port 7443 instead of failing validation.
  it('rejects a port with trailing characters', () => {
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_GRPC_PORT: '7443x' } }).message).toContain('grpc.port');
  });

  it('takes ha.advertiseAddress as host:port with a reachable port, or empty', () => {
    for (const ok of ['coord-a.hospital.example:7443', '10.0.0.5:1', '[fd00::5]:65535']) {
      expect(loadCoordinatorConfig({ env: { ...PLAINTEXT, FEDLHS_HA_ADVERTISE_ADDRESS: ok } }).ha.advertiseAddress).toBe(ok);
    }
    for (const bad of ['coord-a:0', 'coord-a:65536', 'coord-a', 'a:b:7443', 'coord a:7443', '[fd00::5]:0']) {
      expect(configError({ env: { ...PLAINTEXT, FEDLHS_HA_ADVERTISE_ADDRESS: bad } }).message).toContain('ha.advertiseAddress: must be host:port with a port from 1 to 65535');
    }
  });

  it('rejects an unknown key in a JSON config file, naming it', () => {
    const file = jsonFile({ grpc: { port: 1000, bogus: 1 }, extra: true });
    expect(configError({ file, env: PLAINTEXT }).message).toMatchInlineSnapshot(
      `"configuration param 'extra' not declared in the schema; configuration param 'grpc.bogus' not declared in the schema"`,
    );
  });

  it("rejects tls.mode 'tls' without cert and key, naming tls.cert", () => {
    const err = configError({ env: { FEDLHS_TLS_KEY: '/k.pem' } });
    expect(err.message).toMatchInlineSnapshot(`"tls.cert and tls.key: both are required when tls.mode is 'tls' (set tls.mode to 'plaintext' only for loopback demos)"`);
    expect(configError({ env: {} }).message.startsWith('tls.cert')).toBe(true);
  });

  it("refuses tls.clientCertificates 'issued' without TLS, beside a client CA, or with a certificate lifetime out of range", () => {
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_TLS_CLIENT_CERTIFICATES: 'issued' } }).message).toMatchInlineSnapshot(`"tls.clientCertificates: 'issued' needs tls.mode 'tls' (certificates are presented in the TLS handshake)"`);
    const tls = { FEDLHS_TLS_CERT: '/c.pem', FEDLHS_TLS_KEY: '/k.pem', FEDLHS_TLS_CLIENT_CERTIFICATES: 'issued' };
    expect(configError({ env: { ...tls, FEDLHS_TLS_CLIENT_CA: '/ca.pem' } }).message).toMatchInlineSnapshot(`"tls.clientCertificates: 'issued' verifies clients against the coordinator's own CA; leave tls.clientCa empty"`);
    expect(configError({ env: { ...tls, FEDLHS_TLS_NODE_CERTIFICATE_SECONDS: '5' } }).message).toMatchInlineSnapshot(`"tls.nodeCertificateSeconds: must be from 10 to 31622400: value was 5"`);
    expect(loadCoordinatorConfig({ env: { ...tls, FEDLHS_TLS_NODE_CERTIFICATE_SECONDS: '20' }, args: [] }).tls).toMatchObject({ clientCertificates: 'issued', nodeCertificateSeconds: 20 });
  });

  it('rejects an unknown tls mode with the allowed values', () => {
    expect(configError({ env: { FEDLHS_TLS_MODE: 'none' } }).message).toMatchInlineSnapshot(`"tls.mode: must be one of the possible values: ["tls","plaintext"]: value was "none""`);
  });

  it.each(['1048575', '4128772', '1048578'])('rejects chunkBytes %s', (value) => {
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_CHUNK_BYTES: value } }).message).toBe(`chunkBytes: must be a multiple of 4 between 1048576 and 4128768: value was ${value}`);
  });

  it('lets flags override the environment, and the environment override the file', () => {
    const file = jsonFile({ grpc: { port: 1000 }, tls: { mode: 'plaintext' }, dataDir: '/from/file' });
    expect(loadCoordinatorConfig({ file, env: {} }).grpc.port).toBe(1000);
    const fromEnv = loadCoordinatorConfig({ file, env: { FEDLHS_GRPC_PORT: '2000' } });
    expect(fromEnv.grpc.port).toBe(2000);
    expect(fromEnv.dataDir).toBe('/from/file');
    expect(loadCoordinatorConfig({ file, env: { FEDLHS_GRPC_PORT: '2000' }, args: ['--grpc-port', '0'] }).grpc.port).toBe(0);
    expect(loadCoordinatorConfig({ env: { ...PLAINTEXT, FEDLHS_ADMIN_PORT: '8000' }, args: ['--admin-port', '8001', '--data-dir', '/d'] })).toMatchObject({
      admin: { port: 8001 },
      dataDir: '/d',
    });
  });

  it('does not put the admin token in an error message about another key', () => {
    const err = configError({ env: { ...PLAINTEXT, FEDLHS_ADMIN_TOKEN: 'tok-secret-123', FEDLHS_GRPC_PORT: '70000' } });
    expect(err.message).toBe('grpc.port: must be a port number from 0 to 65535: value was 70000');
  });

  // Regression (fixed in packages/service/src/config.ts): convict leaves the value of a sensitive key out of its
  // message, but loadConfig then appends the raw value itself, so the secret reaches the logs.
  it('does not put the admin token in the error about the token itself', () => {
    const file = jsonFile({ tls: { mode: 'plaintext' }, admin: { token: 987654321 } });
    const err = configError({ file, env: {} });
    expect(err.message.startsWith('admin.token: must be of type String')).toBe(true);
    expect(err.message).not.toContain('987654321');
  });

  it('marks admin.token and tls.key sensitive, so convict masks them', () => {
    const config = convict(coordinatorConfigSchema, { env: { FEDLHS_ADMIN_TOKEN: 'tok-secret-123', FEDLHS_TLS_KEY: '/secret/key.pem' }, args: [] });
    const text = config.toString();
    expect(text).not.toContain('tok-secret-123');
    expect(text).not.toContain('/secret/key.pem');
    expect(JSON.parse(text)).toMatchObject({ admin: { token: '[Sensitive]' }, tls: { key: '[Sensitive]' } });
  });

  it('selects the PostgreSQL store from flags or the environment', () => {
    const url = 'postgres://fedlhs:pw-secret@db.example:5432/fedlhs';
    expect(loadCoordinatorConfig({ env: PLAINTEXT, args: ['--store', 'postgres', '--store-url', url, '--store-pool-size', '16'] }).store).toEqual({ kind: 'postgres', url, poolSize: 16 });
    expect(loadCoordinatorConfig({ env: { ...PLAINTEXT, FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: url } }).store).toEqual({ kind: 'postgres', url, poolSize: 8 });
  });

  it("rejects store.kind 'postgres' without store.url, naming the key", () => {
    const err = configError({ env: PLAINTEXT, args: ['--store', 'postgres'] });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.details).toEqual({ key: 'store.url' });
    expect(err.message).toMatchInlineSnapshot(`"store.url: required when store.kind is 'postgres' (set FEDLHS_STORE_URL or --store-url to a postgres:// URL)"`);
  });

  it('rejects an unknown store kind and a store.url that is not postgres://, without echoing the URL', () => {
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_STORE: 'mysql' } }).message).toMatch(/^store\.kind: must be one of the possible values: \["sqlite","postgres"\]/);
    const err = configError({ env: { ...PLAINTEXT, FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: 'mysql://u:pw-secret@h/d' } });
    expect(err.message).toBe('store.url: must be a postgres:// or postgresql:// URL: value was [sensitive]');
    expect(configError({ env: { ...PLAINTEXT, FEDLHS_STORE_URL: 'postgres://u:pw-secret@h/d' } }).message).not.toContain('pw-secret');
  });

  it("resolves blobs.store 'auto' to the store of the state", () => {
    const pgEnv = { ...PLAINTEXT, FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: 'postgres://u@h/d' };
    expect(resolveBlobStore(loadCoordinatorConfig({ env: PLAINTEXT, args: [] }))).toBe('files');
    expect(resolveBlobStore(loadCoordinatorConfig({ env: pgEnv, args: [] }))).toBe('postgres');
    expect(resolveBlobStore(loadCoordinatorConfig({ env: { ...pgEnv, FEDLHS_BLOB_STORE: 'files' }, args: [] }))).toBe('files');
  });

  it('marks store.url sensitive, so convict masks it', () => {
    const config = convict(coordinatorConfigSchema, { env: { FEDLHS_STORE_URL: 'postgres://u:pw-secret@h/d' }, args: [] });
    expect(config.toString()).not.toContain('pw-secret');
  });

  it('refuses transfer and blob settings that cannot work, naming the key', () => {
    for (const [env, key] of [
      [{ FEDLHS_BLOB_STORE: 'postgres' }, 'blobs.store'],
      [{ FEDLHS_BLOB_GC_GRACE_SECONDS: '5' }, 'blobs.gcGraceSeconds'],
      [{ FEDLHS_TRANSFER_UPLOAD_STREAMS_PER_NODE: '0' }, 'transfer.uploadStreamsPerNode'],
      [{ FEDLHS_TRANSFER_SESSION_QUEUE_MESSAGES: '4' }, 'transfer.sessionQueueMessages'],
      [{ FEDLHS_TRANSFER_INFLIGHT_BYTES: '1000' }, 'transfer.inFlightBytes'],
    ] as const) {
      expect(() => loadCoordinatorConfig({ env: { ...PLAINTEXT, ...env }, args: [] }), key).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', details: { key } }));
    }
  });
});
