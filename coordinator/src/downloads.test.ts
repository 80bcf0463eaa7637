import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BufferPool } from './blobs/buffer-pool.js';
import { CheckpointStore } from './checkpoints.js';
import { DownloadBudget, streamModel } from './downloads.js';

const CHUNK = 64 * 1024;

/** A transport whose writes complete only when the test says so ("the client has not read yet"). */
class HeldTransport {
  readonly handed = new Map<number, number>();
  private readonly pending: { stream: number; done: () => void }[] = [];
  private waiter: ((w: { stream: number; done: () => void }) => void) | undefined;

  write(stream: number): (data: Buffer) => Promise<void> {
    return (data) =>
      new Promise<void>((done) => {
        this.handed.set(stream, (this.handed.get(stream) ?? 0) + data.length);
        const w = { stream, done };
        if (this.waiter) {
          const give = this.waiter;
          this.waiter = undefined;
          give(w);
        } else this.pending.push(w);
      });
  }

  /** The next write handed to the transport (already made or still to come). */
  next(): Promise<{ stream: number; done: () => void }> {
    const w = this.pending.shift();
    return w ? Promise.resolve(w) : new Promise((resolve) => (this.waiter = resolve));
  }
}

async function modelOf(chunks: number): Promise<{ store: CheckpointStore; path: string; totalBytes: number }> {
  const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-downloads-')));
  const values = Float32Array.from({ length: (chunks * CHUNK) / 4 }, (_, i) => i);
  const stored = await store.writeCandidate('s', 0, 1, [values]);
  return { store, path: stored.path, totalBytes: stored.totalBytes };
}

describe('streamModel with DownloadBudget', () => {
  it('holds one chunk per stalled stream, makes streams wait for budget (never fail), and returns every buffer', async () => {
    const { store, path, totalBytes } = await modelOf(6);
    const pool = new BufferPool();
    let waits = 0;
    let waited: () => void = () => undefined;
    const firstWait = new Promise<void>((r) => (waited = r));
    const budget = new DownloadBudget({ maxBytes: 2 * CHUNK, onWait: () => (waits++, waited()) });
    const transport = new HeldTransport();
    const signal = new AbortController().signal;
    const streams = [0, 1, 2].map((k) =>
      streamModel({ chunks: store.read(path, CHUNK, { pool })[Symbol.asyncIterator](), totalBytes, chunkBytes: CHUNK, pool, budget, write: transport.write(k), signal }),
    );

    // Two streams get a chunk each to the transport; the third waits for budget.
    const a = await transport.next();
    const b = await transport.next();
    await firstWait;
    expect([a.stream, b.stream].sort()).toEqual([0, 1]);
    expect([...transport.handed.values()]).toEqual([CHUNK, CHUNK]);
    expect(transport.handed.has(2)).toBe(false);
    expect(budget.inFlightBytes).toBe(2 * CHUNK);
    expect(pool.inUse).toBe(2);

    // The transport takes stream 0's chunk: its budget goes to the waiting stream first.
    a.done();
    const c = await transport.next();
    expect(c.stream).toBe(2);
    expect(transport.handed.get(a.stream)).toBe(CHUNK);
    expect(budget.inFlightBytes).toBe(2 * CHUNK);
    expect(pool.inUse).toBe(2);

    // From here on the transport takes everything as it comes.
    b.done();
    c.done();
    const drain = (async () => {
      for (;;) (await transport.next()).done();
    })();
    expect(await Promise.all(streams)).toEqual([totalBytes, totalBytes, totalBytes]);
    void drain;
    expect(waits).toBeGreaterThan(0);
    expect(budget.inFlightBytes).toBe(0);
    expect(pool.inUse).toBe(0);
  });

  it('gives the budget back when a waiting stream is cancelled', async () => {
    const budget = new DownloadBudget({ maxBytes: CHUNK });
    await budget.acquire(CHUNK);
    const cancel = new AbortController();
    const waiting = budget.acquire(CHUNK, cancel.signal);
    const after = budget.acquire(CHUNK);
    cancel.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    budget.release(CHUNK);
    await after;
    expect(budget.inFlightBytes).toBe(CHUNK);
  });

  it('grants a chunk larger than the whole budget when nothing else is in flight', async () => {
    const budget = new DownloadBudget({ maxBytes: CHUNK });
    await budget.acquire(3 * CHUNK);
    expect(budget.inFlightBytes).toBe(3 * CHUNK);
  });

  it('defaults to max(4 MiB, the largest model served)', () => {
    const budget = new DownloadBudget();
    expect(budget.maxBytes).toBe(4 * 1024 * 1024);
    budget.noteModelBytes(16 * 1024 * 1024);
    expect(budget.maxBytes).toBe(16 * 1024 * 1024);
  });
});

describe('BufferPool', () => {
  it('reuses buffers per size class and hands out exactly the size asked for', () => {
    const pool = new BufferPool({ maxPooledBytes: 1 << 20 });
    const a = pool.acquire(100_000);
    expect(a.length).toBe(100_000);
    expect(a.buffer.byteLength).toBe(131_072);
    pool.release(a);
    expect(pool.pooledBytes).toBe(131_072);
    const b = pool.acquire(70_000);
    expect(b.buffer).toBe(a.buffer);
    expect(() => {
      pool.release(b);
      pool.release(b);
    }).toThrow('released twice');
  });
});
