import * as grpc from '@grpc/grpc-js';
import { loadFedlhsProto, type DownloadModelRequest__Output, type ModelChunk } from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import type { BufferPool } from '../blobs/buffer-pool.js';
import { DownloadBudget, DownloadSlots, downloadRefusalOf, streamModel } from '../downloads.js';
import type { NodeRecord } from '../store.js';
import { statusName, type HandlerContext } from './context.js';
import { authenticateCall, endStreamWithNode } from './node-auth.js';
import { toStatus } from './status.js';
import { endWithStatus, http2StreamOf, pacedWrite, type Http2StreamLike, type StreamLookup } from './http2-stream.js';
import { ModelFrames, type FramedModel } from './model-frames.js';
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
 *
 * grpc-js serializes the message into a frame of its own before `call.write` returns (protobuf
 * encoding, then a copy behind the 5-byte gRPC prefix; http2-stream.test.ts checks it), provided
 * no earlier write is still pending, which the callers guarantee by awaiting each write. So the
 * caller may reuse the buffers in `message` as soon as this returns; the frame is what HTTP/2
 * holds until the client takes it.
 */
export function writeMessage<T>(call: grpc.ServerWritableStream<unknown, T>, message: T, signal: AbortSignal, idleMs: number, onIdle: () => void): Promise<void> {
  return pacedWrite((done) => call.write(message, done), signal, idleMs, onIdle);
}

/**
 * How long after an error status a call whose client reads nothing keeps its stream: none for a
 * stalled download (its client already took nothing for the idle bound), the idle bound for
 * other errors (a revoked node's status waits behind the data already queued for it).
 */
export const statusGraceMs = (reason: unknown, idleMs: number): number => (reason instanceof FedlhsError && reason.code === 'DOWNLOAD_STALLED' ? 0 : idleMs);

/** A download found its stream ended by grpc-js (which sends the call's status itself). */
class EndedByGrpc extends Error {}

const deadlinePassed = (call: grpc.ServerWritableStream<unknown, unknown>): boolean => {
  const deadline = call.getDeadline();
  return Number(deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now();
};

/** Seams of {@link downloadHandler}. */
export interface DownloadHandlerOptions {
  /**
   * Finds a call's HTTP/2 stream (shared frames are written to it, a stalled one is reset).
   * Default {@link http2StreamOf}; tests stand in for a grpc-js whose internals moved (undefined).
   */
  streamOf?: StreamLookup;
}

/**
 * The DownloadModel handler: a checkpoint streamed in chunks, one at a time, each written once
 * HTTP/2 has sent the one before. A model of at most 64 MiB goes out as frames shared by all its
 * downloads (model-frames.ts, written straight to the call's HTTP/2 stream: nothing per client);
 * a larger one is read chunk by chunk within the global budget (downloads.ts). Within the bounds
 * of issue 11: a download takes a slot (limits.downloadStreams-
 * PerNode, limits.downloadStreamsTotal; refused RESOURCE_LIMIT past them), is registered with
 * the node's in-flight calls (revocation ends it, UNAUTHENTICATED), and is ended when its client
 * takes no data for the idle bound: its stream is reset, so HTTP/2 drops the chunk it queued, and
 * its budget and slot come back.
 */
export function downloadHandler(ctx: HandlerContext, pool: BufferPool, slots: DownloadSlots, opts: DownloadHandlerOptions = {}): grpc.handleServerStreamingCall<DownloadModelRequest__Output, ModelChunk> {
  const streamOf = opts.streamOf ?? http2StreamOf;
  const { coordinator, log, metrics } = ctx;
  const limits = coordinator.limits;
  const budget = new DownloadBudget({
    ...(ctx.transfer.inFlightBytes === undefined ? {} : { maxBytes: ctx.transfer.inFlightBytes }),
    onChange: (bytes) => metrics.downloadInflightBytes.set(bytes),
    onWait: () => metrics.downloadBudgetWaits.inc(),
  });
  const lastRefusalLog = new Map<string, number>();
  const frames = new ModelFrames({ checkpoints: coordinator.checkpoints, serialize: loadFedlhsProto().fedlhs.v1.Federation.service.DownloadModel.responseSerialize });
  let unframedLogged = false;
  /** The call's HTTP/2 stream for shared frames; undefined (warned once) if grpc-js no longer lets it be found. */
  const directStream = (call: grpc.ServerWritableStream<DownloadModelRequest__Output, ModelChunk>): Http2StreamLike | undefined => {
    const stream = streamOf(call as grpc.ServerWritableStream<unknown, unknown>);
    if (stream === undefined && !unframedLogged) {
      unframedLogged = true;
      log.warn({ event: 'download.unframed' }, "model downloads cannot write shared frames to their HTTP/2 streams (grpc-js internals changed?): they go through grpc-js, a copy per chunk per client");
    }
    return stream;
  };

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
    let model: FramedModel | undefined;
    const idleMs = limits.downloadIdleMs;
    const stalled = (): void => {
      metrics.downloadsRefused.inc({ reason: 'idle' });
      gone.abort(new FedlhsError('DOWNLOAD_STALLED', `the download took no data for ${idleMs / 1000} s (transfer.downloadIdleSeconds); the coordinator ended it`));
    };
    // Logged once the stream is reset (or could not be): only then is its memory given back.
    const onReset = (reset: boolean): void => {
      if (reset) log.warn({ event: 'download.stalled', nodeId: node?.id, idleMs, limit: 'transfer.downloadIdleSeconds', reset }, 'model download ended: its client took no data; its stream was reset');
      else log.error({ event: 'download.stalled', nodeId: node?.id, idleMs, limit: 'transfer.downloadIdleSeconds', reset }, 'model download ended: its client took no data, but its HTTP/2 stream could not be reset (grpc-js internals changed?): the chunk queued for it stays until the client goes');
    };
    (async () => {
      node = await authenticateCall(ctx, call);
      validateDownloadRequest(call.request);
      release = slots.take(node.id);
      // The slot is held until the transport is done with the call ('cancelled' is grpc-js's
      // "this call is over": trailers sent or stream reset), see DownloadSlots.
      if (call.cancelled) release();
      else call.once('cancelled', release);
      // Revocation ends the download (UNAUTHENTICATED); nothing more is sent; so does the end of
      // the certificate it was opened with (CERTIFICATE_ROTATED: the agent retries).
      unregister = endStreamWithNode(ctx, node, call, (err) => gone.abort(err));
      const { header, path } = await coordinator.openDownload(node, call.request);
      const totalBytes = Number(header.totalBytes);
      const chunkBytes = Number(header.chunkSize);
      budget.noteModelBytes(totalBytes);
      const sha256 = header.sha256 instanceof Uint8Array ? Buffer.from(header.sha256).toString('hex') : undefined;
      model = sha256 === undefined ? undefined : await frames.open(path, totalBytes, chunkBytes, sha256);
      await writeMessage(call, { header }, gone.signal, idleMs, stalled);
      // The model's shared frames, nothing per client; for models too large to keep (or every
      // place in the frame cache in use), chunk by chunk within the budget: at most one chunk of
      // this stream queued here, all downloads together at most the budget (design §5).
      const stream = model === undefined ? undefined : directStream(call);
      let sent = 0;
      for (let i = 0; stream !== undefined && sent < totalBytes; i++) {
        const frame = model?.frame(i);
        if (frame === undefined) break;
        // grpc-js ended the stream itself (the call's deadline passed): its status is on the
        // way, behind what is queued. A frame written now would fail (write after end).
        if (stream.writableEnded) throw new EndedByGrpc();
        const bytes = Math.min(chunkBytes, totalBytes - sent);
        await pacedWrite((cb) => stream.write(frame, cb), gone.signal, idleMs, stalled);
        metrics.bytesOut.inc(bytes);
        sent += bytes;
      }
      model?.close();
      if (sent < totalBytes) {
        const chunks = coordinator.checkpoints.read(path, chunkBytes, { pool, signal: gone.signal, offset: sent })[Symbol.asyncIterator]();
        await streamModel({
          chunks, totalBytes, chunkBytes, offset: sent, pool, budget, signal: gone.signal,
          // Not async: nothing may reference `data` once call.write has framed it (streamModel
          // gives the buffer back to the pool at once).
          write: (data) => {
            const bytes = data.length;
            return writeMessage(call, { data }, gone.signal, idleMs, stalled).then(() => void metrics.bytesOut.inc(bytes));
          },
        });
      }
      done('OK');
      call.end();
    })()
      .catch((err: unknown) => {
        const reason: unknown = gone.signal.aborted ? gone.signal.reason : err;
        if (reason instanceof EndedByGrpc) {
          done(deadlinePassed(call) ? 'DEADLINE_EXCEEDED' : 'CANCELLED');
          return;
        }
        if (reason instanceof FedlhsError && reason.code === 'ATTEMPT_ABORTED') {
          done('CANCELLED');
          return;
        }
        refused(node, reason);
        const status = toStatus(reason, log, 'DownloadModel');
        done(statusName(status.code));
        endWithStatus(call, status, statusGraceMs(reason, idleMs), onReset, streamOf);
      })
      .finally(() => {
        model?.close();
        unregister?.();
      });
  };
}
