// The clinic side of the command line as a clinic IT person uses it: help that never starts
// anything, options in any position, an agent that remembers the coordinator it enrolled with,
// hash prefixes, and TLS errors that say which name to use.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestPki, learnableManifest } from '@fedlhs/testing';
import { agentMain, coordinatorMain, startCoordinator } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

describe('command-line help', () => {
  it('prints help and exits for every command and subcommand, wherever --help stands, without loading configuration', async () => {
    const invalid = { FEDLHS_GRPC_PORT: 'not-a-port', FEDLHS_COORDINATOR: 'no port', FEDLHS_TLS_MODE: 'tls' };
    const cases: Array<[string, string[]]> = [
      [coordinatorMain, ['serve', '--help']],
      [coordinatorMain, ['serve', '--tls-mode', 'plaintext', '--grpc-port', '0', '--help']],
      [coordinatorMain, ['token', 'create', '--help']],
      [coordinatorMain, ['study', 'show', '--help']],
      [coordinatorMain, ['-h', 'status']],
      [agentMain, ['run', '--tls-mode', 'plaintext', '--help']],
      [agentMain, ['enrol', '--help']],
      [agentMain, ['review', '-h']],
      [agentMain, ['data', 'check', '--data-format', 'omop-csv', '--help']],
      [agentMain, ['--help', 'approve']],
    ];
    for (const [main, args] of cases) {
      const r = await runCli(main, args, invalid);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/^Usage: fedlhs-(coordinator|agent) /);
      expect(r.stderr).toBe('');
    }
  });
});

describe('an agent that remembers its coordinator', () => {
  it('enrols over TLS once; review, approve (by prefix) and status then need no --coordinator or --tls-ca; options may come first', async () => {
    const pki = createTestPki(ws.dir());
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), tls: { ...pki } }));
    const port = c.address.slice(c.address.lastIndexOf(':') + 1);
    const env = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir };
    const stateDir = join(ws.dir(), 'clinic');

    // A name the certificate is not for: the error says which names it is for.
    const token = (await runCli(coordinatorMain, ['token', 'create', '--site', 'north'], env)).stdout.trim();
    const wrongName = await runCli(agentMain, ['enrol', '--state-dir', stateDir, '--site', 'north', '--join-token', token, '--coordinator', `127.0.0.1:${port}`, '--tls-ca', pki.caCert, '--tls-server-name', 'fl.example.org']);
    expect(wrongName.code).not.toBe(0);
    expect(wrongName.stderr).toContain('the coordinator\'s certificate is not for "fl.example.org" but for "localhost", "127.0.0.1"');

    // The loopback address works (the certificate carries IP SANs); the token was not used up.
    const enrolled = await runCli(agentMain, ['enrol', '--state-dir', stateDir, '--site', 'north', '--join-token', token, '--coordinator', `127.0.0.1:${port}`, '--tls-ca', pki.caCert]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toMatch(/coordinator certificate SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2} \(for localhost, 127\.0\.0\.1/);
    // The release key is pinned and its fingerprint printed: the one the coordinator logged at start.
    const fingerprint = String(c.proc.events('coordinator.ready')[0]?.releaseKeyFingerprint);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(enrolled.stdout).toContain(`coordinator release key fingerprint ${fingerprint}: compare it`);
    expect(JSON.parse(readFileSync(join(stateDir, 'node-credential.json'), 'utf8')).releaseKey.fingerprint).toBe(fingerprint);

    const manifestFile = join(ws.dir(), 'study.json');
    writeFileSync(manifestFile, JSON.stringify(learnableManifest({ name: 'remembered', rounds: 1, min: 1, max: 1, quorum: 1 })));
    const started = await runCli(coordinatorMain, ['study', 'start', manifestFile], env);
    expect(started.code, started.stderr).toBe(0);

    // Only the state directory, given in a config file placed before the subcommand.
    const configFile = join(ws.dir(), 'agent.json');
    writeFileSync(configFile, JSON.stringify({ stateDir }));
    const review = await runCli(agentMain, ['--config', configFile, 'review']);
    expect(review.code, review.stderr).toBe(0);
    expect(review.stderr).not.toContain('could not reach the coordinator');
    const hash = /fedlhs-agent approve ([0-9a-f]{64})/.exec(review.stdout)?.[1];
    expect(hash).toBeDefined();

    const tooShort = await runCli(agentMain, ['approve', hash!.slice(0, 7), '--state-dir', stateDir]);
    expect(tooShort.code).toBe(2);
    expect(tooShort.stderr).toContain('is not a manifest sha256 or a prefix of one (8 to 64 lowercase hex digits)');
    const unknown = await runCli(agentMain, ['approve', 'ffffffffffff', '--state-dir', stateDir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no manifest with hash ffffffffffff');
    const approved = await runCli(agentMain, ['--state-dir', stateDir, 'approve', hash!.slice(0, 8)]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`(${hash})`);

    const status = await runCli(agentMain, ['status', '--state-dir', stateDir]);
    expect(status.stdout).toContain(`coordinator 127.0.0.1:${port}`);
    expect(status.stdout).toContain(`CA ${join(stateDir, 'coordinator-ca.pem')}`);
  });
});
