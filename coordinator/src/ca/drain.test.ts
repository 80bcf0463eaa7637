import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { http2SessionOf } from './node-certificates.js';

// http2SessionOf follows grpc-js private fields; these tests run it against a real grpc-js server
// so that an upgrade that moves them fails here, not in production (where renewed certificates
// would only be taken up after tls.supersededGraceSeconds).

const raw = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const service = {
  Echo: { path: '/drain.Test/Echo', requestStream: false, responseStream: false, ...raw },
  Chat: { path: '/drain.Test/Chat', requestStream: true, responseStream: true, ...raw },
} satisfies grpc.ServiceDefinition;

type Session = NonNullable<ReturnType<typeof http2SessionOf>> & { once(event: 'close', f: () => void): void };

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function start() {
  const found: (Session | undefined)[] = [];
  const server = new grpc.Server();
  server.addService(service, {
    Echo(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      found.push(http2SessionOf(call) as Session | undefined);
      cb(null, call.request);
    },
    Chat(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      found.push(http2SessionOf(call) as Session | undefined);
      call.on('data', (d: Buffer) => call.write(d));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const Client = grpc.makeGenericClientConstructor(service, 'Test');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  cleanups.push(() => {
    client.close();
    server.forceShutdown();
  });
  const echo = (text: string) => new Promise<string>((resolve, reject) => client.Echo!(Buffer.from(text), (err: Error | null, r?: Buffer) => (err ? reject(err) : resolve(r!.toString()))));
  return { found, client, echo };
}

describe('http2SessionOf on a real grpc-js server', () => {
  it("finds a unary call's HTTP/2 session; closing it (GOAWAY) lets the client's next call open another", async () => {
    const { found, echo } = await start();
    expect(await echo('a')).toBe('a');
    const first = found[0];
    expect(first?.constructor.name).toBe('ServerHttp2Session');
    const closed = new Promise<void>((resolve) => first!.once('close', resolve));
    first!.close();
    await closed;
    expect(await echo('b')).toBe('b');
    expect(found[1]).toBeDefined();
    expect(found[1] === first).toBe(false);
  });

  it("finds a bidirectional stream's session", async () => {
    const { found, client } = await start();
    const chat = (client.Chat as () => grpc.ClientDuplexStream<Buffer, Buffer>)();
    chat.write(Buffer.from('x'));
    const [reply] = (await once(chat, 'data')) as [Buffer];
    expect(reply.toString()).toBe('x');
    expect(found[0]?.constructor.name).toBe('ServerHttp2Session');
    chat.end();
    await once(chat, 'status');
  });
});
