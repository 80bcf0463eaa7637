import { createHash } from 'node:crypto';
import { createReadStream, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FedlhsError, float32Bytes, type TensorSpec } from '@fedlhs/core';
import { fsyncDir, writeFileAtomic } from '@fedlhs/service';

/** A model payload on disk with its digest. */
export interface StoredModel {
  path: string;
  sha256: string;
  totalBytes: number;
}

const pad = (n: number): string => String(n).padStart(6, '0');

/**
 * Checkpoints of global models, one raw float32 file per committed round. A committed file is
 * created once, by hard-linking a fully written and fsynced candidate into place (which fails
 * rather than overwrite), and is never modified afterwards.
 */
export class CheckpointStore {
  constructor(private readonly root: string) {
    mkdirSync(join(root, 'studies'), { recursive: true });
    mkdirSync(join(root, 'spool'), { recursive: true });
  }

  studyDir(studyId: string): string {
    return join(this.root, 'studies', studyId);
  }

  /** The committed model of a round, or (kind 'state') the strategy's server state after it. */
  committedPath(studyId: string, round: number, kind: 'model' | 'state' = 'model'): string {
    return join(this.studyDir(studyId), 'checkpoints', `round-${pad(round)}${kind === 'state' ? '.state' : ''}.f32`);
  }

  spoolPath(name: string): string {
    return join(this.root, 'spool', name);
  }

  /** Saves the study's tensor list (names and shapes), written once at study creation. */
  saveSpecs(studyId: string, specs: readonly TensorSpec[]): void {
    writeFileAtomic(join(this.studyDir(studyId), 'model-spec.json'), JSON.stringify(specs, null, 1));
  }

  loadSpecs(studyId: string): TensorSpec[] {
    return JSON.parse(readFileSync(join(this.studyDir(studyId), 'model-spec.json'), 'utf8')) as TensorSpec[];
  }

  /**
   * Writes a candidate model for (round, attempt) from `slices`, which yields consecutive
   * float32 pieces; hashes while writing, so the payload is never whole in memory here.
   */
  async writeCandidate(studyId: string, round: number, attempt: number, slices: Iterable<Float32Array>, kind: 'model' | 'state' = 'model'): Promise<StoredModel> {
    const dir = join(this.studyDir(studyId), 'candidates');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `round-${pad(round)}-attempt-${attempt}${kind === 'state' ? '.state' : ''}.f32`);
    rmSync(path, { force: true });
    const hash = createHash('sha256');
    const file = await open(path, 'wx', 0o644);
    let totalBytes = 0;
    try {
      for (const slice of slices) {
        const bytes = float32Bytes(slice);
        hash.update(bytes);
        await file.write(bytes);
        totalBytes += bytes.length;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    return { path, sha256: hash.digest('hex'), totalBytes };
  }

  /** Makes a candidate the committed checkpoint of `round`. Refuses to replace an existing one. */
  promote(studyId: string, round: number, candidate: StoredModel, kind: 'model' | 'state' = 'model'): StoredModel {
    const path = this.committedPath(studyId, round, kind);
    mkdirSync(join(this.studyDir(studyId), 'checkpoints'), { recursive: true });
    try {
      linkSync(candidate.path, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new FedlhsError('ALREADY_EXISTS', `checkpoint for round ${round} of study ${studyId} already exists; committed checkpoints are never replaced`, { cause: err });
      }
      throw err;
    }
    fsyncDir(join(this.studyDir(studyId), 'checkpoints'));
    unlinkSync(candidate.path);
    return { ...candidate, path };
  }

  /**
   * Removes checkpoint files of rounds after `lastCommittedRound`: a crash between promoting a
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

  /** Removes candidates of unfinished rounds (after a restart). */
  clearCandidates(studyId: string): void {
    rmSync(join(this.studyDir(studyId), 'candidates'), { recursive: true, force: true });
  }

  /** Re-hashes a stored model and throws DATA_LOSS unless it matches `sha256`. */
  async verify(path: string, sha256: string): Promise<void> {
    if (!existsSync(path)) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} is missing`);
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new FedlhsError('DATA_LOSS', `checkpoint ${path} hashes to ${actual}, recorded ${sha256}`);
  }

  /** Reads a whole stored file as float32 values (for server-side strategy state). */
  async readAll(path: string): Promise<Float32Array> {
    const parts: Buffer[] = [];
    for await (const chunk of this.read(path, 4 * 1024 * 1024)) parts.push(chunk);
    const bytes = Buffer.concat(parts);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /** Streams a stored model in chunks of exactly `chunkBytes` (the last may be shorter). */
  async *read(path: string, chunkBytes: number): AsyncGenerator<Buffer> {
    const file = await open(path, 'r');
    try {
      for (;;) {
        const buffer = Buffer.allocUnsafeSlow(chunkBytes);
        let filled = 0;
        while (filled < chunkBytes) {
          const { bytesRead } = await file.read(buffer, filled, chunkBytes - filled, null);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        if (filled === 0) return;
        yield filled === chunkBytes ? buffer : buffer.subarray(0, filled);
        if (filled < chunkBytes) return;
      }
    } finally {
      await file.close();
    }
  }
}
