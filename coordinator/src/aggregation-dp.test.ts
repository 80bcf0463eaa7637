import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createStrategy, float32Bytes, isFedlhsError, type TensorSpec, type UpdateValidation } from '@fedlhs/core';
import { RoundAggregator, type DpAggregation } from './aggregation.js';
import { CheckpointStore } from './checkpoints.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NO_BOUND: UpdateValidation = { normBound: { type: 'none' }, onExceed: 'reject' };
const N = 100_000;
const SPECS: TensorSpec[] = [{ name: 'w', shape: [N] }];

/** One round through the RoundAggregator: a zero base model and the given updates (value per coordinate, examples). */
async function round(updates: { value: number; numExamples: number }[], dp: DpAggregation | undefined): Promise<{ model: Float32Array; examples: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-dp-'));
  dirs.push(dir);
  const checkpoints = new CheckpointStore(dir);
  const base = await checkpoints.writeCandidate('s', 0, 1, [new Float32Array(N)]);
  const aggregator = new RoundAggregator(createStrategy({ name: 'fedavg' }), SPECS, base, checkpoints, join(dir, 'held'), NO_BOUND, 10, dp === undefined ? {} : { dp });
  for (const [k, u] of updates.entries()) {
    const spool = checkpoints.spoolPath(`u${k}`);
    writeFileSync(spool, float32Bytes(new Float32Array(N).fill(u.value)));
    const norm = Math.abs(u.value) * Math.sqrt(N);
    await aggregator.add(spool, u.numExamples, aggregator.admit(norm, []), `u${k}`);
  }
  const out = await checkpoints.writeCandidate('s', 1, 1, await aggregator.finish(1));
  const examples = aggregator.totalExamples;
  aggregator.dispose();
  return { model: await checkpoints.readAll(out.path), examples };
}

const stats = (v: Float32Array): { mean: number; std: number } => {
  let s = 0;
  let q = 0;
  for (const x of v) {
    s += x;
    q += x * x;
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(Math.max(0, q / v.length - mean * mean)) };
};

describe('RoundAggregator with DP-FedAvg', () => {
  // Each update's change has norm |value|·√N; C = 0.01·√N clips a value of 0.03 to 0.01.
  const C = 0.01 * Math.sqrt(N);

  it('central: clips every change to C, weighs the clinics equally, and adds N(0,(z·C)²) to the sum (σ = z·C/m on the mean)', async () => {
    const z = 0.002;
    const { model, examples } = await round([{ value: 0.03, numExamples: 900 }, { value: 0.005, numExamples: 100 }], { central: { clipNorm: C, noiseMultiplier: z }, random: (n) => randomBytes(n) });
    const { mean, std } = stats(model);
    // Equal weights of the clipped changes 0.01 and 0.005: mean 0.0075 (by examples it would be 0.0095 unclipped).
    expect(mean).toBeCloseTo(0.0075, 4);
    const expected = (z * C) / 2;
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.02);
    expect(examples).toBe(1000);
  });

  it('local and distributed: equal weights, but no clipping (the clinics clipped before their noise) and no noise at the coordinator', async () => {
    const { model } = await round([{ value: 0.03, numExamples: 900 }, { value: 0.005, numExamples: 100 }], {});
    const { mean, std } = stats(model);
    expect(mean).toBeCloseTo(0.0175, 6);
    expect(std).toBeLessThan(1e-6);
  });

  it('without DP the mean stays example-weighted and noiseless', async () => {
    const { model } = await round([{ value: 0.03, numExamples: 900 }, { value: 0.005, numExamples: 100 }], undefined);
    expect(stats(model).mean).toBeCloseTo(0.0275, 6);
  });

  it('refuses a strategy that does not average (DP needs fedavg)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-dp-'));
    dirs.push(dir);
    const checkpoints = new CheckpointStore(dir);
    const base = await checkpoints.writeCandidate('s', 0, 1, [new Float32Array(N)]);
    let err: unknown;
    try {
      new RoundAggregator(createStrategy({ name: 'fedmedian' }), SPECS, base, checkpoints, join(dir, 'held'), NO_BOUND, 10, { dp: { central: { clipNorm: 1, noiseMultiplier: 1 } } });
    } catch (e) {
      err = e;
    }
    expect(isFedlhsError(err, 'STUDY_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/differential privacy needs a strategy that averages \(fedavg\); fedmedian/);
  });
});
