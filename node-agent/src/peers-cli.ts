import type { Command } from 'commander';
import { isFedlhsError } from '@fedlhs/core';
import { AgentState, type PeerPinRecord } from './agent-state.js';
import type { AgentCli } from './cli-kit.js';
import { identityFingerprint, readIdentityKey, type IdentityKey } from './identity-key.js';
import { forgetPeer } from './peer-pins.js';
import { operatorName } from './releases/deploy.js';

/**
 * The positional arguments after the first in `args` (commander's `command.args` with unknown
 * options allowed): a token starting with `-` is an option, and without `=` the token after it
 * is its value.
 */
export function positionalsAfterFirst(args: readonly string[]): string[] {
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) {
      if (!a.includes('=')) i++;
    } else positionals.push(a);
  }
  return positionals.slice(1);
}

/** One pinned peer as `fedlhs-agent peers` shows it. */
export interface PeerView {
  nodeId: string;
  fingerprint: string;
  firstSeen: string;
  studyId: string;
  round: number;
}

/** A pin for display (the key itself is not shown: its fingerprint is what operators compare). */
export function peerView(p: PeerPinRecord): PeerView {
  return { nodeId: p.nodeId, fingerprint: identityFingerprint(p.identityKey), firstSeen: new Date(p.firstSeenAt).toISOString(), studyId: p.studyId, round: p.round };
}

/** The line about this clinic's own identity key (shared with `fedlhs-agent privacy`). */
export function identityLine(key: IdentityKey | undefined): string {
  return key === undefined
    ? "this clinic's secure-aggregation identity key: none yet (created at its first secure-aggregation round)"
    : `this clinic's secure-aggregation identity key fingerprint ${key.fingerprint} (${key.path}): neighbouring clinics pin it; compare it with theirs out of band`;
}

/** `peers` as text (values from outside go through `v`). */
export function formatPeers(own: IdentityKey | undefined, peers: readonly PeerView[], v: AgentCli['v']): string {
  const lines = [identityLine(own)];
  if (peers.length === 0) lines.push('no neighbouring clinic pinned yet');
  else lines.push(`${peers.length} neighbouring clinic(s) pinned (identity key fingerprint, first seen):`);
  for (const p of peers) lines.push(`  ${v(p.nodeId)}  ${p.fingerprint}  ${p.firstSeen} (study ${v(p.studyId)} round ${p.round})`);
  return `${lines.join('\n')}\n`;
}

/**
 * `fedlhs-agent peers` (this clinic's identity key fingerprint and the neighbours' identity keys
 * pinned at first sight) and `fedlhs-agent peers forget <node id>` (removes one pin, audited, for
 * a peer that re-enrolled or replaced its key: its next key is pinned at first sight). Both work
 * offline, on the state directory; a running agent sees the change at its next round.
 */
export function registerPeersCommands(cli: AgentCli): void {
  const { out } = cli;
  const openState = (options: { config?: string }, command: Command) => {
    const c = cli.config(options, command);
    return { c, state: new AgentState(c.stateDir) };
  };
  const group = cli.withConfig('peers', "secure aggregation: this clinic's identity key fingerprint and the neighbouring clinics' identity keys pinned here (works offline)")
    .option('--json', 'print as JSON')
    .action((options: { config?: string; json?: boolean }, command: Command) => {
      const { state } = openState(options, command);
      try {
        let own: IdentityKey | undefined;
        try {
          own = readIdentityKey(state.dir);
        } catch (err) {
          cli.die(isFedlhsError(err) ? err.message : String(err), 2);
        }
        const peers = state.listPeerPins().map(peerView);
        out(options.json === true ? `${JSON.stringify({ identity: own === undefined ? null : { fingerprint: own.fingerprint, path: own.path }, peers }, null, 2)}\n` : formatPeers(own, peers, cli.v));
      } finally {
        state.close();
      }
    });
  group.command('forget <nodeId>')
    .description("remove a neighbouring clinic's pinned identity key (after checking with its operator that it re-enrolled or replaced its key); its next key is pinned at first sight")
    .option('--config <file>', 'JSON config file')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action((nodeId: string, options: { config?: string }, command: Command) => {
      // Extra arguments pass through for config flags (`--tls.mode plaintext`); a second node id
      // would be ignored (review: `peers forget a b` forgot only a), so it is refused.
      const extra = positionalsAfterFirst(command.args);
      if (extra.length > 0) cli.die(`peers forget takes one node id; also given: ${extra.map(cli.v).join(', ')} (nothing was forgotten: run it once per clinic)`, 2);
      const { c, state } = openState(options, command);
      try {
        const pin = forgetPeer(state, c.coordinator.address, nodeId, operatorName());
        out(`forgot ${cli.v(nodeId)}'s identity key ${identityFingerprint(pin.identityKey)}: its next key is pinned at first sight; compare that one with its operator (\`fedlhs-agent peers\` on both sides)\n`);
      } catch (err) {
        cli.die(isFedlhsError(err) ? err.message : String(err), isFedlhsError(err, 'NOT_FOUND') ? 1 : 2);
      } finally {
        state.close();
      }
    });
}
