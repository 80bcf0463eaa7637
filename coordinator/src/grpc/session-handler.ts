import * as grpc from '@grpc/grpc-js';
import { FedlhsError, isFedlhsError } from '@fedlhs/core';
import type { AgentMessage__Output, CoordinatorMessage } from '@fedlhs/proto';
import { KeyedBuckets } from '../rate-limit.js';
import type { NodeSession } from '../sessions.js';
import { statusName, type HandlerContext } from './context.js';
import { nodeCertificatesOf } from '../ca/node-certificates.js';
import { refusalReason } from '../ca/ledger.js';
import { authenticateCall } from './node-auth.js';
import { toStatus } from './status.js';
import { validateAgentMessage } from './validate.js';

let sessionCounter = 0;

/** The Session handler: the node's bidirectional control stream (Hello first, then messages; heartbeats both ways). */
export function sessionHandler(ctx: HandlerContext): grpc.handleBidiStreamingCall<AgentMessage__Output, CoordinatorMessage> {
  const { coordinator, log, metrics } = ctx;
  const sessionQueue = ctx.transfer.sessionQueueMessages ?? 64;
  // Every message counts, Hello and heartbeats included: our agent sends one heartbeat per
  // interval and throttles its progress updates, far below the default rate. One bucket per
  // node, not per session, so reconnecting does not refill it.
  const { sessionMessagesPerSecond, sessionMessageBurst } = coordinator.limits;
  const buckets = new KeyedBuckets(sessionMessageBurst, sessionMessagesPerSecond, Date.now, 100_000);
  return (call) => {
    const done = metrics.startCall('Session');
    const fail = (err: unknown): void => {
      const status = toStatus(err, log, 'Session');
      done(statusName(status.code));
      call.emit('error', status);
    };
    authenticateCall(ctx, call).then((node) => {
      let session: NodeSession | undefined;
      let heartbeat: NodeJS.Timeout | undefined;
      let ended = false;
      let helloTimer: NodeJS.Timeout | undefined;
      // Revoking the node ends this stream too, before or after its Hello (node-calls.ts).
      const unregister = coordinator.calls.register(node.id, (err) => end('node credential was revoked', toStatus(err, log, 'Session')));
      // The certificate was checked when the stream opened; the stream ends when it expires, or
      // once superseded by a renewal for tls.supersededGraceSeconds (ca/node-certificates.ts).
      const unwatch = nodeCertificatesOf(coordinator)?.watchCall(call, (err) => {
        log.warn({ event: 'session.certificate_ended', nodeId: node.id, siteName: node.siteName, reason: refusalReason(err) }, `session ended: ${err.message}`);
        // UNAVAILABLE: the agent reconnects (with its renewed certificate, or is refused then);
        // UNAUTHENTICATED would stop it as if its credential were revoked.
        end(`client certificate ${refusalReason(err) ?? 'refused'}`, { code: grpc.status.UNAVAILABLE, details: err.message });
      });
      const end = (why: string, status?: Partial<grpc.StatusObject>): void => {
        if (ended) return;
        ended = true;
        unregister();
        unwatch?.();
        clearTimeout(helloTimer);
        clearInterval(heartbeat);
        if (session !== undefined) coordinator.closeSession(session, why);
        done(status === undefined ? 'OK' : statusName(status.code));
        if (status !== undefined) call.emit('error', status);
        else call.end();
      };
      const interval = coordinator.heartbeatIntervalMs;
      const bucket = buckets.get(node.id);
      /** Messages this session passed the rate check with (logged when it is rate limited). */
      let accepted = 0;
      // A stream that never says Hello holds a slot of its connection and nothing else: ended
      // after three heartbeat intervals.
      helloTimer = setTimeout(() => {
        if (session === undefined) end('no hello', { code: grpc.status.DEADLINE_EXCEEDED, details: `no Hello within ${3 * interval} ms of opening the session` });
      }, 3 * interval);
      call.on('data', (message: AgentMessage__Output) => {
        // grpc-js may still deliver messages it had read before the stream ended.
        if (ended) return;
        if (!bucket.take()) {
          const retryAfterMs = bucket.retryAfterMs;
          const acceptedOnThisSession = accepted;
          metrics.sessionMessagesRefused.inc({ reason: 'rate_limited' });
          log.warn(
            { event: 'session.rate_limited', nodeId: node.id, siteName: node.siteName, perSecond: sessionMessagesPerSecond, burst: sessionMessageBurst, retryAfterMs, accepted: acceptedOnThisSession },
            'session ended: the agent sends control messages faster than limits.sessionMessagesPerSecond allows',
          );
          end('rate limited', toStatus(new FedlhsError('RATE_LIMITED', `more than ${sessionMessageBurst} control-session messages at once, or more than ${sessionMessagesPerSecond} per second sustained (limits.sessionMessagesPerSecond, limits.sessionMessageBurst); the session is closed`, {
            details: { limit: 'limits.sessionMessagesPerSecond', retryAfterMs },
          }), log, 'Session'));
          return;
        }
        accepted++;
        try {
          validateAgentMessage(message);
        } catch (err) {
          metrics.sessionMessagesRefused.inc({ reason: 'invalid' });
          log.warn(
            { event: 'session.message_invalid', nodeId: node.id, siteName: node.siteName, field: isFedlhsError(err, 'INVALID_ARGUMENT') ? err.details?.field : undefined, detail: (err as Error).message },
            'session ended: the agent sent a message that breaks the wire limits',
          );
          end('invalid message', toStatus(err, log, 'Session'));
          return;
        }
        if (session === undefined) {
          if (!message.hello) {
            end('no hello', { code: grpc.status.INVALID_ARGUMENT, details: 'the first Session message must be Hello' });
            return;
          }
          clearTimeout(helloTimer);
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
  };
}
