import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Task__Output } from '@fedlhs/proto';
import { AgentState } from '../agent-state.js';
import { NO_DP_REASON } from '../privacy-budget.js';
import { dpManifest } from '../privacy-test-support.js';
import type { TaskContext } from '../task-runner.js';
import { trainTask } from './train.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => quiet } as unknown as TaskContext['log'];

/** A TRAIN task's context whose model loading is recorded (and fails: these tests must not reach it). */
function context(manifest: ReturnType<typeof dpManifest>, privacy: { maxEpsilonPerStudy: number; maxEpsilonLifetime: number }) {
  const state = new AgentState(join(mkdtempSync(join(tmpdir(), 'fedlhs-train-privacy-')), 'state'));
  const calls: string[] = [];
  const ctx = {
    manifest, log: quiet, state,
    config: { coordinator: { address: 'c:1' }, privacy: { ...privacy, delta: 1e-6, trustCoordinatorNoise: false } },
    credential: { nodeId: 'n' },
    loadModel: async () => {
      calls.push('loadModel');
      throw new Error('not in this test');
    },
    decline: (why: string) => void calls.push(`decline: ${why}`),
    privacyChanged: (declined: boolean) => void calls.push(`privacyChanged ${declined}`),
  } as unknown as TaskContext;
  return { ctx, calls, state };
}

const task = { taskId: 't3', studyId: 's', round: 3 } as Task__Output;

describe('trainTask and the privacy budget', () => {
  it('declines before loading anything when the round would exceed the study limit, and nothing is spent', async () => {
    const { ctx, calls, state } = context(dpManifest({ dp: { placement: 'local', noiseMultiplier: 0.5, clipping: { mode: 'fixed', norm: 1 } } }), { maxEpsilonPerStudy: 1, maxEpsilonLifetime: 0 });
    await trainTask.run(task, ctx);
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatch(/^decline: privacy budget: round 3 would bring this study to ε=\d+\.\d{3} \(limit 1, δ=0\.000001\)$/);
    expect(calls[1]).toBe('privacyChanged true');
    expect(state.listPrivacySpends()).toEqual([]);
    state.close();
  });

  it('declines a study without DP when the clinic holds a budget', async () => {
    const { ctx, calls, state } = context(dpManifest(undefined), { maxEpsilonPerStudy: 0, maxEpsilonLifetime: 3 });
    await trainTask.run(task, ctx);
    expect(calls).toEqual([`decline: ${NO_DP_REASON}`, 'privacyChanged true']);
    state.close();
  });

  it('goes on to train a round that fits', async () => {
    const { ctx, calls, state } = context(dpManifest({ dp: { placement: 'local', noiseMultiplier: 5, clipping: { mode: 'fixed', norm: 1 } } }), { maxEpsilonPerStudy: 10, maxEpsilonLifetime: 0 });
    await expect(trainTask.run(task, ctx)).rejects.toThrow('not in this test');
    expect(calls).toEqual(['loadModel']);
    state.close();
  });
});
