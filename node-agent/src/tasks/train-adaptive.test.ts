import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StudyManifest } from '@fedlhs/core';
import type { Task__Output, UpdateChunk } from '@fedlhs/proto';
import { AgentState, type AuditEntry } from '../agent-state.js';
import { dpManifest } from '../privacy-test-support.js';
import type { TaskContext } from '../task-runner.js';
import { roundClipNorm } from './train-round.js';
import { trainTask } from './train.js';

/*
 * Adaptive DP clipping at the clinic (issue 14, Andrew et al. 2021): the TRAIN task clips to the
 * round's norm from Task.parameters_json dp.clipNorm and sends its clip indicator (1 if not
 * clipped, plus its noise share) in UpdateHeader.dp_clip_indicator; a task without a valid norm fails.
 */

const adaptive = (placement: 'local' | 'distributed' | 'central', countNoiseMultiplier = 0) =>
  dpManifest({ dp: { placement, noiseMultiplier: 1, clipping: { mode: 'adaptive', initialNorm: 5, targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier } } });

/** A TRAIN context whose training turns the round model (zeros) into `change`, and whose upload records the header. */
function agent(m: StudyManifest, change: Float32Array) {
  const state = new AgentState(join(mkdtempSync(join(tmpdir(), 'fedlhs-train-adaptive-')), 'state'));
  const audits: AuditEntry[] = [];
  const record = state.audit.bind(state);
  state.audit = (e) => {
    audits.push(e as AuditEntry);
    record(e);
  };
  const headers: NonNullable<UpdateChunk['header']>[] = [];
  const payload: Buffer[] = [];
  let weights = new Float32Array(change.length);
  let loaded = false;
  const runtime = {
    specs: [{ name: 'w', shape: [change.length] }],
    getWeights: () => Float32Array.from(weights),
    fit: async () => {
      weights = Float32Array.from(change);
      return { loss: 0.5 };
    },
    evaluate: async () => ({ numExamples: 100, loss: 0.5, accuracy: 0.7, auc: 0.6 }),
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const ctx = {
    manifest: m, log: quiet, state,
    config: { coordinator: { address: 'coordinator:1' }, chunkBytes: 0, privacy: { maxEpsilonPerStudy: 0, maxEpsilonLifetime: 0, delta: 1e-6, trustCoordinatorNoise: false } },
    credential: { nodeId: 'node-a', credential: 'secret' },
    clients: {
      federation: {
        UploadUpdate: (_md: unknown, _opts: unknown, cb: (err: null, r: unknown) => void) => ({
          write: (msg: UpdateChunk) => {
            if (msg.header) headers.push(msg.header);
            if (msg.data) payload.push(Buffer.from(msg.data as Uint8Array));
            return true;
          },
          end: () => cb(null, { taskId: 't', sha256: Buffer.alloc(32, 1), duplicate: false, receivedBytes: change.length * 4 }),
          cancel: () => undefined,
        }),
      },
    },
    withRetry: <T>(_what: string, call: () => Promise<T>) => call(),
    isCancelled: () => false,
    progress: () => undefined,
    transferProgress: () => () => undefined,
    loadModel: async () => {
      loaded = true;
      weights = new Float32Array(change.length);
      return { data: { train: { x: new Float32Array(0), y: new Float32Array(0), rows: 100 } }, runtime, sha256: Buffer.alloc(32, 7), timeoutMs: 10_000 };
    },
    decline: (why: string) => {
      throw new Error(`declined: ${why}`);
    },
    privacyChanged: () => undefined,
  } as unknown as TaskContext;
  return { ctx, state, audits, headers, payload, wasLoaded: () => loaded };
}

const task = (parametersJson: string): Task__Output =>
  ({ taskId: 't-train', kind: 'TASK_KIND_TRAIN', studyId: 'study-s', round: 3, attempt: 1, parametersJson, deadlineUnixMs: Date.now() + 60_000 }) as Task__Output;

/** The uploaded weights as float32. */
const uploaded = (payload: Buffer[]): Float32Array => {
  const b = Buffer.concat(payload);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('TRAIN under adaptive clipping', () => {
  it('clips to the round\'s norm from the parameters (not initialNorm) and sends indicator 0 when clipped', async () => {
    const a = agent(adaptive('central'), Float32Array.from([3, 4])); // ‖Δ‖ = 5
    await trainTask.run(task('{"dp":{"clipNorm":2}}'), a.ctx);
    expect(a.headers).toHaveLength(1);
    expect(a.headers[0]!.dpClipIndicator).toBe(0); // central: the bare bit, the coordinator adds the noise
    expect(norm(uploaded(a.payload))).toBeCloseTo(2, 5); // round model 0 + Δ clipped to C_r = 2
    const sent = a.audits.find((e) => e.outcome === 'sending')!.sent as { updateHeader: Record<string, unknown> };
    expect(sent.updateHeader['dpClipIndicator']).toBe(0);
    expect(String(sent.updateHeader['dpClipIndicatorContents'])).toMatch(/clip indicator \(1 if not clipped\) sent without noise/);
    expect(JSON.stringify(sent.updateHeader['weights'])).toMatch(/clipped to L2 norm 2/);
    const spent = a.audits.find((e) => e.event === 'privacy_spent')!;
    expect(spent.detail).toMatch(/update clipped to 2.*clip indicator/);
    a.state.close();
  });

  it('sends indicator 1 when the change is within the norm', async () => {
    const a = agent(adaptive('central'), Float32Array.from([0.3, 0.4]));
    await trainTask.run(task('{"normalization":{"method":"zscore","features":[]},"dp":{"clipNorm":0.6}}'), a.ctx);
    expect(a.headers[0]!.dpClipIndicator).toBe(1);
    a.state.close();
  });

  it('adds its noise share from the CSPRNG: local σ_b, distributed σ_b/√clients.min', async () => {
    for (const [placement, share] of [['local', 8], ['distributed', 4]] as const) {
      const values: number[] = [];
      for (let i = 0; i < 40; i++) {
        const a = agent(adaptive(placement, 8), Float32Array.from([3, 4]));
        await trainTask.run(task('{"dp":{"clipNorm":100}}'), a.ctx);
        values.push(a.headers[0]!.dpClipIndicator as number);
        const sent = a.audits.find((e) => e.outcome === 'sending')!.sent as { updateHeader: Record<string, unknown> };
        expect(String(sent.updateHeader['dpClipIndicatorContents'])).toContain(`Gaussian noise σ=${share.toPrecision(4)}`);
        a.state.close();
      }
      // Never the bare bit, and spread like the share (40 draws: the sample sd is within ±50 % of σ with overwhelming probability).
      expect(values.every((v) => v !== 0 && v !== 1)).toBe(true);
      const mean = values.reduce((s, v) => s + v, 0) / values.length;
      const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
      expect(sd).toBeGreaterThan(share * 0.5);
      expect(sd).toBeLessThan(share * 1.5);
    }
  });

  it('fails the task naming the field, before training, when the norm is missing or invalid', async () => {
    for (const [params, why] of [
      ['', /Task\.parameters_json dp\.clipNorm is missing/],
      ['{"normalization":{"method":"zscore","features":[]}}', /Task\.parameters_json dp\.clipNorm is missing/],
      ['{"dp":{"clipNorm":0}}', /Task\.parameters_json dp\.clipNorm must be a finite number > 0/],
      ['{"dp":{"clipNorm":"2"}}', /Task\.parameters_json dp\.clipNorm must be a finite number > 0/],
    ] as const) {
      const a = agent(adaptive('local', 1), Float32Array.from([3, 4]));
      await expect(trainTask.run(task(params), a.ctx)).rejects.toThrow(why);
      expect(a.wasLoaded()).toBe(false);
      expect(a.headers).toHaveLength(0);
      expect(a.state.listPrivacySpends()).toEqual([]);
      a.state.close();
    }
  });

  it('uses the manifest\'s norm and sends no indicator with fixed clipping', async () => {
    const m = dpManifest({ dp: { placement: 'central', noiseMultiplier: 1, clipping: { mode: 'fixed', norm: 1 } } });
    expect(roundClipNorm(m.privacy!.dp!, '{"dp":{"clipNorm":7}}')).toBe(1);
    const a = agent(m, Float32Array.from([3, 4]));
    await trainTask.run(task(''), a.ctx);
    expect(a.headers[0]!.dpClipIndicator).toBeUndefined();
    expect(norm(uploaded(a.payload))).toBeCloseTo(1, 5);
    a.state.close();
  });
});
