import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FedlhsError } from '@fedlhs/core';
import type { DownloadModelRequest__Output } from '@fedlhs/proto';
import { BufferPool } from './blobs/buffer-pool.js';
import { CheckpointStore } from './checkpoints.js';
import { DownloadBudget, DownloadSlots, Downloads, downloadRefusalOf, streamModel } from './downloads.js';
import type { CoordinatorStore, NodeRecord } from './store.js';

const CHUNK = 64 * 1024;

/**
 * A transport whose writes complete only when the test says so ("the client has not read yet").
 * Like grpc-js it copies each chunk into a frame of its own when handed it.
 */
class HeldTransport {
  readonly handed = new Map<number, number>();
  readonly frames = new Map<number, Buffer[]>();
  private readonly pending: { stream: number; done: () => void }[] = [];
  private waiter: ((w: { stream: number; done: () => void }) => void) | undefined;

  write(stream: number): (data: Buffer) => Promise<void> {
    return (data) =>
      new Promise<void>((done) => {
        this.handed.set(stream, (this.handed.get(stream) ?? 0) + data.length);
        this.frames.set(stream, [...(this.frames.get(stream) ?? []), Buffer.from(data)]);
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

async function modelOf(chunks: number): Promise<{ store: CheckpointStore; path: string; totalBytes: number; bytes: Buffer }> {
  const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-downloads-')));
  const values = Float32Array.from({ length: (chunks * CHUNK) / 4 }, (_, i) => i);
  const stored = await store.writeCandidate('s', 0, 1, [values]);
  return { store, path: stored.path, totalBytes: stored.totalBytes, bytes: Buffer.from(values.buffer) };
}

describe('streamModel with DownloadBudget', () => {
  it('holds one chunk per stalled stream, in the transport only, makes streams wait for budget (never fail), and returns every buffer', async () => {
    const { store, path, totalBytes, bytes } = await modelOf(6);
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
    // The budget stands for the chunks the transport holds; the pooled buffers they were read
    // into are back in the pool (the transport has its own copies).
    expect(budget.inFlightBytes).toBe(2 * CHUNK);
    expect(pool.inUse).toBe(0);

    // The transport takes stream 0's chunk: its budget goes to the waiting stream first.
    a.done();
    const c = await transport.next();
    expect(c.stream).toBe(2);
    expect(transport.handed.get(a.stream)).toBe(CHUNK);
    expect(budget.inFlightBytes).toBe(2 * CHUNK);
    expect(pool.inUse).toBe(0);

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
    // Pooled buffers went back while their chunks were in flight and were read into again: every
    // stream still got the model's bytes.
    for (const k of [0, 1, 2]) expect(Buffer.concat(transport.frames.get(k)!).equals(bytes)).toBe(true);
  });

  it('goes on from `offset` (a download whose shared frames ran out): the rest of the bytes, from memory or the store', async () => {
    const { store, path, totalBytes, bytes } = await modelOf(5);
    const pool = new BufferPool();
    const budget = new DownloadBudget();
    for (const offset of [2 * CHUNK, 2 * CHUNK]) {
      // The first read finds the model on disk only, the second in memory.
      const frames: Buffer[] = [];
      const sent = await streamModel({
        chunks: store.read(path, CHUNK, { pool, offset })[Symbol.asyncIterator](), totalBytes, chunkBytes: CHUNK, offset, pool, budget, signal: new AbortController().signal,
        write: (data) => (frames.push(Buffer.from(data)), Promise.resolve()),
      });
      expect(sent).toBe(totalBytes);
      expect(Buffer.concat(frames).equals(bytes.subarray(offset))).toBe(true);
    }
    await expect(store.read(path, CHUNK, { offset: 100 }).next()).rejects.toThrow('not a multiple of the chunk size');
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

describe('DownloadSlots (issue 11: bounded download streams)', () => {
  it('refuses past limits.downloadStreamsPerNode and limits.downloadStreamsTotal with RESOURCE_LIMIT naming the key, and gives slots back once', () => {
    const counts: number[] = [];
    const slots = new DownloadSlots({ downloadStreamsPerNode: 2, downloadStreamsTotal: 3 }, (open) => counts.push(open));
    const a1 = slots.take('a');
    slots.take('a');
    const perNode = refusal(() => slots.take('a'));
    expect(perNode).toMatchObject({ code: 'RESOURCE_LIMIT', details: { limit: 'limits.downloadStreamsPerNode', value: 3, max: 2 } });
    expect(perNode.message).toContain('limits.downloadStreamsPerNode');
    expect(downloadRefusalOf(perNode)).toBe('per_node');
    slots.take('b');
    const total = refusal(() => slots.take('c'));
    expect(total).toMatchObject({ code: 'RESOURCE_LIMIT', details: { limit: 'limits.downloadStreamsTotal', value: 4, max: 3 } });
    expect(total.message).toContain('limits.downloadStreamsTotal');
    expect(downloadRefusalOf(total)).toBe('total');
    a1();
    a1();
    expect(slots.openStreams).toBe(2);
    expect(slots.openFor('a')).toBe(1);
    slots.take('c');
    expect(counts).toEqual([1, 2, 3, 2, 3]);
  });
});

describe('Downloads.openDownload (issue 11: downloads tied to what the node may fetch)', () => {
  it("refuses a committed round's model to a node that had no task in the study (NOT_ASSIGNED), before looking the round up", async () => {
    const asked: string[] = [];
    const tookPart = new Set(['n1/s1']);
    // A store with the two reads a committed download makes (the rest is never called).
    const store = {
      nodeTookPart: async (nodeId: string, studyId: string) => tookPart.has(`${nodeId}/${studyId}`),
      getCommittedRound: async (studyId: string, round: number) => (asked.push(`${studyId}/${round}`), { checkpointPath: '/x', checkpointSha256: 'ab'.repeat(32) }),
    } as unknown as CoordinatorStore;
    const checkpoints = { loadSpecs: () => [{ name: 'w', shape: [2] }] } as unknown as CheckpointStore;
    const downloads = new Downloads({ store, checkpoints, chunkBytes: CHUNK, studies: { runner: () => undefined, openRunner: () => { throw new Error('unused'); } } });
    const node = (id: string): NodeRecord => ({ id, siteName: id, credentialHash: '', createdAt: 0, revokedAt: null, lastSeenAt: null, agentVersion: '', trainingBackend: '' });
    const request = (studyId: string): DownloadModelRequest__Output => ({ committed: { studyId, round: 0 }, selector: 'committed' }) as DownloadModelRequest__Output;

    const err = await downloads.openDownload(node('n2'), request('s1')).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('NOT_ASSIGNED');
    expect(downloadRefusalOf(err)).toBe('not_participant');
    expect(asked).toEqual([]);
    const ok = await downloads.openDownload(node('n1'), request('s1'));
    expect(ok.path).toBe('/x');
    expect(asked).toEqual(['s1/0']);
  });
});

describe('CheckpointStore.read (issue 11: an unread download costs a chunk, not a model)', () => {
  it('a reader that stopped does not keep the in-memory copy once the cache lets it go, and reads the rest from the store', async () => {
    // The test needs a collection on demand: expose V8's gc() to this context.
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    const store = new CheckpointStore(mkdtempSync(join(tmpdir(), 'fedlhs-downloads-')));
    const model = (seed: number): Promise<{ path: string; values: Float32Array }> => {
      const values = Float32Array.from({ length: (4 * CHUNK) / 4 }, (_, i) => i * seed);
      return store.writeCandidate('s', seed, 1, [values]).then((s) => ({ path: s.path, values }));
    };
    const [a, b, c] = await Promise.all([model(1), model(2), model(3)]);
    const pool = new BufferPool();
    const stalled = store.read(a.path, CHUNK, { pool })[Symbol.asyncIterator]();
    const parts: Buffer[] = [];
    const first = await stalled.next();
    parts.push(Buffer.from(first.value as Buffer));
    pool.release(first.value as Buffer);
    // The cache's copy of A (private: the test looks at it to watch its lifetime).
    const cache = (store as unknown as { hot: Map<string, Buffer> }).hot;
    const copyOfA = new WeakRef(cache.get(a.path)!);
    // Two other models are read: the cache (two entries) lets A go.
    for (const other of [b, c]) for await (const chunk of store.read(other.path, CHUNK)) void chunk;
    expect(cache.has(a.path)).toBe(false);
    await new Promise((r) => setImmediate(r));
    gc();
    expect(copyOfA.deref()).toBeUndefined();
    // The stalled reader goes on from the store, with the same bytes.
    for (let next = await stalled.next(); next.done !== true; next = await stalled.next()) {
      parts.push(Buffer.from(next.value));
      pool.release(next.value);
    }
    expect(Buffer.concat(parts).equals(Buffer.from(a.values.buffer))).toBe(true);
    expect(pool.inUse).toBe(0);
  });
});

function refusal(f: () => unknown): FedlhsError {
  try {
    f();
  } catch (err) {
    if (err instanceof FedlhsError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}
