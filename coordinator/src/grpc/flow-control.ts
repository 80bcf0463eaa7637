import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';

/**
 * HTTP/2 receive windows of the coordinator, set deliberately (issue 15: update ingest ran at
 * 0.23-0.4 of raw grpc-js while the coordinator was mostly idle).
 *
 * Why these numbers. HTTP/2 starts every stream and the connection with a 65 535-byte receive
 * window; Node replenishes a stream's window only when JavaScript reads the stream, and grpc-js
 * pauses the stream after each message until the handler asks for the next one. With 64 KiB in
 * flight, an uploader can send only 64 KiB per window update, and every update waits for the
 * coordinator's event loop, which is busy for milliseconds hashing, checking and spooling the
 * previous 1 MiB chunk: the sender stalls, then the coordinator waits for it (idle). A window of
 * two maximum chunks (8 MiB) lets an agent keep one whole chunk on the wire while the coordinator
 * works on the one before, so receipt and checking overlap.
 *
 * Memory: the window bounds what a peer may send that nobody has read yet, per stream; the
 * connection window (16 MiB, two streams' worth) bounds it per connection, below the 64 MB
 * `grpc-node.max_session_memory` of SERVER_OPTIONS. What grpc-js reads ahead of the handler is
 * bounded separately (its object stream buffers at most 16 messages; transfer.uploadStreamsPerNode).
 */
export const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;
/** Receive window of a whole HTTP/2 connection (see STREAM_WINDOW_BYTES). */
export const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/** What of grpc-js's server internals this module uses (grpc-js 1.14: both private fields). */
interface ServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server | http2.Http2SecureServer, unknown>;
}

export interface FlowControlWindows {
  /** SETTINGS_INITIAL_WINDOW_SIZE the server announces: each stream's receive window, in bytes. */
  stream: number;
  /** The connection's receive window, in bytes. */
  connection: number;
}

/**
 * Sets the receive windows of a grpc-js server's HTTP/2 sessions. grpc-js (1.14) has no option
 * for them on the server side ('grpc-node.flow_control_window' is read by its client only), so
 * this reaches into two of its private fields; call it before `bindAsync` and pass the result's
 * `afterBind` the bound server. Throws if grpc-js has changed under it (a test pins the effect),
 * rather than silently leaving 64 KiB windows.
 */
export function serverFlowControl(server: grpc.Server, windows: FlowControlWindows = { stream: STREAM_WINDOW_BYTES, connection: CONNECTION_WINDOW_BYTES }): { afterBind: () => void } {
  const internals = server as unknown as ServerInternals;
  const common = internals.commonServerOptions;
  if (common === undefined || typeof common !== 'object') throw new Error('grpc-js internals changed: Server.commonServerOptions is missing; cannot set HTTP/2 flow-control windows');
  common.settings = { ...common.settings, initialWindowSize: windows.stream };
  return {
    afterBind() {
      const servers = internals.http2Servers;
      if (!(servers instanceof Map)) throw new Error('grpc-js internals changed: Server.http2Servers is missing; cannot set HTTP/2 flow-control windows');
      for (const h2 of servers.keys()) {
        h2.on('session', (session: http2.ServerHttp2Session) => {
          // The connection window: announced by a WINDOW_UPDATE right after the preface.
          try {
            session.setLocalWindowSize(windows.connection);
          } catch {
            // A session already destroyed (the peer went away at once) has no window to set.
          }
        });
      }
    },
  };
}
