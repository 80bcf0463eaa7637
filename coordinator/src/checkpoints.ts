import { createHash } from 'node:crypto';
import { createReadStream, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { FedlhsError, type TensorSpec } from '@fedlhs/core';
import { fsyncDir } from '@fedlhs/service';
import { bytesOf, type BlobStore } from './blobs/blob-store.js';
import type { BufferPool } from './blobs/buffer-pool.js';
import { FileBlobStore } from './blobs/file-blob-store.js';
import { asStorageFault, toStorageFault } from './storage-health.js';

/**
 * A stored model payload with its digest. `path` is where it is read from: a file (checkpoints of
 * earlier versions and of the file blob store: the blob file or a committed checkpoint's name for
 * it) or, for a blob store that is not files, `blob:sha256:<digest>`.
 */
export interface StoredModel {
  path: string;
  sha256: string;
  totalBytes: number;
}

export interface CheckpointStoreOptions {
  /** Where payloads go. Default: files in `<root>/blobs` (FileBlobStore). */
  blobs?: BlobStore;
}

/** Options of a chunked read. */
export interface CheckpointReadOptions {
  /** Chunks come from this pool; the consumer releases each (see BlobReadOptions.pool). */
  pool?: BufferPool;
  signal?: AbortSignal;
  /** Start at this byte (a multiple of the chunk size): a download that goes on from where another source stopped. Default 0. */
  offset?: number;
  /**
   * false: a payload not in memory yet is read from the store and not kept (for a caller that
   * keeps a copy of its own, grpc/model-frames.ts: two copies of a model would cost twice). A
   * copy already in memory is still used. Default true.
   */
  keep?: boolean;
}

const pad = (n: number): string => String(n).padStart(6, '0');

function parseSpecs(studyId: string, json: string): TensorSpec[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new FedlhsError('DATA_LOSS', `the model spec of study ${studyId} is not JSON`, { cause: err });
  }
  const ok = Array.isArray(value) && value.every((t: unknown) => typeof (t as TensorSpec)?.name === 'string' && Array.isArray((t as TensorSpec).shape));
  if (!ok) throw new FedlhsError('DATA_LOSS', `the model spec of study ${studyId} is not a tensor list`);
  return value as TensorSpec[];
}

/**
 * Reads a payload forward only, at increasing positions, from a chunk iterator (see
 * CheckpointStore.openSequential). Holds one chunk.
 */
export class SequentialReader {
  private chunk: Buffer = Buffer.alloc(0);
  /** Payload position of `chunk[0]`. */
  private chunkStart = 0;
  private done = false;

  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  /**
   * Copies up to `length` bytes from payload `position` into `target`; returns how many (fewer
   * at the end of the payload). `position` never goes back before the end of the previous read.
   */
  async readAt(target: Buffer, length: number, position: number): Promise<number> {
    if (position < this.chunkStart) throw new FedlhsError('INTERNAL', `sequential read went back from ${this.chunkStart} to ${position}`);
    let copied = 0;
    while (copied < length) {
      const at = position + copied;
      const end = this.chunkStart + this.chunk.length;
      if (at >= end) {
        if (this.done) break;
        const next = await this.chunks.next();
        if (next.done === true) {
          this.done = true;
          break;
        }
        this.chunkStart = end;
        this.chunk = next.value;
        continue;
      }
      copied += this.chunk.copy(target, copied, at - this.chunkStart, Math.min(this.chunk.length, at - this.chunkStart + length - copied));
    }
    return copied;
  }

  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}
const BLOB_PREFIX = 'blob:sha256:';
/** Largest payload kept in memory for repeated reads (bigger models stream from the store). */
const HOT_MAX_BYTES = 64 * 1024 * 1024;
/** Payloads kept: a round's base model and its candidate. */
const HOT_ENTRIES = 2;

/** The locator stored as a path for a blob that has no file of its own. */
export const blobLocator = (sha256: string): string => `${BLOB_PREFIX}${sha256}`;

/**
 * Checkpoints of global models, one raw float32 payload per committed round, kept in a
 * content-addressed BlobStore (design core-redesign §2.6). This adapter keeps the path-based API
 * the round engine and studies use: a candidate is a blob; promoting it gives it the committed
 * name of its round. With the file blob store (the default) that name is a hard link
 * `studies/<id>/checkpoints/round-NNNNNN.f32` to the blob file — created once, failing rather than
 * overwrite, never modified — so data directories of earlier versions, whose rows name such
 * files, read unchanged. With another blob store the committed path is the blob's locator.
 */
export class CheckpointStore {
  readonly blobs: BlobStore;
  private readonly files: FileBlobStore | undefined;
  /** Immutable payloads read recently, in memory (see `load`); oldest first. */
  private readonly hot = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  /** Tensor lists by study: parsed, or the row's JSON until first use. */
  private readonly specs = new Map<string, TensorSpec[] | string>();

  constructor(private readonly root: string, opts: CheckpointStoreOptions = {}) {
    mkdirSync(join(root, 'studies'), { recursive: true });
    mkdirSync(join(root, 'spool'), { recursive: true });
    this.blobs = opts.blobs ?? new FileBlobStore(join(root, 'blobs'));
    this.files = this.blobs instanceof FileBlobStore ? this.blobs : undefined;
  }

  /** Bytes of payloads held in memory for repeated reads now (for tests and figures). */
  get memoryBytes(): number {
    let n = 0;
    for (const b of this.hot.values()) n += b.length;
    return n;
  }

  studyDir(studyId: string): string {
    return join(this.root, 'studies', studyId);
  }

  /** The committed model of a round, or (kind 'state') the strategy's server state after it (file blob store). */
  committedPath(studyId: string, round: number, kind: 'model' | 'state' = 'model'): string {
    return join(this.studyDir(studyId), 'checkpoints', `round-${pad(round)}${kind === 'state' ? '.state' : ''}.f32`);
  }

  spoolPath(name: string): string {
    return join(this.root, 'spool', name);
  }

  /**
   * Where an order-statistic strategy holds a round attempt's updates (aggregation.ts). Held
   * updates live only as long as their attempt: {@link clearHeld} removes a study's at every
   * attempt's end, when its run ends and at start-up (an open round never survives a restart).
   */
  heldDir(studyId: string, round: number, attempt: number): string {
    return join(this.studyDir(studyId), 'held', `round-${round}-attempt-${attempt}`);
  }

  /** Removes the held updates of a study, or (no id) of every study; returns the directories removed. */
  clearHeld(studyId?: string): string[] {
    const ids = studyId !== undefined ? [studyId] : existsSync(join(this.root, 'studies')) ? readdirSync(join(this.root, 'studies')) : [];
    const removed: string[] = [];
    for (const id of ids) {
      const dir = join(this.studyDir(id), 'held');
      if (!existsSync(dir)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
    return removed;
  }

  /**
   * Removes what only a running attempt or upload uses: every study's held updates and the
   * upload spool. For start-up, before any study resumes: a crash leaves both behind, and no
   * attempt or upload survives a restart. Returns how many entries went.
   */
  removeWorkFiles(): { held: number; spooled: number } {
    const held = this.clearHeld().length;
    const spool = join(this.root, 'spool');
    const names = existsSync(spool) ? readdirSync(spool) : [];
    for (const name of names) rmSync(join(spool, name), { recursive: true, force: true });
    return { held, spooled: names.length };
  }

  /**
   * The directories the coordinator writes in the data directory (storage-health.ts probes
   * each): the root (lock, SQLite database), studies, the upload spool and, with the file blob
   * store, its directory.
   */
  writableDirs(): string[] {
    return [this.root, join(this.root, 'studies'), join(this.root, 'spool'), ...(this.files === undefined ? [] : [this.files.root])];
  }

  /**
   * Keeps a study's tensor list (names and shapes) for {@link loadSpecs}. The list of record is
   * the study row's `model_spec` (StudyRecord.modelSpec, written with the study): studies.ts
   * hands it here when it creates a study and, for every study, when the coordinator starts.
   */
  saveSpecs(studyId: string, specs: readonly TensorSpec[]): void {
    this.specs.set(studyId, specs.map((s) => ({ name: s.name, shape: [...s.shape] })));
  }

  /** Like {@link saveSpecs} with the row's JSON, parsed on first use (a bad value fails that use, DATA_LOSS). */
  rememberSpecs(studyId: string, json: string): void {
    this.specs.set(studyId, json);
  }

  /**
   * A study's tensor list, synchronously (from memory). Studies created before the list was
   * kept in the store fall back to `studies/<id>/model-spec.json` in the data directory. NOT_FOUND
   * when neither has it (e.g. a study another coordinator created after this one started).
   */
  loadSpecs(studyId: string): TensorSpec[] {
    let entry = this.specs.get(studyId);
    if (entry === undefined) {
      const legacy = join(this.studyDir(studyId), 'model-spec.json');
      if (!existsSync(legacy)) throw new FedlhsError('NOT_FOUND', `no model spec for study ${studyId} (not in its study row, no ${legacy})`, { details: { what: 'model', id: studyId } });
      entry = readFileSync(legacy, 'utf8');
    }
    if (typeof entry === 'string') {
      entry = parseSpecs(studyId, entry);
      this.specs.set(studyId, entry);
    }
    return entry.map((s) => ({ name: s.name, shape: [...s.shape] }));
  }

  /**
   * Opens a stored payload for reading forward in step with another stream (update intake
   * reads the base model's bytes at the offsets of an arriving update). Works for files and
   * blob locators alike.
   */
  openSequential(path: string, chunkBytes = 1024 * 1024): SequentialReader {
    return new SequentialReader(this.read(path, chunkBytes));
  }

  /**
   * Stores a candidate model for (round, attempt) from `slices`, which yields consecutive
   * float32 pieces; hashed while written, so the payload is never whole in memory here. Durable
   * when it resolves. Identical payloads are one blob.
   */
  async writeCandidate(studyId: string, round: number, attempt: number, slices: Iterable<Float32Array> | AsyncIterable<Float32Array>, kind: 'model' | 'state' = 'model'): Promise<StoredModel> {
    const what = `store the candidate ${kind === 'state' ? 'strategy state' : 'model'} of round ${round} (attempt ${attempt})`;
    const ref = await asStorageFault(what, this.files?.root ?? 'the blob store', () => this.blobs.put(bytesOf(slices), { kind: kind === 'state' ? 'strategy-state' : 'checkpoint' }));
    if (this.files !== undefined) {
      // Noted so that clearCandidates can remove what no round committed (see there).
      const dir = join(this.studyDir(studyId), 'candidates');
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `round-${pad(round)}-attempt-${attempt}${kind === 'state' ? '.state' : ''}.sha256`), ref.sha256);
      } catch (err) {
        throw toStorageFault(err, what, dir) ?? err;
      }
    }
    return { path: this.locatorOf(ref.sha256), sha256: ref.sha256, totalBytes: ref.length };
  }

  /** Makes a candidate the committed checkpoint of `round`. Refuses to replace an existing one. */
  promote(studyId: string, round: number, candidate: StoredModel, kind: 'model' | 'state' = 'model'): StoredModel {
    if (this.files === undefined && candidate.path.startsWith(BLOB_PREFIX)) return { ...candidate };
    const path = this.committedPath(studyId, round, kind);
    try {
      mkdirSync(join(this.studyDir(studyId), 'checkpoints'), { recursive: true });
      linkSync(candidate.path, path);
      fsyncDir(join(this.studyDir(studyId), 'checkpoints'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new FedlhsError('CHECKPOINT_EXISTS', `checkpoint for round ${round} of study ${studyId} already exists; committed checkpoints are never replaced`, { cause: err });
      }
      throw toStorageFault(err, `name the committed checkpoint of round ${round}`, path) ?? err;
    }
    return { ...candidate, path };
  }

  /**
   * Removes committed names of rounds after `lastCommittedRound`: a crash between promoting a
   * checkpoint and recording the commit leaves one behind, and it must not block the rerun.
   */
  removeUncommitted(studyId: string, lastCommittedRound: number): string[] {
    const dir = join(this.studyDir(studyId), 'checkpoints');
    if (!existsSync(dir)) return [];
    const removed: string[] = [];
    for (const f of readdirSync(dir)) {
      const m = /^round-(\d+)(\.state)?\.f32$/.exec(f);
      if (m !== null && Number(m[1]) > lastCommittedRound) {
        unlinkSync(join(dir, f));
        removed.push(f);
      }
    }
    return removed;
  }

  /**
   * Removes candidates of unfinished rounds (after a restart). With the file blob store a blob
   * whose only link is its blob-store name (no committed checkpoint of any study links it) goes
   * too; other blob stores rely on {@link collect}.
   */
  clearCandidates(studyId: string): void {
    const dir = join(this.studyDir(studyId), 'candidates');
    if (this.files !== undefined && existsSync(dir)) {
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.sha256')) continue;
        const path = this.files.pathOf(readFileSync(join(dir, f), 'utf8').trim());
        try {
          if (statSync(path).nlink === 1) unlinkSync(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }

  /** Deletes blobs no row references, older than graceMs (BlobStore.collect). */
  collect(referenced: (sha256: string) => Promise<boolean>, graceMs: number): Promise<{ removed: number; bytes: number }> {
    return this.blobs.collect(referenced, graceMs);
  }

  /** Re-hashes a stored model and throws DATA_LOSS unless it matches `sha256`. */
  async verify(path: string, sha256: string): Promise<void> {
    if (path.startsWith(BLOB_PREFIX)) {
      const digest = path.slice(BLOB_PREFIX.length);
      if (digest !== sha256) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is recorded with digest ${sha256}`);
      const ref = await this.blobs.stat(digest);
      if (ref === undefined) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is missing`);
      await this.blobs.verify(ref);
      return;
    }
    if (!existsSync(path)) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is missing`);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} hashes to ${actual}, recorded ${sha256}`);
  }

  /** Reads a whole stored payload as float32 values (for server-side strategy state). */
  async readAll(path: string): Promise<Float32Array> {
    const parts: Buffer[] = [];
    for await (const chunk of this.read(path, 4 * 1024 * 1024)) parts.push(chunk);
    const bytes = Buffer.concat(parts);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /**
   * Streams a stored payload (a checkpoint, blob locator or any file such as a spooled update)
   * in chunks of exactly `chunkBytes` (the last may be shorter). With `opts.pool` the chunks come
   * from the pool and the consumer releases each.
   */
  async *read(path: string, chunkBytes: number, opts: CheckpointReadOptions = {}): AsyncGenerator<Buffer> {
    const offset = opts.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset % chunkBytes !== 0) throw new RangeError(`CheckpointStore.read: offset ${offset} is not a multiple of the chunk size ${chunkBytes}`);
    let hot = this.hot.get(path);
    if (hot !== undefined) {
      try {
        await this.checkSize(path, hot.length);
      } catch (err) {
        this.hot.delete(path);
        throw err;
      }
      // Most recently used last: the next eviction takes the other entry.
      this.hot.delete(path);
      this.hot.set(path, hot);
    } else if (opts.keep !== false && this.immutable(path)) {
      hot = await this.load(path);
    }
    let from = offset;
    if (hot !== undefined) {
      const total = hot.length;
      // The reader never holds the in-memory copy between chunks, only the cache does: a reader
      // that stops (a download nobody reads) costs one chunk, and once the cache lets the copy go
      // the rest comes from the store (issue 11: every stalled download kept a whole model alive).
      hot = undefined;
      from = yield* this.fromMemory(path, total, chunkBytes, opts, offset);
      if (from >= total) return;
    }
    yield* this.readStored(path, chunkBytes, opts, from);
  }

  /**
   * For an in-memory copy of `path` (`bytes` long, here or in a cache of the caller's such as
   * grpc/model-frames.ts): the copy stands for a file on disk, and a file that changed size since
   * (damaged, truncated) is DATA_LOSS now, not at the next restart's verification. Blob locators
   * have no file of their own to check.
   */
  async checkSize(path: string, bytes: number): Promise<void> {
    if (path.startsWith(BLOB_PREFIX)) return;
    const size = await stat(path).then((st) => st.size, () => -1);
    if (size !== bytes) throw new FedlhsError('DATA_LOSS', size < 0 ? `checkpoint ${path} is missing` : `checkpoint ${path} is ${size} bytes, was ${bytes} when read`);
  }

  /**
   * Whether a payload of `bytes` at `path` may be kept in memory for repeated reads: it never
   * changes ({@link immutable}) and is at most HOT_MAX_BYTES (64 MiB).
   */
  cacheable(path: string, bytes: number): boolean {
    return bytes <= HOT_MAX_BYTES && this.immutable(path);
  }

  /** `read` from the store itself (blob or file), from byte `offset` (a multiple of `chunkBytes`). */
  private async *readStored(path: string, chunkBytes: number, opts: CheckpointReadOptions, offset: number): AsyncGenerator<Buffer> {
    if (path.startsWith(BLOB_PREFIX)) {
      const sha256 = path.slice(BLOB_PREFIX.length);
      const ref = await this.blobs.stat(sha256);
      if (ref === undefined) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is missing`);
      for await (const chunk of this.blobs.read(ref, { chunkBytes, ...opts, ...(offset === 0 ? {} : { offset }) })) {
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      return;
    }
    const file = await open(path, 'r');
    try {
      // Buffers of the payload's size when it is smaller than a chunk (a 40 KB model must not
      // cost a 1–4 MiB allocation per read).
      let position = offset;
      let remaining = (await file.stat()).size - offset;
      for (;;) {
        opts.signal?.throwIfAborted();
        const want = Math.max(1, Math.min(chunkBytes, remaining));
        const buffer = opts.pool?.acquire(want) ?? Buffer.allocUnsafeSlow(want);
        let filled = 0;
        try {
          while (filled < want) {
            const { bytesRead } = await file.read(buffer, filled, want - filled, position + filled);
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
        } catch (err) {
          opts.pool?.release(buffer);
          throw err;
        }
        if (filled === 0) {
          opts.pool?.release(buffer);
          return;
        }
        remaining -= filled;
        position += filled;
        yield filled === want ? buffer : buffer.subarray(0, filled);
        if (filled < want) return;
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Payloads that never change once written: blob locators, blob files and committed
   * checkpoint names (hard links that are never replaced). Spooled uploads and held updates are
   * not: they are read from disk every time.
   */
  private immutable(path: string): boolean {
    if (path.startsWith(BLOB_PREFIX)) return true;
    if (this.files !== undefined && path.startsWith(this.files.root + sep)) return true;
    return path.startsWith(join(this.root, 'studies') + sep) && /[/\\]checkpoints[/\\]round-\d+(\.state)?\.f32$/.test(path);
  }

  /**
   * Reads an immutable payload of at most HOT_MAX_BYTES into memory (the current round's base
   * model and candidate are read once per clinic: by its download, its upload's delta check and
   * the aggregation), keeping the HOT_ENTRIES most recently used. Larger payloads stream from
   * the store every time.
   */
  private async load(path: string): Promise<Buffer | undefined> {
    const size = path.startsWith(BLOB_PREFIX) ? (await this.blobs.stat(path.slice(BLOB_PREFIX.length)))?.length : await stat(path).then((st) => st.size, () => undefined);
    if (size === undefined || size > HOT_MAX_BYTES) return undefined;
    const pending = this.loading.get(path);
    if (pending !== undefined) return pending;
    const loading = (async () => {
      const bytes = Buffer.allocUnsafeSlow(size);
      let at = 0;
      for await (const chunk of this.readCold(path, Math.max(1, size))) at += chunk.copy(bytes, at);
      if (at !== size) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} changed size while read (${at} of ${size} bytes)`);
      this.hot.delete(path);
      this.hot.set(path, bytes);
      while (this.hot.size > HOT_ENTRIES) this.hot.delete(this.hot.keys().next().value as string);
      return bytes;
    })();
    this.loading.set(path, loading);
    try {
      return await loading;
    } finally {
      this.loading.delete(path);
    }
  }

  /** `read` without the in-memory copy (fills it). */
  private async *readCold(path: string, chunkBytes: number): AsyncGenerator<Buffer> {
    if (path.startsWith(BLOB_PREFIX)) {
      const ref = await this.blobs.stat(path.slice(BLOB_PREFIX.length));
      if (ref === undefined) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is missing`);
      for await (const chunk of this.blobs.read(ref, { chunkBytes })) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      return;
    }
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.allocUnsafeSlow(chunkBytes);
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, chunkBytes, null);
        if (bytesRead === 0) return;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Chunks of the in-memory copy of `path` (`total` bytes) from byte `from` while the cache holds it: views of it,
   * or copies into pooled buffers the consumer releases. Returns where it stopped: `total`, or
   * the offset at which the cache let the copy go.
   */
  private *fromMemory(path: string, total: number, chunkBytes: number, opts: CheckpointReadOptions, from: number): Generator<Buffer, number> {
    let at = from;
    while (at < total) {
      opts.signal?.throwIfAborted();
      const chunk = this.hotChunk(path, total, at, chunkBytes, opts.pool);
      if (chunk === undefined) return at;
      at += chunk.length;
      yield chunk;
    }
    return at;
  }

  /** One chunk of the cached copy of `path`, or undefined if the cache no longer holds it (a separate frame, so the generator above never references the copy). */
  private hotChunk(path: string, total: number, at: number, chunkBytes: number, pool: BufferPool | undefined): Buffer | undefined {
    const bytes = this.hot.get(path);
    if (bytes?.length !== total) return undefined;
    const view = bytes.subarray(at, Math.min(total, at + chunkBytes));
    if (pool === undefined) return view;
    const copy = pool.acquire(view.length);
    view.copy(copy);
    return copy;
  }

  /** Where a blob is read from: its file with the file blob store, else its locator. */
  private locatorOf(sha256: string): string {
    return this.files?.pathOf(sha256) ?? blobLocator(sha256);
  }
}
