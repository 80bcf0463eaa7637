import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, learnableManifest, testPostgresUnavailable, writeLearnableCsv, type TestPostgresScope } from '@fedlhs/testing';
import { enrolAgent, fetchCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** A payload read back from where the coordinator keeps it, with its digest computed here. */
interface ReadBack {
  bytes: Buffer;
  sha256: string;
}

/**
 * Where a test's coordinators keep their state and blobs: SQLite and files in the data dir, or a
 * database of the test's own holding both (blobs.store auto → PostgreSQL, so a standby sees them).
 */
interface StoreUnderTest {
  /** Environment for the coordinator child (FEDLHS_STORE, FEDLHS_STORE_URL). */
  env: NodeJS.ProcessEnv;
  /** The blob store the coordinator must report in coordinator.ready. */
  blobStore: 'files' | 'postgres';
  /** The study row's strategy_state column. */
  strategyState(dataDir: string, studyId: string): Promise<string>;
  /**
   * Every committed round's checkpoint, read back from where it lives (named files, or the blob
   * tables by the row's locator), by round. Fails unless the recorded digest and length match.
   */
  committed(dataDir: string, studyId: string): Promise<Map<number, ReadBack>>;
  /** A payload by its recorded reference (a strategy state). */
  read(dataDir: string, ref: { path: string; sha256: string }): Promise<ReadBack>;
  /** Makes every blob look two hours old, and adds one unreferenced blob; returns its digest. */
  ageBlobsAndAddOrphan(dataDir: string): Promise<string>;
  /** Whether a blob with this digest is still stored. */
  hasBlob(dataDir: string, sha256: string): Promise<boolean>;
  /**
   * The data directory of the coordinator started after the crash: the same one (SQLite lives in
   * it), or with PostgreSQL a fresh, empty one, as a standby on another machine would have.
   */
  restartDir(dataDir: string): string;
}

const kinds = ['sqlite', 'postgres'] as const;
const postgresUnavailable = await testPostgresUnavailable();
const databases: TestPostgresScope[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const TWO_HOURS = 2 * 3_600_000;
const ORPHAN = Buffer.from('a candidate of an attempt that never committed');

async function storeUnderTest(kind: (typeof kinds)[number]): Promise<StoreUnderTest> {
  if (kind === 'sqlite') {
    const blobFile = (dataDir: string, digest: string): string => join(dataDir, 'blobs', 'sha256', digest.slice(0, 2), digest);
    return {
      env: {},
      blobStore: 'files',
      strategyState: async (dataDir, studyId) => {
        const db = new Database(join(dataDir, 'coordinator.db'), { readonly: true });
        try {
          return (db.prepare('SELECT strategy_state FROM studies WHERE id = ?').get(studyId) as { strategy_state: string }).strategy_state;
        } finally {
          db.close();
        }
      },
      committed: async (dataDir, studyId) => {
        const db = new Database(join(dataDir, 'coordinator.db'), { readonly: true });
        try {
          const rows = db.prepare(`SELECT round, checkpoint_path, checkpoint_sha256 FROM rounds WHERE study_id = ? AND state = 'COMMITTED' ORDER BY round`).all(studyId) as { round: number; checkpoint_path: string; checkpoint_sha256: string }[];
          return new Map(rows.map((r) => {
            // The file store names each committed checkpoint in the study's directory.
            expect(r.checkpoint_path).toBe(join(dataDir, 'studies', studyId, 'checkpoints', `round-${String(r.round).padStart(6, '0')}.f32`));
            const bytes = readFileSync(r.checkpoint_path);
            expect(sha(bytes), `round ${r.round}`).toBe(r.checkpoint_sha256);
            return [r.round, { bytes, sha256: sha(bytes) }];
          }));
        } finally {
          db.close();
        }
      },
      read: async (_dataDir, ref) => {
        const bytes = readFileSync(ref.path);
        return { bytes, sha256: sha(bytes) };
      },
      ageBlobsAndAddOrphan: async (dataDir) => {
        const orphan = sha(ORPHAN);
        mkdirSync(dirname(blobFile(dataDir, orphan)), { recursive: true });
        writeFileSync(blobFile(dataDir, orphan), ORPHAN);
        const old = new Date(Date.now() - TWO_HOURS);
        for (const shard of readdirSync(join(dataDir, 'blobs', 'sha256'))) {
          for (const f of readdirSync(join(dataDir, 'blobs', 'sha256', shard))) utimesSync(join(dataDir, 'blobs', 'sha256', shard, f), old, old);
        }
        return orphan;
      },
      hasBlob: async (dataDir, digest) => existsSync(blobFile(dataDir, digest)),
      restartDir: (dataDir) => dataDir,
    };
  }
  const database = await createTestDatabase('crash');
  databases.push(database);
  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> => {
    const client = new pg.Client(database.connection);
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  };
  // Straight from the tables, not through the coordinator's code: the chunks in order, then the digest.
  const readBlob = async (digest: string): Promise<ReadBack> => {
    const [row] = await query<{ length: string }>('SELECT length FROM blobs WHERE sha256 = $1', [digest]);
    expect(row, `blob ${digest}`).toBeDefined();
    const chunks = await query<{ data: Buffer }>('SELECT data FROM blob_chunks WHERE sha256 = $1 ORDER BY seq', [digest]);
    const bytes = Buffer.concat(chunks.map((c) => c.data));
    expect(bytes.length).toBe(Number(row!.length));
    return { bytes, sha256: sha(bytes) };
  };
  return {
    env: { FEDLHS_STORE: 'postgres', FEDLHS_STORE_URL: database.url },
    blobStore: 'postgres',
    strategyState: async (_dataDir, studyId) => (await query<{ strategy_state: string }>('SELECT strategy_state FROM studies WHERE id = $1', [studyId]))[0]!.strategy_state,
    committed: async (_dataDir, studyId) => {
      const rows = await query<{ round: string; checkpoint_path: string; checkpoint_sha256: string }>(
        `SELECT round, checkpoint_path, checkpoint_sha256 FROM rounds WHERE study_id = $1 AND state = 'COMMITTED' ORDER BY round`, [studyId],
      );
      const out = new Map<number, ReadBack>();
      for (const r of rows) {
        expect(r.checkpoint_path).toBe(`blob:sha256:${r.checkpoint_sha256}`);
        const back = await readBlob(r.checkpoint_sha256);
        expect(back.sha256, `round ${r.round}`).toBe(r.checkpoint_sha256);
        out.set(Number(r.round), back);
      }
      return out;
    },
    read: async (_dataDir, ref) => {
      expect(ref.path).toBe(`blob:sha256:${ref.sha256}`);
      return readBlob(ref.sha256);
    },
    ageBlobsAndAddOrphan: async () => {
      const orphan = sha(ORPHAN);
      await query(`INSERT INTO blob_chunks (sha256, seq, data) VALUES ($1, 0, $2)`, [orphan, ORPHAN]);
      await query(`INSERT INTO blobs (sha256, length, kind, created_at) VALUES ($1, $2, 'checkpoint', 0)`, [orphan, ORPHAN.length]);
      await query(`UPDATE blobs SET created_at = $1`, [Date.now() - TWO_HOURS]);
      return orphan;
    },
    hasBlob: async (_dataDir, digest) => (await query('SELECT 1 FROM blobs WHERE sha256 = $1', [digest])).length === 1,
    restartDir: (dataDir) => `${dataDir}-standby`,
  };
}

/** Blobs live where the store says: with PostgreSQL nothing of them is in the data directory (only the read cache). */
function expectBlobsWhereConfigured(store: StoreUnderTest, ready: Record<string, unknown>, dataDir: string, studyId: string): void {
  expect(ready.blobStore).toBe(store.blobStore);
  if (store.blobStore === 'postgres') {
    expect(existsSync(join(dataDir, 'blobs'))).toBe(false);
    expect(existsSync(join(dataDir, 'studies', studyId, 'checkpoints'))).toBe(false);
    expect(existsSync(join(dataDir, 'studies', studyId, 'model-spec.json'))).toBe(false);
  }
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
      expectBlobsWhereConfigured(store, await first.proc.waitForEvent('coordinator.ready'), dataDir, study.id);
      // Every checkpoint committed before the SIGKILL reads back whole, with its recorded digest.
      const before = await store.committed(dataDir, study.id);
      expect([...before.keys()].slice(0, 3)).toEqual([0, 1, 2]);
      // Blob collection at the restart: every blob is past the grace period now, one is referenced by nothing.
      const orphan = await store.ageBlobsAndAddOrphan(dataDir);

      const second = ws.track(await startCoordinator({ dataDir: store.restartDir(dataDir), grpcPort: first.grpcPort, name: 'coordinator-restarted', env: store.env }));
      const resumed = await second.proc.waitForEvent('study.resumed');
      const resumedAt = resumed.lastCommittedRound as number;
      expect(resumedAt).toBeGreaterThanOrEqual(2);
      expect(resumedAt).toBe(before.size - 1);
      const collected = await second.proc.waitForEvent('blob.collected', { reason: 'start' });
      expect(collected).toMatchObject({ removed: 1, bytes: ORPHAN.length });
      expect(await store.hasBlob(dataDir, orphan)).toBe(false);
      const kept = await store.committed(dataDir, study.id);
      for (const [round, { sha256 }] of before) expect(kept.get(round)?.sha256, `round ${round} after collection`).toBe(sha256);

      const detail = await waitForStudyEnd(second, study.id);
      expect(detail.state).toBe('COMPLETED');
      expect(detail.lastCommittedRound).toBe(rounds);

      // Checkpoints committed before the crash are untouched; later rounds were added.
      await second.proc.waitForEvent('blob.collected', { reason: 'study-ended' });
      const after = await store.committed(dataDir, study.id);
      for (const [round, { bytes }] of before) expect(after.get(round)?.bytes.equals(bytes), `round ${round}`).toBe(true);
      expect(after.size).toBe(rounds + 1);
      for (const r of detail.rounds.filter((x) => x.state === 'COMMITTED')) {
        expect(after.get(r.round)?.sha256).toBe(r.checkpointSha256);
        // The admin API serves the same bytes wherever the blobs live (it checks the digest it sends).
        const served = await fetchCommittedModel(second, study.id, r.round);
        expect(Buffer.from(served.buffer).equals(after.get(r.round)!.bytes), `served round ${r.round}`).toBe(true);
      }
      expectBlobsWhereConfigured(store, await second.proc.waitForEvent('coordinator.ready'), second.dataDir, study.id);

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
      const ref1 = JSON.parse(await store.strategyState(dataDir, study.id)) as { path: string; sha256: string; round: number };
      expect(ref1.round).toBe(1);
      const round1 = await store.read(dataDir, ref1);
      expect(round1.sha256).toBe(ref1.sha256);

      const second = ws.track(await startCoordinator({ dataDir: store.restartDir(dataDir), grpcPort: first.grpcPort, name: 'coordinator-restarted', env: store.env }));
      await second.proc.waitForEvent('study.resumed');
      const detail = await waitForStudyEnd(second, study.id);
      expect(detail.state).toBe('COMPLETED');
      // Moments m and v for every weight: twice the model's size, and they keep evolving.
      const model = (await store.committed(dataDir, study.id)).get(1)!.bytes;
      expect(round1.bytes.byteLength).toBe(2 * model.byteLength);
      expect((await store.read(dataDir, ref1)).bytes.equals(round1.bytes)).toBe(true);
      const ref = JSON.parse(await store.strategyState(dataDir, study.id)) as { path: string; sha256: string; round: number };
      expect(ref.round).toBe(3);
      const round3 = await store.read(dataDir, ref);
      expect(round3.sha256).toBe(ref.sha256);
      expect(round3.bytes.equals(round1.bytes)).toBe(false);
      expectBlobsWhereConfigured(store, await second.proc.waitForEvent('coordinator.ready'), second.dataDir, study.id);
    });
  });
});
