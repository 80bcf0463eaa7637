import type * as grpc from '@grpc/grpc-js';
import type { UpdateChunk__Output, UploadReceipt } from '@fedlhs/proto';
import { FedlhsError } from '@fedlhs/core';
import { timed, type HandlerContext } from './context.js';
import { authenticateCall } from './node-auth.js';
import { toStatus } from './status.js';

/** The UploadUpdate handler: one client stream per update, at most transfer.uploadStreamsPerNode per node. */
export function uploadHandler(ctx: HandlerContext): grpc.handleClientStreamingCall<UpdateChunk__Output, UploadReceipt> {
  const { coordinator, log, metrics } = ctx;
  const uploadsPerNode = ctx.transfer.uploadStreamsPerNode ?? 1;
  const uploadsByNode = new Map<string, number>();
  return (call, cb) => {
    const callback = timed(coordinator, 'UploadUpdate', cb);
    let counted: string | undefined;
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
  };
}
