import * as grpc from '@grpc/grpc-js';
import type { DownloadModelRequest__Output, ModelChunk } from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import type { BufferPool } from '../blobs/buffer-pool.js';
import { DownloadBudget, DownloadSlots, downloadRefusalOf, streamModel } from '../downloads.js';
import type { NodeRecord } from '../store.js';
import { statusName, type HandlerContext } from './context.js';
import { authenticateCall } from './node-auth.js';
import { toStatus } from './status.js';
import { validateDownloadRequest } from './validate.js';

/** A refusal of one node for one reason is logged at most this often (a refused client that retries in a loop must not flood the log). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Nodes whose last refusal log time is kept; past it the oldest are forgotten (bounded state). */
const REFUSAL_LOG_NODES = 1024;

/**
 * Writes one message and resolves on its write callback: grpc-js calls it once HTTP/2 has sent
 * the message, i.e. once the client's flow-control window took it (a client that reads nothing
 * never gets it). Rejects if `signal` aborts first; calls `onIdle` if the callback has not come
 * after `idleMs`. Release files stream through it too (release-handler.ts).
 */
export function writeMessage<T>(call: grpc.ServerWritableStream<unknown, T>, message: T, signal: AbortSignal, idleMs: number, onIdle: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // grpc-js never calls back for a write to a cancelled call, so the abort must end the wait.
    const onAbort = (): void => {
      clearTimeout(idle);
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    const idle = setTimeout(onIdle, idleMs);
    signal.addEventListener('abort', onAbort, { once: true });
    call.write(message, (err?: Error | null) => {
      clearTimeout(idle);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/**
 * The DownloadModel handler: a checkpoint streamed in chunks, paced by the transport and the
 * global budget, within the bounds of issue 11. A download takes a slot (limits.downloadStreams-
 * PerNode, limits.downloadStreamsTotal; refused RESOURCE_LIMIT past them), is registered with
 * the node's in-flight calls (revocation ends it, UNAUTHENTICATED), and is ended when its client
 * takes no data for the idle bound, giving its budget back.
 */
export function downloadHandler(ctx: HandlerContext, pool: BufferPool, slots: DownloadSlots): grpc.handleServerStreamingCall<DownloadModelRequest__Output, ModelChunk> {
  const { coordinator, log, metrics } = ctx;
  const limits = coordinator.limits;
  const budget = new DownloadBudget({
    ...(ctx.transfer.inFlightBytes === undefined ? {} : { maxBytes: ctx.transfer.inFlightBytes }),
    onChange: (bytes) => metrics.downloadInflightBytes.set(bytes),
    onWait: () => metrics.downloadBudgetWaits.inc(),
  });
  const lastRefusalLog = new Map<string, number>();

  const refused = (node: NodeRecord | undefined, err: unknown): void => {
    const reason = downloadRefusalOf(err);
    if (reason === undefined) return;
    metrics.downloadsRefused.inc({ reason });
    const key = `${node?.id ?? '?'}/${reason}`;
    const now = Date.now();
    if (now - (lastRefusalLog.get(key) ?? -Infinity) < REFUSAL_LOG_INTERVAL_MS) return;
    lastRefusalLog.delete(key);
    lastRefusalLog.set(key, now);
    if (lastRefusalLog.size > REFUSAL_LOG_NODES) lastRefusalLog.delete(lastRefusalLog.keys().next().value as string);
    const details = (err as FedlhsError).details as { limit?: string; value?: number; max?: number } | undefined;
    log.warn({ event: 'download.refused', nodeId: node?.id, reason, limit: details?.limit, value: details?.value, max: details?.max, err: (err as Error).message }, 'model download refused');
  };

  return (call) => {
    const done = metrics.startCall('DownloadModel');
    const gone = new AbortController();
    // A client that cancels stops this stream's own waits (pool, budget, writes); nothing is
    // sent. The coordinator's own reasons (revocation, idle bound) are answered with a status.
    const cancelled = (): void => gone.abort(new FedlhsError('ATTEMPT_ABORTED', 'the download stream was cancelled'));
    call.on('cancelled', cancelled);
    call.on('error', cancelled);
    let node: NodeRecord | undefined;
    let release: (() => void) | undefined;
    let unregister: (() => void) | undefined;
    const idleMs = limits.downloadIdleMs;
    const stalled = (): void => {
      log.warn({ event: 'download.stalled', nodeId: node?.id, idleMs, limit: 'transfer.downloadIdleSeconds' }, 'model download ended: its client took no data');
      metrics.downloadsRefused.inc({ reason: 'idle' });
      gone.abort(new FedlhsError('DOWNLOAD_STALLED', `the download took no data for ${idleMs / 1000} s (transfer.downloadIdleSeconds); the coordinator ended it`));
    };
    (async () => {
      node = await authenticateCall(ctx, call);
      validateDownloadRequest(call.request);
      release = slots.take(node.id);
      // The slot is held until the transport is done with the call ('cancelled' is grpc-js's
      // "this call is over": trailers sent or stream reset), see DownloadSlots.
      if (call.cancelled) release();
      else call.once('cancelled', release);
      // Revocation ends the download (UNAUTHENTICATED); nothing more is sent.
      unregister = coordinator.calls.register(node.id, (err) => gone.abort(err));
      const { header, path } = await coordinator.openDownload(node, call.request);
      const totalBytes = Number(header.totalBytes);
      const chunkBytes = Number(header.chunkSize);
      budget.noteModelBytes(totalBytes);
      // Paced by the write callbacks: at most one chunk of this stream is queued here, and all
      // downloads together hold at most the budget (design §5).
      await writeMessage(call, { header }, gone.signal, idleMs, stalled);
      const chunks = coordinator.checkpoints.read(path, chunkBytes, { pool, signal: gone.signal })[Symbol.asyncIterator]();
      await streamModel({
        chunks, totalBytes, chunkBytes, pool, budget, signal: gone.signal,
        write: async (data) => {
          await writeMessage(call, { data }, gone.signal, idleMs, stalled);
          metrics.bytesOut.inc(data.length);
        },
      });
      done('OK');
      call.end();
    })()
      .catch((err: unknown) => {
        const reason: unknown = gone.signal.aborted ? gone.signal.reason : err;
        if (reason instanceof FedlhsError && reason.code === 'ATTEMPT_ABORTED') {
          done('CANCELLED');
          return;
        }
        refused(node, reason);
        const status = toStatus(reason, log, 'DownloadModel');
        done(statusName(status.code));
        call.emit('error', status);
      })
      .finally(() => unregister?.());
  };
}
