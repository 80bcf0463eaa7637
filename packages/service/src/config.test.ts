import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import type convict from 'convict';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ConfigSources } from './config.js';

interface Config {
  port: number;
  name: string;
}
const schema = {
  port: { doc: 'a port', format: 'tcp-port', default: 7000, env: 'T_PORT', arg: 'port' },
  name: { doc: 'a name', format: String, default: 'x', env: 'T_NAME', arg: 'name' },
} as unknown as convict.Schema<Config>;

function refusal(sources: ConfigSources, check?: (c: Config) => void): FedlhsError<'CONFIG_INVALID'> {
  try {
    loadConfig(schema, sources, check);
  } catch (err) {
    if (isFedlhsError(err, 'CONFIG_INVALID')) return err;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID, the configuration loaded');
}

describe('loadConfig errors', () => {
  it('turns a value convict refuses into CONFIG_INVALID naming the key and the value given', () => {
    const err = refusal({ env: { T_PORT: '70000' } });
    expect(err.message).toBe('port: must be a port number from 0 to 65535: value was 70000');
    expect(err.details).toEqual({ key: 'port' });
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.onWire).toBe(false);
  });

  it('names no single key when several are wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-config-'));
    writeFileSync(join(dir, 'c.json'), '{"bogus": 1}');
    const err = refusal({ env: { T_PORT: '70000' }, file: join(dir, 'c.json') });
    expect(err.message).toContain('bogus');
    expect(err.details).toBeUndefined();
    expect(err.message).toContain('port: must be a port number');
  });

  it("keeps a check's own CONFIG_INVALID and its key, and wraps a plain Error from it", () => {
    const own = refusal({ env: {} }, () => {
      throw new FedlhsError('CONFIG_INVALID', 'name: must not be x', { details: { key: 'name' } });
    });
    expect({ message: own.message, details: own.details }).toEqual({ message: 'name: must not be x', details: { key: 'name' } });
    expect(own).toBeInstanceOf(ConfigError);
    const plain = refusal({ env: {} }, () => {
      throw new Error('name: must not be x: value was "x"');
    });
    expect({ message: plain.message, details: plain.details }).toEqual({ message: 'name: must not be x: value was "x"', details: { key: 'name' } });
  });

  it('refuses a config file that is missing or not JSON, without echoing its text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-config-'));
    expect(refusal({ env: {}, file: join(dir, 'none.json') }).message).toBe(`config file ${JSON.stringify(join(dir, 'none.json'))} does not exist`);
    writeFileSync(join(dir, 'bad.json'), '{"secret": "hunter2"');
    const bad = refusal({ env: {}, file: join(dir, 'bad.json') });
    expect(bad.message).toBe(`config file ${JSON.stringify(join(dir, 'bad.json'))} is not valid JSON`);
    expect(bad.message).not.toContain('hunter2');
  });
});
