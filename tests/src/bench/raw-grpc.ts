import * as grpc from '@grpc/grpc-js';

const MiB = 1048576;

/** Raw grpc-js streaming of `bytes` in 1 MiB chunks each way, without fedlhs: the baseline. */
export async function rawGrpc(bytes: number): Promise<{ uploadMBs: number; downloadMBs: number }> {
  const passthrough = (b: Buffer): Buffer => b;
  const service: grpc.ServiceDefinition = {
    Up: { path: '/bench.Raw/Up', requestStream: true, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
    Down: { path: '/bench.Raw/Down', requestStream: false, responseStream: true, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
  };
  const chunk = Buffer.alloc(MiB, 7);
  const server = new grpc.Server();
  server.addService(service, {
    Up: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      let n = 0;
      call.on('data', (b: Buffer) => (n += b.length));
      call.on('end', () => cb(null, Buffer.from(String(n))));
    },
    Down: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for (let sent = 0; sent < bytes; sent += MiB) if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
      call.end();
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const Client = grpc.makeGenericClientConstructor(service, 'Raw');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  let t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const call = client.makeClientStreamRequest('/bench.Raw/Up', passthrough, passthrough, (e: grpc.ServiceError | null) => (e ? reject(e) : resolve()));
    (async () => {
      for (let sent = 0; sent < bytes; sent += MiB) if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
      call.end();
    })();
  });
  const uploadMBs = bytes / MiB / ((performance.now() - t) / 1000);
  t = performance.now();
  const down = client.makeServerStreamRequest('/bench.Raw/Down', passthrough, passthrough, Buffer.alloc(0));
  for await (const _ of down) {
    // drain
  }
  const downloadMBs = bytes / MiB / ((performance.now() - t) / 1000);
  client.close();
  server.forceShutdown();
  return { uploadMBs, downloadMBs };
}

