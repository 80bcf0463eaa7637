/**
 * Active/standby coordinators on PostgreSQL (issue 15): two real coordinator processes with
 * ha.enabled on one throwaway database, three real agents given both addresses.
 *
 * 1. SIGKILL of the active mid-round: the standby takes over within the stated bound (lease plus
 *    one renewal period, plus start-up), the study resumes at its last committed round and
 *    finishes, no committed round is lost or changed, no contribution is counted twice.
 * 2. The active cut off from the database (a TCP proxy the test controls stops forwarding): it
 *    demotes itself at its lease deadline, the standby takes over; when the proxy forwards again
 *    the old active stays standby, and the database holds no row it wrote after the takeover.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, learnableManifest, postgresUrl, testPostgresUnavailable, writeLearnableCsv, type LogLine, type ManagedProcess, type TestPostgresScope } from '@fedlhs/testing';
import { enrolAgent, startAgent, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';
import { federationRefusal, healthOf, installWriteAudit, query, startDatabaseProxy, startHaCoordinator, type DatabaseProxy, type HaCoordinator } from './failover-helpers.js';

const ws = useWorkspace();
const postgresUnavailable = await testPostgresUnavailable();
const databases: TestPostgresScope[] = [];
const proxies: DatabaseProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
  for (const d of databases) await d.drop();
});

const LEASE_SECONDS = 3;
const LEASE_MS = LEASE_SECONDS * 1000;
/** Loading state and resuming studies on a test machine (the measured figure is printed). */
const START_UP_MS = 5000;
/** The stated bound from losing the active to the standby serving: the lease, one renewal period (lease/3), start-up. */
const TAKEOVER_BOUND_MS = LEASE_MS + LEASE_MS / 3 + START_UP_MS;
/** When a log line was written (pino's ISO time). */
const at = (line: LogLine): number => Date.parse(line.time as string);

interface Committed {
  round: number;
  attempt: number;
  sha256: string;
}

async function committedRounds(db: TestPostgresScope, studyId: string): Promise<Committed[]> {
  return (await query<{ round: string; attempt: string; checkpoint_sha256: string }>(db.connection, `SELECT round, attempt, checkpoint_sha256 FROM rounds WHERE study_id = $1 AND state = 'COMMITTED' ORDER BY round`, [studyId]))
    .map((r) => ({ round: Number(r.round), attempt: Number(r.attempt), sha256: r.checkpoint_sha256 }));
}

/** No accepted contribution counted twice, straight from the store: one per node in each committed attempt. */
async function expectNoDoubleCounting(db: TestPostgresScope, studyId: string, rounds: number): Promise<void> {
  const committed = await committedRounds(db, studyId);
  expect(committed.map((c) => c.round)).toEqual(Array.from({ length: rounds + 1 }, (_, i) => i));
  const twice = await query(db.connection, `
    SELECT c.round, c.node_id, count(*) AS n FROM rounds r
    JOIN contributions c ON c.study_id = r.study_id AND c.round = r.round AND c.attempt = r.attempt AND c.accepted
    WHERE r.study_id = $1 AND r.state = 'COMMITTED' AND c.sha256 IS NOT NULL
    GROUP BY c.round, c.node_id HAVING count(*) > 1`, [studyId]);
  expect(twice).toEqual([]);
  for (let r = 1; r <= rounds; r++) {
    const accepted = await query<{ n: string }>(db.connection, `SELECT count(*) AS n FROM contributions c JOIN rounds r ON r.study_id = c.study_id AND r.round = c.round AND r.attempt = c.attempt AND r.state = 'COMMITTED' WHERE c.study_id = $1 AND c.round = $2 AND c.accepted`, [studyId, r]);
    expect(Number(accepted[0]!.n), `round ${r}`).toBeGreaterThanOrEqual(2);
  }
}

/** Two HA coordinators (a active, b standby) sharing a release key and admin token, three agents given both addresses. */
async function cluster(urls: { a: string; b: string }): Promise<{ a: HaCoordinator; b: HaCoordinator; clinics: AgentOptions[] }> {
  const adminToken = `fat_${randomBytes(24).toString('base64url')}`;
  const a = ws.track(await startHaCoordinator({ name: 'coordinator-a', dataDir: join(ws.dir(), 'a'), storeUrl: urls.a, leaseSeconds: LEASE_SECONDS, adminToken, env: { FEDLHS_HA_ADVERTISE_ADDRESS: 'a.invalid:7443' } }));
  await a.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
  // Both sign releases with one key (agents pin it at enrolment): the operator copies it, as the README says.
  mkdirSync(join(ws.dir(), 'b'), { recursive: true });
  copyFileSync(join(a.dataDir, 'release-key.pem'), join(ws.dir(), 'b', 'release-key.pem'));
  const b = ws.track(await startHaCoordinator({ name: 'coordinator-b', dataDir: join(ws.dir(), 'b'), storeUrl: urls.b, leaseSeconds: LEASE_SECONDS, adminToken, env: { FEDLHS_HA_ADVERTISE_ADDRESS: 'b.invalid:7443' } }));
  const clinics: AgentOptions[] = [];
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const dir = join(ws.dir(), `clinic-${name}`);
    mkdirSync(dir, { recursive: true });
    writeLearnableCsv(join(dir, 'data.csv'), { rows: 300, seed: 70 + i });
    // The standby first: agents must find the serving one themselves.
    const o: AgentOptions = { name: `clinic-${name}`, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: `${b.address},${a.address}`, autoApprove: true };
    await enrolAgent(a, o);
    clinics.push(o);
  }
  return { a, b, clinics };
}

/** A standby answers NOT_SERVING, refuses Federation calls with NOT_LEADER naming the active, and refuses its admin API. */
async function expectStandby(c: HaCoordinator, leader: string | undefined): Promise<void> {
  expect(await healthOf(c.address)).toBe('NOT_SERVING');
  const refused = await federationRefusal(c.address);
  expect(refused).toMatchObject({ code: 14, errorCode: 'NOT_LEADER', leader });
  const status = await c.admin<{ error: { code: string } }>('GET', '/api/v1/status');
  expect(status.status).toBe(503);
  expect(status.body.error.code).toBe('NOT_LEADER');
}

describe('active/standby coordinators on PostgreSQL', () => {
  if (postgresUnavailable !== undefined) {
    it('needs PostgreSQL', () => {
      throw postgresUnavailable;
    });
    return;
  }

  it('SIGKILL of the active mid-round: the standby takes over within the bound and the study finishes with no round lost or update counted twice', async () => {
    const db = await createTestDatabase('failover');
    databases.push(db);
    const { a, b, clinics } = await cluster({ a: db.url, b: db.url });
    await expectStandby(b, 'a.invalid:7443');
    expect(await healthOf(a.address)).toBe('SERVING');
    const agents = clinics.map((o) => ws.track(startAgent(o)));
    const rounds = 5;
    const study = await startStudy(a, learnableManifest({ rounds, min: 3, max: 3, quorum: 2 }));
    // Agents listed the standby first, and chose the active by its health.
    for (const p of agents) await p.waitForEvent('agent.coordinator_selected', { address: a.address });

    await a.proc.waitForEvent('round.committed', { round: 2 });
    await a.proc.waitForEvent('round.phase', { round: 3, state: 'TRAINING' });
    a.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await a.proc.exited;
    // What was committed before the kill (nobody writes now: a is dead, b is standby until the lease expires).
    const before = await committedRounds(db, study.id);
    expect(before.map((c) => c.round).slice(0, 3)).toEqual([0, 1, 2]);

    const takeover = await b.proc.waitForEvent('ha.takeover', undefined, 60_000);
    const ready = await b.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
    const tookMs = at(ready) - killedAt;
    console.log(`failover after SIGKILL: lease taken ${at(takeover) - killedAt} ms, serving ${tookMs} ms after the kill (bound ${TAKEOVER_BOUND_MS} ms; lease ${LEASE_MS} ms)`);
    expect(takeover.fence).toBe(2);
    expect(tookMs).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
    expect(await healthOf(b.address)).toBe('SERVING');

    const resumed = await b.proc.waitForEvent('study.resumed');
    expect(resumed.lastCommittedRound).toBe(before.length - 1);
    const detail = await waitForStudyEnd(b, study.id);
    expect(detail.state).toBe('COMPLETED');
    expect(detail.lastCommittedRound).toBe(rounds);
    // Every round committed before the kill is still committed, with the same checkpoint.
    const after = await committedRounds(db, study.id);
    for (const c of before) expect(after.find((x) => x.round === c.round), `round ${c.round}`).toEqual(c);
    await expectNoDoubleCounting(db, study.id, rounds);
    // Every agent moved to b by itself.
    for (const p of agents) await p.waitForEvent('agent.coordinator_selected', { address: b.address });
  });

  it('the active cut off from the database demotes itself; the standby takes over; restored, the old active stays standby and writes nothing', async () => {
    const db = await createTestDatabase('failover');
    databases.push(db);
    const socket = `${db.connection.host}/.s.PGSQL.${db.connection.port}`;
    const proxy = await startDatabaseProxy(socket);
    proxies.push(proxy);
    const urlA = `postgres://${encodeURIComponent(db.connection.user)}@127.0.0.1:${proxy.port}/${encodeURIComponent(db.connection.database)}?application_name=coordinator-a`;
    const urlB = `${postgresUrl(db.connection)}${postgresUrl(db.connection).includes('?') ? '&' : '?'}application_name=coordinator-b`;
    const { a, b, clinics } = await cluster({ a: urlA, b: urlB });
    await installWriteAudit(db.connection);
    const agents: ManagedProcess[] = clinics.map((o) => ws.track(startAgent(o)));
    const rounds = 4;
    const study = await startStudy(a, learnableManifest({ rounds, min: 3, max: 3, quorum: 2 }));
    await a.proc.waitForEvent('round.committed', { round: 1 });
    await a.proc.waitForEvent('round.phase', { round: 2, state: 'TRAINING' });
    // a wrote through the proxy until now.
    expect((await query(db.connection, `SELECT 1 FROM test_write_audit WHERE app = 'coordinator-a' LIMIT 1`)).length).toBe(1);

    proxy.partition();
    const cutAt = Date.now();
    const demoted = await a.proc.waitForEvent('ha.demoted', undefined, 60_000);
    expect(demoted.reason).toBe('lease_expired');
    const takeover = await b.proc.waitForEvent('ha.takeover', undefined, 60_000);
    const ready = await b.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
    console.log(`failover after a database cut-off: a demoted ${at(demoted) - cutAt} ms, b took the lease ${at(takeover) - cutAt} ms and served ${at(ready) - cutAt} ms after the cut (bound ${TAKEOVER_BOUND_MS} ms)`);
    // a stopped serving before b could take the lease (its deadline is earlier than the database's expiry).
    expect(at(demoted)).toBeLessThanOrEqual(at(takeover));
    expect(at(ready) - cutAt).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
    expect(await healthOf(a.address)).toBe('NOT_SERVING');
    const [lease] = await query<{ fence: string; acquired_at: Date }>(db.connection, `SELECT fence, acquired_at FROM leadership`);
    expect(Number(lease!.fence)).toBe(2);

    // The network comes back: whatever a still had queued reaches the database, and is refused.
    proxy.heal();
    await a.proc.waitForEvent('ha.standby', { reason: 'demoted' }, 120_000);
    const detail = await waitForStudyEnd(b, study.id);
    expect(detail.state).toBe('COMPLETED');
    await expectNoDoubleCounting(db, study.id, rounds);
    for (const p of agents) await p.waitForEvent('agent.coordinator_selected', { address: b.address });
    // a stayed standby: never took the lease again, refuses work, names b.
    expect(a.proc.events('ha.takeover')).toHaveLength(1);
    await expectStandby(a, 'b.invalid:7443');
    // Straight from the database: not one row written by a after b took over (fenced writes roll back).
    const late = await query<{ tbl: string; op: string; at: Date }>(db.connection, `SELECT tbl, op, at FROM test_write_audit WHERE app = 'coordinator-a' AND at >= $1 ORDER BY id`, [lease!.acquired_at]);
    expect(late).toEqual([]);
    expect((await query(db.connection, `SELECT 1 FROM test_write_audit WHERE app = 'coordinator-b' LIMIT 1`)).length).toBe(1);
    // Whether a's queued writes met the fence (FENCED, ha.write_fenced) or a dead connection, none committed;
    // a fenced write names both fences.
    for (const f of a.proc.events('ha.write_fenced')) expect(f).toMatchObject({ fence: 1, current: 2 });
  });
  it('a standby without the pair\'s release key refuses to take over (clinics pinned the active\'s key), loudly, and leaves no key behind', async () => {
    const db = await createTestDatabase('failover_key');
    databases.push(db);
    const adminToken = `fat_${randomBytes(24).toString('base64url')}`;
    const a = ws.track(await startHaCoordinator({ name: 'coordinator-a', dataDir: join(ws.dir(), 'ka'), storeUrl: db.url, leaseSeconds: LEASE_SECONDS, adminToken }));
    await a.proc.waitForEvent('coordinator.ready', { role: 'active' }, 60_000);
    // The operator forgot to copy release-key.pem to b.
    const b = ws.track(await startHaCoordinator({ name: 'coordinator-b', dataDir: join(ws.dir(), 'kb'), storeUrl: db.url, leaseSeconds: LEASE_SECONDS, adminToken }));
    await b.proc.waitForEvent('ha.started', { role: 'standby' }, 60_000);
    a.proc.kill('SIGKILL');
    await a.proc.exited;
    const failed = await b.proc.waitForEvent('coordinator.start_failed', undefined, 60_000);
    expect(String(failed.msg)).toMatch(/release-key\.pem did not exist, and another coordinator was active before \(fence 1\).*copy that coordinator's release-key\.pem here/);
    expect(existsSync(join(b.dataDir, 'release-key.pem'))).toBe(false);
    expect(await healthOf(b.address)).toBe('NOT_SERVING');
  });
});
