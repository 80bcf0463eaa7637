import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WeightedSum, createStrategy, float32Bytes, mulberry32, type TensorSpec, type UpdateValidation } from '@fedlhs/core';
import { RoundAggregator } from './aggregation.js';
import { BufferPool } from './blobs/buffer-pool.js';
import { CheckpointStore } from './checkpoints.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NO_BOUND: UpdateValidation = { normBound: { type: 'none' }, onExceed: 'reject' };
/** Over two 4 MiB read slices and a short third, so add() reads and releases several pooled chunks. */
const SPECS: TensorSpec[] = [{ name: 'w', shape: [2_300_001] }];
const LENGTH = 2_300_001;

async function setup(pool: BufferPool): Promise<{ checkpoints: CheckpointStore; aggregator: RoundAggregator; base: Float32Array; basePath: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlhs-aggregation-add-'));
  dirs.push(dir);
  const checkpoints = new CheckpointStore(dir);
  const random = mulberry32(3);
  const base = Float32Array.from({ length: LENGTH }, () => random() - 0.5);
  const stored = await checkpoints.writeCandidate('s', 0, 1, [base]);
  const aggregator = new RoundAggregator(createStrategy({ name: 'fedavg' }), SPECS, stored, checkpoints, join(dir, 'held'), NO_BOUND, 10, { pool });
  return { checkpoints, aggregator, base, basePath: stored.path };
}

describe('RoundAggregator.add reads updates back through a pool (issue 15)', () => {
  it('releases every read buffer, reuses them across updates, and sums exactly as before (clipped and not)', async () => {
    const pool = new BufferPool();
    const { checkpoints, aggregator, base } = await setup(pool);
    const random = mulberry32(4);
    const updates = [1, 0.25, 1].map((scale, k) => ({ scale, numExamples: 10 + k, weights: Float32Array.from(base, (v) => v + (random() - 0.5) * 0.1) }));
    const expected = new WeightedSum(LENGTH);
    for (const [k, u] of updates.entries()) {
      const spool = checkpoints.spoolPath(`u${k}`);
      writeFileSync(spool, float32Bytes(u.weights));
      await aggregator.add(spool, u.numExamples, u.scale, `u${k}`);
      expect(pool.inUse).toBe(0);
      expect(pool.pooledBytes).toBeGreaterThan(0);
      // The reference: clipping as a whole-array loop, then one addChunk.
      const values = u.weights.slice();
      if (u.scale !== 1) for (let i = 0; i < LENGTH; i++) values[i] = base[i]! + u.scale * (values[i]! - base[i]!);
      expected.addChunk(0, values, u.numExamples);
      expected.commit(u.numExamples);
    }
    const out: Float32Array[] = [];
    for await (const slice of await aggregator.finish(1)) out.push(slice);
    const mean = new Float32Array(LENGTH);
    let at = 0;
    for (const s of out) {
      mean.set(s, at);
      at += s.length;
    }
    expect(Buffer.from(mean.buffer).equals(Buffer.from(expected.mean().buffer))).toBe(true);
  });

  it('a base shorter than the update is DATA_LOSS on the clipped path, no buffer is left out of the pool, and the round cannot average the fragment added', async () => {
    const pool = new BufferPool();
    const { checkpoints, aggregator, base, basePath } = await setup(pool);
    truncateSync(basePath, 4 * 1024 * 1024 + 12);
    const spool = checkpoints.spoolPath('u');
    writeFileSync(spool, float32Bytes(base));
    await expect(aggregator.add(spool, 5, 0.5, 'u')).rejects.toMatchObject({ code: 'DATA_LOSS' });
    expect(pool.inUse).toBe(0);
    // Its first 4 MiB were added before the base ran out: the round cannot average a fragment in,
    // and no later update is summed (and receipted) into the damaged sum (review ring).
    const other = checkpoints.spoolPath('v');
    writeFileSync(other, float32Bytes(base));
    await expect(aggregator.add(other, 5, 1, 'v')).rejects.toMatchObject({ code: 'DATA_LOSS' });
    await expect(aggregator.finish(1)).rejects.toMatchObject({ code: 'DATA_LOSS' });
  });

  it('a spool shorter than the model (a write the disk cut short) is a storage fault, not zeros in the mean (review ring)', async () => {
    const pool = new BufferPool();
    const { checkpoints, aggregator, base } = await setup(pool);
    const spool = checkpoints.spoolPath('u');
    writeFileSync(spool, float32Bytes(base).subarray(0, 4 * 1024 * 1024 + 12));
    await expect(aggregator.add(spool, 5, 1, 'u')).rejects.toMatchObject({ code: 'STORAGE_FAULT', message: expect.stringContaining('holds 1048579 of the model') as unknown });
    expect(pool.inUse).toBe(0);
    // The round attempt fails as a storage fault (retried once storage is back), not as an internal error.
    await expect(aggregator.finish(1)).rejects.toMatchObject({ code: 'STORAGE_FAULT' });
  });
});
