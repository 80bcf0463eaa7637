import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVER_OPTIONS } from '@fedlhs/service';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES, serverFlowControl } from './flow-control.js';

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

async function bound(windows: boolean): Promise<number> {
  const server = new grpc.Server(SERVER_OPTIONS);
  servers.push(server);
  const flow = windows ? serverFlowControl(server) : undefined;
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
  flow?.afterBind();
  return port;
}

/** What a plain HTTP/2 client sees of the server's receive windows: the stream window it announces, and the connection window after its WINDOW_UPDATE. */
async function windowsSeen(port: number): Promise<{ stream: number | undefined; connection: number | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.once('remoteSettings', resolve);
      session.once('error', reject);
    });
    // A ping answered: every frame the server sent before its answer has been processed.
    await new Promise<void>((resolve, reject) => session.ping((err) => (err === null ? resolve() : reject(err))));
    return { stream: settings.initialWindowSize, connection: session.state.remoteWindowSize };
  } finally {
    session.destroy();
  }
}

describe('serverFlowControl', () => {
  it('announces the stream window in SETTINGS and opens the connection window', async () => {
    expect(await windowsSeen(await bound(true))).toEqual({ stream: STREAM_WINDOW_BYTES, connection: CONNECTION_WINDOW_BYTES });
  });

  it('is what changes grpc-js defaults (64 KiB windows without it)', async () => {
    expect(await windowsSeen(await bound(false))).toEqual({ stream: 65535, connection: 65535 });
  });
});
