import { describe, expect, it } from 'vitest';
import { GroupCommitter, type BatchStats, type UnitOutcome } from './group-commit.js';

/** A backend that records its batches; a unit "fails" when it is negative, the batch when it is 0. */
function recorder(): { batches: number[][]; run: (units: readonly number[]) => Promise<UnitOutcome<number>[]> } {
  const batches: number[][] = [];
  return {
    batches,
    run: async (units) => {
      batches.push([...units]);
      await new Promise((r) => setImmediate(r)); // an asynchronous COMMIT, as on PostgreSQL
      if (units.includes(0)) throw new Error('disk gone');
      return units.map((u) => (u < 0 ? { ok: false, error: new Error(`unit ${u}`) } : { ok: true, value: u * 10 }));
    },
  };
}

describe('GroupCommitter', () => {
  it('puts units submitted together into one batch and resolves each with its value', async () => {
    const b = recorder();
    const gc = new GroupCommitter(b.run, { windowMs: 0 });
    expect(await Promise.all([1, 2, 3].map((u) => gc.submit(u)))).toEqual([10, 20, 30]);
    expect(b.batches).toEqual([[1, 2, 3]]);
  });

  it('splits at maxUnits and keeps arrival order across batches', async () => {
    const b = recorder();
    const gc = new GroupCommitter(b.run, { windowMs: 5, maxUnits: 3 });
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4, 5, 6, 7].map((u) => gc.submit(u).then(() => order.push(u))));
    expect(b.batches).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(order).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('queues units arriving during a batch for the next one', async () => {
    const b = recorder();
    const gc = new GroupCommitter(b.run, { windowMs: 0 });
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r)); // the batch [1] is running now
    const later = [gc.submit(2), gc.submit(3)];
    await Promise.all([first, ...later]);
    expect(b.batches).toEqual([[1], [2, 3]]);
  });

  it('rejects a failed unit alone, and the whole batch with the mapped error when it fails', async () => {
    const b = recorder();
    const stats: BatchStats[] = [];
    const gc = new GroupCommitter(b.run, { windowMs: 0, mapError: (e) => new Error(`mapped: ${(e as Error).message}`), onBatch: (s) => stats.push(s), countOps: () => 2 });
    const r = await Promise.allSettled([gc.submit(1), gc.submit(-1), gc.submit(2)]);
    expect(r.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([10, 'mapped: unit -1', 20]);
    const all = await Promise.allSettled([gc.submit(5), gc.submit(0)]);
    expect(all.map((x) => x.status === 'rejected' && (x.reason as Error).message)).toEqual(['mapped: disk gone', 'mapped: disk gone']);
    expect(stats.map(({ units, failed, ops, committed }) => ({ units, failed, ops, committed }))).toEqual([
      { units: 3, failed: 1, ops: 6, committed: true },
      { units: 2, failed: 2, ops: 4, committed: false },
    ]);
    // The committer goes on after a failed batch.
    expect(await gc.submit(4)).toBe(40);
  });

  it('survives an observer that throws', async () => {
    const b = recorder();
    const gc = new GroupCommitter(b.run, { windowMs: 0, onBatch: () => { throw new Error('observer bug'); } });
    expect(await gc.submit(1)).toBe(10);
  });

  it('drain settles every queued unit, then refuses new ones', async () => {
    const b = recorder();
    const gc = new GroupCommitter(b.run, { windowMs: 50 });
    const queued = [gc.submit(1), gc.submit(2)];
    await gc.drain();
    expect(await Promise.all(queued)).toEqual([10, 20]);
    await expect(gc.submit(3)).rejects.toThrow(/closed/);
  });

  it('refuses nonsense options', () => {
    const run = recorder().run;
    expect(() => new GroupCommitter(run, { maxUnits: 0 })).toThrow(RangeError);
    expect(() => new GroupCommitter(run, { windowMs: -1 })).toThrow(RangeError);
  });
});
