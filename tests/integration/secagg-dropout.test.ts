import { describe, expect, it } from 'vitest';
import { readCommittedModel, startStudy, waitForStudyEnd } from '@fedlhs/tests';
import { auditOf, coordinatorEvents, exitOf, noteExits, secaggManifest, startCluster, within, type Clinic, type Cluster } from './secagg-cluster.js';
import { useWorkspace } from './helpers.js';

/*
 * Issue 14, dropout tolerance: "Test with 30 % of clinics killed at each stage", and "a tampered
 * share refused", over a real coordinator and real agent processes. Clinics are killed by their
 * own failpoint (FEDLHS_FAILPOINTS task:<kind>=kill, node-agent/src/failpoints.ts): the agent
 * SIGKILLs itself as the stage's task reaches it, before answering: a real crash.
 *
 * 10 clinics on a ring, each the neighbour of the 8 others but one, threshold 5 (a strict
 * majority of 8, as the manifest requires); 3 killed (30 %). Why every stage can commit:
 * - a survivor keeps at least 8 - 3 = 5 = t live neighbours, so its self mask and the keys of
 *   its dropped neighbours can always be rebuilt;
 * - a clinic killed after its masked input reached the coordinator (consistency, unmask) is in
 *   the sum: its self mask is rebuilt from its neighbours, at least 8 - 2 = 6 >= t of them alive;
 * - a clinic killed before (keys, shares, masked input) is not: at keys and shares it never
 *   entered a survivor's mask; at masked input its pairwise masks are removed with its mask key,
 *   rebuilt from the shares it sent its neighbours (at least 6 >= t alive).
 */

const ws = useWorkspace();

const N = 10;
const NEIGHBOURS = 8;
const THRESHOLD = 5;
/** Killed clinics (by index): 3 of 10, spread over the ring. */
const VICTIMS = [1, 4, 8];

interface Detail {
  state: string;
  rounds: { round: number; attempt: number; state: string; reason: string | null }[];
  contributions: { nodeId: string; round: number; accepted: boolean; sha256: string }[];
  timeline: { round: number; failures: { nodeId: string; siteName: string; kind: string; state: string; reason: string }[] }[];
}

interface StageCase {
  /** The stage, as the test names it. */
  stage: string;
  kind: string;
  /** The coordinator's label of the stage (secagg.stage_closed), for a stage that closes before the unmask. */
  closedLabel?: string;
  /** Whether the killed clinics' masked inputs are in the sum. */
  killedInSum: boolean;
}

const CASES: StageCase[] = [
  { stage: 'keys', kind: 'TASK_KIND_SECAGG_KEYS', closedLabel: 'keys', killedInSum: false },
  { stage: 'shares', kind: 'TASK_KIND_SECAGG_SHARES', closedLabel: 'shares', killedInSum: false },
  { stage: 'masked input', kind: 'TASK_KIND_SECAGG_MASKED_INPUT', closedLabel: 'masked-input', killedInSum: false },
  { stage: 'consistency', kind: 'TASK_KIND_SECAGG_CONSISTENCY', closedLabel: 'consistency', killedInSum: true },
  { stage: 'unmask', kind: 'TASK_KIND_SECAGG_UNMASK', killedInSum: true },
];

const sorted = (ids: readonly string[]): string[] => [...ids].sort();

/** The failpoint warning and its audit record: a fault-injected agent never passes for a normal one. */
async function expectArmed(cluster: Cluster, k: Clinic): Promise<void> {
  const armed = await within(30_000, `${k.name}'s failpoint warning`, cluster, k.proc.waitForEvent('agent.failpoints_armed', undefined, 30_000));
  expect(armed.failpoints).toBe(k.failpoints);
  expect(auditOf(k).filter((a) => a.event === 'failpoints_armed').map((a) => a.detail)).toEqual([expect.stringContaining(k.failpoints)]);
}

describe('secure aggregation with 30 % of the clinics killed (issue 14)', () => {
  for (const s of CASES) {
    it(`commits with the clinics killed at the ${s.stage} stage ${s.killedInSum ? 'still in the sum' : 'left out of the sum'}`, async () => {
      const failpoint = `task:${s.kind}=kill`;
      const cluster = await startCluster(ws, N, (i) => (VICTIMS.includes(i) ? failpoint : ''));
      noteExits(cluster);
      const { c, clinics } = cluster;
      const victims = clinics.filter((k) => k.failpoints !== '');
      const rest = clinics.filter((k) => k.failpoints === '');
      for (const v of victims) await expectArmed(cluster, v);

      const study = await startStudy(c, secaggManifest(`dropout-${s.kind.toLowerCase().replaceAll('_', '-')}`, N, NEIGHBOURS, THRESHOLD, 2));
      // Each victim crashed by its own hand, as the stage's task reached it.
      const ends = await within(240_000, `the ${victims.length} victims to crash at the ${s.stage} stage`, cluster, Promise.all(victims.map(exitOf)));
      for (const [i, e] of ends.entries()) {
        expect(e.signal, victims[i]!.name).toBe('SIGKILL');
        expect(victims[i]!.proc.stderr.join('\n')).toContain(`FAILPOINT: ${failpoint}: SIGKILL`);
      }

      const detail = (await within(240_000, `the end of study ${study.id}`, cluster, waitForStudyEnd(c, study.id))) as unknown as Detail;
      expect(detail.state, `${JSON.stringify(detail.rounds)}\n${cluster.state()}`).toBe('COMPLETED');
      expect(detail.rounds.filter((r) => r.round === 1).map((r) => r.state)).toEqual(['COMMITTED']);

      // The round's records name exactly the clinics in the sum.
      const inSum = s.killedInSum ? clinics : rest;
      const accepted = detail.contributions.filter((x) => x.accepted && x.round === 1).map((x) => x.nodeId);
      expect(sorted(accepted), cluster.state()).toEqual(sorted(inSum.map((k) => k.nodeId)));
      const aggregated = await c.proc.waitForEvent('secagg.aggregated', { studyId: study.id }, 10_000);
      // Only the survivors answer the unmask stage, whatever stage the others died at.
      expect(aggregated).toMatchObject({ survivors: inSum.length, unmaskAnswers: rest.length });
      if (s.closedLabel !== undefined) {
        // The stage the victims died at dropped exactly them, loudly.
        const closed = coordinatorEvents(c, 'secagg.stage_closed', study.id).find((l) => l.stage === s.closedLabel);
        expect(closed, cluster.state()).toBeDefined();
        expect(sorted((closed!.dropped as { nodeId: string }[]).map((d) => d.nodeId))).toEqual(sorted(victims.map((k) => k.nodeId)));
      }
      // Every survivor unmasked; no victim answered the stage it died at.
      for (const k of rest) expect(k.proc.events('secagg.stage_sent', { stage: 'unmask' }), k.name).toHaveLength(1);
      const stageName = s.kind.replace('TASK_KIND_SECAGG_', '').toLowerCase();
      for (const k of victims) expect(k.proc.events('secagg.stage_sent', { stage: stageName }), k.name).toEqual([]);
      // The committed model moved from the initial one.
      const before = readCommittedModel(c, study.id, 0);
      const after = readCommittedModel(c, study.id, 1);
      expect(after.some((v, i) => v !== before[i])).toBe(true);
    }, 360_000);
  }
});

describe('a tampered share over real processes (issue 14)', () => {
  it('the neighbour it was sealed for refuses it, naming the sender; the round commits without the refuser, loudly', async () => {
    // Four clinics, each the neighbour of the three others, threshold 2: one may drop at any stage.
    const cluster = await startCluster(ws, 4, (i) => (i === 0 ? 'stage:shares=tamper' : ''));
    noteExits(cluster);
    const { c, clinics } = cluster;
    const tamperer = clinics[0]!;
    await expectArmed(cluster, tamperer);
    const study = await startStudy(c, secaggManifest('tampered-share', 4, 3, 2, 2));

    // The receiver of the first (tampered) share refuses its masked-input task.
    const others = clinics.slice(1);
    const refusal = await within(240_000, 'a refusal of the tampered share', cluster, Promise.race(others.map((k) => k.proc.waitForEvent('secagg.refused', { stage: 'masked_input' }, 240_000).then((l) => ({ k, l })))));
    const refuser = refusal.k;
    expect(String(refusal.l.reason)).toContain(`tampered share from ${tamperer.nodeId}`);
    expect(String(refusal.l.reason)).toMatch(/ciphertext/);
    // It is the clinic the failpoint tampered for (the tamperer's own stderr line).
    expect(tamperer.proc.stderr.join('\n')).toContain(`FAILPOINT: stage:shares=tamper: flipped byte`);
    expect(tamperer.proc.stderr.join('\n')).toContain(`share ciphertext for ${refuser.nodeId}`);
    // The refusal is in the refuser's audit log: a FAILED task with the reason.
    const failedAudit = auditOf(refuser).filter((a) => a.event === 'task_failed');
    expect(failedAudit.map((a) => String(a.detail))).toEqual([expect.stringContaining(`tampered share from ${tamperer.nodeId}`)]);

    const detail = (await within(240_000, `the end of study ${study.id}`, cluster, waitForStudyEnd(c, study.id))) as unknown as Detail;
    expect(detail.state, `${JSON.stringify(detail.rounds)}\n${cluster.state()}`).toBe('COMPLETED');
    // The coordinator shows the refuser's task FAILED with the clinic's reason, and the sum without it.
    const failures = detail.timeline.filter((t) => t.round === 1).flatMap((t) => t.failures);
    expect(failures).toEqual([expect.objectContaining({ nodeId: refuser.nodeId, kind: 'SECAGG_MASKED_INPUT', state: 'FAILED', reason: expect.stringContaining(`tampered share from ${tamperer.nodeId}`) })]);
    const accepted = detail.contributions.filter((x) => x.accepted && x.round === 1).map((x) => x.nodeId);
    expect(sorted(accepted)).toEqual(sorted(clinics.filter((k) => k !== refuser).map((k) => k.nodeId)));
    const closed = coordinatorEvents(c, 'secagg.stage_closed', study.id).find((l) => l.stage === 'masked-input');
    expect(closed?.level, cluster.state()).toBe(40); // warn: a clinic was dropped
    expect((closed!.dropped as { nodeId: string }[]).map((d) => d.nodeId)).toEqual([refuser.nodeId]);
    await expect(c.proc.waitForEvent('secagg.aggregated', { studyId: study.id }, 10_000)).resolves.toMatchObject({ survivors: 3 });
  }, 360_000);
});
