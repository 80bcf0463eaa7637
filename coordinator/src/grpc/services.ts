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
import { waitForDrain, type Logger } from '@fedlhs/service';
import type { Coordinator } from '../coordinator.js';
import { toWireStudy } from '../wire.js';
import type { NodeSession } from '../sessions.js';
import { authorizationOf, toStatus } from './status.js';

let sessionCounter = 0;

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
export function federationHandlers(coordinator: Coordinator, logger: Logger): FederationHandlers {
  const log = logger.child({ component: 'grpc-federation' });

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
            session = {
              id: ++sessionCounter, nodeId: node.id, siteName: node.siteName, agent, connectedAt: Date.now(), lastHeardAt: Date.now(),
              readiness: new Map(), progress: new Map(),
              send: (m: CoordinatorMessage) => {
                if (!ended) call.write(m);
              },
              close: (code: number, details: string) => end(details, { code, details }),
            };
            const s = session;
            coordinator.openSession(s, grpc.status.ABORTED).catch((err: unknown) => end('open failed', toStatus(err, log, 'Session')));
            heartbeat = setInterval(() => {
              if (Date.now() - s.lastHeardAt > 3 * interval) {
                end('heartbeat timeout', { code: grpc.status.UNAVAILABLE, details: `no message from the agent for ${3 * interval} ms` });
                return;
              }
              s.send({ heartbeat: { sentUnixMs: Date.now() } });
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
      const done = coordinator.metrics.startCall('DownloadModel');
      (async () => {
        const node = await coordinator.authenticate(authorizationOf(call));
        const { header, path } = await coordinator.openDownload(node, call.request);
        let cancelled = false;
        call.on('cancelled', () => {
          cancelled = true;
        });
        call.write({ header });
        for await (const data of coordinator.checkpoints.read(path, header.chunkSize as number)) {
          if (cancelled) return;
          // Respect flow control: wait for the transport to drain, so a slow agent never
          // makes the coordinator buffer a whole model.
          coordinator.metrics.bytesOut.inc(data.length);
          if (!call.write({ data })) await waitForDrain(call);
        }
        done('OK');
        call.end();
      })().catch((err: unknown) => {
        const status = toStatus(err, log, 'DownloadModel');
        done(grpc.status[status.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN');
        call.emit('error', status);
      });
    },

    UploadUpdate(call: grpc.ServerReadableStream<UpdateChunk__Output, unknown>, cb) {
      const callback = timed(coordinator, 'UploadUpdate', cb);
      coordinator
        .authenticate(authorizationOf(call))
        .then((node) => coordinator.receiveUpload(node, call))
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
