import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { AgentMessage, StudyReadiness } from '@fedlhs/proto';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, enrolOverProtocol, startAgent, startStudy, waitForStudyEnd, type AgentOptions, type CoordinatorHandle } from '@fedlhs/tests';
import { RogueSession, startCoordinatorFrom, testedCoordinatorMain } from '../src/rogue-session.js';
import { useWorkspace } from './helpers.js';

/*
 * Issue 11, "every node's footprint is bounded": strings a node sends have a maximum and a
 * character set, what a session keeps is bounded, and session messages are rate-limited.
 * Protocol-level rogue sessions against a real coordinator process. To see these fail on an
 * older build: FEDLHS_COORDINATOR_MAIN=/work/before/coordinator/dist/main.js.
 */

const ws = useWorkspace();
const MIB = 1024 * 1024;

async function start(env: NodeJS.ProcessEnv = {}): Promise<CoordinatorHandle> {
  return ws.track(await startCoordinatorFrom(testedCoordinatorMain, { dataDir: join(ws.dir(), 'coordinator'), env }));
}

async function rogueCredential(c: CoordinatorHandle, site: string): Promise<{ nodeId: string; credential: string }> {
  const token = (await c.admin<{ token: string }>('POST', '/api/v1/join-tokens', { site, ttlSeconds: 600 })).body.token;
  const r = await enrolOverProtocol(c.address, token, site);
  return { nodeId: r.nodeId, credential: r.nodeCredential };
}

/** Opens a rogue session and waits for the study's announcement. */
async function session(c: CoordinatorHandle, credential: string, studyId: string): Promise<RogueSession> {
  const s = new RogueSession(c.address, credential);
  await s.welcomed;
  while (!s.studies.has(studyId)) await new Promise<void>((resolve) => setImmediate(resolve));
  return s;
}

/** Everything the admin API shows about nodes and studies, as text. */
async function shown(c: CoordinatorHandle, nodeId: string): Promise<string> {
  const status = await fetch(`http://127.0.0.1:${c.adminPort}/api/v1/status`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  const node = await fetch(`http://127.0.0.1:${c.adminPort}/api/v1/nodes/${nodeId}`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  return `${await status.text()}\n${await node.text()}`;
}

describe('control-session limits (issue 11)', () => {
  it('refuses strings past their maximum or with control characters, and does not store readiness for unknown studies', async () => {
    const c = await start();
    const { nodeId, credential } = await rogueCredential(c, 'clinic-r');
    const study = await startStudy(c, learnableManifest({ name: 'waits', min: 2, max: 2, quorum: 2 }));
    const hash = study.manifestSha256;
    const readiness = (over: Partial<StudyReadiness>): AgentMessage => ({ readiness: { studyId: study.id, manifestSha256: hash, readiness: 'READINESS_NOT_APPROVED', detail: '', trainingRows: 0, ...over } });
    // Either end: the coordinator refuses (new) or takes it (old); the marker readiness shows the message was handled.
    const handled = (marker: string) =>
      c.proc.waitFor((l) => l.event === 'session.message_invalid' || (l.event === 'node.readiness' && l.detail === marker), 30_000, `refusal or ${marker}`);

    // An unknown study id: counted and logged, never stored; the session goes on.
    let s = await session(c, credential, study.id);
    await s.write({ readiness: { studyId: 'no-such-study', manifestSha256: hash, readiness: 'READINESS_READY', detail: 'unknown-study-detail', trainingRows: 5 } });
    await s.write(readiness({ detail: 'marker-1' }));
    await c.proc.waitForEvent('node.readiness', { detail: 'marker-1' });
    expect(s.closed).toBe(false);
    expect(await shown(c, nodeId)).not.toContain('no-such-study');
    expect(c.proc.events('session.readiness_refused', { studyId: 'no-such-study', nodeId })).toHaveLength(1);
    s.close();

    // A detail of almost 4 MiB (gRPC's default message limit is 4 MiB): the session ends INVALID_ARGUMENT naming the field.
    s = await session(c, credential, study.id);
    await s.write(readiness({ readiness: 'READINESS_WITHDRAWN', detail: 'D'.repeat(4 * MIB - 4096) }));
    await s.write(readiness({ detail: 'marker-2' }));
    await handled('marker-2');
    const big = await s.ended;
    expect([grpc.status[big.code], big.metadata['fedlhs-error-code']]).toEqual(['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    expect(big.details).toMatch(/^field StudyReadiness\.detail: longer than 1000 characters/);
    expect(big.details.length).toBeLessThan(300);
    const text = await shown(c, nodeId);
    expect(text).not.toContain('D'.repeat(241));
    expect(text.length).toBeLessThan(64 * 1024);
    s.close();

    // A 3 MiB task id.
    s = await session(c, credential, study.id);
    await s.write({ taskUpdate: { taskId: 'T'.repeat(3 * MIB), state: 'TASK_STATE_FAILED', reason: 'x' } });
    await s.write(readiness({ detail: 'marker-3' }));
    await handled('marker-3');
    const id = await s.ended;
    expect(grpc.status[id.code]).toBe('INVALID_ARGUMENT');
    expect(id.details).toBe('field TaskUpdate.task_id: longer than 128 characters (3145728)');
    s.close();

    // Terminal escape codes in a detail (they drew a fake "online" row in `status`).
    s = await session(c, credential, study.id);
    await s.write(readiness({ readiness: 'READINESS_DATA_ERROR', detail: '\u001b[2K\u001b[1Gclinic-x   online' }));
    await s.write(readiness({ detail: 'marker-4' }));
    await handled('marker-4');
    const ctl = await s.ended;
    expect(grpc.status[ctl.code]).toBe('INVALID_ARGUMENT');
    expect(ctl.details).toMatch(/^field StudyReadiness\.detail: control character U\+001B at index 0/);
    expect(await shown(c, nodeId)).not.toMatch(/\\u001b|\u001b/);
    s.close();

    expect(c.proc.events('session.message_invalid')).toHaveLength(3);
    // Nothing of it reached the store.
    // The database file and its write-ahead log (recent writes are in coordinator.db-wal).
    const wal = join(c.dataDir, 'coordinator.db-wal');
    const store = Buffer.concat([readFileSync(join(c.dataDir, 'coordinator.db')), ...(existsSync(wal) ? [readFileSync(wal)] : [])]);
    expect(store.includes('D'.repeat(1000))).toBe(false);
    expect(store.includes('T'.repeat(1000))).toBe(false);
    expect(store.includes('no-such-study')).toBe(false);
  });

  it('bounds sessions per node, not per stream: revocation ends one before its Hello, a stream without Hello ends, and reconnecting does not refill the message budget', async () => {
    const c = await start({ FEDLHS_HEARTBEAT_INTERVAL_MS: '2000', FEDLHS_LIMITS_SESSION_MESSAGE_BURST: '20', FEDLHS_LIMITS_SESSION_MESSAGES_PER_SECOND: '1' });
    const victim = await rogueCredential(c, 'clinic-r');
    const flooder = await rogueCredential(c, 'clinic-s');

    // Opened before the revocation, Hello never sent: the revocation ends it (it used to stay
    // open and could say Hello later and come online).
    const early = new RogueSession(c.address, victim.credential, 'none');
    await early.roundTrip(victim.credential);
    expect((await c.admin('POST', `/api/v1/nodes/${victim.nodeId}/revoke`, {})).status).toBe(200);
    const revoked = await early.ended;
    expect(grpc.status[revoked.code]).toBe('UNAUTHENTICATED');

    // A stream that never says Hello ends after three heartbeat intervals.
    const silent = new RogueSession(c.address, flooder.credential, 'none');
    const quiet = await silent.ended;
    expect([grpc.status[quiet.code], quiet.details]).toEqual(['DEADLINE_EXCEEDED', 'no Hello within 6000 ms of opening the session']);

    // The message budget belongs to the node: a new session starts with what the last one left.
    const first = new RogueSession(c.address, flooder.credential);
    await first.welcomed;
    await first.flood(() => ({ heartbeat: { sentUnixMs: Date.now() } }), { ms: 60_000 });
    expect((await first.ended).metadata['fedlhs-error-code']).toBe('RATE_LIMITED');
    const firstLimited = await c.proc.waitForEvent('session.rate_limited', { nodeId: flooder.nodeId });
    const second = new RogueSession(c.address, flooder.credential);
    await second.flood(() => ({ heartbeat: { sentUnixMs: Date.now() } }), { ms: 60_000 });
    expect((await second.ended).metadata['fedlhs-error-code']).toBe('RATE_LIMITED');
    const limited = await c.proc.waitFor((l) => l.event === 'session.rate_limited' && l.nodeId === flooder.nodeId && l !== firstLimited, 30_000, 'the second session.rate_limited');
    // The first session took the burst (20); the second only what refilled since (1 a second):
    // far fewer, unless the machine stalls for 20 s.
    expect(firstLimited.accepted).toBeGreaterThanOrEqual(20);
    expect(limited.accepted).toBeLessThan(20);
  });

  it('ends a session that floods readiness messages with RESOURCE_EXHAUSTED, and the coordinator stays responsive', async () => {
    const c = await start();
    const { nodeId, credential } = await rogueCredential(c, 'clinic-f');
    const study = await startStudy(c, learnableManifest({ name: 'flooded', min: 2, max: 2, quorum: 2 }));
    const s = await session(c, credential, study.id);
    const states = ['READINESS_READY', 'READINESS_NOT_APPROVED'] as const;
    const detail = 'd'.repeat(1000);
    const sent = await s.flood((i) => ({ readiness: { studyId: study.id, manifestSha256: study.manifestSha256, readiness: states[i % 2]!, detail, trainingRows: 100 } }), { ms: 8000 });
    // The status API answers after the session flooded (no timing asserted: the machine may be loaded).
    const status = await c.admin<{ nodes: unknown[] }>('GET', '/api/v1/status');
    expect(status.status).toBe(200);
    expect(s.closed).toBe(true);
    const end = await s.ended;
    expect([grpc.status[end.code], end.metadata['fedlhs-error-code']]).toEqual(['RESOURCE_EXHAUSTED', 'RATE_LIMITED']);
    expect(end.details).toContain('limits.sessionMessagesPerSecond');
    // Ended after its burst and a few seconds at the sustained rate, not after the whole flood.
    expect(sent).toBeLessThan(20_000);
    await c.proc.waitForEvent('session.rate_limited', { nodeId });
    const metrics = await (await fetch(`http://127.0.0.1:${c.adminPort}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).text();
    expect(metrics).toMatch(/fedlhs_session_messages_refused_total\{reason="rate_limited"\} [1-9]/);
    s.close();
  });

  it('our own agent stays within every limit and states its training rows with READY', async () => {
    // Training blocks the agent's event loop for a while: a heartbeat interval that tolerates it.
    const c = await start({ FEDLHS_HEARTBEAT_INTERVAL_MS: '2000' });
    const clinics: AgentOptions[] = ['one', 'two'].map((name, i) => {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      const dataPath = join(dir, 'data.csv');
      writeLearnableCsv(dataPath, { rows: 200 + 100 * i, seed: i + 1 });
      return { name, stateDir: join(dir, 'state'), dataPath, coordinator: c.address, autoApprove: true };
    });
    for (const o of clinics) await enrolAgent(c, o);
    for (const o of clinics) ws.track(startAgent(o));
    // Many short epochs: per-epoch progress must not trip the session rate.
    const manifest = learnableManifest({ name: 'own-agent', rounds: 2, min: 2, max: 2, quorum: 2 });
    (manifest.training as Record<string, unknown>).localEpochs = 400;
    const study = await startStudy(c, manifest);
    const detail = await waitForStudyEnd(c, study.id);
    expect(detail.state).toBe('COMPLETED');
    expect(c.proc.events('session.rate_limited')).toEqual([]);
    expect(c.proc.events('session.message_invalid')).toEqual([]);
    // training_rows of READY is exactly what each update claimed.
    const ready = c.proc.events('node.readiness', { studyId: study.id, readiness: 'READINESS_READY' });
    expect(new Set(ready.map((r) => r.nodeId)).size).toBe(2);
    const accepted = detail.contributions.filter((x) => x.accepted) as { nodeId: string; numExamples?: number }[];
    expect(accepted).toHaveLength(4);
    for (const u of accepted) expect(new Set(ready.filter((r) => r.nodeId === u.nodeId).map((r) => r.trainingRows))).toEqual(new Set([u.numExamples]));
  });
});
