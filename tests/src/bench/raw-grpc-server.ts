/**
 * The raw grpc-js baseline's server process (raw-grpc.ts startRawServer): RAW_SERVICE on
 * 127.0.0.1 with an ephemeral port, printed on stdout. Built as the coordinator builds its
 * server (coordinator/src/grpc/server.ts): SERVER_OPTIONS and the same HTTP/2 receive windows,
 * so the baseline gets every transport setting fedlhs gets.
 */
import * as grpc from '@grpc/grpc-js';
import { serverFlowControl } from '@fedlhs/coordinator';
import { SERVER_OPTIONS } from '@fedlhs/service';
import { RAW_SERVICE, rawHandlers } from './raw-grpc.js';

const server = new grpc.Server(SERVER_OPTIONS);
const flowControl = serverFlowControl(server);
server.addService(RAW_SERVICE, rawHandlers(0));
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) {
    process.stderr.write(`raw gRPC server: ${err.message}\n`);
    process.exit(1);
  }
  flowControl.afterBind();
  process.stdout.write(`${port}\n`);
});
