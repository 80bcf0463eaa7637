import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { loadFedlhsProto, protoLoaderOptions } from '@fedlhs/proto';
import { SERVER_OPTIONS, serverCredentials, type Logger, type ServerTlsOptions } from '@fedlhs/service';
import type { Coordinator } from '../coordinator.js';
import { useNodeCertificates, type NodeCertificates } from '../ca/node-certificates.js';
import { serverFlowControl } from './flow-control.js';
import { enrolmentHandlers, federationHandlers, type TransferOptions } from './services.js';

export type { TransferOptions } from './services.js';

export interface GrpcServerOptions {
  host: string;
  port: number;
  tls: ServerTlsOptions;
  /** Transfer memory bounds (config transfer.*); defaults in TransferOptions. */
  transfer?: TransferOptions;
  /** Node certificates from the coordinator's own CA (tls.clientCertificates 'issued'); absent: tls as configured. */
  nodeCertificates?: NodeCertificates;
}

/** Binds the fedlhs.v1 services; resolves with the server and the port actually bound. */
export async function startGrpcServer(coordinator: Coordinator, logger: Logger, options: GrpcServerOptions): Promise<{ server: grpc.Server; port: number; health: HealthImplementation }> {
  // fedlhs_log_lines_dropped_total counts what the process's bounded logger drops.
  coordinator.metrics.trackLogDrops(logger);
  // Registered before the handlers exist: every Federation call then checks its certificate.
  if (options.nodeCertificates !== undefined) useNodeCertificates(coordinator, options.nodeCertificates);
  return bindGrpcServer(options, 'SERVING', (server, proto) => {
    server.addService(proto.fedlhs.v1.Enrolment.service, enrolmentHandlers(coordinator, logger));
    server.addService(proto.fedlhs.v1.Federation.service, federationHandlers(coordinator, logger, options.transfer));
  }, options.nodeCertificates?.serverCredentials(options.tls.cert, options.tls.key));
}

/**
 * A gRPC server with the services `addServices` adds, the standard grpc.health.v1 service (overall
 * and per fedlhs service, starting at `initial`) and server reflection, bound as `options` say.
 * Active/standby coordinators (ha/ha-app.ts) add gated services and start NOT_SERVING.
 */
export async function bindGrpcServer(
  options: Pick<GrpcServerOptions, 'host' | 'port' | 'tls'>,
  initial: 'SERVING' | 'NOT_SERVING',
  addServices: (server: grpc.Server, proto: ReturnType<typeof loadFedlhsProto>) => void,
  /** Credentials other than those `options.tls` describes (node certificates). */
  credentialsOverride?: grpc.ServerCredentials,
): Promise<{ server: grpc.Server; port: number; health: HealthImplementation }> {
  const proto = loadFedlhsProto();
  const server = new grpc.Server(SERVER_OPTIONS);
  // Receive windows set deliberately (flow-control.ts says why the numbers): uploads stream at
  // the wire's speed while the coordinator checks the chunk before.
  const flowControl = serverFlowControl(server);
  addServices(server, proto);
  // Standard grpc.health.v1 (overall and per service) and server reflection, so operators'
  // tools (grpc_health_probe, grpcurl) work against the coordinator's port.
  const health = new HealthImplementation({ '': initial, 'fedlhs.v1.Enrolment': initial, 'fedlhs.v1.Federation': initial });
  health.addToServer(server);
  const reflection = new ReflectionService(protoLoader.loadSync(['fedlhs/v1/enrolment.proto', 'fedlhs/v1/federation.proto', healthProtoPath], protoLoaderOptions));
  reflection.addToServer(server);
  const credentials = credentialsOverride ?? serverCredentials(options.tls);
  const address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, bound) => (err === null ? resolve(bound) : reject(err)));
  });
  flowControl.afterBind();
  return { server, port, health };
}

/** Graceful stop: finish in-flight calls, then force after `timeoutMs`. */
export async function stopGrpcServer(server: grpc.Server, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
