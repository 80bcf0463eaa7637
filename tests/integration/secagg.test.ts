import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { learnableManifest, writeLearnableCsv } from '@fedlhs/testing';
import { enrolAgent, readCommittedModel, startAgent, startCoordinator, startStudy, waitForStudyEnd, type AgentOptions } from '@fedlhs/tests';
import { useWorkspace } from './helpers.js';

const ws = useWorkspace();

interface Detail {
  state: string;
  rounds: { round: number; attempt: number; state: string; reason: string | null }[];
  contributions: { nodeId: string; round: number; accepted: boolean; sha256: string }[];
}

describe('secure aggregation over real processes (issue 14)', () => {
  it('commits a round in which a clinic is killed after its masked update: its neighbours unmask it', async () => {
    const c = ws.track(await startCoordinator({ dataDir: join(ws.dir(), 'coordinator'), selectionGraceMs: 3000 }));
    const agents = [];
    const nodeIds: string[] = [];
    for (const [i, name] of ['s1', 's2', 's3', 's4'].entries()) {
      const dir = join(ws.dir(), name);
      mkdirSync(dir, { recursive: true });
      writeLearnableCsv(join(dir, 'data.csv'), { rows: 200, seed: 140 + i });
      const o: AgentOptions = { name, stateDir: join(dir, 'state'), dataPath: join(dir, 'data.csv'), coordinator: c.address, autoApprove: true };
      nodeIds.push(await enrolAgent(c, o));
      agents.push(ws.track(startAgent(o)));
    }
    await Promise.all(agents.map((a) => a.waitForEvent('agent.connected')));
    // Four clinics, each the neighbour of the three others, threshold 2: one may drop at any stage.
    const manifest = {
      ...learnableManifest({ name: 'secagg-e2e', rounds: 1, min: 4, max: 4, quorum: 2 }),
      privacy: { secureAggregation: { neighbours: 3, graph: 'ring', valueBits: 20, clipRange: 1 } },
    };
    const study = await startStudy(c, manifest);
    // The first clinic whose masked update is accepted is killed: the unmask stage cannot start
    // before the three others have trained and sent theirs.
    const victim = await Promise.race(agents.map((a) => a.waitForEvent('secagg.stage_sent', { stage: 'masked_input' }, 240_000).then(() => a)));
    await victim.stop('SIGKILL');

    const detail = (await waitForStudyEnd(c, study.id)) as unknown as Detail;
    expect(detail.state, JSON.stringify(detail.rounds)).toBe('COMPLETED');
    const aggregated = await c.proc.waitForEvent('secagg.aggregated', { studyId: study.id });
    // All four in the sum; three unmasked it (the killed clinic's self mask rebuilt from their shares).
    expect(aggregated).toMatchObject({ survivors: 4, unmaskAnswers: 3 });
    expect(victim.events('secagg.stage_sent', { stage: 'unmask' })).toEqual([]);
    // One accepted contribution per clinic in the sum, with no digest of its update.
    const accepted = detail.contributions.filter((x) => x.accepted && x.round === 1);
    expect(accepted.map((x) => x.nodeId).sort()).toEqual([...nodeIds].sort());
    for (const x of accepted) expect(x.sha256).toBe('');
    // The round's model moved from the initial one.
    const before = readCommittedModel(c, study.id, 0);
    const after = readCommittedModel(c, study.id, 1);
    expect(after.length).toBe(before.length);
    expect(after.some((v, i) => v !== before[i])).toBe(true);
  }, 300_000);
});
