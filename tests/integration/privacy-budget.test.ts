import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ORDERS, computeRdp, rdpToEpsilon } from '@fedlhs/core';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { agentCli, enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/** Epsilon after `rounds` rounds of local noise with multiplier z (sampling rate 1), at δ 1e-6: the agent's own accounting. */
const epsAfter = (z: number, rounds: number): number => rdpToEpsilon(DEFAULT_ORDERS, computeRdp(1, z, rounds, DEFAULT_ORDERS), 1e-6).epsilon;

interface PrivacyJson {
  limits: { perStudy: number };
  studies: { studyId: string; rounds: number; epsilon: number; remaining: number | null }[];
  lifetime: { epsilon: number };
}

interface Detail {
  state: string;
  contributions: { nodeId: string; round: number; accepted: boolean }[];
  timeline: { round: number; failures: { nodeId: string; siteName: string; kind: string; state: string; reason: string }[] }[];
}

describe('a clinic-held privacy budget over real processes', () => {
  it('clinic A trains the rounds its budget allows, then declines with the reason and withdraws; B trains them all; the ledger survives a restart', async () => {
    const z = 2;
    // A's limit lies between two and three rounds' epsilon: exactly two rounds fit.
    const limit = Number(((epsAfter(z, 2) + epsAfter(z, 3)) / 2).toFixed(4));
    expect(epsAfter(z, 2)).toBeLessThan(limit);
    expect(epsAfter(z, 3)).toBeGreaterThan(limit);
    // A grace long enough that both clinics, connected before the study starts, are in round 1.
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), selectionGraceMs: 3000 }));
    const clinics: Record<'A' | 'B', AgentOptions & { nodeId?: string }> = {} as never;
    for (const [i, name] of (['A', 'B'] as const).entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 40 + i });
      const env = name === 'A' ? { FEDLHS_PRIVACY_MAX_EPSILON_PER_STUDY: String(limit) } : {};
      const o: AgentOptions = { name: `clinic-${name}`, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true, env };
      clinics[name] = { ...o, nodeId: await enrolAgent(c, o) };
    }
    let agentA = ws.track(startAgent(clinics.A));
    const agentB = ws.track(startAgent(clinics.B));
    await Promise.all([agentA.waitForEvent('agent.connected'), agentB.waitForEvent('agent.connected')]);

    const manifest = {
      ...learnableManifest({ name: 'dp-budget', rounds: 4, min: 1, max: 2, quorum: 1 }),
      privacy: { dp: { placement: 'local', noiseMultiplier: z, clipping: { mode: 'fixed', norm: 0.05 } } },
    };
    const study = await startStudy(c, manifest);

    // A's withdrawal as the coordinator received it: the reason and A's own accounting (PrivacyBudget).
    const withdrawn = await c.proc.waitFor((l) => l.event === 'node.readiness' && l.nodeId === clinics.A.nodeId && l.readiness === 'READINESS_WITHDRAWN', 240_000, "clinic A's withdrawal");
    expect(String(withdrawn.detail)).toMatch(/^privacy budget: no further round fits: this study has spent ε=\d/);
    const sent = withdrawn.privacy as { epsilonSpent: number; epsilonStudyLimit: number; delta: number };
    expect(sent.epsilonStudyLimit).toBe(limit);
    expect(sent.epsilonSpent).toBeCloseTo(epsAfter(z, 2), 6);
    expect(sent.delta).toBe(1e-6);
    // A logged the decline with the same words it sent.
    const declined = await agentA.waitForEvent('privacy.round_declined');
    expect(String(declined.reason)).toMatch(/^privacy budget: round 3 would bring this study to ε=\d+\.\d{3} \(limit /);

    const detail = (await waitForStudyEnd(c, study.id)) as unknown as Detail;
    expect(detail.state).toBe('COMPLETED');
    const trainedBy = (nodeId: string | undefined): number[] => detail.contributions.filter((x) => x.nodeId === nodeId && x.accepted).map((x) => x.round).sort();
    expect(trainedBy(clinics.A.nodeId)).toEqual([1, 2]);
    expect(trainedBy(clinics.B.nodeId)).toEqual([1, 2, 3, 4]);
    // The coordinator's study detail shows A's declined task with the clinic's reason.
    const round3 = detail.timeline.filter((t) => t.round === 3).flatMap((t) => t.failures);
    expect(round3).toEqual([expect.objectContaining({ siteName: 'clinic-A', kind: 'TRAIN', state: 'DECLINED', reason: expect.stringMatching(/^privacy budget: round 3 would bring this study to ε=/) })]);

    // `fedlhs-agent privacy` for A, with the agent stopped (the ledger is local: it works offline).
    await agentA.stop('SIGTERM');
    const report = async (): Promise<PrivacyJson> => JSON.parse((await agentCli(clinics.A, ['privacy', '--json'])).stdout) as PrivacyJson;
    const before = await report();
    expect(before.studies).toHaveLength(1);
    expect(before.studies[0]).toMatchObject({ studyId: study.id, rounds: 2 });
    expect(before.studies[0]!.epsilon).toBeLessThanOrEqual(limit);
    expect(before.studies[0]!.epsilon).toBeCloseTo(epsAfter(z, 2), 9);
    expect(before.limits.perStudy).toBe(limit);
    const text = (await agentCli(clinics.A, ['privacy'])).stdout;
    expect(text).toContain(`study ${study.id} (dp-budget): 2 round(s), spent ε=${epsAfter(z, 2).toFixed(3)}, remaining ${(limit - epsAfter(z, 2)).toFixed(3)}`);

    // Restarted, A reconnects with its ledger intact.
    agentA = ws.track(startAgent(clinics.A));
    await agentA.waitForEvent('agent.connected');
    await agentA.stop('SIGTERM');
    expect(await report()).toEqual(before);

    // B has no limit: it accounted all four rounds and was never declined.
    const b = JSON.parse((await agentCli(clinics.B, ['privacy', '--json'])).stdout) as PrivacyJson;
    expect(b.studies[0]).toMatchObject({ rounds: 4, remaining: null });
    expect(b.studies[0]!.epsilon).toBeCloseTo(epsAfter(z, 4), 9);
  }, 300_000);
});
