import http2 from 'node:http2';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadFedlhsProto, type ModelChunk__Output } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';
import { BufferPool } from '../blobs/buffer-pool.js';
import { CheckpointStore } from '../checkpoints.js';
import type { Coordinator } from '../coordinator.js';
import { DownloadSlots } from '../downloads.js';
import { CoordinatorMetrics } from '../metrics.js';
import type { NodeRecord } from '../store.js';
import { downloadHandler, type DownloadHandlerOptions } from './download-handler.js';
import { http2StreamOf, type Http2StreamLike } from './http2-stream.js';

const CHUNK = 64 * 1024;
/** 4 MiB: many frames, far more than the HTTP/2 windows of a client that does not read. */
const MODEL_BYTES = 64 * CHUNK;
const service = loadFedlhsProto().fedlhs.v1.Federation;

interface Line { level: string; event?: string; reset?: boolean }

/** A stored committed model, a log that records its lines, and a grpc-js server whose DownloadModel is the real handler over a stand-in coordinator. */
async function serve(opts: DownloadHandlerOptions & { idleMs?: number } = {}): Promise<{ port: number; lines: Line[]; bytes: Buffer; sha256: string }> {
  const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-dl-handler-')));
  const values = Float32Array.from({ length: MODEL_BYTES / 4 }, (_, i) => i * 0.5);
  const stored = store.promote('s', 0, await store.writeCandidate('s', 0, 1, [values]));
  const bytes = Buffer.from(values.buffer);
  const lines: Line[] = [];
  const record = (level: string) => (obj: object) => void lines.push({ level, ...(obj as Omit<Line, 'level'>) });
  const log = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
  const metrics = new CoordinatorMetrics();
  const node = { id: 'node-1' } as NodeRecord;
  const limits = { downloadIdleMs: opts.idleMs ?? 60_000, downloadStreamsPerNode: 8, downloadStreamsTotal: 8, authFailuresPerMinute: 1000 };
  const coordinator = {
    limits,
    metrics,
    checkpoints: store,
    authenticate: () => Promise.resolve(node),
    openDownload: () => Promise.resolve({
      header: { tensors: [{ name: 'w', shape: [values.length], dtype: 'DTYPE_FLOAT32' }], totalBytes: MODEL_BYTES, sha256: Buffer.from(stored.sha256, 'hex'), chunkSize: CHUNK },
      path: stored.path,
    }),
    calls: { register: () => () => undefined },
  } as unknown as Coordinator;
  const ctx = { coordinator, log: log as unknown as Logger, metrics, transfer: {} };
  const server = new grpc.Server();
  server.addService(service.service, { DownloadModel: downloadHandler(ctx, new BufferPool(), new DownloadSlots(limits), opts) } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  cleanup.push(() => server.forceShutdown());
  return { port, lines, bytes, sha256: stored.sha256 };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** A grpc-js download; resolves with the payload and the header's digest, or rejects with the call's status. */
async function download(port: number, deadline?: Date): Promise<{ bytes: Buffer; announced: string }> {
  const client = new service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'fedlhs.test.channel': Math.random() });
  cleanup.push(() => client.close());
  const call = client.DownloadModel({ committed: { studyId: 's', round: 0 } }, new grpc.Metadata(), deadline === undefined ? {} : { deadline });
  const parts: Buffer[] = [];
  let announced = '';
  for await (const m of call as AsyncIterable<ModelChunk__Output>) {
    if (m.header) announced = Buffer.from(m.header.sha256).toString('hex');
    if (m.data) parts.push(m.data);
  }
  return { bytes: Buffer.concat(parts), announced };
}

/** A raw HTTP/2 DownloadModel call that reads nothing until told (HTTP/2 flow control then holds the server back). */
function rawCall(port: number, headers: http2.OutgoingHttpHeaders = {}): http2.ClientHttp2Stream {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  cleanup.push(() => session.destroy());
  const body = service.service.DownloadModel.requestSerialize({ committed: { studyId: 's', round: 0 } });
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  const stream = session.request({ ':method': 'POST', ':path': '/fedlhs.v1.Federation/DownloadModel', 'content-type': 'application/grpc', te: 'trailers', ...headers });
  stream.on('error', () => undefined);
  stream.end(frame);
  return stream;
}

describe('DownloadModel handler', () => {
  it('without the HTTP/2 stream (grpc-js internals moved) falls back to grpc-js writes: exact bytes, warned once; a stall that cannot be reset is logged at error', async () => {
    const { port, lines, bytes, sha256 } = await serve({ streamOf: () => undefined, idleMs: 300 });
    for (const got of await Promise.all([download(port), download(port)])) {
      expect(got.announced).toBe(sha256);
      expect(got.bytes.equals(bytes)).toBe(true);
    }
    expect((await download(port)).bytes.equals(bytes)).toBe(true);
    expect(lines.filter((l) => l.event === 'download.unframed')).toEqual([expect.objectContaining({ level: 'warn' })]);

    // A client that reads nothing: the idle bound (300 ms; waited for, not timed) ends the
    // download, and the reset it needs is not possible here.
    rawCall(port);
    await expect.poll(() => lines.find((l) => l.event === 'download.stalled'), { timeout: 30_000 }).toMatchObject({ level: 'error', reset: false });
    expect(lines.filter((l) => l.event === 'download.unframed')).toHaveLength(1);
  });

  it('with the HTTP/2 stream, downloads get the exact bytes from the shared frames and nothing is warned', async () => {
    let direct = 0;
    const { port, lines, bytes } = await serve({ streamOf: (call) => (direct++, http2StreamOf(call)) });
    for (const got of await Promise.all([download(port), download(port)])) expect(got.bytes.equals(bytes)).toBe(true);
    expect(direct).toBe(2);
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });

  it('a deadline that expires mid-stream on the direct path ends the call with DEADLINE_EXCEEDED in the trailers, not a reset', async () => {
    let stream: Http2StreamLike | undefined;
    const { port, lines } = await serve({ streamOf: (call) => (stream = http2StreamOf(call)) });
    const raw = rawCall(port, { 'grpc-timeout': '200m' });
    raw.pause();
    // grpc-js ends the stream at the deadline (its status goes in the trailers, behind the data
    // already queued); then the client reads everything.
    await expect.poll(() => (stream as { writableEnded?: boolean } | undefined)?.writableEnded, { timeout: 30_000 }).toBe(true);
    const trailers = new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
      raw.on('trailers', (t) => resolve(t));
      raw.on('close', () => resolve(undefined));
    });
    const body: Buffer[] = [];
    raw.on('data', (d: Buffer) => body.push(d));
    raw.resume();
    const got = await trailers;
    // Trailers, and the stream closed without an error code (NGHTTP2_NO_ERROR).
    expect({ status: got?.['grpc-status'], rstCode: raw.rstCode ?? 0 }).toEqual({ status: String(grpc.status.DEADLINE_EXCEEDED), rstCode: 0 });
    // What came before the status is whole frames of the model (5-byte prefix and its message).
    const all = Buffer.concat(body);
    let at = 0;
    while (at < all.length) at += 5 + all.readUInt32BE(at + 1);
    expect(at).toBe(all.length);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('a stream whose deadline passed and whose client reads nothing is still reset after the idle bound (its queued frame dropped)', async () => {
    const { port, lines } = await serve({ idleMs: 500 });
    const raw = rawCall(port, { 'grpc-timeout': '100m' });
    raw.pause();
    const closed = new Promise<void>((resolve) => raw.on('close', resolve));
    await expect.poll(() => lines.find((l) => l.event === 'download.stalled'), { timeout: 30_000 }).toMatchObject({ level: 'warn', reset: true });
    await closed;
    expect(raw.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });

  it('a grpc-js client whose deadline expires mid-download sees DEADLINE_EXCEEDED', async () => {
    let stream: (Http2StreamLike & { writableEnded?: boolean }) | undefined;
    const { port, lines } = await serve({ streamOf: (call) => (stream = http2StreamOf(call)) });
    const client = new service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'fedlhs.test.channel': Math.random() });
    cleanup.push(() => client.close());
    const call = client.DownloadModel({ committed: { studyId: 's', round: 0 } }, new grpc.Metadata(), { deadline: new Date(Date.now() + 300) });
    const messages = (call as AsyncIterable<ModelChunk__Output>)[Symbol.asyncIterator]();
    await messages.next();
    // The client reads nothing more until the call is over on the server (its deadline, or the
    // client's own cancellation at its deadline).
    await expect.poll(() => stream !== undefined && (stream.writableEnded === true || stream.destroyed), { timeout: 30_000 }).toBe(true);
    const rest = (async () => {
      for (let m = await messages.next(); m.done !== true; m = await messages.next());
    })();
    await expect(rest).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
