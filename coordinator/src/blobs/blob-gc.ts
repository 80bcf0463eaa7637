import type { Logger } from '@fedlhs/service';
import type { CoordinatorStore } from '../store.js';

/** What a collection run needs: the store's references and something that collects blobs. */
export interface BlobCollectorOptions {
  store: Pick<CoordinatorStore, 'referencedBlobs'>;
  /** CheckpointStore.collect or BlobStore.collect. */
  collect: (referenced: (sha256: string) => Promise<boolean>, graceMs: number) => Promise<{ removed: number; bytes: number }>;
  log: Pick<Logger, 'info' | 'warn'>;
  /** Blobs younger than this are kept even when no row references them (a put not yet committed). */
  graceMs: number;
  /** Period of the background run; 0: none (runs only when asked). */
  intervalMs: number;
}

/** Why a collection ran (logged). */
export type CollectReason = 'start' | 'study-ended' | 'periodic';

/**
 * Blob garbage collection (design §2.6): deletes blobs that no row references (store
 * `referencedBlobs`: every round's checkpoint, every study's strategy state, open tasks' models)
 * and that are older than the grace period, so a candidate written just before its commit, or
 * by a put racing the listing, is never taken. Runs are serialised: a request during a run
 * queues one more run after it. Each run logs `blob.collected` (removed, bytes, reason); a failed
 * run logs `blob.collect_failed` and deletes nothing it could not account for.
 */
export class BlobCollector {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: BlobCollectorOptions) {}

  /** Starts the periodic run (an unref'd timer, so it never keeps the process alive). */
  start(): void {
    if (this.opts.intervalMs <= 0 || this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => void this.run('periodic'), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress (before the store closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Runs a collection now (or right after the one in progress). Never rejects: failures are logged. */
  run(reason: CollectReason): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running === undefined) {
      this.running = this.once(reason).finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    // One queued run covers every request made during the current one.
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.run(reason);
    });
    return this.queued;
  }

  private async once(reason: CollectReason): Promise<void> {
    const started = Date.now();
    try {
      // Listed once per run: a reference added after the listing is to a blob put after it too
      // (younger than the grace period), or one already referenced.
      const referenced = await this.opts.store.referencedBlobs();
      const { removed, bytes } = await this.opts.collect(async (sha256) => referenced.has(sha256), this.opts.graceMs);
      this.opts.log.info(
        { event: 'blob.collected', reason, removed, bytes, referenced: referenced.size, graceMs: this.opts.graceMs, ms: Date.now() - started },
        `blob collection (${reason}): removed ${removed} unreferenced blobs, ${bytes} bytes`,
      );
    } catch (err) {
      this.opts.log.warn({ event: 'blob.collect_failed', reason, err: { message: (err as Error).message, code: (err as { code?: string }).code } }, `blob collection (${reason}) failed: ${(err as Error).message}`);
    }
  }
}
