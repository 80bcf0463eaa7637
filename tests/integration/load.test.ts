import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { payloadDigest } from '@fedlhs/core';
import { createTestDatabase, testPostgresUnavailable, type TestPostgresScope } from '@fedlhs/testing';
// The harness lives in this package's src/load (forked workers run from tests/dist/load).
import { expectedGlobalMetrics, expectedMean, runLoad } from '../src/load/index.js';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

// Design §7: the default suite's load test. It asserts results and the absence of drops, never a time.
const CLINICS = 200;
const WORKERS = 2;
const ROUNDS = 3;
const HEARTBEAT_MS = 500;

const kinds = ['sqlite', 'postgres'] as const;
const postgresUnavailable = await testPostgresUnavailable();
const databases: TestPostgresScope[] = [];
afterAll(async () => {
  for (const d of databases) await d.drop();
});

describe.each(kinds)('load: protocol-level clinics on one coordinator, %s store', (kind) => {
  if (kind === 'postgres' && postgresUnavailable !== undefined) {
    it('needs PostgreSQL', () => {
      throw postgresUnavailable;
    });
    return;
  }

  it(`${CLINICS} clinics in ${WORKERS} workers complete ${ROUNDS} rounds at a ${HEARTBEAT_MS} ms heartbeat with no session dropped and the exact FedAvg`, async () => {
    const dataDir = join(ws.dir(), 'coordinator');
    let storeOptions: { store: 'sqlite' } | { store: 'postgres'; storeUrl: string } = { store: 'sqlite' };
    if (kind === 'postgres') {
      const database = await createTestDatabase('load');
      databases.push(database);
      storeOptions = { store: 'postgres', storeUrl: database.url };
    }
    const r = await runLoad({ ...storeOptions, clinics: CLINICS, workers: WORKERS, rounds: ROUNDS, heartbeatMs: HEARTBEAT_MS, dataDir, features: 6, hidden: 8, fetchModels: true });

    expect(r.store).toBe(kind);
    // First, as a drop explains most other failures: no session ended before the harness stopped
    // the clinics, on either side, and no log line was lost. The metrics must be there: a
    // coordinator without them would pass by saying nothing.
    expect(r.coordinatorDrops).toEqual({});
    expect(r.coordinatorDropMetric).toBe(0);
    expect(r.logLinesDropped).toBe(0);
    expect({ drops: r.clinicsTotals.sessionDrops, reconnects: r.clinicsTotals.reconnects, errors: r.clinicsTotals.errors }).toEqual({ drops: 0, reconnects: 0, errors: {} });
    expect(r.studyState).toBe('COMPLETED');
    expect(r.nodeIds).toHaveLength(CLINICS);
    expect(new Set(r.nodeIds).size).toBe(CLINICS);
    expect(r.commits.map((c) => [c.round, c.updates, c.evaluatedSites])).toEqual(
      Array.from({ length: ROUNDS }, (_, i) => [i + 1, CLINICS, CLINICS]),
    );
    const accepted = r.detail.contributions.filter((c) => c.accepted);
    expect(accepted).toHaveLength(CLINICS * ROUNDS);
    for (let round = 1; round <= ROUNDS; round++) {
      expect(new Set(accepted.filter((c) => c.round === round).map((c) => c.nodeId))).toEqual(new Set(r.nodeIds));
    }
    expect(r.detail.contributions.filter((c) => !c.accepted)).toEqual([]);

    expect([r.clinicsTotals.trainOk, r.clinicsTotals.evalOk]).toEqual([CLINICS * ROUNDS, CLINICS * ROUNDS]);

    // Each committed model is the harness's own float64 → float32 example-weighted mean of the
    // clinics' known updates, chained from the round-0 model: the recorded digest, and the bytes
    // the admin API serves (wherever the store keeps them).
    expect(r.models).toHaveLength(ROUNDS + 1);
    let base = r.models[0]!;
    for (let round = 1; round <= ROUNDS; round++) {
      const expected = expectedMean(r.nodeIds, round, base);
      const committed = r.detail.rounds.filter((x) => x.round === round && x.state === 'COMMITTED');
      expect(committed).toHaveLength(1);
      expect(committed[0]!.checkpointSha256).toBe(payloadDigest(expected).toString('hex'));
      expect(payloadDigest(r.models[round]!).toString('hex')).toBe(payloadDigest(expected).toString('hex'));

      // The global metric is the example-weighted mean of what the clinics reported.
      const global = r.detail.metrics.find((m) => m.round === round && m.phase === 'evaluation' && m.nodeId === null);
      const want = expectedGlobalMetrics(r.nodeIds, round);
      expect(global?.loss).toBeCloseTo(want.loss, 9);
      expect(global?.accuracy).toBeCloseTo(want.accuracy, 9);
      base = expected;
    }
  });
});
