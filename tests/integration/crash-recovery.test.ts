import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, learnableManifest, testPostgresUnavailable, writeLearnableCsv, type TestPostgresScope } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** Where a test's coordinators keep their state: SQLite in the data dir, or a database of the test's own. */
interface StoreUnderTest {
  /** Environment for the coordinator child (FEDLHS_STORE, FEDLHS_STORE_URL). */
  env: NodeJS.ProcessEnv;
  /** The study row's strategy_state column. */
  strategyState(dataDir: string, studyId: string): Promise<string>;
}

const kinds = ['sqlite', 'postgres'] as const;
const postgresUnavailable = await testPostgresUnavailable();
const databases: TestPostgresScope[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});

async function storeUnderTest(kind: (typeof kinds)[number]): Promise<StoreUnderTest> {
  if (kind === 'sqlite') {
    return {
      env: {},
      strategyState: async (dataDir, studyId) => {
        const db = new Database(join(dataDir, 'coordinator.db'), { readonly: true });
        try {
          return (db.prepare('SELECT strategy_state FROM studies WHERE id = ?').get(studyId) as { strategy_state: string }).strategy_state;
        } finally {
          db.close();
        }
      },
    };
  }
  const database = await createTestDatabase('crash');
  databases.push(database);
  return {
    env: { FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: database.url },
    strategyState: async (_dataDir, studyId) => {
      const client = new pg.Client(database.connection);
      await client.connect();
      try {
        return (await client.query<{ strategy_state: string }>('SELECT strategy_state FROM studies WHERE id = $1', [studyId])).rows[0]!.strategy_state;
      } finally {
        await client.end();
      }
    },
  };
}

function checkpointDigests(dataDir: string, studyId: string): Map<string, string> {
  const dir = join(dataDir, 'studies', studyId, 'checkpoints');
  return new Map(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

describe.each(kinds)('on the %s store', (kind) => {
  if (kind === 'postgres' && postgresUnavailable !== undefined) {
    it('needs PostgreSQL', () => {
      throw postgresUnavailable;
    });
    return;
  }

  describe('coordinator crash (SIGKILL) mid-study', () => {
    it('resumes at the last committed round with earlier checkpoints byte-identical, counting no update twice', async () => {
      const store = await storeUnderTest(kind);
      const dataDir = join(ws.dir(), 'coordinator');
      const first = ws.track(await startCoordinator({ dataDir, env: store.env }));
      const clinics: AgentOptions[] = [];
      const nodeIds: string[] = [];
      for (const [i, name] of ['a', 'b', 'c'].entries()) {
        const dir = join(ws.dir(), name);
        mkdirSync(dir, { recursive: true });
        writeLearnableCsv(join(dir, 'data.csv'), { rows: 300, seed: 40 + i });
        const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: first.address, autoApprove: true };
        nodeIds.push(await enrolAgent(first, o));
        clinics.push(o);
      }
      for (const o of clinics) ws.track(startAgent(o));
      const rounds = 5;
      const study = await startStudy(first, learnableManifest({ rounds, min: 3, max: 3, quorum: 2 }));

      await first.proc.waitForEvent('round.committed', { round: 2 });
      await first.proc.waitForEvent('round.phase', { round: 3, state: 'TRAINING' });
      first.proc.kill('SIGKILL');
      await first.proc.exited;
      const before = checkpointDigests(dataDir, study.id);
      expect([...before.keys()].slice(0, 3)).toEqual(['round-000000.f32', 'round-000001.f32', 'round-000002.f32']);

      const second = ws.track(await startCoordinator({ dataDir, grpcPort: first.grpcPort, name: 'coordinator-restarted', env: store.env }));
      const resumed = await second.proc.waitForEvent('study.resumed');
      const resumedAt = resumed.lastCommittedRound as number;
      expect(resumedAt).toBeGreaterThanOrEqual(2);
      expect(resumedAt).toBe(before.size - 1);

      const detail = await waitForStudyEnd(second, study.id);
      expect(detail.state).toBe('COMPLETED');
      expect(detail.lastCommittedRound).toBe(rounds);

      // Checkpoints committed before the crash are untouched; later rounds were added.
      const after = checkpointDigests(dataDir, study.id);
      for (const [file, digest] of before) expect(after.get(file), file).toBe(digest);
      expect(after.size).toBe(rounds + 1);
      for (const r of detail.rounds.filter((x) => x.state === 'COMMITTED')) {
        expect(after.get(`round-${String(r.round).padStart(6, '0')}.f32`)).toBe(r.checkpointSha256);
      }

      // Exactly one committed attempt per round; the interrupted attempt is recorded as failed.
      for (let r = 0; r <= rounds; r++) expect(detail.rounds.filter((x) => x.round === r && x.state === 'COMMITTED'), `round ${r}`).toHaveLength(1);
      expect(detail.rounds.some((x) => x.round === resumedAt + 1 && x.state === 'FAILED' && x.reason === 'coordinator restarted before the round committed')).toBe(true);
      // No update counted twice: one accepted contribution per node in each committed attempt.
      for (let r = 1; r <= rounds; r++) {
        const committedAttempt = detail.rounds.find((x) => x.round === r && x.state === 'COMMITTED')!;
        const accepted = detail.contributions.filter((x) => x.round === r && x.attempt === committedAttempt.attempt && x.accepted);
        expect(new Set(accepted.map((x) => x.nodeId)).size, `round ${r}`).toBe(accepted.length);
        expect(accepted.length, `round ${r}`).toBeGreaterThanOrEqual(Math.min(2, committedAttempt.participants));
      }
    });
  });

  describe('server optimizer state across a coordinator crash', () => {
    it('checkpoints FedAdam moments with every committed round and restores them after SIGKILL', async () => {
      const store = await storeUnderTest(kind);
      const dataDir = join(ws.dir(), 'coordinator');
      const first = ws.track(await startCoordinator({ dataDir, env: store.env }));
      for (const [i, name] of ['x', 'y'].entries()) {
        const dir = join(ws.dir(), name);
        mkdirSync(dir, { recursive: true });
        writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 90 + i });
        const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: first.address, autoApprove: true };
        await enrolAgent(first, o);
        ws.track(startAgent(o));
      }
      const manifest = { ...learnableManifest({ name: 'adam-restart', rounds: 3, min: 2, max: 2, quorum: 2 }), aggregation: { strategy: 'fedadam', parameters: { eta: 0.05 } } };
      const study = await startStudy(first, manifest);
      await first.proc.waitForEvent('round.committed', { round: 1 });
      first.proc.kill('SIGKILL');
      await first.proc.exited;
      const stateFile = (r: number) => join(dataDir, 'studies', study.id, 'checkpoints', `round-${String(r).padStart(6, '0')}.state.f32`);
      const round1 = readFileSync(stateFile(1));

      const second = ws.track(await startCoordinator({ dataDir, grpcPort: first.grpcPort, name: 'coordinator-restarted', env: store.env }));
      await second.proc.waitForEvent('study.resumed');
      const detail = await waitForStudyEnd(second, study.id);
      expect(detail.state).toBe('COMPLETED');
      // Moments m and v for every weight: twice the model's size, and they keep evolving.
      const model = readFileSync(join(dataDir, 'studies', study.id, 'checkpoints', 'round-000001.f32'));
      expect(round1.byteLength).toBe(2 * model.byteLength);
      expect(readFileSync(stateFile(1)).equals(round1)).toBe(true);
      expect(readFileSync(stateFile(3)).equals(round1)).toBe(false);
      const ref = JSON.parse(await store.strategyState(dataDir, study.id)) as { path: string; sha256: string; round: number };
      expect(ref.round).toBe(3);
      expect(ref.sha256).toBe(createHash('sha256').update(readFileSync(stateFile(3))).digest('hex'));
    });
  });
});
