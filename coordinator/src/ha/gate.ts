import type * as grpc from '@grpc/grpc-js';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { toStatus } from '../grpc/status.js';

/** Trailing metadata key of a NOT_LEADER refusal: the active coordinator's advertised address, when known. */
export const LEADER_KEY = 'fedlhs-leader';

/** NOT_LEADER, naming the active if known. */
export function notLeader(leader: string | undefined): FedlhsError<'NOT_LEADER'> {
  return new FedlhsError('NOT_LEADER', `this coordinator is a standby and takes no work${leader === undefined ? '' : `: the active coordinator is at ${leader}`} (use another address of coordinator.address)`, {
    details: leader === undefined ? {} : { leader },
  });
}

type AnyHandler = (call: unknown, callback?: (err: unknown) => void) => void;

/**
 * Service handlers in front of whichever coordinator is active (ha/ha-app.ts): while `current()`
 * gives handlers, a call goes to them; otherwise it is refused with NOT_LEADER (gRPC
 * UNAVAILABLE, trailers `fedlhs-error-code: NOT_LEADER` and `fedlhs-leader: <address>` when the
 * active's address is known). Unary and client-streaming calls are answered through their
 * callback, server-streaming and bidi ones with an 'error' event, as the real handlers do.
 */
export function gatedService(
  definition: grpc.ServiceDefinition,
  current: () => grpc.UntypedServiceImplementation | undefined,
  leader: () => string | undefined,
  log: Logger,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    out[name] = ((call: unknown, callback?: (err: unknown) => void) => {
      const handlers = current();
      const handler = handlers?.[name] as AnyHandler | undefined;
      if (handler !== undefined) {
        handler(call, callback);
        return;
      }
      const address = leader();
      const status = toStatus(notLeader(address), log, name);
      if (address !== undefined) status.metadata.set(LEADER_KEY, address);
      if (!method.responseStream) callback!(status);
      else (call as { emit(name: string, status: unknown): void }).emit('error', status);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}
