import { createHash } from 'node:crypto';
import { FedlhsError } from '@fedlhs/core';
import type { ModelChunk } from '@fedlhs/proto';
import type { CheckpointStore } from '../checkpoints.js';

/** What {@link ModelFrames} needs. */
export interface ModelFramesOptions {
  checkpoints: Pick<CheckpointStore, 'read' | 'cacheable' | 'checkSize'>;
  /** The DownloadModel response serializer of the service definition: a frame holds exactly what grpc-js would send. */
  serialize: (message: ModelChunk) => Buffer;
  /** Models whose frames are kept, most recently used; default 2 (a round's model and the next). */
  entries?: number;
}

/**
 * The gRPC frames (5-byte prefix and the serialized ModelChunk) of a model's DownloadModel data
 * messages, built once per model and shared by every download of it (issue 15: 100 clinics
 * downloading at once cost the model once, not a copy per chunk per clinic). grpc-js serializes
 * and frames every message it writes, one allocation per chunk per client that V8 collects only
 * some time later (on a 16 MiB model and 100 concurrent downloads, 30-60 MiB of RSS); a download
 * writes these frames to its HTTP/2 stream instead (download-handler.ts).
 *
 * At most `entries` models are framed at once, and frames in use by a download are kept: a
 * stalled download holds nothing of its own, only a share of its model's frames until the idle
 * bound ends it (issue 11: a stalled download must not cost a model). Each frame is a buffer of
 * its own (what HTTP/2 queues for a stream pins one chunk, not the model). Only payloads the
 * checkpoint store may keep in memory (immutable, at most 64 MiB) are framed; larger ones, and
 * downloads that find every place in use, stream chunk by chunk within the download budget.
 */
const keyOf = (path: string, chunkBytes: number, sha256: string): string => `${chunkBytes}:${sha256}:${path}`;

/** A model's frames held open for one download ({@link ModelFrames.open}). */
export interface FramedModel {
  /** Frame `index`, in order; undefined past the last. */
  frame(index: number): Buffer | undefined;
  /** The download is done with the frames (they may be let go once no download uses them). */
  close(): void;
}

interface Entry {
  frames: readonly Buffer[];
  /** Downloads using the frames now: an entry in use is never let go. */
  users: number;
}

interface Building {
  entry: Promise<Entry>;
  /** Downloads waiting for the frames: the built entry starts with them as its users. */
  waiters: number;
}

export class ModelFrames {
  /** Framed models, least recently opened first. */
  private readonly cache = new Map<string, Entry>();
  private readonly building = new Map<string, Building>();
  private readonly entries: number;

  constructor(private readonly opts: ModelFramesOptions) {
    this.entries = opts.entries ?? 2;
  }

  /** Bytes of frames held now (for tests and figures). */
  get bytes(): number {
    let n = 0;
    for (const e of this.cache.values()) for (const f of e.frames) n += f.length;
    return n;
  }

  /**
   * The frames of `path` (`totalBytes`) in `chunkBytes` chunks, held for one download until it
   * calls close(); built if need be. Undefined if the payload is not one to keep in memory, or
   * if `entries` other models are framed (or being framed) and in use: the download then streams
   * chunk by chunk, so framing never costs more than `entries` models, and downloads of models in
   * rotation cannot make it rebuild frames for every request. `sha256` (hex) is the record's
   * digest: DATA_LOSS if the stored payload does not hash to it when framed, or is not
   * `totalBytes` long (now, or since it was framed).
   */
  async open(path: string, totalBytes: number, chunkBytes: number, sha256: string): Promise<FramedModel | undefined> {
    if (!this.opts.checkpoints.cacheable(path, totalBytes)) return undefined;
    // The digest is part of the key: frames of a file that was replaced by other bytes of the same
    // size (a data directory restored, a study id reused) are never served for the new record.
    const key = keyOf(path, chunkBytes, sha256);
    let entry = this.cache.get(key);
    if (entry !== undefined) {
      // Counted before the await: while this download checks the file, another one's makeRoom
      // must see the entry in use (else it drops it, and this download would stream a copy of
      // the model outside the bound).
      entry.users++;
      this.touch(key, entry);
      try {
        await this.opts.checkpoints.checkSize(path, totalBytes);
      } catch (err) {
        entry.users--;
        if (this.cache.get(key) === entry) this.cache.delete(key);
        throw err;
      }
    } else {
      let pending = this.building.get(key);
      if (pending === undefined) {
        if (!this.makeRoom()) return undefined;
        const build: Building = {
          waiters: 0,
          // Every download waiting for the build is counted in the entry as it is cached, in the
          // same step: no other open can drop it in between.
          entry: this.build(path, totalBytes, chunkBytes, sha256).then((frames) => {
            const built = { frames, users: build.waiters };
            this.cache.set(key, built);
            return built;
          }).finally(() => this.building.delete(key)),
        };
        pending = build;
        this.building.set(key, pending);
      }
      pending.waiters++;
      entry = await pending.entry;
    }
    const held = entry;
    let open = true;
    return {
      frame: (index) => (open ? held.frames[index] : undefined),
      close: () => {
        if (!open) return;
        open = false;
        held.users--;
      },
    };
  }

  /** Most recently opened last: the next eviction looks at the others first. */
  private touch(key: string, entry: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
  }

  /** Frees a place for one more model (letting the least recently opened unused one go); false if every place is in use. */
  private makeRoom(): boolean {
    if (this.cache.size + this.building.size < this.entries) return true;
    for (const [key, e] of this.cache) {
      if (e.users === 0) {
        this.cache.delete(key);
        return this.cache.size + this.building.size < this.entries;
      }
    }
    return false;
  }

  /**
   * Frames the payload, read without the checkpoint store keeping a copy of its own (the frames
   * are this model's one copy in memory), and checks it against the digest of its record: frames
   * are only ever built from the bytes the header announces.
   */
  private async build(path: string, totalBytes: number, chunkBytes: number, sha256: string): Promise<readonly Buffer[]> {
    const frames: Buffer[] = [];
    const hash = createHash('sha256');
    let at = 0;
    for await (const chunk of this.opts.checkpoints.read(path, chunkBytes, { keep: false })) {
      const expected = Math.min(chunkBytes, totalBytes - at);
      if (chunk.length !== expected) throw new FedlhsError('DATA_LOSS', `model payload ${path}: chunk at byte ${at} has ${chunk.length} bytes, expected ${expected} (of ${totalBytes})`);
      hash.update(chunk);
      const message = this.opts.serialize({ data: chunk });
      // allocUnsafeSlow: a buffer of its own, never a slice of a shared one (see the class comment).
      const frame = Buffer.allocUnsafeSlow(5 + message.length);
      frame.writeUInt8(0, 0);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      frames.push(frame);
      at += chunk.length;
    }
    if (at !== totalBytes) throw new FedlhsError('DATA_LOSS', `model payload ${path} has ${at} bytes, expected ${totalBytes}`);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new FedlhsError('DATA_LOSS', `model payload ${path} hashes to ${actual}, its record says ${sha256}`);
    return frames;
  }
}
