import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import { CoordinatorMetrics } from './metrics.js';
import { CredentialThrottle, sourceKey } from './credential-throttle.js';

function logCapture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

const wrong = (): Promise<never> => Promise.reject(new FedlhsError('CREDENTIAL_INVALID', 'node credential is not valid', { details: { why: 'unknown' } }));
const missing = (): Promise<never> => Promise.reject(new FedlhsError('CREDENTIAL_INVALID', 'no credential', { details: { why: 'missing' } }));
const ok = (): Promise<string> => Promise.resolve('node_1');
const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'OK', (err: unknown) => (isFedlhsError(err) ? err.code : 'OTHER'));

describe('sourceKey', () => {
  it('keys IPv4 by address, IPv4-mapped IPv6 by its IPv4, IPv6 by its /64, and takes getPeer() forms', () => {
    expect(sourceKey('10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('10.1.2.3:5300')).toBe('10.1.2.3');
    expect(sourceKey('::ffff:127.0.0.2')).toBe('127.0.0.2');
    expect(sourceKey('::ffff:127.0.0.2:41000')).toBe('127.0.0.2');
    expect(sourceKey('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(sourceKey('2001:db8:aa:bb::9')).toBe('2001:db8:aa:bb::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('::1:5300')).toBe('0:0:0:0::/64');
    expect(sourceKey('[2001:db8::1]:443')).toBe('2001:db8:0:0::/64');
    expect(sourceKey(undefined)).toBe('unknown');
    expect(sourceKey('garbage')).toBe('unknown');
  });
});

describe('CredentialThrottle', () => {
  it('refuses a source after limits.authFailuresPerMinute wrong credentials, without checking, until it refills', async () => {
    let t = 0;
    const { log, lines } = logCapture();
    const metrics = new CoordinatorMetrics();
    const throttle = new CredentialThrottle({ surface: 'grpc', failuresPerMinute: 6, metrics, log, now: () => t });
    for (let i = 0; i < 6; i++) expect(await codeOf(throttle.guard('10.0.0.9:1', wrong))).toBe('CREDENTIAL_INVALID');
    let checked = 0;
    const counted = (): Promise<string> => {
      checked++;
      return ok();
    };
    const refused = await throttle.guard('10.0.0.9:2', counted).catch((err: unknown) => err);
    expect(checked).toBe(0);
    expect(isFedlhsError(refused, 'RATE_LIMITED') && refused.details).toEqual({ limit: 'limits.authFailuresPerMinute', retryAfterMs: 10_000 });
    for (let i = 0; i < 50; i++) expect(await codeOf(throttle.guard('10.0.0.9:3', wrong))).toBe('RATE_LIMITED');
    // Another source, and successful checks, are not affected.
    expect(await codeOf(throttle.guard('10.0.0.8:1', ok))).toBe('OK');
    // One warn line per episode, not per attempt.
    expect(lines.filter((l) => l.event === 'auth.throttled')).toEqual([expect.objectContaining({ level: 40, surface: 'grpc', source: '10.0.0.9', retryAfterMs: 10_000 })]);
    expect((await metrics.registry.getSingleMetricAsString('fedlhs_auth_throttled_total'))).toContain('fedlhs_auth_throttled_total{surface="grpc"} 51');
    expect((await metrics.registry.getSingleMetricAsString('fedlhs_auth_failures_total'))).toContain('fedlhs_auth_failures_total{surface="grpc"} 6');
    t += 10_000; // one token back
    expect(await codeOf(throttle.guard('10.0.0.9:4', ok))).toBe('OK');
    expect(await codeOf(throttle.guard('10.0.0.9:4', wrong))).toBe('CREDENTIAL_INVALID');
    expect(await codeOf(throttle.guard('10.0.0.9:4', ok))).toBe('RATE_LIMITED');
    // A token trickling back during the attack does not start a new episode (no second line).
    expect(lines.filter((l) => l.event === 'auth.throttled')).toHaveLength(1);
    // A throttle that lasts is recalled every 10 minutes, with what was refused since.
    for (let step = 0; step < 60; step++) {
      t += 10_000; // the attacker keeps using each token as it comes back
      expect(await codeOf(throttle.guard('10.0.0.9', wrong))).toBe('CREDENTIAL_INVALID');
      expect(await codeOf(throttle.guard('10.0.0.9', wrong))).toBe('RATE_LIMITED');
    }
    expect(lines.filter((l) => l.event === 'auth.throttled')).toHaveLength(2);
    expect(lines.filter((l) => l.event === 'auth.throttled').at(-1)).toMatchObject({ continuing: true, refusedSinceLastLog: 52 + 58 });
    // Once the source has stopped long enough for its whole budget to return, a new attack is a new episode.
    t += 10 * 60_000;
    expect(await codeOf(throttle.guard('10.0.0.9', ok))).toBe('OK');
    for (let i = 0; i < 7; i++) await throttle.guard('10.0.0.9', wrong).catch(() => undefined);
    expect(lines.filter((l) => l.event === 'auth.throttled')).toHaveLength(3);
    expect(lines.at(-1)).not.toHaveProperty('continuing');
  });

  it('does not count calls that sent no credential at all', async () => {
    const { log } = logCapture();
    const throttle = new CredentialThrottle({ surface: 'admin', failuresPerMinute: 2, metrics: new CoordinatorMetrics(), log, now: () => 0 });
    for (let i = 0; i < 20; i++) expect(await codeOf(throttle.guard('10.0.0.1', missing))).toBe('CREDENTIAL_INVALID');
    expect(await codeOf(throttle.guard('10.0.0.1', ok))).toBe('OK');
  });
});
