import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobPutOptions, BlobReadOptions, BlobRef, BlobStore } from './blob-store.js';
import { FileBlobStore } from './file-blob-store.js';

export interface CachedBlobStoreOptions {
  /** The store of record (PostgreSQL). */
  backing: BlobStore;
  /** Directory of the local copies (e.g. `<dataDir>/blob-cache`). */
  dir: string;
  /** Bytes of local copies kept; least recently read go first. */
  maxBytes: number;
}

/**
 * A read-through local cache in front of a remote blob store: the first read of a blob copies it
 * into local files (checking its digest on the way), later reads come from the copy. Content
 * addressing means a copy is never stale; an LRU byte cap bounds the directory. Writes, `has`,
 * `verify` and `collect` go to the store of record.
 */
export class CachedBlobStore implements BlobStore {
  private readonly backing: BlobStore;
  private readonly local: FileBlobStore;
  private readonly maxBytes: number;
  /** Cached digests in least-recently-read order (a Map iterates in insertion order). */
  private readonly lru = new Map<string, number>();
  private cachedBytes = 0;
  private readonly filling = new Map<string, Promise<void>>();
  private loaded: Promise<void> | undefined;

  constructor(opts: CachedBlobStoreOptions) {
    this.backing = opts.backing;
    this.local = new FileBlobStore(opts.dir);
    this.maxBytes = opts.maxBytes;
  }

  /** Bytes of local copies. */
  get localBytes(): number {
    return this.cachedBytes;
  }

  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: BlobPutOptions): Promise<BlobRef> {
    return this.backing.put(source, opts);
  }

  async *read(ref: BlobRef, opts: BlobReadOptions): AsyncGenerator<Uint8Array> {
    await this.load();
    if (ref.length > this.maxBytes) {
      // Larger than the whole cache: caching it would evict everything for nothing.
      yield* this.backing.read(ref, opts);
      return;
    }
    if (!this.lru.has(ref.sha256)) {
      let fill = this.filling.get(ref.sha256);
      if (fill === undefined) {
        fill = this.fill(ref).finally(() => this.filling.delete(ref.sha256));
        this.filling.set(ref.sha256, fill);
      }
      await fill;
    } else {
      this.lru.delete(ref.sha256);
      this.lru.set(ref.sha256, ref.length);
    }
    // An evicted copy stays readable through the descriptor this read opens (POSIX unlink).
    yield* this.local.read(ref, opts);
  }

  has(sha256: string): Promise<boolean> {
    return this.backing.has(sha256);
  }

  stat(sha256: string): Promise<BlobRef | undefined> {
    return this.backing.stat(sha256);
  }

  verify(ref: BlobRef): Promise<void> {
    return this.backing.verify(ref);
  }

  async collect(referenced: (sha256: string) => Promise<boolean>, graceMs: number): Promise<{ removed: number; bytes: number }> {
    const result = await this.backing.collect(referenced, graceMs);
    for (const [sha256, length] of [...this.lru]) {
      if (!(await this.backing.has(sha256))) await this.evict(sha256, length);
    }
    return result;
  }

  async close(): Promise<void> {
    await this.backing.close();
  }

  private async fill(ref: BlobRef): Promise<void> {
    // expectedSha256: a corrupt remote copy fails here (DATA_LOSS) instead of being cached.
    await this.local.put(this.backing.read(ref, { chunkBytes: 1024 * 1024 }), { kind: 'checkpoint', expectedSha256: ref.sha256 });
    this.lru.set(ref.sha256, ref.length);
    this.cachedBytes += ref.length;
    for (const [sha256, length] of this.lru) {
      if (this.cachedBytes <= this.maxBytes) break;
      if (sha256 !== ref.sha256) await this.evict(sha256, length);
    }
  }

  private async evict(sha256: string, length: number): Promise<void> {
    this.lru.delete(sha256);
    this.cachedBytes -= length;
    await unlink(this.local.pathOf(sha256)).catch(() => undefined);
  }

  /** Adopts copies left by an earlier run, oldest first. */
  private load(): Promise<void> {
    return (this.loaded ??= (async () => {
      const found: { sha256: string; length: number; mtimeMs: number }[] = [];
      const root = join(this.local.root, 'sha256');
      for (const shard of await readdir(root).catch(() => [] as string[])) {
        for (const name of await readdir(join(root, shard)).catch(() => [] as string[])) {
          const s = await stat(join(root, shard, name)).catch(() => undefined);
          if (s !== undefined) found.push({ sha256: name, length: s.size, mtimeMs: s.mtimeMs });
        }
      }
      found.sort((a, b) => a.mtimeMs - b.mtimeMs);
      for (const f of found) {
        this.lru.set(f.sha256, f.length);
        this.cachedBytes += f.length;
      }
    })());
  }
}
