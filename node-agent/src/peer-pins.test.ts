import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isFedlhsError, rawEd25519PublicKey } from '@fedlhs/core';
import { AgentState } from './agent-state.js';
import { identityFingerprint } from './identity-key.js';
import { checkNodeIdArgument, checkPeerPin, forgetPeer } from './peer-pins.js';
import { formatPeers, peerView } from './peers-cli.js';

const opened: AgentState[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
const newState = (dir = join(mkdtempSync(join(tmpdir(), 'fedlhs-pins-')), 'state')): AgentState => {
  const s = new AgentState(dir);
  opened.push(s);
  return s;
};
const newKey = (): Uint8Array => rawEd25519PublicKey(generateKeyPairSync('ed25519').privateKey);
const where = { coordinator: 'coordinator:1', studyId: 'study-s', round: 3, taskId: 't1' };

describe('peer pins', () => {
  it('first sight pins the key (audited), the same key later passes silently, and the pin survives a restart', () => {
    const s = newState();
    const key = newKey();
    const logged: unknown[] = [];
    checkPeerPin(s, { ...where, log: { info: (o: unknown) => void logged.push(o), warn: () => undefined } as never }, 'clinic-b', key);
    checkPeerPin(s, { ...where, round: 4 }, 'clinic-b', key);
    const audits = s.readAudit();
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ event: 'secagg_peer_pinned', studyId: 'study-s', round: 3, taskId: 't1', peer: { nodeId: 'clinic-b', fingerprint: identityFingerprint(key) } });
    expect(logged).toEqual([{ event: 'secagg.peer_pinned', peer: 'clinic-b', fingerprint: identityFingerprint(key) }]);
    const dir = s.dir;
    s.close();
    const again = newState(dir);
    expect(again.getPeerPin('clinic-b')).toMatchObject({ nodeId: 'clinic-b', identityKey: key, studyId: 'study-s', round: 3 });
  });

  it('a different key for a pinned peer is refused naming the peer and both fingerprints, audited, and the pin is kept', () => {
    const s = newState();
    const pinned = newKey();
    const offered = newKey();
    checkPeerPin(s, where, 'clinic-b', pinned);
    const warned: unknown[] = [];
    expect(() => checkPeerPin(s, { ...where, round: 5, log: { info: () => undefined, warn: (o: unknown) => void warned.push(o) } as never }, 'clinic-b', offered))
      .toThrow(`clinic-b's identity key changed: pinned ${identityFingerprint(pinned)} (first seen in study study-s round 3), offered ${identityFingerprint(offered)}; refused`);
    expect(s.readAudit().at(-1)).toMatchObject({ event: 'secagg_peer_refused', round: 5, outcome: 'refused', peer: { nodeId: 'clinic-b', fingerprint: identityFingerprint(offered), pinnedFingerprint: identityFingerprint(pinned) } });
    expect(warned).toEqual([{ event: 'secagg.peer_refused', peer: 'clinic-b', fingerprint: identityFingerprint(offered), pinnedFingerprint: identityFingerprint(pinned) }]);
    expect(s.getPeerPin('clinic-b')!.identityKey).toEqual(pinned);
    // Another peer is unaffected.
    expect(() => checkPeerPin(s, where, 'clinic-c', offered)).not.toThrow();
  });

  it('forget removes one pin (audited) so the next key is pinned at first sight; an unknown or malformed id is refused', () => {
    const s = newState();
    const old = newKey();
    checkPeerPin(s, where, 'clinic-b', old);
    checkPeerPin(s, where, 'clinic-c', newKey());
    const removed = forgetPeer(s, 'coordinator:1', 'clinic-b', 'operator:alice');
    expect(removed.identityKey).toEqual(old);
    expect(s.readAudit().at(-1)).toMatchObject({ event: 'secagg_peer_forgotten', peer: { nodeId: 'clinic-b', fingerprint: identityFingerprint(old) }, detail: expect.stringContaining('operator:alice removed the pin') });
    expect(s.listPeerPins().map((p) => p.nodeId)).toEqual(['clinic-c']);
    const fresh = newKey();
    expect(() => checkPeerPin(s, where, 'clinic-b', fresh)).not.toThrow();
    expect(s.getPeerPin('clinic-b')!.identityKey).toEqual(fresh);
    let error: unknown;
    try {
      forgetPeer(s, 'coordinator:1', 'clinic-z', 'operator:alice');
    } catch (err) {
      error = err;
    }
    expect(isFedlhsError(error, 'NOT_FOUND')).toBe(true);
    expect(() => checkNodeIdArgument('')).toThrow(/is not a node id/);
    expect(() => checkNodeIdArgument('a b')).toThrow(/is not a node id/);
    expect(() => checkNodeIdArgument('x'.repeat(129))).toThrow(/is not a node id/);
    expect(checkNodeIdArgument('node-1')).toBe('node-1');
  });

  it('`peers` lists the pins with fingerprints and where each was first seen, and this clinic\'s own fingerprint', () => {
    const s = newState();
    const key = newKey();
    checkPeerPin(s, where, 'clinic-b', key);
    const text = formatPeers(undefined, s.listPeerPins().map(peerView), (x) => String(x));
    expect(text).toContain('identity key: none yet (created at its first secure-aggregation round)');
    expect(text).toMatch(new RegExp(`  clinic-b  ${identityFingerprint(key)}  \\d{4}-\\d\\d-\\d\\dT[^ ]+ \\(study study-s round 3\\)`));
    expect(formatPeers(undefined, [], (x) => String(x))).toContain('no neighbouring clinic pinned yet');
  });
});
