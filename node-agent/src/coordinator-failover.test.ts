import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createClients, type Clients } from './connection.js';

const PLAINTEXT = { mode: 'plaintext' as const, ca: '', cert: '', key: '', serverName: '' };

/** A server with only grpc.health.v1 Check (hand-encoded, as the agent decodes it) answering `status()`, and Federation.ListStudies naming the server. */
async function server(name: string, status: () => number): Promise<{ address: string; stop: () => void }> {
  const s = new grpc.Server();
  const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
  s.addService(
    { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, ...raw } } as grpc.ServiceDefinition,
    { Check: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from([0x08, status()])) },
  );
  s.addService(
    { ListStudies: { path: '/fedlhs.v1.Federation/ListStudies', requestStream: false, responseStream: false, ...raw } } as grpc.ServiceDefinition,
    { ListStudies: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.UNAVAILABLE, details: name }) },
  );
  const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { address: `127.0.0.1:${port}`, stop: () => s.forceShutdown() };
}

/** Which server a Federation call reaches (each answers with its name). */
const reached = (clients: Clients): Promise<string> =>
  new Promise((resolve) => clients.federation.ListStudies({ includeEnded: false }, (err) => resolve(err?.details ?? 'no error')));

const logged: { event: string; address?: string }[] = [];
const log = { info: (o: object) => logged.push(o as never), warn: (o: object) => logged.push(o as never) };
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
  logged.length = 0;
});

describe('agent clients over several coordinator addresses', () => {
  it('send calls to the first address that is SERVING, and move when the active changes', async () => {
    let aStatus = 2; // NOT_SERVING
    let bStatus = 1; // SERVING
    const a = await server('a', () => aStatus);
    const b = await server('b', () => bStatus);
    cleanup.push(a.stop, b.stop);
    const clients = createClients(`${a.address},${b.address}`, PLAINTEXT);
    cleanup.push(() => clients.close());
    expect(await clients.select(log)).toBe(b.address);
    expect(clients.address).toBe(b.address);
    expect(await reached(clients)).toBe('b');
    expect(logged.at(-1)).toMatchObject({ event: 'agent.coordinator_selected', address: b.address });

    // A takeover: a serves, b is standby.
    aStatus = 1;
    bStatus = 2;
    expect(await clients.select(log)).toBe(a.address);
    expect(await reached(clients)).toBe('a');

    // Nobody serves (a takeover in progress, or a is gone): none selected, said loudly, calls stay put.
    a.stop();
    bStatus = 2;
    expect(await clients.select(log)).toBeUndefined();
    expect(logged.at(-1)).toMatchObject({ event: 'agent.no_coordinator_serving' });
    expect(clients.address).toBe(a.address);
  });

  it('with one address, select uses it without probing (as before)', async () => {
    const clients = createClients('127.0.0.1:1', PLAINTEXT);
    cleanup.push(() => clients.close());
    expect(await clients.select(log)).toBe('127.0.0.1:1');
    expect(logged).toEqual([]);
  });
});
