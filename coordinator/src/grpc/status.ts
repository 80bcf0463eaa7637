import * as grpc from '@grpc/grpc-js';
import { isFedlhsError, type FedlhsErrorCode } from '@fedlhs/core';
import { REJECTION_REASON_KEY } from '@fedlhs/proto';
import type { Logger } from '@fedlhs/service';

const CODES: Record<FedlhsErrorCode, grpc.status> = {
  INVALID_MANIFEST: grpc.status.INVALID_ARGUMENT,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  DATA_LOSS: grpc.status.DATA_LOSS,
  ABORTED: grpc.status.ABORTED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INVALID_TRANSITION: grpc.status.INTERNAL,
  INTERNAL: grpc.status.INTERNAL,
};

/**
 * The one boundary where any thrown value becomes a gRPC status. Domain errors keep their
 * message and, for rejected contributions, carry the reason as trailing metadata; anything
 * else is logged with its details and leaves as a bare INTERNAL.
 */
export function toStatus(err: unknown, log: Logger, method: string): Partial<grpc.StatusObject> {
  if (isFedlhsError(err)) {
    const metadata = new grpc.Metadata();
    if (err.reason !== undefined) metadata.set(REJECTION_REASON_KEY, err.reason);
    return { code: CODES[err.code], details: err.message, metadata };
  }
  log.error({ err, method }, 'internal error in gRPC handler');
  return { code: grpc.status.INTERNAL, details: 'internal error (see coordinator log)', metadata: new grpc.Metadata() };
}

/** The bearer credential of a call, if any. */
export function authorizationOf(call: { metadata: grpc.Metadata }): string | undefined {
  const value = call.metadata.get('authorization')[0];
  return typeof value === 'string' ? value : undefined;
}
