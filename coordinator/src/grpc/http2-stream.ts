import http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/** What downloads need of a call's HTTP/2 stream. */
export interface Http2StreamLike {
  close(code?: number): void;
  write(chunk: Buffer, callback: (err?: Error | null) => void): boolean;
  readonly closed: boolean;
  readonly destroyed: boolean;
  /** Bytes written to the stream and not yet taken by HTTP/2 (Writable). */
  readonly writableLength: number;
  /** end() was called (Writable): grpc-js has sent, or queued, the call's status (its deadline passed). */
  readonly writableEnded: boolean;
  once(name: 'close', listener: () => void): unknown;
  off(name: 'close', listener: () => void): unknown;
}

const isHttp2Stream = (v: unknown): v is Http2StreamLike =>
  typeof v === 'object' && v !== null && typeof (v as Http2StreamLike).close === 'function' && typeof (v as Http2StreamLike).write === 'function' &&
  typeof (v as Http2StreamLike).writableLength === 'number' && 'rstCode' in v;

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js has no public way to reset a call's
 * stream, so this follows its private fields (ServerWritableStreamImpl.call, then
 * ServerInterceptingCall.nextCall down to BaseServerInterceptingCall.stream, grpc-js 1.10-1.14);
 * undefined if a grpc-js version lays them out otherwise (http2-stream.test.ts fails then).
 */
export function http2StreamOf(call: grpc.ServerWritableStream<unknown, unknown>): Http2StreamLike | undefined {
  let at: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && typeof at === 'object' && at !== null; depth++) {
    const stream = (at as { stream?: unknown }).stream;
    if (isHttp2Stream(stream)) return stream;
    at = (at as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** How a call's HTTP/2 stream is found: {@link http2StreamOf}, or a stand-in in tests. */
export type StreamLookup = (call: grpc.ServerWritableStream<unknown, unknown>) => Http2StreamLike | undefined;

/**
 * Resets a server call's HTTP/2 stream with RST_STREAM ENHANCE_YOUR_CALM (a grpc-js client sees
 * RESOURCE_EXHAUSTED, which agents retry). HTTP/2 then drops what it still queues for the stream:
 * a status cannot help there, as trailers wait behind data the client does not read, so a
 * stream its client stopped reading would keep its queued frame (and its download slot) for as
 * long as the client keeps the connection. grpc-js reports the call over ('cancelled').
 * Returns false if the stream was not found (see {@link http2StreamOf}) or is already closed.
 */
export function resetCall(call: grpc.ServerWritableStream<unknown, unknown>, streamOf: StreamLookup = http2StreamOf): boolean {
  const stream = streamOf(call);
  if (stream === undefined || stream.closed || stream.destroyed) return false;
  stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

/**
 * Ends a server-streaming call with an error `status`. Sent after data, the status leaves in
 * the trailers only once the client has read that data; if the stream is not closed within
 * `graceMs` (a client that stopped reading), it is reset ({@link resetCall}) so that what HTTP/2
 * queues for it is dropped. `onReset` is told whether the reset was possible.
 *
 * The stream's 'close' is what says the call is over, not grpc-js's 'cancelled': when grpc-js
 * has already ended the stream itself (the call's deadline passed), a second status makes it
 * report the call cancelled at once, while the data queued before its own status still waits
 * for a client that may never read it. Without the stream, 'cancelled' is all there is.
 */
export function endWithStatus(call: grpc.ServerWritableStream<unknown, unknown>, status: Partial<grpc.StatusObject>, graceMs: number, onReset?: (reset: boolean) => void, streamOf: StreamLookup = http2StreamOf): void {
  const stream = streamOf(call);
  const closed = (): boolean => (stream === undefined ? call.cancelled : stream.closed || stream.destroyed);
  const over = (): void => clearTimeout(timer);
  const timer = setTimeout(() => {
    if (stream === undefined) call.off('cancelled', over);
    else stream.off('close', over);
    if (!closed()) onReset?.(resetCall(call, streamOf));
  }, graceMs);
  if (stream === undefined) call.once('cancelled', over);
  else stream.once('close', over);
  call.emit('error', status);
  if (closed()) over();
}

/**
 * Runs one write and resolves on its callback, which comes once HTTP/2 has sent what was written,
 * i.e. once the client's flow-control window took it (a client that reads nothing never gets it).
 * Rejects if `signal` aborts first (grpc-js never calls back for a write to a cancelled call);
 * calls `onIdle` if the callback has not come after `idleMs`.
 */
export function pacedWrite(write: (done: (err?: Error | null) => void) => void, signal: AbortSignal, idleMs: number, onIdle: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(idle);
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    const idle = setTimeout(onIdle, idleMs);
    signal.addEventListener('abort', onAbort, { once: true });
    write((err) => {
      clearTimeout(idle);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}
