import * as grpc from '@grpc/grpc-js';
import type { DownloadModelRequest__Output, ModelChunk } from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import type { BufferPool } from '../blobs/buffer-pool.js';
import { DownloadBudget, streamModel } from '../downloads.js';
import { statusName, type HandlerContext } from './context.js';
import { authenticateCall } from './node-auth.js';
import { toStatus } from './status.js';
import { validateDownloadRequest } from './validate.js';

/** Writes one message and resolves on its write callback (grpc-js has handed it to HTTP/2); rejects if `signal` aborts first. */
function writeMessage<T>(call: grpc.ServerWritableStream<unknown, T>, message: T, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // grpc-js never calls back for a write to a cancelled call, so the abort must end the wait.
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    call.write(message, (err?: Error | null) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** The DownloadModel handler: a checkpoint streamed in chunks, paced by the transport and the global budget. */
export function downloadHandler(ctx: HandlerContext, pool: BufferPool): grpc.handleServerStreamingCall<DownloadModelRequest__Output, ModelChunk> {
  const { coordinator, log, metrics } = ctx;
  const budget = new DownloadBudget({
    ...(ctx.transfer.inFlightBytes === undefined ? {} : { maxBytes: ctx.transfer.inFlightBytes }),
    onChange: (bytes) => metrics.downloadInflightBytes.set(bytes),
    onWait: () => metrics.downloadBudgetWaits.inc(),
  });
  return (call) => {
    const done = metrics.startCall('DownloadModel');
    const gone = new AbortController();
    // The reason stops this stream's own waits only (pool, budget, writes); nothing is sent.
    const abort = (): void => gone.abort(new FedlhsError('ATTEMPT_ABORTED', 'the download stream was cancelled'));
    call.on('cancelled', abort);
    call.on('error', abort);
    (async () => {
      const node = await authenticateCall(ctx, call);
      validateDownloadRequest(call.request);
      const { header, path } = await coordinator.openDownload(node, call.request);
      const totalBytes = Number(header.totalBytes);
      const chunkBytes = Number(header.chunkSize);
      budget.noteModelBytes(totalBytes);
      // Paced by the write callbacks: at most one chunk of this stream is queued here, and all
      // downloads together hold at most the budget (design §5).
      await writeMessage(call, { header }, gone.signal);
      const chunks = coordinator.checkpoints.read(path, chunkBytes, { pool, signal: gone.signal })[Symbol.asyncIterator]();
      await streamModel({
        chunks, totalBytes, chunkBytes, pool, budget, signal: gone.signal,
        write: async (data) => {
          await writeMessage(call, { data }, gone.signal);
          metrics.bytesOut.inc(data.length);
        },
      });
      done('OK');
      call.end();
    })().catch((err: unknown) => {
      if (gone.signal.aborted) {
        done('CANCELLED');
        return;
      }
      const status = toStatus(err, log, 'DownloadModel');
      done(statusName(status.code));
      call.emit('error', status);
    });
  };
}
