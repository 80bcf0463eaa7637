import type * as grpc from '@grpc/grpc-js';
import type { NodeRecord } from '../store.js';
import type { HandlerContext } from './context.js';
import { authorizationOf } from './status.js';

/**
 * Authenticates a call's node credential: the one place every fedlhs.v1.Federation handler
 * checks a credential (so the per-source throttle of failed checks lives here too).
 */
export function authenticateCall(ctx: HandlerContext, call: { metadata: grpc.Metadata; getPeer(): string }): Promise<NodeRecord> {
  return ctx.coordinator.authenticate(authorizationOf(call));
}
