import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentMain, coordinatorMain, enrolAgent, repoRoot, startAgent, startCoordinator, t2dManifest, type AgentOptions } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

describe('command-line interfaces', () => {
  it('stop at start with one line naming the bad config key, its value and what is allowed', async () => {
    const port = await runCli(coordinatorMain, ['serve'], { FEDLHS_GRPC_PORT: 'abc', FEDLHS_TLS_MODE: 'plaintext' });
    expect(port.code).toBe(2);
    expect(port.stderr.trim().split('\n')).toHaveLength(1);
    expect(port.stderr).toMatch(/^fedlhs-coordinator: invalid configuration: grpc\.port: .*value was "abc"/);

    const tls = await runCli(coordinatorMain, ['serve', '--data-dir', join(ws.dir(), 'c')], {});
    expect(tls.code).toBe(2);
    expect(tls.stderr).toContain('tls.cert and tls.key: both are required');

    const file = join(ws.dir(), 'bad.json');
    writeFileSync(file, JSON.stringify({ grpc: { prot: 1 } }));
    const unknown = await runCli(coordinatorMain, ['serve', '--config', file], { FEDLHS_TLS_MODE: 'plaintext' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/grpc\.prot/);

    const mode = await runCli(agentMain, ['run'], { FEDLHS_TLS_MODE: 'sometimes' });
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/^fedlhs-agent: invalid configuration: tls\.mode: must be one of .*value was "sometimes"/);

    const notEnrolled = await runCli(agentMain, ['run', '--state-dir', join(ws.dir(), 'agent')], { FEDLHS_TLS_MODE: 'plaintext' });
    expect(notEnrolled.code).toBe(2);
    expect(notEnrolled.stderr).toContain('not enrolled: run `fedlhs-agent enrol');

    const badHash = await runCli(agentMain, ['approve', 'abc123', '--state-dir', join(ws.dir(), 'agent')]);
    expect(badHash.code).toBe(2);
    expect(badHash.stderr).toContain('is not a manifest sha256');
  });

  it('operator commands drive a running coordinator; a too-small clinic declines and says why', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const env = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir };
    const token = await runCli(coordinatorMain, ['token', 'create', '--site', 'tiny'], env);
    expect(token.code).toBe(0);
    expect(token.stdout.trim()).toMatch(/^fjt_[A-Za-z0-9_-]{43}$/);

    const dir = join(ws.dir(), 'tiny');
    mkdirSync(dir, { recursive: true });
    writeLearnableCsv(join(dir, 'data.csv'), { rows: 12, seed: 5 });
    const o: AgentOptions = { name: 'tiny', stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
    await enrolAgent(c, o);
    const agent = ws.track(startAgent(o));

    const manifestFile = join(ws.dir(), 'study.yaml');
    writeFileSync(manifestFile, JSON.stringify(learnableManifest({ name: 'cli-study', rounds: 1, min: 1, max: 1, quorum: 1 })));
    const started = await runCli(coordinatorMain, ['study', 'start', manifestFile], env);
    expect(started.code, started.stderr).toBe(0);
    const studyId = started.stdout.trim();
    expect(studyId).toMatch(/^cli-study-[0-9a-f]{6}$/);

    await agent.waitForEvent('readiness.sent', { readiness: 'READINESS_COHORT_TOO_SMALL' });
    await c.proc.waitForEvent('node.readiness', { readiness: 'READINESS_COHORT_TOO_SMALL' });
    const status = await runCli(coordinatorMain, ['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${studyId}\\s+RUNNING\\s+0/1\\s+round 1 WAITING_FOR_NODES`));
    expect(status.stdout).toMatch(/tiny\s+online\s+(wasm|tensorflow|cpu)/);
    const api = await c.admin<{ nodes: { readiness: Record<string, { readiness: string; detail: string }> }[] }>('GET', '/api/v1/status');
    expect(api.body.nodes[0]!.readiness[studyId]).toEqual({ readiness: 'READINESS_COHORT_TOO_SMALL', detail: expect.stringContaining('fewer than 20 usable records') });

    const shown = await runCli(coordinatorMain, ['study', 'show', studyId], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/ROUND\s+ATTEMPT\s+STATE/);
    expect(shown.stdout).toMatch(/1\s+1\s+WAITING_FOR_NODES\s+0/);

    const stopped = await runCli(coordinatorMain, ['study', 'stop', studyId], env);
    expect(stopped.code).toBe(0);
    const list = await runCli(coordinatorMain, ['study', 'list'], env);
    expect(list.stdout).toMatch(new RegExp(`${studyId}\\s+STOPPED`));

    const invalid = join(ws.dir(), 'invalid.json');
    writeFileSync(invalid, JSON.stringify({ ...learnableManifest(), rounds: 0 }));
    const rejected = await runCli(coordinatorMain, ['study', 'start', invalid], env);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain('400 MANIFEST_INVALID: invalid study manifest: rounds:');

    const wrongToken = await runCli(coordinatorMain, ['status'], { ...env, FEDLHS_ADMIN_TOKEN: 'nope' });
    expect(wrongToken.stderr).toContain('401 CREDENTIAL_INVALID');

    // Nothing identifying a record reached any log or the audit trail.
    const recordIds = readFileSync(o.dataPath, 'utf8').split('\n').slice(1, -1).map((l) => l.split(',')[0]!);
    const everything = [...agent.lines.map((l) => JSON.stringify(l)), ...c.proc.lines.map((l) => JSON.stringify(l)), readFileSync(join(o.stateDir, 'audit.jsonl'), 'utf8')].join('\n');
    for (const id of recordIds) expect(everything.includes(id), id).toBe(false);
  });

  it('release-key show prints the fingerprint the coordinator logged; rotate refuses while it runs, then keeps the old public key', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'keyed') }));
    const fingerprint = String(c.proc.events('coordinator.ready')[0]?.releaseKeyFingerprint);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const shown = await runCli(coordinatorMain, ['release-key', 'show', '--data-dir', c.dataDir]);
    expect(shown.stdout.split('\n')[0]).toBe(`release key fingerprint ${fingerprint}`);
    expect(shown.stdout).toContain(`public key ${join(c.dataDir, 'release-key.pub.pem')} (give it to clinics`);
    const busy = await runCli(coordinatorMain, ['release-key', 'rotate', '--data-dir', c.dataDir]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/cannot rotate the release key: .*in use by another coordinator/);
    await c.stop('SIGTERM');
    const rotated = await runCli(coordinatorMain, ['release-key', 'rotate', '--data-dir', c.dataDir]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const next = /release key rotated: ([0-9a-f]{64}) -> ([0-9a-f]{64})/.exec(rotated.stdout);
    expect(next?.[1]).toBe(fingerprint);
    expect(next?.[2]).not.toBe(fingerprint);
    const after = await runCli(coordinatorMain, ['release-key', 'show', '--data-dir', c.dataDir]);
    expect(after.stdout.split('\n').filter((l) => !l.startsWith('public key'))).toEqual([`release key fingerprint ${next?.[2]}`, `retired key ${fingerprint} (public key kept to verify old releases)`, '']);
    const none = await runCli(coordinatorMain, ['release-key', 'show', '--data-dir', join(ws.dir(), 'empty')]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/no release key in .*: it is created when the coordinator first starts there/)]);
  });

  it('data check prints a local data-quality report for a study, with no identifiers', async () => {
    const fixture = join(repoRoot, 'packages', 'ehr', 'fixtures', 'synthea-v2');
    const manifest = join(ws.dir(), 't2d.json');
    writeFileSync(manifest, JSON.stringify(t2dManifest({ rounds: 1, clinics: 1, quorum: 1, seed: 1 })));
    const r = await runCli(agentMain, ['data', 'check', '--data-format', 'synthea-csv', '--data-path', fixture, '--manifest', manifest, '--state-dir', join(ws.dir(), 'a')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('data: synthea-csv at');
    expect(r.stdout).toMatch(/cohort for study t2d-3y: \d+ patients read, \d+ eligible/);
    expect(r.stdout).toContain('excluded, by reason:');
    expect(r.stdout).toMatch(/glucose\s+\S+ \| \d+ \| \d+ \|/);
    expect(r.stdout).toContain('records or resources rejected, by reason:');
    const ids = readFileSync(join(fixture, 'patients.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]!);
    for (const id of ids) expect(r.stdout.includes(id), id).toBe(false);
    const flat = await runCli(agentMain, ['data', 'check', '--state-dir', join(ws.dir(), 'a')]);
    expect(flat.code).toBe(2);
    expect(flat.stderr).toContain('no local data configured');
  });
});
