import * as grpc from '@grpc/grpc-js';
import type {
  AgentMessage__Output,
  CoordinatorMessage,
  DownloadModelRequest__Output,
  EnrolmentHandlers,
  FederationHandlers,
  ModelChunk,
  UpdateChunk__Output,
} from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import type { Logger } from '@fedlhs/service';
import { BufferPool } from '../blobs/buffer-pool.js';
import type { Coordinator } from '../coordinator.js';
import { DownloadBudget, streamModel } from '../downloads.js';
import { toWireStudy } from '../wire.js';
import type { NodeSession } from '../sessions.js';
import { authorizationOf, toStatus } from './status.js';

let sessionCounter = 0;

/** Transfer memory bounds (design core-redesign §5); config keys transfer.*. */
export interface TransferOptions {
  /** Bytes all downloads together hold in flight; default max(4 MiB, the largest model served). */
  inFlightBytes?: number;
  /** Upload streams one node may have open at once; more are refused with RESOURCE_EXHAUSTED. Default 1. */
  uploadStreamsPerNode?: number;
  /** Messages a control session may have queued towards its agent; above it the session is dropped (slow_consumer). Default 64. */
  sessionQueueMessages?: number;
}

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

/** Thin gRPC handlers for fedlhs.v1.Enrolment: decode, call the domain, encode. */
export function enrolmentHandlers(coordinator: Coordinator, logger: Logger): EnrolmentHandlers {
  const log = logger.child({ component: 'grpc-enrolment' });
  return {
    Enrol(call, cb) {
      const callback = timed(coordinator, 'Enrol', cb);
      const { joinToken, siteName, agent } = call.request;
      coordinator.enrol(joinToken, siteName, agent).then(
        (r) => callback(null, { nodeId: r.nodeId, nodeCredential: r.credential, siteName: r.siteName }),
        (err: unknown) => callback(toStatus(err, log, 'Enrol')),
      );
    },
  };
}

/** Wraps a callback so the call is counted and timed with its final status. */
function timed<T>(coordinator: Coordinator, method: string, callback: grpc.sendUnaryData<T>): grpc.sendUnaryData<T> {
  const done = coordinator.metrics.startCall(method);
  return (err, value) => {
    done(err == null ? 'OK' : grpc.status[(err as { code?: number }).code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN');
    callback(err, value);
  };
}

/** Thin gRPC handlers for fedlhs.v1.Federation. */
export function federationHandlers(coordinator: Coordinator, logger: Logger, transfer: TransferOptions = {}): FederationHandlers {
  const log = logger.child({ component: 'grpc-federation' });
  const metrics = coordinator.metrics;
  const pool = new BufferPool();
  const budget = new DownloadBudget({
    ...(transfer.inFlightBytes === undefined ? {} : { maxBytes: transfer.inFlightBytes }),
    onChange: (bytes) => metrics.downloadInflightBytes.set(bytes),
    onWait: () => metrics.downloadBudgetWaits.inc(),
  });
  const uploadsPerNode = transfer.uploadStreamsPerNode ?? 1;
  const sessionQueue = transfer.sessionQueueMessages ?? 64;
  const uploadsByNode = new Map<string, number>();

  return {
    Session(call) {
      const done = coordinator.metrics.startCall('Session');
      const fail = (err: unknown): void => {
        const status = toStatus(err, log, 'Session');
        done(grpc.status[status.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN');
        call.emit('error', status);
      };
      coordinator.authenticate(authorizationOf(call)).then((node) => {
        let session: NodeSession | undefined;
        let heartbeat: NodeJS.Timeout | undefined;
        let ended = false;
        const end = (why: string, status?: Partial<grpc.StatusObject>): void => {
          if (ended) return;
          ended = true;
          clearInterval(heartbeat);
          if (session !== undefined) coordinator.closeSession(session, why);
          done(status === undefined ? 'OK' : (grpc.status[status.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN'));
          if (status !== undefined) call.emit('error', status);
          else call.end();
        };
        const interval = coordinator.heartbeatIntervalMs;
        call.on('data', (message: AgentMessage__Output) => {
          if (session === undefined) {
            if (!message.hello) {
              end('no hello', { code: grpc.status.INVALID_ARGUMENT, details: 'the first Session message must be Hello' });
              return;
            }
            const agent = message.hello.agent ?? { agentVersion: '', trainingBackend: '', platform: '' };
            let queued = 0;
            session = {
              id: ++sessionCounter, nodeId: node.id, siteName: node.siteName, agent, connectedAt: Date.now(), lastHeardAt: Date.now(),
              readiness: new Map(), progress: new Map(),
              // What the agent understands beyond the base protocol (e.g. "study-progress").
              capabilities: new Set(message.hello.capabilities ?? []),
              send: (m: CoordinatorMessage) => {
                if (ended) return;
                if (queued >= sessionQueue) {
                  // The agent does not read its stream: drop it rather than buffer without bound.
                  log.warn({ event: 'session.dropped', nodeId: node.id, siteName: node.siteName, reason: 'slow_consumer', queued }, 'session dropped: the agent does not keep up with its control stream');
                  metrics.sessionDrops.inc({ reason: 'slow_consumer' });
                  end('slow consumer', { code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${sessionQueue} messages queued for this session; the agent does not read its stream` });
                  return;
                }
                queued++;
                call.write(m, () => {
                  queued--;
                });
              },
              close: (code: number, details: string) => end(details, { code, details }),
            };
            const s = session;
            coordinator.openSession(s, grpc.status.ABORTED).catch((err: unknown) => end('open failed', toStatus(err, log, 'Session')));
            let lastTick = Date.now();
            const silent = (): boolean => Date.now() - s.lastHeardAt > 3 * interval;
            heartbeat = setInterval(() => {
              const now = Date.now();
              // A tick that comes late means this process was busy: that is not the agent's
              // silence, so judge it at the next tick instead.
              const late = now - lastTick > 2 * interval;
              lastTick = now;
              if (!late && silent()) {
                // Timers run before the socket reads that are already waiting: read those first.
                setImmediate(() => {
                  if (!ended && silent()) end('heartbeat timeout', { code: grpc.status.UNAVAILABLE, details: `no message from the agent for ${3 * interval} ms` });
                });
                return;
              }
              s.send({ heartbeat: { sentUnixMs: now } });
            }, interval);
            return;
          }
          coordinator.onAgentMessage(session, message).catch((err: unknown) => log.error({ event: 'session.message_failed', err, nodeId: node.id }, 'failed to handle agent message'));
        });
        call.on('end', () => end('agent closed the stream'));
        call.on('error', () => end('stream error'));
        call.on('cancelled', () => end('stream cancelled'));
      }, fail);
    },

    ListStudies(call, cb) {
      const callback = timed(coordinator, 'ListStudies', cb);
      coordinator
        .authenticate(authorizationOf(call))
        .then(() => coordinator.listStudies(call.request.includeEnded))
        .then(
          (studies) => callback(null, { studies: studies.map(toWireStudy) }),
          (err: unknown) => callback(toStatus(err, log, 'ListStudies')),
        );
    },

    DownloadModel(call: grpc.ServerWritableStream<DownloadModelRequest__Output, ModelChunk>) {
      const done = metrics.startCall('DownloadModel');
      const gone = new AbortController();
      // The reason stops this stream's own waits only (pool, budget, writes); nothing is sent.
      const abort = (): void => gone.abort(new FedlhsError('ATTEMPT_ABORTED', 'the download stream was cancelled'));
      call.on('cancelled', abort);
      call.on('error', abort);
      (async () => {
        const node = await coordinator.authenticate(authorizationOf(call));
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
        done(grpc.status[status.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN');
        call.emit('error', status);
      });
    },

    UploadUpdate(call: grpc.ServerReadableStream<UpdateChunk__Output, unknown>, cb) {
      const callback = timed(coordinator, 'UploadUpdate', cb);
      let counted: string | undefined;
      coordinator
        .authenticate(authorizationOf(call))
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
          return coordinator.receiveUpload(node, call);
        })
        .finally(() => {
          if (counted === undefined) return;
          const left = (uploadsByNode.get(counted) ?? 1) - 1;
          if (left > 0) uploadsByNode.set(counted, left);
          else uploadsByNode.delete(counted);
        })
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'UploadUpdate')),
        );
    },

    ReportStatistics(call, cb) {
      const callback = timed(coordinator, 'ReportStatistics', cb);
      coordinator
        .authenticate(authorizationOf(call))
        .then((node) => coordinator.reportStatistics(node, call.request))
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportStatistics')),
        );
    },

    ReportEvaluation(call, cb) {
      const callback = timed(coordinator, 'ReportEvaluation', cb);
      coordinator
        .authenticate(authorizationOf(call))
        .then((node) => coordinator.reportEvaluation(node, call.request))
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportEvaluation')),
        );
    },
  };
}
