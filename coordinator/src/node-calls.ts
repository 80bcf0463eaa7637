import { FedlhsError } from '@fedlhs/core';

/** Ends one in-flight call with `err` (the transport answers it and stops reading or writing). */
export type CallAbort = (err: FedlhsError) => void;

/**
 * Every in-flight call of every node (control session, uploads, downloads, reports), so that
 * revoking a node ends them all at once (issue 11: credentials were checked at call start only,
 * and an upload running at revocation still counted). Transports register a call after
 * authenticating it and unregister it when it ends; the registry holds no other state.
 */
export class NodeCalls {
  private readonly byNode = new Map<string, Set<CallAbort>>();

  /** Registers an in-flight call of `nodeId`; the result unregisters it (idempotent). */
  register(nodeId: string, abort: CallAbort): () => void {
    let calls = this.byNode.get(nodeId);
    if (calls === undefined) this.byNode.set(nodeId, (calls = new Set()));
    calls.add(abort);
    const set = calls;
    return () => {
      set.delete(abort);
      if (set.size === 0 && this.byNode.get(nodeId) === set) this.byNode.delete(nodeId);
    };
  }

  /** In-flight calls of a node now. */
  count(nodeId: string): number {
    return this.byNode.get(nodeId)?.size ?? 0;
  }

  /** Ends every in-flight call of `nodeId` with `err`; returns how many were ended. */
  abortAll(nodeId: string, err: FedlhsError): number {
    const calls = this.byNode.get(nodeId);
    if (calls === undefined) return 0;
    this.byNode.delete(nodeId);
    for (const abort of calls) abort(err);
    return calls.size;
  }
}

/** The error in-flight calls of a revoked node end with. */
export function revokedError(at: number): FedlhsError {
  return new FedlhsError('CREDENTIAL_INVALID', `node credential was revoked on ${new Date(at).toISOString()}`, { details: { why: 'revoked' } });
}
