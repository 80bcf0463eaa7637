import { timingSafeEqual } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import type { AgentState, PeerPinRecord } from './agent-state.js';
import { identityFingerprint } from './identity-key.js';

/*
 * Trust on first use for neighbouring clinics' secure-aggregation identity keys (proto "Secure
 * aggregation", Identity). The coordinator relays every key, so without pins a coordinator could
 * hand this clinic a key of its own for a neighbour, sign that neighbour's keys with it and read
 * the shares sealed for it. The first key seen for a node id is pinned; a different key later
 * refuses the round, naming the peer and both fingerprints, until the operator, having checked
 * with the other clinic that it re-enrolled or replaced its key, runs `fedlhs-agent peers forget`.
 */

/** Where a key was offered: the round the pin or refusal is recorded against. */
export interface PinContext {
  coordinator: string;
  studyId: string;
  round: number;
  taskId?: string;
  log?: Pick<Logger, 'info' | 'warn'>;
}

const sameKey = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && timingSafeEqual(a, b);

/**
 * The `checkPeer` of the clinic's SecAggIdentity: pins `identityKey` for `nodeId` at first sight
 * (audited secagg_peer_pinned), accepts the key pinned, and throws for any other (audited
 * secagg_peer_refused) naming the peer and both fingerprints.
 */
export function checkPeerPin(state: AgentState, where: PinContext, nodeId: string, identityKey: Uint8Array): void {
  const fingerprint = identityFingerprint(identityKey);
  const at = { coordinator: where.coordinator, studyId: where.studyId, round: where.round, ...(where.taskId === undefined ? {} : { taskId: where.taskId }) };
  let pin = state.getPeerPin(nodeId);
  if (pin === undefined) {
    const r = state.pinPeer({ nodeId, identityKey, firstSeenAt: Date.now(), studyId: where.studyId, round: where.round });
    pin = r.pin;
    if (r.inserted) {
      state.audit({ event: 'secagg_peer_pinned', ...at, peer: { nodeId, fingerprint }, detail: `first sight of ${nodeId}'s secure-aggregation identity key: pinned (fingerprint ${fingerprint})` });
      where.log?.info({ event: 'secagg.peer_pinned', peer: nodeId, fingerprint }, `secure aggregation: pinned ${nodeId}'s identity key at first sight (fingerprint ${fingerprint}); compare it with that clinic's \`fedlhs-agent peers\`, out of band`);
      return;
    }
  }
  if (sameKey(pin.identityKey, identityKey)) return;
  const pinnedFingerprint = identityFingerprint(pin.identityKey);
  const why = `${nodeId}'s identity key changed: pinned ${pinnedFingerprint} (first seen in study ${pin.studyId} round ${pin.round}), offered ${fingerprint}; refused (if ${nodeId} re-enrolled, check with its operator, then run \`fedlhs-agent peers forget ${nodeId}\`)`;
  state.audit({ event: 'secagg_peer_refused', ...at, peer: { nodeId, fingerprint, pinnedFingerprint }, outcome: 'refused', detail: why });
  where.log?.warn({ event: 'secagg.peer_refused', peer: nodeId, fingerprint, pinnedFingerprint }, `secure aggregation: ${why}`);
  // A plain Error: the protocol client turns whatever checkPeer throws into its refusal of the request.
  throw new Error(why);
}

/** A node id as given on the command line: what the coordinator's ids look like (at most 128 printable characters). */
export function checkNodeIdArgument(nodeId: string): string {
  if (nodeId.length === 0 || nodeId.length > 128 || !/^[\x21-\x7e]+$/.test(nodeId)) {
    throw new FedlhsError('INVALID_ARGUMENT', `${JSON.stringify(nodeId)} is not a node id (1 to 128 printable characters without spaces)`, { details: { field: 'nodeId' } });
  }
  return nodeId;
}

/** Removes a peer's pin (audited secagg_peer_forgotten); NOT_FOUND when none is pinned. */
export function forgetPeer(state: AgentState, coordinator: string, nodeId: string, by: string): PeerPinRecord {
  const pin = state.forgetPeerPin(checkNodeIdArgument(nodeId));
  if (pin === undefined) throw new FedlhsError('NOT_FOUND', `no identity key is pinned for ${nodeId}; \`fedlhs-agent peers\` lists the pinned ones`, { details: { what: 'node', id: nodeId } });
  const fingerprint = identityFingerprint(pin.identityKey);
  state.audit({ event: 'secagg_peer_forgotten', coordinator, peer: { nodeId, fingerprint }, detail: `${by} removed the pin of ${nodeId}'s identity key (fingerprint ${fingerprint}, first seen in study ${pin.studyId} round ${pin.round}): its next key is pinned at first sight` });
  return pin;
}
