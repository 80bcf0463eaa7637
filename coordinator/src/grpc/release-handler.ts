import { FedlhsError } from '@fedlhs/core';
import type { FederationHandlers } from '@fedlhs/proto';
import type { DownloadSlots } from '../downloads.js';
import type { NodeRecord } from '../store.js';
import { toWireRelease } from '../wire.js';
import { statusName, timed, type HandlerContext } from './context.js';
import { statusGraceMs, writeMessage } from './download-handler.js';
import { authenticateCall, endStreamWithNode } from './node-auth.js';
import { toStatus } from './status.js';
import { endWithStatus } from './http2-stream.js';
import { validateDownloadReleaseFileRequest, validateListReleasesRequest, validateReleasePerformanceReport } from './validate.js';

type ReleaseHandlers = Pick<FederationHandlers, 'ListReleases' | 'DownloadReleaseFile' | 'ReportReleasePerformance'>;

/**
 * The release calls of fedlhs.v1.Federation (issue 12): each authenticates (node-auth.ts),
 * validates the request (validate.ts) and calls coordinator.releases (releases/distribution.ts);
 * every error becomes a status through toStatus. Release files stream in coordinator.chunkBytes
 * chunks within the model-download bounds: `slots` are the model downloads' own
 * (limits.downloadStreamsPerNode / downloadStreamsTotal count model and release downloads
 * together), and the idle bound transfer.downloadIdleSeconds, past which the stream is reset
 * (http2-stream.ts) so that HTTP/2 drops the chunk queued for it.
 */
export function releaseHandlers(ctx: HandlerContext, slots: DownloadSlots): ReleaseHandlers {
  const { coordinator, log, metrics } = ctx;
  return {
    ListReleases(call, cb) {
      const callback = timed(coordinator, 'ListReleases', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          validateListReleasesRequest(call.request);
          const name = call.request.studyName;
          return coordinator.releases.list({ node, ...(name === '' ? {} : { studyName: name }) });
        })
        .then(
          (releases) => callback(null, { releases: releases.map(toWireRelease) }),
          (err: unknown) => callback(toStatus(err, log, 'ListReleases')),
        );
    },

    DownloadReleaseFile(call) {
      const done = metrics.startCall('DownloadReleaseFile');
      const gone = new AbortController();
      const cancelled = (): void => gone.abort(new FedlhsError('ATTEMPT_ABORTED', 'the release download was cancelled'));
      call.on('cancelled', cancelled);
      call.on('error', cancelled);
      let node: NodeRecord | undefined;
      let unregister: (() => void) | undefined;
      const idleMs = coordinator.limits.downloadIdleMs;
      const stalled = (): void => {
        gone.abort(new FedlhsError('DOWNLOAD_STALLED', `the download took no data for ${idleMs / 1000} s (transfer.downloadIdleSeconds); the coordinator ended it`));
      };
      const onReset = (reset: boolean): void => {
        if (reset) log.warn({ event: 'download.stalled', nodeId: node?.id, idleMs, limit: 'transfer.downloadIdleSeconds', what: 'release', reset }, 'release download ended: its client took no data; its stream was reset');
        else log.error({ event: 'download.stalled', nodeId: node?.id, idleMs, limit: 'transfer.downloadIdleSeconds', what: 'release', reset }, 'release download ended: its client took no data, but its HTTP/2 stream could not be reset: the chunk queued for it stays until the client goes');
      };
      (async () => {
        node = await authenticateCall(ctx, call);
        validateDownloadReleaseFileRequest(call.request);
        const { studyName, version, fileName } = call.request;
        const release = await coordinator.releases.get(studyName, version, node);
        const give = slots.take(node.id);
        if (call.cancelled) give();
        else call.once('cancelled', give);
        unregister = endStreamWithNode(ctx, node, call, (err) => gone.abort(err));
        const { chunks } = await coordinator.releases.readFile(release, fileName, coordinator.chunkBytes, gone.signal);
        for await (const data of chunks) {
          // grpc-js frames the message inside call.write; only the length is needed afterwards.
          const bytes = data.length;
          await writeMessage(call, { data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }, gone.signal, idleMs, stalled);
          metrics.bytesOut.inc(bytes);
        }
        done('OK');
        call.end();
      })()
        .catch((err: unknown) => {
          const reason: unknown = gone.signal.aborted ? gone.signal.reason : err;
          if (reason instanceof FedlhsError && reason.code === 'ATTEMPT_ABORTED') {
            done('CANCELLED');
            return;
          }
          const status = toStatus(reason, log, 'DownloadReleaseFile');
          done(statusName(status.code));
          endWithStatus(call, status, statusGraceMs(reason, idleMs), onReset);
        })
        .finally(() => unregister?.());
    },

    ReportReleasePerformance(call, cb) {
      const callback = timed(coordinator, 'ReportReleasePerformance', cb);
      authenticateCall(ctx, call)
        .then((node) => {
          validateReleasePerformanceReport(call.request);
          const r = call.request;
          return coordinator.releases.recordPerformance(node, {
            studyName: r.studyName, version: r.version, exportFingerprint: r.exportFingerprint, performance: r.performance, measuredAt: Number(r.measuredAtMs),
          });
        })
        .then(
          (receipt) => callback(null, receipt),
          (err: unknown) => callback(toStatus(err, log, 'ReportReleasePerformance')),
        );
    },
  };
}

