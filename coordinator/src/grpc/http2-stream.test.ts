import http2 from 'node:http2';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadFedlhsProto, type ModelChunk } from '@fedlhs/proto';
import { BufferPool } from '../blobs/buffer-pool.js';
import { DownloadBudget, streamModel } from '../downloads.js';
import { writeMessage } from './download-handler.js';
import { endWithStatus, http2StreamOf } from './http2-stream.js';

const CHUNK = 1024 * 1024;
const MODEL_CHUNKS = 8;
type Call = grpc.ServerWritableStream<unknown, ModelChunk>;

/**
 * A grpc-js server with the real Federation service definition (so the real ModelChunk
 * serializer) whose DownloadModel hands each call to `onCall`, on 127.0.0.1:0.
 */
async function serve(onCall: (call: Call) => void): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(loadFedlhsProto().fedlhs.v1.Federation.service, { DownloadModel: onCall } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  servers.push(server);
  return { port, server };
}

/** A raw HTTP/2 DownloadModel call: it reads nothing unless `stream.on('data')` is attached (HTTP/2 flow control then stops the server). */
function rawCall(port: number): { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream } {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  sessions.push(session);
  const body = loadFedlhsProto().fedlhs.v1.Federation.service.DownloadModel.requestSerialize({ committed: { studyId: 's', round: 0 } });
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const stream = session.request({ ':method': 'POST', ':path': '/fedlhs.v1.Federation/DownloadModel', 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.end(frame);
  return { session, stream };
}

const servers: grpc.Server[] = [];
const sessions: http2.ClientHttp2Session[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.forceShutdown();
});

/** The payload bytes of a gRPC DownloadModel response body (messages of one `data` field each). */
function payloadOf(body: Buffer): Buffer {
  const chunks: Buffer[] = [];
  const deserialize = loadFedlhsProto().fedlhs.v1.Federation.service.DownloadModel.responseDeserialize;
  for (let at = 0; at < body.length; ) {
    const length = body.readUInt32BE(at + 1);
    chunks.push((deserialize(body.subarray(at + 5, at + 5 + length)) as { data: Buffer }).data);
    at += 5 + length;
  }
  return Buffer.concat(chunks);
}

describe('grpc-js server streaming, as downloads use it', () => {
  it('has framed a message when call.write returns: the buffer can be reused at once (streamModel relies on it)', async () => {
    const { port } = await serve((call) => {
      const signal = new AbortController().signal;
      void (async () => {
        const data = Buffer.alloc(CHUNK);
        for (let k = 1; k <= 3; k++) {
          data.fill(k);
          const sent = writeMessage(call, { data }, signal, 60_000, () => undefined);
          // Overwritten before HTTP/2 has sent it: the client must still get k.
          data.fill(0xff);
          await sent;
        }
        call.end();
      })();
    });
    const { stream } = rawCall(port);
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    await once(stream, 'end');
    const got = payloadOf(Buffer.concat(parts));
    expect(got.length).toBe(3 * CHUNK);
    for (let k = 1; k <= 3; k++) expect(got.subarray((k - 1) * CHUNK, k * CHUNK).every((b) => b === k)).toBe(true);
  });

  it('a stream nobody reads holds one frame and no pooled buffer; after the idle bound it is reset and HTTP/2 drops the frame', async () => {
    const pool = new BufferPool();
    const budget = new DownloadBudget({ maxBytes: 4 * CHUNK });
    let stalledCall: Call | undefined;
    const stalled = new Promise<void>((resolve) => {
      void serve((call) => {
        const gone = new AbortController();
        call.on('cancelled', () => gone.abort(new Error('cancelled')));
        const chunks = (function* () {
          for (let k = 0; k < MODEL_CHUNKS; k++) yield pool.acquire(CHUNK).fill(k);
        })();
        void streamModel({
          chunks: (async function* () {
            yield* chunks;
          })(), totalBytes: MODEL_CHUNKS * CHUNK, chunkBytes: CHUNK, pool, budget, signal: gone.signal,
          // A short idle bound: the test waits for it to fire, nothing is timed.
          write: (data) => writeMessage(call, { data }, gone.signal, 300, () => {
            stalledCall = call;
            resolve();
          }),
        }).catch(() => undefined);
      }).then(({ port }) => rawCall(port));
    });
    await stalled;
    const call = stalledCall!;
    const h2 = http2StreamOf(call as unknown as grpc.ServerWritableStream<unknown, unknown>);
    expect(h2).toBeDefined();
    // One frame (1 MiB + 5 bytes of gRPC prefix + the protobuf tag and length) beyond what the
    // client's window took; nothing pooled, the budget counts that one chunk.
    expect(h2!.writableLength).toBeGreaterThan(0);
    expect(h2!.writableLength).toBeLessThanOrEqual(CHUNK + 16);
    expect(pool.inUse).toBe(0);
    expect(budget.inFlightBytes).toBe(CHUNK);

    const reset = new Promise<boolean>((resolve) => endWithStatus(call as unknown as grpc.ServerWritableStream<unknown, unknown>, { code: grpc.status.DEADLINE_EXCEEDED, details: 'stalled' }, 0, resolve));
    expect(await reset).toBe(true);
    if (!call.cancelled) await once(call, 'cancelled');
    expect(h2!.writableLength).toBe(0);
    await expect.poll(() => budget.inFlightBytes).toBe(0);
  });

  it('a grpc-js client whose stream is reset sees RESOURCE_EXHAUSTED (agents retry it)', async () => {
    const { port } = await serve((call) => {
      // Status after data the client does not take: the reset ends it, not the trailers.
      void writeMessage(call, { data: Buffer.alloc(4 * CHUNK) }, new AbortController().signal, 60_000, () => undefined).catch(() => undefined);
      setImmediate(() => endWithStatus(call as unknown as grpc.ServerWritableStream<unknown, unknown>, { code: grpc.status.DEADLINE_EXCEEDED, details: 'stalled' }, 0));
    });
    const Federation = loadFedlhsProto().fedlhs.v1.Federation;
    const client = new Federation(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const call = client.DownloadModel({ committed: { studyId: 's', round: 0 } });
      call.pause();
      const [err] = (await once(call, 'error')) as [grpc.ServiceError];
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      client.close();
    }
  });

  it('a status after data the client reads goes out in the trailers, with no reset', async () => {
    let resetTold: boolean | undefined;
    const { port } = await serve((call) => {
      void writeMessage(call, { data: Buffer.alloc(CHUNK, 3) }, new AbortController().signal, 60_000, () => undefined).catch(() => undefined);
      setImmediate(() => endWithStatus(call as unknown as grpc.ServerWritableStream<unknown, unknown>, { code: grpc.status.UNAUTHENTICATED, details: 'revoked' }, 60_000, (r) => (resetTold = r)));
    });
    const { stream } = rawCall(port);
    stream.on('data', () => undefined);
    const [trailers] = (await once(stream, 'trailers')) as [http2.IncomingHttpHeaders];
    expect(trailers['grpc-status']).toBe(String(grpc.status.UNAUTHENTICATED));
    expect(resetTold).toBeUndefined();
  });
});
