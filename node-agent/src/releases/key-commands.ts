import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isFedlhsError } from '@fedlhs/core';
import { AgentState } from '../agent-state.js';
import type { AgentCli } from '../cli-kit.js';
import { pinReleaseKey } from '../release-pin.js';
import { operatorName } from './deploy.js';

/**
 * `fedlhs-agent release-key show | pin`: the coordinator's release key this clinic trusts. After
 * the hospital rotates its key (`fedlhs-coordinator release-key rotate`), new releases are signed
 * with the new key and refused here (`signature`) until the clinic's operator pins it, having
 * compared its fingerprint with the hospital's out of band. The key it replaces is kept, so
 * releases kept under it still verify; new releases must be signed by the current key.
 */
export function registerReleaseKeyCommands(cli: AgentCli): void {
  const { out, v } = cli;
  const group = cli.withConfig('release-key', "the coordinator's release signing key this clinic trusts: show, pin");
  const sub = (name: string, description: string): Command =>
    group.command(name).description(description).option('--config <file>', 'JSON config file').allowUnknownOption(true).allowExcessArguments(true);

  const credentialOf = (options: { config?: string }, command: Command) => {
    const c = cli.config(options, command);
    const state = new AgentState(c.stateDir);
    let credential;
    try {
      credential = state.loadCredential();
    } catch (err) {
      cli.die((err as Error).message, 2);
    }
    if (credential === undefined) cli.die(`not enrolled (state dir ${c.stateDir})`, 2);
    return { c, state, credential };
  };

  sub('show', 'the pinned release key and the keys it replaced').action((options: { config?: string }, command: Command) => {
    const { credential } = credentialOf(options, command);
    const k = credential.releaseKey;
    if (k === undefined) {
      out('no release key pinned (the coordinator sent none at enrolment): releases cannot be verified\n');
      return;
    }
    out(`release key fingerprint ${k.fingerprint} (current: new releases must be signed with it)\n`);
    for (const r of k.retired ?? []) out(`  replaced ${v(r.retiredAt)}: ${r.fingerprint} (releases kept under it still verify)\n`);
  });

  sub('pin', "trust the coordinator's new release key after a rotation (compare its fingerprint with the hospital's first)")
    .requiredOption('--public-key <file>', "the coordinator's new release public key (PEM, from `fedlhs-coordinator release-key show`)")
    .requiredOption('--fingerprint <sha256>', 'its fingerprint as the hospital gave it, out of band (64 hex digits)')
    .action((options: { config?: string; publicKey: string; fingerprint: string }, command: Command) => {
      const { c, state, credential } = credentialOf(options, command);
      if (!/^[0-9a-f]{64}$/.test(options.fingerprint)) cli.die(`--fingerprint: ${JSON.stringify(options.fingerprint.slice(0, 80))} is not a SHA-256 fingerprint (64 lower-case hex digits)`, 2);
      let pem: string;
      try {
        pem = readFileSync(options.publicKey, 'utf8');
      } catch (err) {
        cli.die(`--public-key: cannot read ${options.publicKey}: ${(err as Error).message}`, 2);
      }
      let pinned;
      try {
        pinned = pinReleaseKey(pem, options.fingerprint);
      } catch (err) {
        cli.die(`not pinned: ${isFedlhsError(err) ? err.message : String(err)}`, 1);
      }
      if (pinned === undefined) cli.die('--public-key: the file holds no key', 2);
      const previous = credential.releaseKey;
      if (previous?.fingerprint === pinned.fingerprint) {
        out(`release key ${pinned.fingerprint} is already the pinned one; nothing changed\n`);
        return;
      }
      const at = new Date().toISOString();
      const retired = previous === undefined ? [] : [{ publicPem: previous.publicPem, fingerprint: previous.fingerprint, retiredAt: at }, ...(previous.retired ?? [])];
      state.saveCredential({ ...credential, releaseKey: { ...pinned, retired: retired.filter((r) => r.fingerprint !== pinned.fingerprint) } });
      state.audit({
        event: 'release_key_pinned', coordinator: c.coordinator.address, outcome: 'pinned',
        detail: `release key ${pinned.fingerprint} pinned by ${operatorName()}${previous === undefined ? '' : `, replacing ${previous.fingerprint}`}`,
      });
      out(`pinned release key ${pinned.fingerprint}${previous === undefined ? '' : ` (replacing ${previous.fingerprint}, kept to verify releases kept under it)`}; restart a running agent to use it\n`);
    });
}
