import { FedlhsError, bundleLength } from '@fedlhs/core';
import type { DownloadModelRequest__Output, TensorBundleHeader } from '@fedlhs/proto';
import type { BufferPool } from './blobs/buffer-pool.js';
import type { CheckpointStore } from './checkpoints.js';
import type { Studies } from './studies.js';
import type { CoordinatorStore, NodeRecord } from './store.js';
import { ownTask } from './update-intake.js';

/** What model downloads need from the coordinator that builds them. */
export interface DownloadsOptions {
  store: CoordinatorStore;
  checkpoints: CheckpointStore;
  /** Chunk size announced in every download header. */
  chunkBytes: number;
  studies: Pick<Studies, 'runner' | 'openRunner'>;
}

/**
 * Model downloads: which checkpoint a node may read (its task's model, or a committed round's)
 * and the header that describes it. The transport streams the file itself.
 */
export class Downloads {
  private readonly store: CoordinatorStore;
  private readonly checkpoints: CheckpointStore;
  private readonly chunkBytes: number;
  private readonly studies: Pick<Studies, 'runner' | 'openRunner'>;

  constructor(opts: DownloadsOptions) {
    this.store = opts.store;
    this.checkpoints = opts.checkpoints;
    this.chunkBytes = opts.chunkBytes;
    this.studies = opts.studies;
  }

  /** Resolves what a download request may read: the header to send and the file behind it. */
  async openDownload(node: NodeRecord, request: DownloadModelRequest__Output): Promise<{ header: TensorBundleHeader; path: string }> {
    let studyId: string;
    let stored: { path: string; sha256: string };
    if (request.taskId !== undefined && request.selector === 'taskId') {
      const task = await ownTask(this.store, node, request.taskId);
      stored = this.studies.openRunner(task).modelForTask(task);
      studyId = task.studyId;
    } else if (request.committed) {
      const { studyId: id, round } = request.committed;
      const record = await this.store.getCommittedRound(id, round);
      if (record?.checkpointPath == null || record.checkpointSha256 === null) throw new FedlhsError('NOT_FOUND', `study ${id} has no committed round ${round}`);
      stored = { path: record.checkpointPath, sha256: record.checkpointSha256 };
      studyId = id;
    } else {
      throw new FedlhsError('INVALID_ARGUMENT', 'DownloadModelRequest needs task_id or committed');
    }
    const specs = this.studies.runner(studyId)?.modelSpecs ?? this.checkpoints.loadSpecs(studyId);
    return {
      header: {
        tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })),
        totalBytes: bundleLength(specs) * 4,
        sha256: Buffer.from(stored.sha256, 'hex'),
        chunkSize: this.chunkBytes,
      },
      path: stored.path,
    };
  }
}

/** Default in-flight byte budget floor: with no model yet seen, four 1 MiB chunks. */
export const MIN_DOWNLOAD_BUDGET_BYTES = 4 * 1024 * 1024;

export interface DownloadBudgetOptions {
  /** Bytes all downloads together may hold in flight; default (undefined) max(4 MiB, the largest model served). */
  maxBytes?: number;
  /** Called with the bytes in flight after every change (the fedlhs_download_inflight_bytes gauge). */
  onChange?: (inFlightBytes: number) => void;
  /** Called when a request has to wait. */
  onWait?: () => void;
}

/**
 * The global bound on download memory (design core-redesign §5): a download takes budget for a
 * chunk before reading it and gives it back once the transport has taken the chunk. Streams wait
 * for budget in arrival order and never fail for it; a request larger than the whole budget is
 * granted when nothing else is in flight.
 */
export class DownloadBudget {
  private inFlight = 0;
  private largestModel = 0;
  private readonly waiting: { bytes: number; grant: () => void; signal: AbortSignal | undefined; reject: (err: unknown) => void }[] = [];

  constructor(private readonly opts: DownloadBudgetOptions = {}) {}

  /** The budget now: the configured bytes, or max(4 MiB, the largest model served). */
  get maxBytes(): number {
    return this.opts.maxBytes ?? Math.max(MIN_DOWNLOAD_BUDGET_BYTES, this.largestModel);
  }

  get inFlightBytes(): number {
    return this.inFlight;
  }

  /** Tells the budget the size of a model being served (raises the default budget). */
  noteModelBytes(bytes: number): void {
    if (bytes > this.largestModel) {
      this.largestModel = bytes;
      this.grantWaiting();
    }
  }

  /** Resolves once `bytes` are granted; rejects only if `signal` aborts first. */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve();
    }
    this.opts.onWait?.();
    return new Promise<void>((resolve, reject) => {
      const entry = { bytes, grant: resolve, signal, reject };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason);
        this.grantWaiting();
      };
      entry.grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  release(bytes: number): void {
    this.inFlight -= bytes;
    if (this.inFlight < 0) throw new Error(`DownloadBudget: released ${bytes} bytes more than were taken`);
    this.opts.onChange?.(this.inFlight);
    this.grantWaiting();
  }

  private fits(bytes: number): boolean {
    return this.inFlight + bytes <= this.maxBytes || this.inFlight === 0;
  }

  private take(bytes: number): void {
    this.inFlight += bytes;
    this.opts.onChange?.(this.inFlight);
  }

  private grantWaiting(): void {
    for (let next = this.waiting[0]; next !== undefined && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.take(next.bytes);
      next.grant();
    }
  }
}

/** What {@link streamModel} needs. */
export interface StreamModelOptions {
  /** Chunks of the payload, from `pool` (checkpoints.read with the pool). */
  chunks: AsyncIterator<Buffer>;
  totalBytes: number;
  chunkBytes: number;
  pool: BufferPool;
  budget: DownloadBudget;
  /** Hands one chunk to the transport; resolves once it has taken it (the write callback). */
  write: (data: Buffer) => Promise<void>;
  signal: AbortSignal;
}

/**
 * Streams a model paced by the transport: each chunk takes budget, is read into a pooled buffer,
 * written, and only after the write callback are the buffer and the budget given back, so at most
 * one chunk per stream is queued in the coordinator, and all streams together hold at most the
 * budget. Returns the bytes sent.
 */
export async function streamModel(o: StreamModelOptions): Promise<number> {
  let sent = 0;
  try {
    while (sent < o.totalBytes) {
      const n = Math.min(o.chunkBytes, o.totalBytes - sent);
      await o.budget.acquire(n, o.signal);
      let data: Buffer | undefined;
      try {
        const next = await o.chunks.next();
        if (next.done === true) throw new FedlhsError('DATA_LOSS', `model payload ended after ${sent} of ${o.totalBytes} bytes`);
        data = next.value;
        if (data.length !== n) throw new FedlhsError('DATA_LOSS', `model payload chunk at byte ${sent} has ${data.length} bytes, expected ${n}`);
        await o.write(data);
        sent += n;
      } finally {
        if (data !== undefined) o.pool.release(data);
        o.budget.release(n);
      }
    }
    return sent;
  } finally {
    await o.chunks.return?.();
  }
}
