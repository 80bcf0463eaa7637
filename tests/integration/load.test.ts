import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCommittedModel } from '@fedlhs/tests';
// The harness lives in this package's src/load (forked workers run from tests/dist/load).
import { expectedGlobalMetrics, expectedMean, runLoad } from '../src/load/index.js';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

const CLINICS = 200;
const WORKERS = 4;
const ROUNDS = 2;

describe('load: protocol-level clinics on one coordinator', () => {
  it(`${CLINICS} clinics in ${WORKERS} workers complete ${ROUNDS} rounds with no session dropped and the exact FedAvg`, async () => {
    const dataDir = join(ws.dir(), 'coordinator');
    const r = await runLoad({ clinics: CLINICS, workers: WORKERS, rounds: ROUNDS, heartbeatMs: 500, dataDir, features: 6, hidden: 8 });

    expect(r.studyState).toBe('COMPLETED');
    expect(r.nodeIds).toHaveLength(CLINICS);
    expect(r.commits.map((c) => [c.round, c.updates, c.evaluatedSites])).toEqual(
      Array.from({ length: ROUNDS }, (_, i) => [i + 1, CLINICS, CLINICS]),
    );
    const accepted = r.detail.contributions.filter((c) => c.accepted);
    expect(accepted).toHaveLength(CLINICS * ROUNDS);
    expect(r.detail.contributions.filter((c) => !c.accepted)).toEqual([]);

    // No session ended before the harness stopped the clinics, on either side.
    expect(r.coordinatorDrops).toEqual({});
    expect(r.coordinatorDropMetric ?? 0).toBe(0);
    expect(r.logLinesDropped ?? 0).toBe(0);
    expect({ drops: r.clinicsTotals.sessionDrops, reconnects: r.clinicsTotals.reconnects, errors: r.clinicsTotals.errors }).toEqual({ drops: 0, reconnects: 0, errors: {} });
    expect([r.clinicsTotals.trainOk, r.clinicsTotals.evalOk]).toEqual([CLINICS * ROUNDS, CLINICS * ROUNDS]);

    for (let round = 1; round <= ROUNDS; round++) {
      // Each committed model is the example-weighted mean of the clinics' known updates.
      const base = readCommittedModel({ dataDir }, r.studyId, round - 1);
      const committed = readCommittedModel({ dataDir }, r.studyId, round);
      const expected = expectedMean(r.nodeIds, round, base);
      expect(committed.length).toBe(expected.length);
      const worst = committed.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
      expect(worst).toBeLessThan(1e-6);

      // The global metric is the example-weighted mean of what the clinics reported.
      const global = r.detail.metrics.find((m) => m.round === round && m.phase === 'evaluation' && m.nodeId === null);
      const want = expectedGlobalMetrics(r.nodeIds, round);
      expect(global?.loss).toBeCloseTo(want.loss, 9);
      expect(global?.accuracy).toBeCloseTo(want.accuracy, 9);
    }
  });
});
