import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';
import { RogueNode, enrolOverProtocol, rejection } from '@fedlhs/tests';

const ws = useWorkspace();
const enrol = enrolOverProtocol;

async function joinToken(c: CoordinatorHandle, site: string): Promise<string> {
  return (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 })).body.token;
}

describe('authentication and contribution checks', () => {
  it('refuses wrong, used, expired and mis-sited join tokens, and revoked credentials', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    expect(await rejection(enrol(c.address, `fjt_${'x'.repeat(43)}`, 'site-a'))).toMatchObject({ code: 'UNAUTHENTICATED', details: 'join token is not valid' });
    expect(await rejection(enrol(c.address, 'not-a-token', 'site-a'))).toMatchObject({ code: 'INVALID_ARGUMENT', details: 'join_token is missing or malformed' });
    const token = await joinToken(c, 'site-a');
    expect(await rejection(enrol(c.address, token, 'site-b'))).toMatchObject({ code: 'PERMISSION_DENIED', details: 'join token was issued for site "site-a", not "site-b"' });
    const node = await enrol(c.address, token, 'site-a');
    expect((await rejection(enrol(c.address, token, 'site-a'))).details).toMatch(/^join token was already used on /);

    // An expired token, planted directly in the coordinator's database.
    const expired = `fjt_${'e'.repeat(43)}`;
    const db = new Database(join(c.dataDir, 'coordinator.db'));
    db.prepare(`INSERT INTO join_tokens (id, token_hash, site_name, created_at, expires_at, created_by) VALUES (?,?,?,?,?,?)`)
      .run('jt_expired', createHash('sha256').update(expired).digest('hex'), 'site-a', Date.now() - 7200_000, Date.now() - 3600_000, 'test');
    db.close();
    expect((await rejection(enrol(c.address, expired, 'site-a'))).details).toMatch(/^join token expired on /);

    // Calls without or with a bad credential, then with a revoked one.
    const rogue = new RogueNode(c.address, node.nodeId, node.nodeCredential);
    const list = (r: RogueNode, md: grpc.Metadata) => new Promise((resolve, reject) => r.client.ListStudies({ includeEnded: true }, md, (e, v) => (e === null ? resolve(v) : reject(e))));
    expect(await rejection(list(rogue, new grpc.Metadata()))).toMatchObject({ code: 'UNAUTHENTICATED' });
    const forged = new RogueNode(c.address, node.nodeId, `fnc_${node.nodeId}.${'A'.repeat(43)}`);
    expect(await rejection(list(forged, forged.metadata()))).toMatchObject({ code: 'UNAUTHENTICATED', details: 'node credential is not valid' });
    await expect(list(rogue, rogue.metadata())).resolves.toBeDefined();
    await rogue.connect();
    expect((await c.admin('POST', `/api/v1/nodes/${node.nodeId}/revoke`)).status).toBe(200);
    expect((await rejection(list(rogue, rogue.metadata()))).details).toMatch(/^node credential was revoked on /);
    rogue.close();
    forged.close();
  });

  it('rejects bad digests, wrong shapes, NaNs, replays, stale and foreign uploads while the rounds go on', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator') }));
    const honest: AgentOptions[] = [];
    for (const [i, name] of ['honest-1', 'honest-2'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 60 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      honest.push(o);
    }
    const creds = await enrol(c.address, await joinToken(c, 'rogue'), 'rogue');
    const rogue = new RogueNode(c.address, creds.nodeId, creds.nodeCredential);
    await rogue.connect();
    const agents = honest.map((o) => ws.track(startAgent(o)));
    const study = await startStudy(c, learnableManifest({ rounds: 4, min: 3, max: 3, quorum: 2 }));
    const base = (t: { taskId: string; studyId: string; round: number; modelSha256: Buffer }) => ({ taskId: t.taskId, studyId: t.studyId, round: t.round, nodeId: creds.nodeId, baseModelSha256: t.modelSha256, numExamples: 50 });

    // Round 1: a corrupted digest (the task stays open), then a wrong shape (the task ends).
    const t1 = await rogue.trainTask(1);
    const m1 = await rogue.download(t1.taskId);
    expect(await rejection(rogue.upload({ ...base(t1), ...m1, sha256: Buffer.alloc(32) }))).toMatchObject({ code: 'DATA_LOSS', reason: 'DIGEST_MISMATCH' });
    const badSpecs = m1.specs.map((s, i) => (i === 0 ? { name: s.name, shape: [s.shape[0]! + 1, ...s.shape.slice(1)] } : s));
    const badWeights = new Float32Array(m1.weights.length + m1.specs[0]!.shape.slice(1).reduce((a, b) => a * b, 1));
    const shape = await rejection(rogue.upload({ ...base(t1), specs: badSpecs, weights: badWeights }));
    expect(shape).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'SHAPE_MISMATCH' });
    expect(shape.details).toMatch(/tensor "hidden\/kernel" has shape \[7,8\], expected \[6,8\]/);
    // The task is closed now: even a good update for it is refused as TASK_CLOSED (not STALE: its round goes on).
    expect(await rejection(rogue.upload({ ...base(t1), ...m1 }))).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'TASK_CLOSED' });

    // Round 2: NaN values; and an upload against an honest node's task.
    const t2 = await rogue.trainTask(2);
    const m2 = await rogue.download(t2.taskId);
    const nan = Float32Array.from(m2.weights);
    nan[3] = Number.NaN;
    const nonFinite = await rejection(rogue.upload({ ...base(t2), specs: m2.specs, weights: nan }));
    expect(nonFinite).toMatchObject({ code: 'INVALID_ARGUMENT', reason: 'NON_FINITE' });
    expect(nonFinite.details).toBe('non-finite value (NaN) in tensor "hidden/kernel" at element 3');
    await c.proc.waitForEvent('round.committed', { round: 1 });
    const honestTask = (await c.admin<{ contributions: { taskId: string; nodeId: string; accepted: boolean }[] }>('GET', `/api/v1/studies/${study.id}`)).body.contributions.find((x) => x.accepted && x.nodeId !== creds.nodeId)!;
    expect(await rejection(rogue.upload({ ...base(t2), taskId: honestTask.taskId, ...m2 }))).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'NOT_ASSIGNED' });

    // Round 3: a good update is accepted, and sending it again is idempotent.
    const t3 = await rogue.trainTask(3);
    const m3 = await rogue.download(t3.taskId);
    const good = Float32Array.from(m3.weights, (v, i) => v + (i % 2 === 0 ? 0.001 : -0.001));
    const receipt = await rogue.upload({ ...base(t3), specs: m3.specs, weights: good });
    expect(receipt.duplicate).toBe(false);
    const again = await rogue.upload({ ...base(t3), specs: m3.specs, weights: good });
    expect(again.duplicate).toBe(true);
    expect(again.sha256.equals(receipt.sha256)).toBe(true);
    expect(await rejection(rogue.upload({ ...base(t3), specs: m3.specs, weights: Float32Array.from(good, (v) => v * 2) }))).toMatchObject({ code: 'ALREADY_EXISTS', reason: 'DUPLICATE_CONFLICT' });

    // Round 4: replaying round 3's payload is refused.
    const t4 = await rogue.trainTask(4);
    expect(await rejection(rogue.upload({ ...base(t4), specs: m3.specs, weights: good }))).toMatchObject({ code: 'ALREADY_EXISTS', reason: 'REPLAYED' });

    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state).toBe('COMPLETED');
    expect(detail.lastCommittedRound).toBe(4);
    const rejected = detail.contributions.filter((x) => !x.accepted && x.nodeId === creds.nodeId).map((x) => x.reasonCode);
    expect(rejected).toEqual(['DIGEST_MISMATCH', 'SHAPE_MISMATCH', 'TASK_CLOSED', 'NON_FINITE', 'NOT_ASSIGNED', 'DUPLICATE_CONFLICT', 'REPLAYED']);
    // The rogue's accepted round-3 update was averaged in once; honest clinics contributed every round.
    expect(detail.contributions.filter((x) => x.accepted && x.nodeId === creds.nodeId).map((x) => x.round)).toEqual([3]);
    for (let r = 1; r <= 4; r++) expect(detail.contributions.filter((x) => x.accepted && x.round === r && x.nodeId !== creds.nodeId)).toHaveLength(2);

    // A revoked agent process is disconnected and exits with a clear message.
    const victim = (await c.admin<{ nodes: { id: string; siteName: string }[] }>('GET', '/api/v1/status')).body.nodes.find((n) => n.siteName === 'honest-1')!;
    await c.admin('POST', `/api/v1/nodes/${victim.id}/revoke`);
    const exit = await agents[0]!.exited;
    expect(exit.code).toBe(3);
    expect(agents[0]!.lines.some((l) => typeof l.msg === 'string' && /re-enrol/i.test(l.msg)), agents[0]!.tail(5)).toBe(true);
    rogue.close();
  });
});
