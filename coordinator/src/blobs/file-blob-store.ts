import { randomBytes } from 'node:crypto';
import { createReadStream, fsyncSync, closeSync, openSync } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { FedlhsError } from '@fedlhs/core';
import {
  HashingCounter, blobMissing, bytesOf, checkDigest, checkReadRange, digestMismatch,
  type BlobPutOptions, type BlobReadOptions, type BlobRef, type BlobStore,
} from './blob-store.js';

const isErrno = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Blobs as files: `<root>/sha256/ab/<digest>` (root is `<dataDir>/blobs`). A put writes a temp
 * file while hashing, fsyncs it, hard-links it into place (link fails rather than overwrite, so a
 * stored blob is never modified), fsyncs the directory and unlinks the temp file.
 */
export class FileBlobStore implements BlobStore {
  private readonly tmpDir: string;

  constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
  }

  /** Where a blob lives (whether or not it is stored). */
  pathOf(sha256: string): string {
    checkDigest(sha256);
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  async put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: BlobPutOptions): Promise<BlobRef> {
    if (opts.expectedSha256 !== undefined) checkDigest(opts.expectedSha256);
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, `${Date.now()}-${randomBytes(6).toString('hex')}.part`);
    const counter = new HashingCounter();
    try {
      const file = await open(tmp, 'wx', 0o644);
      try {
        for await (const bytes of bytesOf(source)) {
          counter.update(bytes);
          let written = 0;
          while (written < bytes.length) written += (await file.write(bytes, written, bytes.length - written)).bytesWritten;
        }
        await file.sync();
      } finally {
        await file.close();
      }
      const sha256 = counter.digest();
      if (opts.expectedSha256 !== undefined && opts.expectedSha256 !== sha256) throw digestMismatch(`${opts.kind} blob`, opts.expectedSha256, sha256);
      const path = this.pathOf(sha256);
      const shard = join(this.root, 'sha256', sha256.slice(0, 2));
      await mkdir(shard, { recursive: true });
      try {
        await link(tmp, path);
        fsyncDir(shard);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        // Already stored (content addressing: same digest, same bytes). Touch it, so a
        // collection running before the caller records its reference spares it (graceMs).
        const now = new Date();
        await utimes(path, now, now);
      }
      return { sha256, length: counter.length };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async *read(ref: BlobRef, opts: BlobReadOptions): AsyncGenerator<Uint8Array> {
    let offset = checkReadRange(ref, opts);
    let file;
    try {
      file = await open(this.pathOf(ref.sha256), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw blobMissing(ref.sha256);
      throw err;
    }
    try {
      const { size } = await file.stat();
      if (size !== ref.length) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} holds ${size} bytes, recorded ${ref.length}`);
      while (offset < ref.length) {
        opts.signal?.throwIfAborted();
        const n = Math.min(opts.chunkBytes, ref.length - offset);
        const buffer = opts.pool?.acquire(n) ?? Buffer.allocUnsafeSlow(n);
        let filled = 0;
        try {
          while (filled < n) {
            const { bytesRead } = await file.read(buffer, filled, n - filled, offset + filled);
            if (bytesRead === 0) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} ended at byte ${offset + filled} of ${ref.length}`);
            filled += bytesRead;
          }
        } catch (err) {
          opts.pool?.release(buffer);
          throw err;
        }
        offset += n;
        yield buffer;
      }
    } finally {
      await file.close();
    }
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.stat(sha256)) !== undefined;
  }

  async stat(sha256: string): Promise<BlobRef | undefined> {
    try {
      return { sha256, length: (await stat(this.pathOf(sha256))).size };
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async verify(ref: BlobRef): Promise<void> {
    const path = this.pathOf(ref.sha256);
    const counter = new HashingCounter();
    try {
      for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) counter.update(chunk as Buffer);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw blobMissing(ref.sha256);
      throw err;
    }
    const actual = counter.digest();
    if (actual !== ref.sha256) throw digestMismatch(`blob ${path}`, ref.sha256, actual);
    if (counter.length !== ref.length) throw new FedlhsError('DATA_LOSS', `blob ${ref.sha256} holds ${counter.length} bytes, recorded ${ref.length}`);
  }

  async collect(referenced: (sha256: string) => Promise<boolean>, graceMs: number): Promise<{ removed: number; bytes: number }> {
    const cutoff = Date.now() - graceMs;
    let removed = 0;
    let bytes = 0;
    const shards = await readdir(join(this.root, 'sha256')).catch((err: unknown) => (isErrno(err, 'ENOENT') ? [] : Promise.reject(err)));
    for (const shard of shards) {
      const dir = join(this.root, 'sha256', shard);
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        const s = await stat(path).catch(() => undefined);
        if (s === undefined || s.mtimeMs > cutoff || (await referenced(name))) continue;
        await unlink(path).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
        removed++;
        bytes += s.size;
      }
    }
    // Temp files of puts that a crash interrupted.
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const path = join(this.tmpDir, name);
      const s = await stat(path).catch(() => undefined);
      if (s !== undefined && s.mtimeMs <= cutoff) await rm(path, { force: true });
    }
    return { removed, bytes };
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}
