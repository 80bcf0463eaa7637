import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';

const MiB = 1048576;
const passthrough = (b: Buffer): Buffer => b;

/** The baseline's service: raw bytes each way, no protobuf, no checks. */
export const RAW_SERVICE: grpc.ServiceDefinition = {
  Up: { path: '/bench.Raw/Up', requestStream: true, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
  Down: { path: '/bench.Raw/Down', requestStream: false, responseStream: true, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
};

/** Handlers of RAW_SERVICE: Up counts what arrives; Down sends `bytes` in 1 MiB messages. */
export function rawHandlers(bytes: number): grpc.UntypedServiceImplementation {
  const chunk = Buffer.alloc(MiB, 7);
  return {
    Up: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let n = 0;
      call.on('data', (b: Buffer) => (n += b.length));
      call.on('end', () => cb(null, Buffer.from(String(n))));
    },
    Down: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let sent = 0; sent < bytes; sent += MiB) if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
      call.end();
    },
  };
}

/**
 * Streams `bytes` to a RAW_SERVICE server over `client` in messages of `chunkBytes`, waiting for
 * the transport to drain as the agent does; resolves with the seconds until the server answered.
 */
export async function rawUpload(client: grpc.Client, bytes: number, chunkBytes = MiB): Promise<number> {
  const chunk = Buffer.alloc(chunkBytes, 7);
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const call = client.makeClientStreamRequest('/bench.Raw/Up', passthrough, passthrough, (e: grpc.ServiceError | null) => (e ? reject(e) : resolve()));
    void (async () => {
      for (let sent = 0; sent < bytes; sent += chunkBytes) {
        if (!call.write(sent + chunkBytes <= bytes ? chunk : chunk.subarray(0, bytes - sent))) await new Promise((r) => call.once('drain', r));
      }
      call.end();
    })();
  });
  return (performance.now() - start) / 1000;
}

/**
 * A RAW_SERVICE server in a process of its own, built like the coordinator's (the same server
 * options and HTTP/2 windows: raw-grpc-server.ts): the baseline has the topology of the
 * coordinator measured against it, client and server each with their own event loop and core.
 */
export async function startRawServer(): Promise<{ address: string; pid: number; stop: () => void }> {
  const script = fileURLToPath(new URL('./raw-grpc-server.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`raw gRPC server exited with ${code} before it listened`)));
    child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  if (!(port > 0)) throw new Error('raw gRPC server did not report its port');
  return { address: `127.0.0.1:${port}`, pid: child.pid!, stop: () => void child.kill() };
}

/**
 * CPU time (user and system, ms; clock ticks of 10 ms) process `pid` has used so far (Linux /proc; NaN elsewhere): the
 * bench reports CPU per upload beside wall time, which other load on the machine distorts less.
 */
export function cpuMs(pid: number): { user: number; system: number } {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** CPU `pid` uses while `work` runs: user and system ms. */
export async function cpuDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; user: number; system: number }> {
  const before = cpuMs(pid);
  const result = await work();
  const after = cpuMs(pid);
  return { result, user: after.user - before.user, system: after.system - before.system };
}

/**
 * Raw grpc-js streaming of `bytes` in 1 MiB chunks each way, without fedlhs, client and server in
 * this one process (the download baseline of bench/transfer.ts, and the first ingest baseline).
 */
export async function rawGrpc(bytes: number): Promise<{ uploadMBs: number; downloadMBs: number }> {
  const server = new grpc.Server();
  server.addService(RAW_SERVICE, rawHandlers(bytes));
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const Client = grpc.makeGenericClientConstructor(RAW_SERVICE, 'Raw');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const uploadMBs = bytes / MiB / (await rawUpload(client, bytes));
  const t = performance.now();
  const down = client.makeServerStreamRequest('/bench.Raw/Down', passthrough, passthrough, Buffer.alloc(0));
  for await (const _ of down) {
    // drain
  }
  const downloadMBs = bytes / MiB / ((performance.now() - t) / 1000);
  client.close();
  server.forceShutdown();
  return { uploadMBs, downloadMBs };
}
