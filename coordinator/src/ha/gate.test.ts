import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@fedlhs/service';
import { gatedService, LEADER_KEY } from './gate.js';

const log = createLogger({ app: 'test', level: 'silent', pretty: 'false' });
const definition = {
  Report: { path: '/x/Report', requestStream: false, responseStream: false },
  Session: { path: '/x/Session', requestStream: true, responseStream: true },
} as unknown as grpc.ServiceDefinition;

describe('the standby gate in front of the gRPC services', () => {
  it('refuses unary and streaming calls with UNAVAILABLE NOT_LEADER naming the active, and passes them through once active', () => {
    let handlers: grpc.UntypedServiceImplementation | undefined;
    let leader: string | undefined = 'coord-a.example:7443';
    const gated = gatedService(definition, () => handlers, () => leader, log);
    const answers: { code: number; details: string; metadata: grpc.Metadata }[] = [];
    (gated.Report as (call: unknown, cb: (s: never) => void) => void)({}, (s) => answers.push(s));
    const emitted: unknown[] = [];
    (gated.Session as (call: unknown) => void)({ emit: (name: string, s: never) => emitted.push([name, s]) });
    expect(answers[0]!.code).toBe(14);
    expect(answers[0]!.details).toMatch(/standby .*coord-a\.example:7443/);
    expect(answers[0]!.metadata.get('fedlhs-error-code')).toEqual(['NOT_LEADER']);
    expect(answers[0]!.metadata.get(LEADER_KEY)).toEqual(['coord-a.example:7443']);
    expect(emitted).toHaveLength(1);
    expect((emitted[0] as [string, { code: number }])[0]).toBe('error');
    expect((emitted[0] as [string, { code: number }])[1].code).toBe(14);
    // Unknown active: no leader trailer.
    leader = undefined;
    (gated.Report as (call: unknown, cb: (s: never) => void) => void)({}, (s) => answers.push(s));
    expect(answers[1]!.metadata.get(LEADER_KEY)).toEqual([]);
    // Active: the real handlers get the call.
    const seen: string[] = [];
    handlers = { Report: (() => seen.push('report')) as never, Session: (() => seen.push('session')) as never };
    (gated.Report as (call: unknown, cb: () => void) => void)({}, () => undefined);
    (gated.Session as (call: unknown) => void)({});
    expect(seen).toEqual(['report', 'session']);
  });
});
