import type * as grpc from '@grpc/grpc-js';
import type { UpdateChunk__Output, UploadReceipt } from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import { timed, type HandlerContext } from './context.js';
import { authenticateCall, endStreamWithNode } from './node-auth.js';
import { toStatus } from './status.js';
import { validateUploadHeader } from './validate.js';

/**
 * The UploadUpdate handler: one client stream per update, at most transfer.uploadStreamsPerNode
 * per node. Each call is registered with the node's in-flight calls (revocation ends it) and
 * read through an `UploadStream`, which says how a stream that did not end cleanly ended.
 */
export function uploadHandler(ctx: HandlerContext): grpc.handleClientStreamingCall<UpdateChunk__Output, UploadReceipt> {
  const { coordinator, log, metrics } = ctx;
  const uploadsPerNode = ctx.transfer.uploadStreamsPerNode ?? 1;
  const uploadsByNode = new Map<string, number>();
  return (call, cb) => {
    const callback = timed(coordinator, 'UploadUpdate', cb);
    let counted: string | undefined;
    let unregister: (() => void) | undefined;
    authenticateCall(ctx, call)
      .then((node) => {
        // One upload stream per node (by default): grpc-js buffers a client stream's messages
        // before it pauses it, so the number of streams bounds upload memory.
        const open = uploadsByNode.get(node.id) ?? 0;
        if (open >= uploadsPerNode) {
          metrics.uploadsRefused.inc();
          throw new FedlhsError('RESOURCE_LIMIT', `node ${node.id} already has ${open} upload stream(s) open; retry when it ends`, {
            details: { limit: 'transfer.uploadStreamsPerNode', value: open + 1, max: uploadsPerNode },
          });
        }
        uploadsByNode.set(node.id, open + 1);
        counted = node.id;
        const stream = new UploadStream(call, coordinator.limits.uploadIdleMs);
        // Revocation ends the call (UNAUTHENTICATED): nothing sent after it counts; so does the
        // end of the certificate it was opened with (CERTIFICATE_ROTATED: the agent retries).
        unregister = endStreamWithNode(ctx, node, call, (err) => stream.abort(err));
        return coordinator.receiveUpload(node, stream);
      })
      .finally(() => {
        unregister?.();
        if (counted === undefined) return;
        const left = (uploadsByNode.get(counted) ?? 1) - 1;
        if (left > 0) uploadsByNode.set(counted, left);
        else uploadsByNode.delete(counted);
      })
      .then(
        (receipt) => callback(null, receipt),
        (err: unknown) => callback(toStatus(err, log, 'UploadUpdate')),
      );
  };
}

/** How long a stream that ended short waits for grpc-js to report it cancelled (then: LENGTH_MISMATCH). */
const CANCEL_GRACE_MS = 250;

/** What `UploadStream` needs of a gRPC server stream (grpc-js ServerReadableStream). */
export type UploadCall = AsyncIterable<UpdateChunk__Output> & Pick<grpc.ServerReadableStream<UpdateChunk__Output, UploadReceipt>, 'cancelled' | 'getDeadline' | 'once'>;

/**
 * The messages of one upload call, with the ways it can end named (issue 11: a frozen uploader
 * was recorded as LENGTH_MISMATCH). The coordinator ends a call that sends nothing for
 * `idleMs` (UPLOAD_STALLED, answered DEADLINE_EXCEEDED) and one whose node is revoked (`abort`).
 * A stream the client cancels or whose connection breaks is UPLOAD_CANCELLED; one ended by the
 * client's own deadline is UPLOAD_STALLED. Why this is needed: when a call ends under it, grpc-js
 * may still end the readable side cleanly (the deadline timer sends the status, then the
 * HTTP/2 stream closes with NO_ERROR and pushes end-of-stream), which read like a client that
 * sent too few bytes. Only a clean end of a call that was not cancelled is the client's end,
 * where a wrong byte count stays LENGTH_MISMATCH. The first message's header is checked against
 * the wire limits (validate.ts) before the domain sees it, so an invalid header is never recorded.
 */
export class UploadStream implements AsyncIterable<UpdateChunk__Output> {
  private ended: FedlhsError | undefined;
  private wake: ((err: FedlhsError) => void) | undefined;
  private messages = 0;
  /** Payload bytes the header announced, and received so far. */
  private expected = 0;
  private received = 0;
  private onCancelled: (() => void) | undefined;

  constructor(private readonly call: UploadCall, private readonly idleMs: number) {
    // grpc-js says so when the client cancels, the connection breaks or the deadline passes; a
    // read pending then does not always settle. (Also after the call is answered: then nothing reads.)
    call.once('cancelled', () => {
      this.abort(this.transportEnded());
      this.onCancelled?.();
    });
  }

  /** Resolves when grpc-js reports the call cancelled, or after `ms`. */
  private cancelledWithin(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.onCancelled = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Ends the stream with `err`: the read in progress (or the next one) throws it. */
  abort(err: FedlhsError): void {
    if (this.ended !== undefined) return;
    this.ended = err;
    this.wake?.(err);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<UpdateChunk__Output> {
    const inner = this.call[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (this.ended !== undefined) throw this.ended;
        const next = await this.read(inner);
        if (next.done === true) {
          // A call ended under the client can end its readable side "cleanly" (see above). A
          // short stream is the client's own end only if grpc-js does not report the call
          // cancelled right after (measured: within a few ms of the end, on loopback).
          if (this.received < this.expected && !this.call.cancelled && !this.deadlinePassed()) await this.cancelledWithin(CANCEL_GRACE_MS);
          if (this.ended !== undefined) throw this.ended;
          if (this.call.cancelled || this.deadlinePassed()) throw this.transportEnded();
          return;
        }
        const message = next.value;
        if (this.messages++ === 0 && message.header != null) {
          validateUploadHeader(message.header);
          this.expected = message.header.weights?.totalBytes ?? 0;
        }
        this.received += message.data?.length ?? 0;
        yield message;
      }
    } finally {
      // The call is answered by the handler; a read still pending settles when grpc-js ends it.
      void inner.return?.(undefined)?.catch(() => undefined);
    }
  }

  /** The next message, or the error the stream ends with (idle limit, abort, transport). */
  private read(inner: AsyncIterator<UpdateChunk__Output>): Promise<IteratorResult<UpdateChunk__Output>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.abort(this.stalled()), this.idleMs);
      const settle = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
      };
      this.wake = (err) => {
        settle();
        reject(err);
      };
      inner.next().then(
        (r) => {
          if (this.ended !== undefined) return; // already rejected with why it ended
          settle();
          resolve(r);
        },
        () => {
          if (this.ended !== undefined) return;
          settle();
          reject(this.transportEnded());
        },
      );
    });
  }

  private stalled(): FedlhsError {
    const seconds = this.idleMs / 1000;
    return new FedlhsError('UPLOAD_STALLED', `the upload sent nothing for ${seconds} s (transfer.uploadIdleSeconds) after ${this.messages} message(s); the coordinator ended it`);
  }

  /** Whether the deadline the client set for the call (if any) has passed. */
  private deadlinePassed(): boolean {
    const deadline = this.call.getDeadline();
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(at) && at <= Date.now();
  }

  /** A stream that ended under the call: the client's deadline passed, or it was cancelled or broke. */
  private transportEnded(): FedlhsError {
    if (this.deadlinePassed()) {
      return new FedlhsError('UPLOAD_STALLED', `the upload timed out: the client's deadline passed after ${this.messages} message(s)`);
    }
    return new FedlhsError('UPLOAD_CANCELLED', `the upload stream was cancelled or broke after ${this.messages} message(s), before the client ended it`);
  }
}
