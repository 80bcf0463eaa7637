import type * as grpc from '@grpc/grpc-js';
import { FedlhsError } from '@fedlhs/core';
import { CredentialThrottle } from '../credential-throttle.js';
import type { Logger } from '@fedlhs/service';
import type { Coordinator } from '../coordinator.js';
import type { NodeRecord } from '../store.js';
import type { HandlerContext } from './context.js';
import { authorizationOf } from './status.js';
import { nodeCertificatesOf, type CallWithAuthContext } from '../ca/node-certificates.js';

/** One throttle of failed node-credential and join-token checks per coordinator (every handler shares it). */
const throttles = new WeakMap<Coordinator, CredentialThrottle>();

/** The coordinator's throttle of failed checks on its gRPC port (node credentials and join tokens). */
export function grpcCredentialThrottle(coordinator: Coordinator, log: Logger): CredentialThrottle {
  let t = throttles.get(coordinator);
  if (t === undefined) {
    t = new CredentialThrottle({ surface: 'grpc', failuresPerMinute: coordinator.limits.authFailuresPerMinute, metrics: coordinator.metrics, log });
    throttles.set(coordinator, t);
  }
  return t;
}

/**
 * Authenticates a call's node credential: the one place every fedlhs.v1.Federation handler
 * checks a credential. A source address (the peer's IP, an IPv6 /64) whose wrong credentials used
 * up limits.authFailuresPerMinute is refused RATE_LIMITED (RESOURCE_EXHAUSTED, details
 * {limit, retryAfterMs}) without the credential being checked, until its budget refills.
 * A coordinator that issues node certificates (tls.clientCertificates 'issued') also requires
 * the call's client certificate to be from its CA, to name the credential's node, to be unexpired
 * now and to pass the record of serials (superseded, revoked: ca/node-certificates.ts checkCall).
 */
export function authenticateCall(ctx: HandlerContext, call: { metadata: grpc.Metadata; getPeer(): string } & CallWithAuthContext): Promise<NodeRecord> {
  return grpcCredentialThrottle(ctx.coordinator, ctx.log).guard(call.getPeer(), async () => {
    const node = await ctx.coordinator.authenticate(authorizationOf(call));
    await nodeCertificatesOf(ctx.coordinator)?.checkCall(call, node);
    return node;
  });
}

/**
 * Ends an open transfer stream of `node` through `abort` when the node is revoked (node-calls.ts:
 * UNAUTHENTICATED) or, with issued certificates, when the client certificate the stream was
 * opened with expires or is superseded past tls.supersededGraceSeconds (CERTIFICATE_ROTATED:
 * UNAVAILABLE, so the agent retries on a new connection presenting its newest certificate).
 * Returns what undoes both; call it when the stream ends.
 */
export function endStreamWithNode(ctx: HandlerContext, node: NodeRecord, call: CallWithAuthContext, abort: (err: FedlhsError) => void): () => void {
  const unregister = ctx.coordinator.calls.register(node.id, abort);
  const unwatch = nodeCertificatesOf(ctx.coordinator)?.watchCall(call, (err) => {
    abort(new FedlhsError('CERTIFICATE_ROTATED', `the client certificate this stream was opened with can no longer be used (${err.message}); retry: a new connection presents the newest certificate`));
  });
  return () => {
    unregister();
    unwatch?.();
  };
}
