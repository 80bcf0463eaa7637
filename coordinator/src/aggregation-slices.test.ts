import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bundleLength, createStrategy, float32Bytes, mulberry32, type Strategy, type StrategyConfig, type TensorSpec, type UpdateValidation } from '@fedlhs/core';
import { RoundAggregator } from './aggregation.js';
import { CheckpointStore } from './checkpoints.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NO_BOUND: UpdateValidation = { normBound: { type: 'none' }, onExceed: 'reject' };
/** Three tensors, so slices of the flat model cross tensor boundaries. */
const SPECS: TensorSpec[] = [
  { name: 'dense_0/kernel', shape: [37, 29] },
  { name: 'dense_0/bias', shape: [29] },
  { name: 'dense_1/kernel', shape: [29, 3] },
];

/**
 * One round of `strategy` through RoundAggregator and a real CheckpointStore: nine spooled
 * updates (the fourth clipped to half its distance), finish() concatenated; and whether
 * finish() read any whole payload.
 */
async function round(strategy: Strategy, sliceValues: number): Promise<{ bytes: Buffer; readWhole: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-slices-'));
  dirs.push(dir);
  const checkpoints = new CheckpointStore(dir);
  const random = mulberry32(11);
  const length = bundleLength(SPECS);
  const baseValues = Float32Array.from({ length }, () => random() - 0.5);
  const base = await checkpoints.writeCandidate('s', 0, 1, [baseValues]);
  const aggregator = new RoundAggregator(strategy, SPECS, base, checkpoints, join(dir, 'held'), NO_BOUND, 100, { sliceValues });
  for (let k = 0; k < 9; k++) {
    // Some exact ties (rounded values) among the clinics, so order statistics meet equal values.
    const weights = Float32Array.from(baseValues, (v) => (random() < 0.1 ? Math.round(v * 4) / 4 : v + (random() - 0.5) * 0.1 * (k + 1)));
    const spool = checkpoints.spoolPath(`u${k}`);
    writeFileSync(spool, float32Bytes(weights));
    await aggregator.add(spool, 10 + k, k === 3 ? 0.5 : 1, `u${k}`);
  }
  const readAll = vi.spyOn(checkpoints, 'readAll');
  const parts: Float32Array[] = [];
  for await (const slice of await aggregator.finish(1)) parts.push(slice.slice());
  aggregator.dispose();
  return { bytes: Buffer.concat(parts.map((p) => float32Bytes(p))), readWhole: readAll.mock.calls.length > 0 };
}

const CONFIGS: StrategyConfig[] = [
  { name: 'fedmedian' },
  { name: 'trimmed-mean', beta: 0.2 },
  { name: 'krum', byzantine: 2 },
  { name: 'multi-krum', byzantine: 1 },
  { name: 'bulyan', byzantine: 1 },
];

describe('RoundAggregator.finish, order-statistic strategies slice by slice', () => {
  for (const config of CONFIGS) {
    it(`${config.name}: the same bytes as the whole-model path, without reading any payload whole`, async () => {
      const strategy = createStrategy(config);
      // The whole-model path: the same strategy without its slice-wise round.
      const whole = await round({ ...strategy, sliceRound: undefined }, 1 << 20);
      expect(whole.readWhole).toBe(true);
      expect(whole.bytes.length).toBe(bundleLength(SPECS) * 4);
      for (const sliceValues of [7, 1000, 1 << 20]) {
        const sliced = await round(strategy, sliceValues);
        expect(sliced.readWhole).toBe(false);
        expect(sliced.bytes.equals(whole.bytes)).toBe(true);
      }
    });
  }
});
