import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, computeRdp, rdpToEpsilon, sha256Hex } from '@fedlhs/core';
import { AgentState } from './agent-state.js';
import { NO_DP_REASON, PrivacyBudget, SECURE_AGGREGATION_COUNTS, mechanismContext, secureAggregationMinSurvivors, type BudgetConfig } from './privacy-budget.js';
import { dpManifest } from './privacy-test-support.js';

const opened: AgentState[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
const stateAt = (dir: string): AgentState => {
  const s = new AgentState(dir);
  opened.push(s);
  return s;
};
const newDir = (): string => join(mkdtempSync(join(tmpdir(), 'fedlhs-privacy-')), 'state');

const LOCAL = { dp: { placement: 'local', noiseMultiplier: 2, clipping: { mode: 'fixed', norm: 1 } } };
const config = (over: Partial<BudgetConfig> = {}): BudgetConfig => ({ maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false, ...over });
/** Epsilon after `rounds` rounds of the Gaussian mechanism with multiplier z (sampling rate 1). */
const epsAfter = (z: number, rounds: number, delta = 1e-6): number => rdpToEpsilon(DEFAULT_ORDERS, computeRdp(1, z, rounds, DEFAULT_ORDERS), delta).epsilon;

/** Records a spend as tasks/train.ts does: decide, then write the ledger row. */
function spend(budget: PrivacyBudget, state: AgentState, studyId: string, round: number, m = dpManifest(LOCAL)): void {
  const d = budget.decide(studyId, round, m);
  if (!d.ok) throw new Error(d.reason);
  state.recordPrivacySpend({ studyId, round, taskId: `t-${studyId}-${round}`, rdp: d.rdp, epsilonAfter: d.epsilonStudy, at: Date.now() });
}

describe('privacy ledger', () => {
  it('survives a restart: the spend read back after reopening the state equals the spend before', () => {
    const dir = newDir();
    const a = stateAt(dir);
    const budget = new PrivacyBudget(a, config());
    spend(budget, a, 's1', 1);
    spend(budget, a, 's1', 2);
    spend(budget, a, 's2', 1);
    const before = { s1: budget.spent('s1'), s2: budget.spent('s2') };
    a.close();
    const b = stateAt(dir);
    const after = new PrivacyBudget(b, config());
    expect({ s1: after.spent('s1'), s2: after.spent('s2') }).toEqual(before);
    expect(before.s1.rounds).toBe(2);
    // Composition by RDP: two local rounds at z=2 are the Gaussian mechanism twice, not 2 × one round's epsilon.
    expect(before.s1.study).toBeCloseTo(epsAfter(2, 2), 9);
    expect(before.s1.lifetime).toBeCloseTo(epsAfter(2, 3), 9);
    expect(before.s1.study).toBeLessThan(2 * epsAfter(2, 1));
  });

  it('adds a re-run of the same task to its row instead of replacing it', () => {
    const s = stateAt(newDir());
    const rdp = computeRdp(1, 2, 1, DEFAULT_ORDERS);
    s.recordPrivacySpend({ studyId: 's', round: 1, taskId: 't', rdp, epsilonAfter: 1, at: 1 });
    s.recordPrivacySpend({ studyId: 's', round: 1, taskId: 't', rdp, epsilonAfter: 2, at: 2 });
    const rows = s.listPrivacySpends('s');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.rdp[3]).toBeCloseTo(2 * rdp[3]!, 12);
  });

  it('keeps unprotected (infinite) spends as Infinity', () => {
    const s = stateAt(newDir());
    s.recordPrivacySpend({ studyId: 's', round: 1, taskId: 't', rdp: DEFAULT_ORDERS.map(() => Infinity), epsilonAfter: Infinity, at: 1 });
    expect(s.listPrivacySpends()[0]).toMatchObject({ epsilonAfter: Infinity });
    expect(new PrivacyBudget(s, config()).spent('s').study).toBe(Infinity);
  });

  it('migrates a database from an older agent: its manifests are kept and it gains the ledger', () => {
    const dir = newDir();
    stateAt(dir).close(); // creates the directory
    rmSync(join(dir, 'agent.db'), { force: true });
    const db = new Database(join(dir, 'agent.db'));
    db.exec(`CREATE TABLE manifests (hash TEXT PRIMARY KEY, study_id TEXT NOT NULL, name TEXT NOT NULL, json TEXT NOT NULL, first_seen_at INTEGER NOT NULL, approved_at INTEGER, approved_by TEXT)`);
    db.prepare(`INSERT INTO manifests VALUES (?,?,?,?,?,?,?)`).run(sha256Hex('{}'), 'old-study', 'old', '{}', 1, 2, 'operator');
    db.close();
    const s = stateAt(dir);
    expect(s.getManifest(sha256Hex('{}'))).toMatchObject({ studyId: 'old-study', approvedBy: 'operator' });
    expect(s.listPrivacySpends()).toEqual([]);
    spend(new PrivacyBudget(s, config()), s, 'new-study', 1);
    expect(s.listPrivacySpends()).toHaveLength(1);
  });
});

describe('PrivacyBudget.decide', () => {
  it('lets rounds through while the study stays within its limit, then declines naming the round, epsilon and limit', () => {
    const s = stateAt(newDir());
    // A limit between 2 and 3 rounds' epsilon: exactly two rounds fit.
    const limit = (epsAfter(2, 2) + epsAfter(2, 3)) / 2;
    const budget = new PrivacyBudget(s, config({ maxEpsilonPerStudy: limit }));
    spend(budget, s, 's', 1);
    spend(budget, s, 's', 2);
    const third = budget.decide('s', 3, dpManifest(LOCAL));
    expect(third.ok).toBe(false);
    if (third.ok) return;
    expect(third.reason).toMatch(new RegExp(`^privacy budget: round 3 would bring this study to ε=${epsAfter(2, 3).toFixed(3)} \\(limit ${limit}`));
    expect(budget.spent('s').study).toBeLessThanOrEqual(limit);
    // Another study still has its own per-study budget.
    expect(budget.decide('other', 1, dpManifest(LOCAL)).ok).toBe(true);
    expect(budget.withdrawal('s', dpManifest(LOCAL))).toMatch(/^privacy budget: no further round fits/);
    expect(budget.withdrawal('other', dpManifest(LOCAL))).toBeUndefined();
  });

  it('declines on the lifetime limit across studies', () => {
    const s = stateAt(newDir());
    const budget = new PrivacyBudget(s, config({ maxEpsilonLifetime: (epsAfter(2, 2) + epsAfter(2, 3)) / 2 }));
    spend(budget, s, 'a', 1);
    spend(budget, s, 'b', 1);
    const d = budget.decide('c', 1, dpManifest(LOCAL));
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(/^privacy budget: round 1 of this study would bring this clinic's lifetime spend to ε=/);
  });

  it('declines a study without DP when the clinic holds a budget, and not otherwise', () => {
    const s = stateAt(newDir());
    const none = dpManifest(undefined);
    expect(new PrivacyBudget(s, config({ maxEpsilonLifetime: 5 })).decide('s', 1, none)).toMatchObject({ ok: false, reason: NO_DP_REASON });
    expect(new PrivacyBudget(s, config({ maxEpsilonLifetime: 5 })).withdrawal('s', none)).toBe(NO_DP_REASON);
    expect(new PrivacyBudget(s, config()).decide('s', 1, none).ok).toBe(true);
    expect(new PrivacyBudget(s, config()).message('s', none)).toBeUndefined();
  });

  it('counts central noise as no protection unless the clinic trusts the coordinator', () => {
    const s = stateAt(newDir());
    const central = dpManifest({ dp: { ...LOCAL.dp, placement: 'central' } });
    const untrusting = new PrivacyBudget(s, config({ maxEpsilonPerStudy: 100 }));
    const d = untrusting.decide('s', 1, central);
    expect(d).toMatchObject({ ok: false, epsilonStudy: Infinity });
    if (!d.ok) expect(d.reason).toContain('privacy.trustCoordinatorNoise is false');
    expect(new PrivacyBudget(s, config({ maxEpsilonPerStudy: 100, trustCoordinatorNoise: true })).decide('s', 1, central)).toMatchObject({ ok: true, noiseMultiplier: 2 });
  });

  it('accounts distributed noise without secure aggregation at z/√clients.min', () => {
    const s = stateAt(newDir());
    const d = new PrivacyBudget(s, config()).decide('s', 1, dpManifest({ dp: { ...LOCAL.dp, placement: 'distributed' } }));
    expect(d).toMatchObject({ ok: true, noiseMultiplier: 1 }); // z = 2, clients.min = 4
    if (d.ok) expect(d.epsilonStudy).toBeCloseTo(epsAfter(1, 1), 9);
  });

  it('reports the PrivacyBudget a readiness carries', () => {
    const s = stateAt(newDir());
    const budget = new PrivacyBudget(s, config({ maxEpsilonPerStudy: 7, delta: 1e-5 }));
    spend(budget, s, 's', 1);
    expect(budget.message('s', dpManifest(LOCAL))).toEqual({ epsilonSpent: epsAfter(2, 1, 1e-5), epsilonStudyLimit: 7, epsilonLifetimeSpent: epsAfter(2, 1, 1e-5), epsilonLifetimeLimit: 0, delta: 1e-5 });
  });

  it('distributed noise is counted at the clinic\'s own share z/√clients.min, with or without secure aggregation (the survivor set is the coordinator\'s word)', () => {
    expect(SECURE_AGGREGATION_COUNTS).toBe(false);
    const s = stateAt(newDir());
    const budget = new PrivacyBudget(s, config());
    const distributed = { dp: { ...LOCAL.dp, placement: 'distributed' } };
    const sa = { secureAggregation: { neighbours: 3, graph: 'ring', valueBits: 16, clipRange: 1 } };
    const withSa = dpManifest({ ...distributed, ...sa });
    expect(budget.decide('s', 1, withSa)).toMatchObject({ ok: true, noiseMultiplier: 1 }); // z/√4, z = 2
    expect(budget.decide('s', 1, dpManifest(distributed))).toMatchObject({ ok: true, noiseMultiplier: 1 });
    const own = budget.decide('s', 1, withSa);
    if (own.ok) expect(own.epsilonStudy).toBeCloseTo(epsAfter(1, 1), 9);
    expect(mechanismContext(withSa, config())).toEqual({ clientsMin: 4, secureAggregation: false, trustCoordinatorNoise: false });
    // Local noise is the clinic's own whatever the survivors.
    expect(budget.decide('s', 1, dpManifest({ ...LOCAL, ...sa }))).toMatchObject({ noiseMultiplier: 2 });
  });

  it('the fewest survivors a clinic unmasks within: clients.min with distributed DP, else 2', () => {
    const sa = { secureAggregation: { neighbours: 3, graph: 'ring', valueBits: 16, clipRange: 1 } };
    expect(secureAggregationMinSurvivors(dpManifest({ dp: { ...LOCAL.dp, placement: 'distributed' }, ...sa }))).toBe(4);
    expect(secureAggregationMinSurvivors(dpManifest({ ...LOCAL, ...sa }))).toBe(2);
    expect(secureAggregationMinSurvivors(dpManifest(sa))).toBe(2);
  });
});
