import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

/*
 * Adaptive DP clipping over real processes (issue 14, Andrew et al. 2021): two clinics, three
 * rounds. The initial norm is far above any update of the toy model, so every clinic is under it
 * (indicator 1, no count noise): b̄ = 1 > γ = 0.5 and the norm must shrink by exp(−η(1 − γ))
 * each round, in the coordinator's log and in what the clinics clip to.
 */
describe('adaptive clipping over real processes', () => {
  it('moves the norm the clinics clip to in the paper\'s direction, round after round', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), selectionGraceMs: 3000 }));
    const agents = [];
    for (const [i, name] of ['A', 'B'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 70 + i });
      const o: AgentOptions = { name: `clinic-${name}`, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      await enrolAgent(c, o);
      agents.push(ws.track(startAgent(o)));
    }
    await Promise.all(agents.map((a) => a.waitForEvent('agent.connected')));

    const initialNorm = 1000;
    const manifest = {
      ...learnableManifest({ name: 'dp-adaptive', rounds: 3, min: 2, max: 2, quorum: 2 }),
      privacy: { dp: { placement: 'central', noiseMultiplier: 1e-6, clipping: { mode: 'adaptive', initialNorm, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier: 0 } } },
    };
    const study = await startStudy(c, manifest);
    const detail = (await waitForStudyEnd(c, study.id)) as unknown as { state: string; parameters: { dp?: { clipNorm: number } } | null };
    expect(detail.state).toBe('COMPLETED');

    const step = Math.exp(-0.2 * (1 - 0.5));
    // The study detail (admin API) shows the stored parameters: the norm after the last commit.
    expect(detail.parameters?.dp?.clipNorm).toBeCloseTo(initialNorm * step ** 3, 6);
    const lines = c.proc.events('privacy.clip_norm').sort((a, b) => Number(a.round) - Number(b.round));
    expect(lines.map((l) => [l.round, l.unclippedFraction])).toEqual([[1, 1], [2, 1], [3, 1]]);
    for (const [i, l] of lines.entries()) {
      expect(l.clipNorm as number).toBeCloseTo(initialNorm * step ** i, 6);
      expect(l.nextClipNorm as number).toBeCloseTo(initialNorm * step ** (i + 1), 6);
    }
    // What each clinic clipped to in round 3: the norm sent in its task, below initialNorm.
    for (const a of agents) {
      const spent = await a.waitForEvent('privacy.spent', (l) => l.round === 3);
      expect(spent.clipNorm as number).toBeCloseTo(initialNorm * step ** 2, 6);
      expect(spent.clipNorm as number).toBeLessThan(initialNorm);
    }
  }, 240_000);
});
