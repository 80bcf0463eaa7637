// The clinic's release commands as its IT person uses them (issue 12), run through the built
// agent over a state directory prepared here: releases signed in the test with a generated
// Ed25519 key (the key "pinned at enrolment"), kept as the running agent keeps them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentMain, coordinatorMain, enrolAgent, startAgent, startCoordinator, startStudy, waitForRelease, type AgentOptions } from '@fedlhs/tests';
import { buildRelease, releaseKeyPair, writeKept, writeTestCsv } from '../../node-agent/src/releases/test-support.js';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

function clinic(pinned: { publicPem: string; fingerprint: string } | undefined): string {
  const stateDir = join(ws.dir(), 'clinic');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(stateDir, 'node-credential.json'),
    JSON.stringify({ nodeId: 'node-1', siteName: 'north', coordinator: '127.0.0.1:1', credential: 'x', enrolledAt: '2026-11-30T06:00:00.000Z', tls: { mode: 'plaintext', caFile: '', serverName: '' }, releaseKey: pinned }),
    { mode: 0o600 },
  );
  return stateDir;
}

describe('fedlhs-agent release', () => {
  it('lists, shows, deploys and rolls back kept releases; a release changed on disk is refused loudly', async () => {
    const key = releaseKeyPair();
    const stateDir = clinic(key.pinned);
    const agent = (...args: string[]) => runCli(agentMain, ['release', ...args, '--state-dir', stateDir]);
    for (const version of [1, 2]) writeKept(stateDir, buildRelease({ studyName: 'sepsis', version, privateKey: key.privateKey }), { aliases: version === 2 ? ['champion'] : [] });

    const empty = await agent('list');
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toContain('sepsis  (none deployed)');
    expect(empty.stdout).toMatch(/ {3}v2 +kept .* aliases: champion/);

    const show = await agent('show', 'sepsis', '2');
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('release sepsis v2');
    expect(show.stdout).toContain('verified against the pinned release key; aliases champion; not deployed');
    expect(show.stdout).toContain('intended use     tests only');
    expect(show.stdout).toContain('selection (best-validation-auc)');
    expect(show.stdout).toContain('pooled           n 120, cases 40, AUC 0.780 (95% CI 0.700–0.860), Brier 0.180');
    expect(show.stdout).toContain("what the model needs from this clinic's data (flat-table/v1, 3 features, label label)");
    expect(show.stdout).toContain('  - x1: a number per patient');

    const deployed = await agent('deploy', 'sepsis', '1');
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain('deployed release sepsis v1 (verified against the pinned key)');
    const record = JSON.parse(readFileSync(join(stateDir, 'releases', 'deployed.json'), 'utf8'));
    expect(record.current.sepsis).toMatchObject({ version: 1, action: 'deploy', by: `operator:${userInfo().username}` });
    expect((await agent('list')).stdout).toMatch(/\* v1 +kept .*DEPLOYED/);

    expect((await agent('deploy', 'sepsis', '2')).code).toBe(0);
    const back = await agent('rollback', 'sepsis');
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('rolled back release sepsis from v2 to v1 (no earlier deployment left to roll back to)');
    const again = await agent('rollback', 'sepsis');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('release sepsis v1 is the first one deployed here: there is no earlier deployment to roll back to');

    const audit = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(audit.map((a) => a.event)).toEqual(['release_deployed', 'release_deployed', 'release_rolled_back']);

    const missing = await agent('deploy', 'sepsis', '7');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('release sepsis v7 is not kept here');

    // Someone edits the kept weights: show and deploy refuse it, naming the file.
    const weights = join(stateDir, 'releases', 'sepsis', '2', 'weights.bin');
    const bytes = readFileSync(weights);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(weights, bytes);
    for (const args of [['show', 'sepsis', '2'], ['deploy', 'sepsis', '2']]) {
      const r = await agent(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/REFUSED: release sepsis v2 .* no longer verifies against the pinned release key \(weights\.bin: SHA-256/);
    }
    expect(JSON.parse(readFileSync(join(stateDir, 'releases', 'deployed.json'), 'utf8')).current.sepsis.version).toBe(1);

    // A refusal the running agent recorded (as fetch.ts writes it) shows in the list.
    writeFileSync(join(stateDir, 'audit.jsonl'), `${JSON.stringify({ time: '2026-11-30T07:00:00.000Z', event: 'release_refused', coordinator: 'c', outcome: 'signature', detail: 'the envelope signature does not verify', release: { studyName: 'sepsis', version: 3, why: 'signature' } })}\n`, { flag: 'a' });
    const listed = await agent('list');
    expect(listed.stdout).toContain('refused (latest; the full record is in the audit log):');
    expect(listed.stdout).toContain('sepsis v3  signature: the envelope signature does not verify');
  });

  it('computes local normalisation from the clinic\'s data at deploy time, and says what is missing without it', async () => {
    const key = releaseKeyPair();
    const stateDir = clinic(key.pinned);
    writeKept(stateDir, buildRelease({ studyName: 'stroke', version: 1, privateKey: key.privateKey, normalization: 'local-zscore' }));
    const noData = await runCli(agentMain, ['release', 'deploy', 'stroke', '1', '--state-dir', stateDir]);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toContain('uses local-zscore normalisation, computed from this clinic\'s training data at deploy time: configure data.path');
    const csv = join(ws.dir(), 'export.csv');
    writeTestCsv(csv, 200);
    const ok = await runCli(agentMain, ['release', 'deploy', 'stroke', '1', '--state-dir', stateDir, '--data-path', csv, '--data-format', 'flat-table', '--data-key-column', 'record_id']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("this clinic's normalisation computed from its training split");
    const record = JSON.parse(readFileSync(join(stateDir, 'releases', 'deployed.json'), 'utf8'));
    expect(record.current.stroke.normalization.features.map((f: { name: string }) => f.name)).toEqual(['x1', 'x2', 'x3']);
  });

  it('refuses bad arguments and an agent without a pinned release key, clearly', async () => {
    const key = releaseKeyPair();
    const stateDir = clinic(key.pinned);
    const badName = await runCli(agentMain, ['release', 'show', '../etc', '--state-dir', stateDir]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('"../etc" is not a study name');
    const badVersion = await runCli(agentMain, ['release', 'deploy', 'sepsis', 'latest', '--state-dir', stateDir]);
    expect(badVersion.code).toBe(2);
    expect(badVersion.stderr).toContain('"latest" is not a release version');
    const nothing = await runCli(agentMain, ['release', 'show', 'sepsis', '--state-dir', stateDir]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('no release of study "sepsis" is kept here');

    const unpinned = clinic(undefined);
    const r = await runCli(agentMain, ['release', 'list', '--state-dir', unpinned]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no release key was pinned at enrolment');
  });
});

describe('a running agent and a real coordinator', () => {
  it('fetches and keeps the release of a study it approved, deploys the champion by policy, and reports live performance', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const dir = join(ws.dir(), 'north');
    mkdirSync(dir, { recursive: true });
    const dataPath = join(dir, 'data.csv');
    writeLearnableCsv(dataPath, { rows: 400, seed: 5 });
    const env = { FEDLHS_RELEASES_AUTO_DEPLOY: 'champion', FEDLHS_RELEASES_POLL_SECONDS: '1', FEDLHS_RELEASES_MONITOR_SECONDS: '1' };
    const o: AgentOptions = { name: 'north', stateDir: join(dir, 'state'), dataPath, coordinator: c.address, autoApprove: true, env };
    await enrolAgent(c, o);
    const agent = ws.track(startAgent(o));
    const study = await startStudy(c, learnableManifest({ name: 'released', rounds: 1, min: 1, max: 1, quorum: 1 }));
    const released = await waitForRelease(c, study.id);
    expect(released).toMatchObject({ studyName: 'released', version: 1 });

    const kept = await agent.waitForEvent('release.kept', { studyName: 'released', version: 1 }, 60_000);
    expect(kept.level).toBe(30);
    expect(agent.events('release.refused')).toEqual([]);
    for (const f of ['manifest.json', 'model.json', 'weights.bin', 'release.json', 'model-card.md', 'envelope.json', 'kept.json']) {
      expect(readFileSync(join(o.stateDir, 'releases', 'released', '1', f)).length, f).toBeGreaterThan(0);
    }

    // The hospital names it champion; the clinic's policy deploys it at the next poll.
    const adminEnv = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir };
    const alias = await runCli(coordinatorMain, ['release', 'alias', 'released', 'champion', '1'], adminEnv);
    expect(alias.code, alias.stderr).toBe(0);
    await agent.waitForEvent('release.auto_deployed', { studyName: 'released', version: 1 }, 60_000);

    // The export the study already evaluated is the baseline: nothing is reported for it.
    await agent.waitForEvent('release.monitor_baseline', { studyName: 'released', version: 1 }, 60_000);
    expect(agent.events('release.performance_sent')).toEqual([]);
    // A refreshed export (the same patients and 200 new ones): live performance on the hold-out
    // TEST part, reported once per export.
    writeLearnableCsv(dataPath, { rows: 600, seed: 5 });
    const sent = await agent.waitForEvent('release.performance_sent', { studyName: 'released', version: 1 }, 60_000);
    expect(sent.duplicate).toBe(false);
    expect(Number(sent.numExamples)).toBeGreaterThan(20);
    expect(Number(sent.numExamples)).toBeLessThan(120); // the hold-out of 600 rows is about 150
    await agent.stop();

    const list = await runCli(agentMain, ['release', 'list', '--state-dir', o.stateDir]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/released {2}\(deployed: v1 since .* by auto-policy\)/);
    expect(list.stdout).toMatch(/\* v1 +kept .* aliases: champion {2}DEPLOYED/);
    const audit = readFileSync(join(o.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; outcome?: string });
    expect(audit.filter((a) => a.event.startsWith('release_')).map((a) => `${a.event}:${a.outcome}`)).toEqual([
      'release_kept:kept', 'release_deployed:deployed (auto policy)', 'release_performance_sent:sending', 'release_performance_sent:accepted',
    ]);
  });
});
