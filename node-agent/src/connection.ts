import * as grpc from '@grpc/grpc-js';
import { loadFedlhsProto, type EnrolmentClient, type FederationClient } from '@fedlhs/proto';
import { KEEPALIVE_OPTIONS, bearerAuthorization, channelCredentials, type ClientTlsOptions } from '@fedlhs/service';

/**
 * The agent's connection to the coordinator: one HTTP/2 channel (keepalive and TLS set once, in
 * `createClients`) carrying both services. The node credential goes on each call with
 * `authMetadata`, and transient failures are retried by the task runner against the task's
 * deadline using `RETRYABLE_CODES`.
 */
export interface Clients {
  enrolment: EnrolmentClient;
  federation: FederationClient;
  close(): void;
}

/** gRPC clients for the coordinator, sharing one channel with keepalive and TLS as configured. */
export function createClients(address: string, tls: ClientTlsOptions): Clients {
  const proto = loadFedlhsProto();
  const { credentials, options } = channelCredentials(tls);
  const channelOptions = { ...KEEPALIVE_OPTIONS, ...options };
  const federation = new proto.fedlhs.v1.Federation(address, credentials, channelOptions);
  // Share the federation client's channel so both services ride one HTTP/2 connection.
  const enrolment = new proto.fedlhs.v1.Enrolment(address, credentials, { ...channelOptions, channelOverride: federation.getChannel() });
  return {
    enrolment,
    federation,
    close() {
      federation.close();
      enrolment.close();
    },
  };
}

/** Call metadata carrying the node credential ("authorization: Bearer <credential>", federation.proto "Authentication"). */
export function authMetadata(credential: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', bearerAuthorization(credential));
  return md;
}

/** A deadline `ms` from now. */
export function deadlineIn(ms: number): grpc.Deadline {
  return new Date(Date.now() + ms);
}

/**
 * Codes worth retrying: the coordinator was unreachable or restarting (UNAVAILABLE), the call
 * ran out of time (DEADLINE_EXCEEDED), lost a race with itself (ABORTED), or is shedding load
 * (RESOURCE_EXHAUSTED). Everything else
 * (authentication, validation, stale work) will fail the same way again.
 */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED, grpc.status.RESOURCE_EXHAUSTED]);

/** Whether `err` is a gRPC status error (a status code and trailers), as grpc-js rejects with. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number' && 'metadata' in err;
}
