/**
 * Issue 12 end to end, with real processes: a cohort study over two synthetic clinics (FHIR
 * bulk exports) completes → the coordinator makes a signed release → both agents verify and keep
 * it; one deploys it by its champion policy, the other by `release deploy` → `fedlhs-agent score`
 * scores the clinic's export (byte-identical twice) → the agent's own CDS Hooks service answers
 * the same risk as `score` for the same patient. Then each way a release can be wrong is refused
 * with its reason: a bundle changed at rest (score refuses, naming the file), a file served with
 * another digest (the fetch refuses, why "digest"), and a release signed with a key other than
 * the one pinned at enrolment (why "signature").
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyId } from '@fedlhs/core';
import { defaultClinics, FORMAT_DIRS, generateClinic, type ClinicProfile } from '@fedlhs/synth';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentMain, coordinatorMain, enrolAgent, startAgent, startCoordinator, startStudy, t2dManifest, waitForRelease, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { describe, expect, it } from 'vitest';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** Every file under `dir` whose name is `name` (the blob store names blobs by digest). */
function findFile(dir: string, name: string): string | undefined {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      const found = findFile(path, name);
      if (found !== undefined) return found;
    } else if (entry === name) {
      return path;
    }
  }
  return undefined;
}

const flipFirstByte = (path: string): void => {
  const bytes = readFileSync(path);
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(path, bytes);
};

describe('a study ends in a release every clinic verifies, deploys and scores with', () => {
  it('release → verify → deploy → score → CDS Hooks agrees; tampering, wrong digests and wrong keys are refused with their reason', async () => {
    const root = ws.dir();
    const profiles: ClinicProfile[] = [
      { ...defaultClinics()[0]!, name: 'north', patients: 700, seed: 1201 },
      { ...defaultClinics()[1]!, name: 'south', patients: 700, seed: 1202 },
    ];
    for (const p of profiles) await generateClinic(p, join(root, p.name), ['fhir-ndjson']);
    const exportOf = (name: string): string => join(root, name, FORMAT_DIRS['fhir-ndjson']);

    const c = ws.track(await startCoordinator({ dataDir: join(root, 'coordinator'), heartbeatIntervalMs: 1000, selectionGraceMs: 300 }));
    const common = { coordinator: c.address, autoApprove: true, dataFormat: 'fhir-ndjson' as const };
    const north: AgentOptions = {
      ...common, name: 'north', stateDir: join(root, 'north-state'), dataPath: exportOf('north'),
      env: { FEDLHS_BACKEND: 'cpu', FEDLHS_RELEASES_AUTO_DEPLOY: 'champion', FEDLHS_RELEASES_POLL_SECONDS: '1', FEDLHS_SCORING_LISTEN: '127.0.0.1:0' },
    };
    const south: AgentOptions = { ...common, name: 'south', stateDir: join(root, 'south-state'), dataPath: exportOf('south'), env: { FEDLHS_BACKEND: 'cpu' } };
    await enrolAgent(c, north);
    await enrolAgent(c, south);
    const northAgent = ws.track(startAgent(north));
    let southAgent = ws.track(startAgent(south));

    const manifest = t2dManifest({ rounds: 3, clinics: 2, quorum: 2, seed: 12, name: 'e2e-t2d' });
    const study = await startStudy(c, manifest);
    expect((await waitForStudyEnd(c, study.id, 300_000)).state).toBe('COMPLETED');
    const released = await waitForRelease(c, study.id);
    expect(released).toMatchObject({ studyName: 'e2e-t2d', version: 1, rule: 'best-validation-auc' });
    expect(released.round).toBeGreaterThanOrEqual(1);

    // Both clinics verify and keep it (they took part); nothing is refused.
    await northAgent.waitForEvent('release.kept', { studyName: 'e2e-t2d', version: 1 }, 60_000);
    await southAgent.waitForEvent('release.kept', { studyName: 'e2e-t2d', version: 1 }, 60_000);
    expect([...northAgent.events('release.refused'), ...southAgent.events('release.refused')]).toEqual([]);

    // The hospital names it champion: north's policy deploys it; south's operator deploys by hand.
    const admin = { FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir };
    const alias = await runCli(coordinatorMain, ['release', 'alias', 'e2e-t2d', 'champion', '1'], admin);
    expect(alias.code, alias.stderr).toBe(0);
    await northAgent.waitForEvent('release.auto_deployed', { studyName: 'e2e-t2d', version: 1 }, 60_000);
    const southDeploy = await runCli(agentMain, ['release', 'deploy', 'e2e-t2d', '1', '--state-dir', south.stateDir]);
    expect(southDeploy.code, southDeploy.stderr).toBe(0);
    const show = await runCli(agentMain, ['release', 'show', 'e2e-t2d', '--state-dir', north.stateDir]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('release e2e-t2d v1');

    // Score north's export, twice: byte-identical files.
    const score = (out: string) => runCli(agentMain, ['score', '--state-dir', north.stateDir, '--data-format', 'fhir-ndjson', '--data-path', exportOf('north'), '--backend', 'cpu', '--out', out]);
    const first = await score(join(root, 'scores-1'));
    expect(first.code, first.stderr).toBe(0);
    expect((await score(join(root, 'scores-2'))).code).toBe(0);
    for (const f of ['scores.csv', 'risk-assessments.ndjson']) {
      expect(readFileSync(join(root, 'scores-2', f)).equals(readFileSync(join(root, 'scores-1', f))), f).toBe(true);
    }
    const rows = readFileSync(join(root, 'scores-1', 'scores.csv'), 'utf8').trimEnd().split('\n').slice(1);
    expect(rows.length).toBeGreaterThan(50);
    const [patientId, , risk, band, studyName, version] = rows[0]!.split(',');
    expect([studyName, version]).toEqual(['e2e-t2d', '1']);

    // The running agent's CDS Hooks service: discovery, then the same patient from its FHIR resources.
    const url = String((await northAgent.waitForEvent('scoring.listening', {}, 30_000)).url);
    const discovery = (await (await fetch(`${url}/cds-services`)).json()) as { services: { id: string; hook: string }[] };
    expect(discovery.services).toContainEqual(expect.objectContaining({ id: 'fedlhs-e2e-t2d', hook: 'patient-view' }));
    const resources = (type: string): Record<string, unknown>[] =>
      readFileSync(join(exportOf('north'), `${type}.ndjson`), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((r) => r.id === patientId || JSON.stringify(r.subject ?? {}).includes(`${patientId}"`));
    const bundle = (type: string) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources(type).map((resource) => ({ resource })) });
    const hook = (prefetch: Record<string, unknown>) => fetch(`${url}/cds-services/fedlhs-e2e-t2d`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hook: 'patient-view', hookInstance: 'f0c2b0de-5a0c-4c52-9b71-3d1b1ac4f6e2', context: { userId: 'Practitioner/7', patientId }, prefetch }),
    });
    const answer = await hook({ patient: resources('Patient')[0], observations: bundle('Observation'), conditions: bundle('Condition'), encounters: bundle('Encounter') });
    const card = (await answer.json()) as { cards: { summary: string; detail: string; source: { label: string } }[] };
    expect(answer.status, JSON.stringify(card)).toBe(200);
    expect(card.cards[0]!.detail).toContain(`(${risk}), band **${band}**`);
    expect(card.cards[0]!.source.label).toBe('fedlhs e2e-t2d v1');
    // A call without the prefetch the service declared is a 412 naming it, never a guess.
    const missing = await hook({ patient: resources('Patient')[0] });
    expect(missing.status).toBe(412);

    // 1. A bundle changed at rest: score refuses it, naming the file; nothing is written.
    const keptWeights = join(north.stateDir, 'releases', 'e2e-t2d', '1', 'weights.bin');
    const original = readFileSync(keptWeights);
    flipFirstByte(keptWeights);
    const tampered = await score(join(root, 'scores-3'));
    expect(tampered.code).not.toBe(0);
    expect(tampered.stderr).toContain('weights.bin');
    expect(existsSync(join(root, 'scores-3', 'scores.csv'))).toBe(false);
    writeFileSync(keptWeights, original);

    // 2. A file served with another digest than the signed one: south fetches again (its kept copy
    // removed) from a coordinator whose stored model card was changed; the fetch refuses it.
    await southAgent.stop();
    rmSync(join(south.stateDir, 'releases', 'e2e-t2d', '1'), { recursive: true, force: true });
    const envelope = JSON.parse(readFileSync(join(north.stateDir, 'releases', 'e2e-t2d', '1', 'envelope.json'), 'utf8')) as { payload: string };
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { subject: { name: string; digest: { sha256: string } }[] };
    const cardDigest = statement.subject.find((s) => s.name === 'model-card.md')!.digest.sha256;
    const blob = findFile(c.dataDir, cardDigest);
    expect(blob, 'the model card blob in the coordinator data directory').toBeDefined();
    const cardBytes = readFileSync(blob!);
    flipFirstByte(blob!);
    southAgent = ws.track(startAgent(south));
    const digestRefusal = await southAgent.waitForEvent('release.refused', { studyName: 'e2e-t2d', version: 1 }, 60_000);
    expect(digestRefusal).toMatchObject({ why: 'digest', file: 'model-card.md' });
    expect(existsSync(join(south.stateDir, 'releases', 'e2e-t2d', '1'))).toBe(false);
    writeFileSync(blob!, cardBytes);

    // 3. A key other than the one pinned at enrolment: refused before anything is downloaded.
    await southAgent.stop();
    const credentialPath = join(south.stateDir, 'node-credential.json');
    const credential = JSON.parse(readFileSync(credentialPath, 'utf8')) as Record<string, unknown>;
    const other = generateKeyPairSync('ed25519').publicKey;
    writeFileSync(credentialPath, JSON.stringify({ ...credential, releaseKey: { publicPem: other.export({ type: 'spki', format: 'pem' }).toString(), fingerprint: keyId(other) } }), { mode: 0o600 });
    southAgent = ws.track(startAgent(south));
    const keyRefusal = await southAgent.waitForEvent('release.refused', { studyName: 'e2e-t2d', version: 1 }, 60_000);
    expect(keyRefusal).toMatchObject({ why: 'signature' });
    expect(existsSync(join(south.stateDir, 'releases', 'e2e-t2d', '1'))).toBe(false);
    const audit = readFileSync(join(south.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; outcome?: string });
    expect(audit.filter((a) => a.event === 'release_refused').map((a) => a.outcome)).toEqual(['digest', 'signature']);
  }, 600_000);

  it('after the hospital rotates its release key, new releases are refused until the clinic pins the new key; releases kept under the old key still verify', async () => {
    const root = ws.dir();
    const dataDir = join(root, 'rotating');
    let c = ws.track(await startCoordinator({ dataDir, heartbeatIntervalMs: 1000, selectionGraceMs: 300 }));
    const grpcPort = c.grpcPort;
    const dataPath = join(root, 'west.csv');
    writeLearnableCsv(dataPath, { rows: 400, seed: 9 });
    const west: AgentOptions = { name: 'west', stateDir: join(root, 'west-state'), dataPath, coordinator: c.address, autoApprove: true, env: { FEDLHS_BACKEND: 'cpu' } };
    await enrolAgent(c, west);
    let agent = ws.track(startAgent(west));
    const first = await startStudy(c, learnableManifest({ name: 'rotated', rounds: 1, min: 1, max: 1, quorum: 1 }));
    expect(await waitForRelease(c, first.id)).toMatchObject({ version: 1 });
    await agent.waitForEvent('release.kept', { studyName: 'rotated', version: 1 }, 60_000);

    // The hospital rotates its key (coordinator stopped) and starts again on the same port.
    await c.stop();
    const rotated = await runCli(coordinatorMain, ['release-key', 'rotate', '--data-dir', dataDir]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const fingerprint = /-> ([0-9a-f]{64})/.exec(rotated.stdout)![1]!;
    expect(rotated.stderr).toContain(`fedlhs-agent release-key pin --public-key release-key.pub.pem --fingerprint ${fingerprint}`);
    c = ws.track(await startCoordinator({ dataDir, grpcPort, heartbeatIntervalMs: 1000, selectionGraceMs: 300, name: 'coordinator-rotated' }));
    const second = await startStudy(c, learnableManifest({ name: 'rotated', rounds: 1, min: 1, max: 1, quorum: 1 }));
    expect(await waitForRelease(c, second.id)).toMatchObject({ version: 2 });
    expect((await agent.waitForEvent('release.refused', { studyName: 'rotated', version: 2 }, 60_000)).why).toBe('signature');

    // The clinic compares the fingerprint out of band and pins the new key: a wrong fingerprint is refused first.
    await agent.stop();
    const pub = join(dataDir, 'release-key.pub.pem');
    const wrong = await runCli(agentMain, ['release-key', 'pin', '--public-key', pub, '--fingerprint', '0'.repeat(64), '--state-dir', west.stateDir]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`has fingerprint ${fingerprint}`);
    const pin = await runCli(agentMain, ['release-key', 'pin', '--public-key', pub, '--fingerprint', fingerprint, '--state-dir', west.stateDir]);
    expect(pin.code, pin.stderr).toBe(0);
    agent = ws.track(startAgent(west));
    await agent.waitForEvent('release.kept', { studyName: 'rotated', version: 2 }, 60_000);
    // Version 1, kept under the old key, still verifies; the key's history is shown.
    const show = await runCli(agentMain, ['release', 'show', 'rotated', '1', '--state-dir', west.stateDir]);
    expect(show.code, show.stderr).toBe(0);
    const keys = await runCli(agentMain, ['release-key', 'show', '--state-dir', west.stateDir]);
    expect(keys.stdout).toContain(`release key fingerprint ${fingerprint} (current`);
    expect(keys.stdout).toMatch(/replaced .*: [0-9a-f]{64} \(releases kept under it still verify\)/);
  }, 300_000);
});
