import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestPki, learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentCli, committedSha256, enrolAgent, readCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

function clinic(c: CoordinatorHandle, name: string, rows: number, seed: number, extra: Partial<AgentOptions> = {}): AgentOptions {
  const dir = join(ws.dir(), name);
  mkdirSync(dir, { recursive: true });
  const dataPath = join(dir, 'data.csv');
  writeLearnableCsv(dataPath, { rows, seed, shift: (seed % 3) * 0.2 });
  return { name, stateDir: join(dir, 'state'), dataPath, coordinator: c.address, ...extra };
}

describe('federation end to end (separate OS processes)', () => {
  it('runs a study over mutual TLS only after every clinic approves, and the hold-out metric improves', async () => {
    const pki = createTestPki(ws.dir());
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), tls: { ...pki, mutual: true } }));
    const tls = { caCert: pki.caCert, serverCert: '', serverKey: '', clientCert: pki.clientCert, clientKey: pki.clientKey };
    const clinics = [clinic(c, 'alpha', 600, 1, { tls }), clinic(c, 'beta', 300, 2, { tls }), clinic(c, 'gamma', 150, 3, { tls })];
    for (const o of clinics) await enrolAgent(c, o);
    const agents = clinics.map((o) => ws.track(startAgent(o)));
    const study = await startStudy(c, learnableManifest({ rounds: 4, min: 3, max: 3, quorum: 3 }));

    // Nobody trains before approval: the first round waits for READY clinics.
    await Promise.all(agents.map((a) => a.waitForEvent('study.awaiting_approval')));
    const status = await c.admin<{ studies: { id: string; current: { state: string } | null }[]; nodes: { online: boolean; trainingBackend: string }[] }>('GET', '/api/v1/status');
    expect(status.body.studies.find((s) => s.id === study.id)?.current?.state).toBe('WAITING_FOR_NODES');
    expect(status.body.nodes.filter((n) => n.online)).toHaveLength(3);
    for (const n of status.body.nodes) expect(['tensorflow', 'wasm', 'cpu']).toContain(n.trainingBackend);

    const review = await agentCli(clinics[0]!, ['review']);
    expect(review.stdout).toContain(study.manifestSha256);
    expect(review.stdout).toContain('PENDING');
    for (const o of clinics) await agentCli(o, ['approve', study.manifestSha256]);

    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state).toBe('COMPLETED');
    expect(detail.lastCommittedRound).toBe(4);
    const global = (r: number) => detail.metrics.find((m) => m.round === r && m.phase === 'evaluation' && m.nodeId === null)!;
    expect(global(4).loss).toBeLessThan(global(1).loss);
    expect(global(4).auc!).toBeGreaterThan(global(1).auc! + 0.05);
    // The pooled value covers every site; a site's own row is shown only when its validation part
    // has minCellCount patients, cases and non-cases (and no smaller site needs it withheld).
    expect(global(4).numExamples).toBeGreaterThanOrEqual(detail.metrics.filter((m) => m.round === 4 && m.phase === 'evaluation' && m.nodeId !== null).reduce((s, m) => s + m.numExamples, 0));
    // Every accepted update appears in its clinic's audit log with the same digest.
    const accepted = detail.contributions.filter((x) => x.accepted);
    expect(accepted).toHaveLength(12);
    const audited = clinics.flatMap((o) => readFileSync(join(o.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; taskId?: string }))
      .filter((e) => e.event === 'update_sent').map((e) => e.taskId);
    expect(new Set(audited)).toEqual(new Set(accepted.map((x) => x.taskId)));
  });

  it('commits a round with its quorum when an agent is killed mid-round, and the agent rejoins later', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    // The victim has far more data, so it is still training when it is killed.
    const clinics = [clinic(c, 'one', 300, 11, { autoApprove: true }), clinic(c, 'two', 300, 12, { autoApprove: true }), clinic(c, 'victim', 40_000, 13, { autoApprove: true })];
    const nodeIds = [];
    for (const o of clinics) nodeIds.push(await enrolAgent(c, o));
    const victimId = nodeIds[2]!;
    const first = ws.track(startAgent(clinics[0]!));
    ws.track(startAgent(clinics[1]!));
    const victim = ws.track(startAgent(clinics[2]!));
    const study = await startStudy(c, learnableManifest({ rounds: 3, min: 3, max: 3, quorum: 2, roundSeconds: 120 }));

    await victim.waitForEvent('task.progress', { round: 2, phase: 'download', percent: 100 });
    victim.kill('SIGKILL');
    await c.proc.waitForEvent('round.committed', { round: 2 });
    const rejoined = ws.track(startAgent(clinics[2]!));
    await rejoined.waitForEvent('agent.connected');

    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state).toBe('COMPLETED');
    const round2 = detail.contributions.filter((x) => x.round === 2 && x.accepted);
    expect(round2.map((x) => x.nodeId).sort()).toEqual([nodeIds[0], nodeIds[1]].sort());
    // Round 3 needs all three (min 3): the victim came back and contributed once.
    const round3 = detail.contributions.filter((x) => x.round === 3 && x.accepted);
    expect(round3.filter((x) => x.nodeId === victimId)).toHaveLength(1);
    expect(new Set(round3.map((x) => x.nodeId)).size).toBe(round3.length);

    // Dissemination: a clinic that was offline when the study completed fetches the final model
    // when it next connects.
    await first.waitForEvent('final_model.saved');
    await first.stop();
    const models = join(clinics[0]!.stateDir, 'models', study.id);
    rmSync(models, { recursive: true, force: true });
    const back = ws.track(startAgent(clinics[0]!));
    await back.waitForEvent('final_model.saved');
    const saved = readFileSync(join(models, 'round-3.f32'));
    // The model downloaded over the protocol is the committed one: the recorded digest, and (with
    // the file blob store this coordinator runs) the bytes of its checkpoint.
    expect(createHash('sha256').update(saved).digest('hex')).toBe(committedSha256(detail, 3));
    expect(saved.equals(Buffer.from(readCommittedModel(c, study.id, 3, committedSha256(detail, 3)).buffer))).toBe(true);
  });

  it('an agent started while the coordinator is down keeps retrying and connects once it comes up', async () => {
    const dataDir = join(ws.dir(), 'coordinator');
    const first = await startCoordinator({ dataDir });
    const o = clinic(first, 'early', 100, 21);
    await enrolAgent(first, o);
    const port = first.grpcPort;
    await first.stop();

    const agent = ws.track(startAgent(o));
    await agent.waitForEvent('agent.reconnecting');
    await agent.waitForNextEvent('agent.reconnecting');
    expect(agent.events('agent.connected')).toEqual([]);

    const second = ws.track(await startCoordinator({ dataDir, grpcPort: port, name: 'coordinator-restarted' }));
    await agent.waitForEvent('agent.connected');
    await second.proc.waitForEvent('node.online');
    const status = await second.admin<{ nodes: { siteName: string; online: boolean }[] }>('GET', '/api/v1/status');
    expect(status.body.nodes).toEqual([expect.objectContaining({ siteName: 'early', online: true })]);
  });
});
