import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest } from '@fedlhs/testing';
import { RogueNode, coordinatorMain, enrolOverProtocol, startCoordinator, startStudy, waitForStudyEnd, type CoordinatorHandle, type RogueOptions } from '@fedlhs/tests';
import { runCli, useWorkspace } from './helpers.js';

const ws = useWorkspace();
const enrol = enrolOverProtocol;
const FIT_ERROR = 'fit: x has 2410 values, expected 241 rows x 9 features';

/** Enrols a site through the protocol and, unless `connect` is false, opens its session. */
async function rogueSite(c: CoordinatorHandle, site: string, options: RogueOptions = {}, connect = true): Promise<RogueNode> {
  const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 })).body.token;
  const creds = await enrol(c.address, token, site);
  const rogue = new RogueNode(c.address, creds.nodeId, creds.nodeCredential, options);
  if (connect) await rogue.connect();
  return rogue;
}

const cliEnv = (c: CoordinatorHandle) => ({ FEDLHS_ADMIN_URL: `http://127.0.0.1:${c.adminPort}`, FEDLHS_DATA_DIR: c.dataDir });

describe('why a study failed', () => {
  it('refuses at study start a manifest whose model input width is not the number of features', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const manifest = learnableManifest({ name: 'wrong-width' });
    const layers = ((manifest.model as { topology: { config: { layers: { config: Record<string, unknown> }[] } } }).topology.config.layers);
    layers[0]!.config.batch_input_shape = [null, 241];
    const res = await c.admin<{ error: { code: string; message: string } }>('POST', '/api/v1/studies', { manifest });
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({
      code: 'MANIFEST_INVALID', status: 'INVALID_ARGUMENT', details: { path: 'model.topology' },
      message: "invalid study manifest: model.topology: model input width 241 ≠ 6 features (data.features): the first layer's batch_input_shape must end in 6, one input per feature (features are numeric columns; there is no one-hot encoding)",
    });
    const file = join(ws.dir(), 'wrong-width.json');
    writeFileSync(file, JSON.stringify(manifest));
    const cli = await runCli(coordinatorMain, ['study', 'start', file], cliEnv(c));
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('400 MANIFEST_INVALID: invalid study manifest: model.topology: model input width 241 ≠ 6 features (data.features)');
    expect((await c.admin<{ studies: unknown[] }>('GET', '/api/v1/studies')).body.studies).toEqual([]);
  });

  it('fails the study at once when every clinic fails training the same way, and shows why per site', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const rogues = [await rogueSite(c, 'clinic-a'), await rogueSite(c, 'clinic-b'), await rogueSite(c, 'clinic-c')];
    const study = await startStudy(c, learnableManifest({ name: 'fails-alike', rounds: 2, min: 3, max: 3, quorum: 2 }));
    for (const r of rogues) r.fail((await r.trainTask(1)).taskId, FIT_ERROR);

    const detail = await waitForStudyEnd(c, study.id);
    const attemptReason = `3 of 3 clinic(s) (clinic-a, clinic-b, clinic-c) failed training: ${FIT_ERROR}`;
    const studyReason = `round 1: ${attemptReason} — every clinic failed the same way, so the round was not retried`;
    const view = (await c.admin<{ state: string; reason: string; timeline: { round: number; attempt: number; state: string; reason: string; failures: { siteName: string; kind: string; state: string; reason: string; at: string }[] }[] }>('GET', `/api/v1/studies/${study.id}`)).body;
    expect([view.state, view.reason]).toEqual(['FAILED', studyReason]);
    // One attempt, not three: a deterministic failure is not retried.
    expect(detail.rounds.filter((r) => r.round === 1).map((r) => [r.attempt, r.state, r.reason])).toEqual([[1, 'FAILED', attemptReason]]);
    expect(view.timeline[0]!.failures.map((f) => [f.siteName, f.kind, f.state, f.reason]).sort()).toEqual(
      ['clinic-a', 'clinic-b', 'clinic-c'].map((s) => [s, 'TRAIN', 'FAILED', FIT_ERROR]),
    );
    for (const l of ['task.failed', 'round.failed', 'study.failed']) await c.proc.waitFor((x) => x.event === l, undefined, `${l} log line`);

    // The node view names the last error, with round and time.
    type Failure = { studyId: string; round: number; attempt: number; kind: string; state: string; reason: string; at: string };
    const node = (await c.admin<{ lastError: Failure | null; failures: Failure[] }>('GET', `/api/v1/nodes/${rogues[0]!.nodeId}`)).body;
    expect(node.lastError).toEqual({ studyId: study.id, round: 1, attempt: 1, kind: 'TRAIN', state: 'FAILED', reason: FIT_ERROR, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) });
    expect(node.failures).toEqual([node.lastError]);

    // study show: the reason, and the failures by site name (never a node id).
    const shown = await runCli(coordinatorMain, ['study', 'show', study.id], cliEnv(c));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`reason: ${studyReason}`);
    expect(shown.stdout).toContain('tasks that failed, were declined or rejected, by site:');
    for (const site of ['clinic-a', 'clinic-b', 'clinic-c']) expect(shown.stdout).toMatch(new RegExp(`${site}\\s+1\\s+1\\s+TRAIN\\s+FAILED\\s+${FIT_ERROR}`));
    for (const r of rogues) expect(shown.stdout).not.toContain(r.nodeId);

    // status: the last heartbeat (not the connect time) and each site's last error.
    const status = await runCli(coordinatorMain, ['status'], cliEnv(c));
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/SITE\s+STATUS\s+BACKEND\s+AGENT\s+LAST HEARTBEAT/);
    expect(status.stdout).toMatch(/clinic-a\s+online\s+none\s+rogue\/1\.0\s+\d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago\)/);
    expect(status.stdout).toContain(`last error by site:\n  clinic-a: FAILED in round 1 of ${study.id} (training)`);
    for (const r of rogues) r.close();
  });

  it('shows each site\'s readiness in status, and fails a study whose clinics are not READY by its readiness deadline', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const ready = await rogueSite(c, 'clinic-a');
    const small = await rogueSite(c, 'clinic-b', { readiness: { readiness: 'READINESS_COHORT_TOO_SMALL', detail: 'fewer than 10 cases in the hold-out split (minCellCount 10)' } });
    const unapproved = await rogueSite(c, 'clinic-c', { readiness: { readiness: 'READINESS_NOT_APPROVED', detail: "the manifest is not approved by this clinic's operator" } });
    await rogueSite(c, 'clinic-d', {}, false);

    // A study without a readiness deadline waits; status says why, per site.
    const waiting = await startStudy(c, learnableManifest({ name: 'waits', min: 3, max: 4, quorum: 2 }));
    await c.proc.waitForEvent('node.readiness', { readiness: 'READINESS_NOT_APPROVED', studyId: waiting.id });
    await c.proc.waitForEvent('node.readiness', { readiness: 'READINESS_COHORT_TOO_SMALL', studyId: waiting.id });
    const status = await runCli(coordinatorMain, ['status'], cliEnv(c));
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`readiness of ${waiting.id}: 1 of 3 READY clinic(s) needed\n`);
    expect(status.stdout).toMatch(/clinic-a\s+READY\s*\n/);
    expect(status.stdout).toMatch(/clinic-b\s+COHORT_TOO_SMALL\s+fewer than 10 cases in the hold-out split \(minCellCount 10\)/);
    expect(status.stdout).toMatch(/clinic-c\s+NOT_APPROVED\s+the manifest is not approved by this clinic's operator/);
    expect(status.stdout).toMatch(/clinic-d\s+OFFLINE\s+never connected/);
    const api = (await c.admin<{ studies: { id: string; readiness: { needed: number; ready: number; deadline: string | null; sites: { siteName: string; readiness: string }[] } | null }[] }>('GET', '/api/v1/status')).body;
    expect(api.studies.find((s) => s.id === waiting.id)?.readiness).toMatchObject({ needed: 3, ready: 1, deadline: null });

    // The same clinics, with a readiness deadline: the study fails naming every site's reason.
    const base = learnableManifest({ name: 'deadline', min: 3, max: 4, quorum: 2 });
    const study = await startStudy(c, { ...base, deadlines: { ...(base.deadlines as Record<string, unknown>), readinessSeconds: 2 } });
    const detail = await waitForStudyEnd(c, study.id);
    const reason =
      'readiness deadline passed (deadlines.readinessSeconds 2) before round 1 could start: 1 of 3 READY clinic(s) needed — ' +
      'clinic-b: COHORT_TOO_SMALL (fewer than 10 cases in the hold-out split (minCellCount 10)); ' +
      "clinic-c: NOT_APPROVED (the manifest is not approved by this clinic's operator); clinic-d: offline (never connected); READY: clinic-a";
    expect(detail.state).toBe('FAILED');
    expect(detail.rounds.filter((r) => r.round === 1).map((r) => [r.state, r.reason])).toEqual([['FAILED', reason]]);
    await c.proc.waitFor((l) => l.event === 'readiness.deadline' && l.studyId === study.id, undefined, 'readiness.deadline log line');
    const shown = await runCli(coordinatorMain, ['study', 'show', study.id], cliEnv(c));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`reason: ${reason}`);
    // The other study is still waiting.
    expect((await c.admin<{ state: string }>('GET', `/api/v1/studies/${waiting.id}`)).body.state).toBe('RUNNING');
    for (const r of [ready, small, unapproved]) r.close();
  });
});

describe('one coordinator per data directory', () => {
  it('refuses a second coordinator on a data directory in use, naming it and the PID; a killed holder leaves no stale lock', async () => {
    const dataDir = join(ws.dir(), 'coordinator');
    const first = ws.track(await startCoordinator({ dataDir }));
    const env = { FEDLHS_DATA_DIR: dataDir, FEDLHS_TLS_MODE: 'plaintext', FEDLHS_GRPC_HOST: '127.0.0.1', FEDLHS_GRPC_PORT: '0', FEDLHS_ADMIN_PORT: '0', FEDLHS_LOG_LEVEL: 'info' };
    const second = await runCli(coordinatorMain, ['serve'], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`fedlhs-coordinator: cannot start: data directory ${dataDir} is in use by another coordinator (PID ${first.proc.pid} on `);
    expect(second.stdout).toContain('"coordinator failed to start"');
    // The first one was not disturbed.
    expect((await first.admin('GET', '/api/v1/status')).status).toBe(200);

    // A clean shutdown releases it...
    await first.stop('SIGTERM');
    expect(existsSync(join(dataDir, 'coordinator.pid'))).toBe(false);
    const third = ws.track(await startCoordinator({ dataDir, name: 'third' }));
    // ...and so does a SIGKILL: the lock is the operating system's, so it cannot go stale.
    await third.stop('SIGKILL');
    const fourth = ws.track(await startCoordinator({ dataDir, name: 'fourth' }));
    const takeover = await fourth.proc.waitFor((l) => l.event === 'data-dir.lock-taken-over', undefined, 'lock take-over warning');
    expect(takeover).toMatchObject({ level: 40, previous: { pid: third.proc.pid } });
  });
});
