import { FedlhsError, bundleLength } from '@fedlhs/core';
import type { DownloadModelRequest__Output, TensorBundleHeader } from '@fedlhs/proto';
import type { BufferPool } from './blobs/buffer-pool.js';
import type { CheckpointStore } from './checkpoints.js';
import type { Studies } from './studies.js';
import type { CoordinatorLimits } from './limits.js';
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
 * Model downloads: which checkpoint a node may read (its task's model, or a committed round of a
 * study it took part in) and the header that describes it. The transport streams the file itself.
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
      // Issue 11: any enrolled node could read any study's models. A study's committed models
      // go to the nodes that had a task in it (the agent fetches the final model of a study it
      // trained in); others are refused before anything about the study is looked up.
      if (!(await this.store.nodeTookPart(node.id, id))) {
        throw new FedlhsError('NOT_ASSIGNED', `node ${node.id} took no part in study ${id}: only nodes that had a task in a study may download its models`);
      }
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

/** Why a download was refused (the `reason` label of fedlhs_download_streams_refused_total). */
export type DownloadRefusal = 'per_node' | 'total' | 'not_participant';

/** The refusal `err` stands for, if it is one of the download bounds or the participation check. */
export function downloadRefusalOf(err: unknown): DownloadRefusal | undefined {
  if (!(err instanceof FedlhsError)) return undefined;
  if (err.code === 'NOT_ASSIGNED') return 'not_participant';
  if (err.code !== 'RESOURCE_LIMIT') return undefined;
  const limit = (err.details as { limit?: string } | undefined)?.limit;
  return limit === 'limits.downloadStreamsPerNode' ? 'per_node' : limit === 'limits.downloadStreamsTotal' ? 'total' : undefined;
}

/**
 * The bounds on open model downloads (issue 11): limits.downloadStreamsPerNode per node and
 * limits.downloadStreamsTotal in all. A slot is held from the call's start until the transport
 * is done with the call (its trailers sent or the stream reset), not merely until the coordinator
 * stops writing: a stream nobody reads still holds a queued chunk in HTTP/2, so the per-node
 * bound also bounds what one node's stalled streams can hold.
 */
export class DownloadSlots {
  private readonly byNode = new Map<string, number>();
  private open = 0;

  constructor(
    private readonly limits: Pick<CoordinatorLimits, 'downloadStreamsPerNode' | 'downloadStreamsTotal'>,
    /** Called with the open count after every change (the fedlhs_download_streams gauge). */
    private readonly onChange?: (open: number) => void,
  ) {}

  /** Download streams open now. */
  get openStreams(): number {
    return this.open;
  }

  /** Streams of `nodeId` open now. */
  openFor(nodeId: string): number {
    return this.byNode.get(nodeId) ?? 0;
  }

  /**
   * Takes a slot for a stream of `nodeId`, or throws RESOURCE_LIMIT naming the bound's config
   * key. The result gives the slot back; calling it again does nothing.
   */
  take(nodeId: string): () => void {
    const mine = this.openFor(nodeId);
    const perNode = this.limits.downloadStreamsPerNode;
    if (mine >= perNode) {
      throw new FedlhsError('RESOURCE_LIMIT', `node ${nodeId} already has ${mine} model download(s) open, the most limits.downloadStreamsPerNode (${perNode}) allows; retry when one ends`, {
        details: { limit: 'limits.downloadStreamsPerNode', value: mine + 1, max: perNode },
      });
    }
    const total = this.limits.downloadStreamsTotal;
    if (this.open >= total) {
      throw new FedlhsError('RESOURCE_LIMIT', `${this.open} model downloads are open, the most limits.downloadStreamsTotal (${total}) allows; retry later`, {
        details: { limit: 'limits.downloadStreamsTotal', value: this.open + 1, max: total },
      });
    }
    this.byNode.set(nodeId, mine + 1);
    this.open++;
    this.onChange?.(this.open);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = this.openFor(nodeId) - 1;
      if (left > 0) this.byNode.set(nodeId, left);
      else this.byNode.delete(nodeId);
      this.open--;
      this.onChange?.(this.open);
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
  /** Bytes already sent by other means (`chunks` starts there); default 0. */
  offset?: number;
  pool: BufferPool;
  budget: DownloadBudget;
  /**
   * Hands one chunk to the transport, which must be done with `data` when `write` returns:
   * grpc-js serializes a message into a frame of its own inside `call.write` (see writeMessage
   * in grpc/download-handler.ts), so the buffer goes back to the pool at once. Resolves once the
   * transport has sent that frame (the write callback).
   */
  write: (data: Buffer) => Promise<void>;
  signal: AbortSignal;
}

/**
 * Streams a model paced by the transport: each chunk takes budget, is read into a pooled buffer
 * and handed to the transport, which copies it into its frame; the pooled buffer goes back at
 * once, the budget only after the write callback, as it stands for that frame while HTTP/2
 * holds it. So a stream holds at most one frame beyond what HTTP/2 flow control let through,
 * and all streams together hold at most the budget (a client that reads nothing costs one
 * chunk, whatever the model). Returns the bytes sent, `offset` included.
 */
export async function streamModel(o: StreamModelOptions): Promise<number> {
  let sent = o.offset ?? 0;
  try {
    while (sent < o.totalBytes) {
      const n = Math.min(o.chunkBytes, o.totalBytes - sent);
      await o.budget.acquire(n, o.signal);
      try {
        await sendChunk(o, sent, n);
        sent += n;
      } finally {
        o.budget.release(n);
      }
    }
    return sent;
  } finally {
    await o.chunks.return?.();
  }
}

/**
 * Reads the next chunk and hands it to the transport; resolves when the transport has sent it.
 * A function of its own so that nothing here references the pooled buffer while the write is
 * pending (a stalled stream must not pin it, nor through it the pool).
 */
async function sendChunk(o: StreamModelOptions, at: number, n: number): Promise<void> {
  const next = await o.chunks.next();
  if (next.done === true) throw new FedlhsError('DATA_LOSS', `model payload ended after ${at} of ${o.totalBytes} bytes`);
  return handOver(o, next.value, at, n);
}

function handOver(o: StreamModelOptions, data: Buffer, at: number, n: number): Promise<void> {
  let taken: Promise<void>;
  try {
    if (data.length !== n) throw new FedlhsError('DATA_LOSS', `model payload chunk at byte ${at} has ${data.length} bytes, expected ${n}`);
    taken = o.write(data);
  } finally {
    o.pool.release(data);
  }
  return taken;
}
