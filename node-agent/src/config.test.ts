import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFedlhsError, type FedlhsError } from '@fedlhs/core';
import { ConfigError, loadAgentConfig, type LoadAgentConfigOptions } from './config.js';

function configError(options: LoadAgentConfigOptions): FedlhsError<'CONFIG_INVALID'> {
  try {
    loadAgentConfig(options);
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) return err;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID, the configuration loaded');
}

describe('loadAgentConfig', () => {
  it('loads the defaults', () => {
    expect(loadAgentConfig({ env: {}, args: [] })).toEqual({
      site: '',
      stateDir: './.fedlhs/agent',
      coordinator: { address: 'localhost:7443' },
      tls: { mode: 'tls', ca: '', cert: '', key: '', serverName: '' },
      joinToken: '',
      data: { format: 'flat-table', path: '', keyColumn: '', encoding: 'utf-8' },
      minCohort: 20,
      autoApprove: false,
      backend: 'auto',
      reconnect: { baseMs: 500, capMs: 30000 },
      chunkBytes: 1048576,
      releases: { autoDeploy: 'off', pollSeconds: 300, monitorSeconds: 3600 },
      series: { reportSeconds: 60 },
      scoring: { listen: '' },
      privacy: { maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false },
      log: { level: 'info', pretty: 'auto' },
    });
  });

  it('takes the privacy budget from the environment and flags, strictly', () => {
    expect(loadAgentConfig({ env: { FEDLHS_PRIVACY_MAX_EPSILON_PER_STUDY: '2.5', FEDLHS_PRIVACY_DELTA: '1e-5' }, args: ['--privacy-max-epsilon-lifetime', '8', '--privacy-trust-coordinator-noise', 'true'] }).privacy)
      .toEqual({ maxEpsilonPerStudy: 2.5, maxEpsilonLifetime: 8, delta: 1e-5, trustCoordinatorNoise: true });
    expect(configError({ env: { FEDLHS_PRIVACY_MAX_EPSILON_PER_STUDY: '1.5x' } }).message).toMatch(/privacy\.maxEpsilonPerStudy: must be a number, 0 or more/);
    expect(configError({ env: { FEDLHS_PRIVACY_MAX_EPSILON_LIFETIME: '-1' } }).message).toMatch(/privacy\.maxEpsilonLifetime: must be a number, 0 or more/);
    expect(configError({ env: { FEDLHS_PRIVACY_DELTA: '0' } }).message).toBe('privacy.delta: must be greater than 0 and less than 1: value was 0');
    expect(configError({ env: { FEDLHS_PRIVACY_DELTA: '1' } }).message).toBe('privacy.delta: must be greater than 0 and less than 1: value was 1');
    expect(configError({ env: { FEDLHS_PRIVACY_TRUST_COORDINATOR_NOISE: 'yes' } }).message).toMatch(/privacy\.trustCoordinatorNoise: must be true or false/);
  });

  it('rejects a scoring address that is not host:port, and a poll period of 0', () => {
    expect(configError({ env: { FEDLHS_SCORING_LISTEN: '8080' } }).message).toBe('scoring.listen: must be host:port (or empty: off): value was "8080"');
    expect(configError({ env: { FEDLHS_RELEASES_POLL_SECONDS: '0' } }).details).toEqual({ key: 'releases.pollSeconds' });
    expect(configError({ env: { FEDLHS_RELEASES_AUTO_DEPLOY: 'always' } }).message).toContain('releases.autoDeploy');
    expect(configError({ env: { FEDLHS_SERIES_REPORT_SECONDS: '0' } }).details).toEqual({ key: 'series.reportSeconds' });
  });

  it.each(['coordinator.example.org:443', '10.0.0.5:7443', '[::1]:7443', '[fe80::1]:1'])('accepts the address %s', (address) => {
    expect(loadAgentConfig({ env: { FEDLHS_COORDINATOR: address } }).coordinator.address).toBe(address);
  });

  it.each(['localhost', 'localhost:', 'host:port', 'a b:1', 'host:123456', 'https://host:443', '::1:7443'])('rejects the address %j', (address) => {
    const err = configError({ env: { FEDLHS_COORDINATOR: address } });
    expect(err.message).toBe(`coordinator.address: must be host:port: value was ${JSON.stringify(address)}`);
    expect(err.details).toEqual({ key: 'coordinator.address' });
    // Still a ConfigError for callers not yet converted (`instanceof ConfigError`).
    expect(err).toBeInstanceOf(ConfigError);
  });

  // Regression: the address pattern allows any 1-5 digit port, so 99999 passes validation.
  it('rejects an address whose port is above 65535', () => {
    expect(configError({ env: { FEDLHS_COORDINATOR: 'localhost:99999' } }).message).toContain('coordinator.address');
  });

  it('rejects tls.cert without tls.key, and the reverse', () => {
    expect(configError({ env: { FEDLHS_TLS_CERT: '/c.pem' } }).message).toMatchInlineSnapshot(`"tls.cert and tls.key: set both for mutual TLS, or neither"`);
    expect(configError({ env: { FEDLHS_TLS_KEY: '/k.pem' } }).message).toBe('tls.cert and tls.key: set both for mutual TLS, or neither');
    expect(loadAgentConfig({ env: { FEDLHS_TLS_CERT: '/c.pem', FEDLHS_TLS_KEY: '/k.pem' } }).tls).toMatchObject({ cert: '/c.pem', key: '/k.pem' });
  });

  it.each(['1048575', '4128772', '1048578', '0'])('rejects chunkBytes %s', (value) => {
    const err = configError({ env: { FEDLHS_CHUNK_BYTES: value } });
    expect(err.message).toBe(`chunkBytes: must be a multiple of 4 between 1048576 and 4128768: value was ${value}`);
    expect(err.details).toEqual({ key: 'chunkBytes' });
  });

  it('accepts chunkBytes at both ends of the range', () => {
    expect(loadAgentConfig({ env: { FEDLHS_CHUNK_BYTES: '1048576' } }).chunkBytes).toBe(1048576);
    expect(loadAgentConfig({ env: { FEDLHS_CHUNK_BYTES: '4128768' } }).chunkBytes).toBe(4128768);
  });

  it("parses autoApprove 'true' and 'false' from the environment, and the bare flag", () => {
    expect(loadAgentConfig({ env: { FEDLHS_AUTO_APPROVE: 'true' } }).autoApprove).toBe(true);
    expect(loadAgentConfig({ env: { FEDLHS_AUTO_APPROVE: 'false' } }).autoApprove).toBe(false);
    expect(loadAgentConfig({ env: {}, args: ['--auto-approve'] }).autoApprove).toBe(true);
  });

  // Regression: convict's Boolean coercion is `value.toLowerCase() !== 'false'`, so '0', 'no' or 'off'
  // turn auto-approval (no operator review of study manifests) ON.
  it.each(['0', 'no', 'off'])("does not enable autoApprove for FEDLHS_AUTO_APPROVE=%s", (value) => {
    let autoApprove: boolean | 'rejected';
    try {
      autoApprove = loadAgentConfig({ env: { FEDLHS_AUTO_APPROVE: value } }).autoApprove;
    } catch (err) {
      expect(isFedlhsError(err, 'CONFIG_INVALID')).toBe(true);
      autoApprove = 'rejected';
    }
    expect(autoApprove).not.toBe(true);
  });

  // Regression (fixed in packages/service/src/config.ts): the raw value of a sensitive key is appended to the
  // message convict deliberately left it out of, so the join token reaches the logs.
  it('does not put the join token in an error message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-agent-config-'));
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ joinToken: 987654321 }));
    const err = configError({ file, env: {} });
    expect(err.message.startsWith('joinToken: must be of type String')).toBe(true);
    expect(err.message).not.toContain('987654321');
  });

  it('rejects reconnect capMs below baseMs, and baseMs 0', () => {
    expect(configError({ env: { FEDLHS_RECONNECT_CAP_MS: '100' } }).message).toMatch(/^reconnect: baseMs must be >= 1 and capMs >= baseMs: values were 500 and 100(:|$)/);
    expect(configError({ env: { FEDLHS_RECONNECT_BASE_MS: '0' } }).message).toMatch(/^reconnect: baseMs must be >= 1 and capMs >= baseMs: values were 0 and 30000(:|$)/);
  });

  it('rejects a negative minCohort', () => {
    expect(configError({ env: { FEDLHS_MIN_COHORT: '-3' } }).message).toMatchInlineSnapshot(`"minCohort: must be a whole number (0 or more): value was "-3""`);
  });

  it('rejects an unknown key in a config file, and lets env and flags override the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-agent-config-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ site: 'a', coordinatr: { address: 'x:1' } }));
    expect(configError({ file: bad, env: {} }).message).toMatchInlineSnapshot(`"configuration param 'coordinatr.address' not declared in the schema"`);

    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ site: 'clinic-a', coordinator: { address: 'file:1' }, minCohort: 5 }));
    const c = loadAgentConfig({ file: good, env: { FEDLHS_COORDINATOR: 'env:2' }, args: ['--min-cohort', '7'] });
    expect(c.site).toBe('clinic-a');
    expect(c.coordinator.address).toBe('env:2');
    expect(c.minCohort).toBe(7);
    expect(loadAgentConfig({ file: good, env: {} }).coordinator.address).toBe('file:1');
  });
});
