import * as grpc from '@grpc/grpc-js';
import { FedlhsError, PayloadReceiver, bundleLength, float32Bytes, payloadChunks, payloadDigest, type EvalMetrics, type TensorSpec } from '@fedlhs/core';
import type { DownloadModelRequest, FederationClient, ModelChunk__Output, UploadReceipt__Output } from '@fedlhs/proto';
import { waitForDrain } from '@fedlhs/service';
import { authMetadata, deadlineIn } from './connection.js';

export type Progress = (fraction: number) => void;

/**
 * Downloads a model into one preallocated Float32Array, checking chunk sizes, finiteness,
 * length and SHA-256 as it arrives, and the tensor list against `expected` if given.
 */
export async function downloadModel(
  client: FederationClient,
  credential: string,
  request: DownloadModelRequest,
  expected: readonly TensorSpec[] | undefined,
  timeoutMs: number,
  onProgress?: Progress,
): Promise<{ weights: Float32Array; sha256: Buffer; specs: TensorSpec[] }> {
  const call = client.DownloadModel(request, authMetadata(credential), { deadline: deadlineIn(timeoutMs) });
  let receiver: PayloadReceiver | undefined;
  let weights: Float32Array | undefined;
  try {
    for await (const message of call as AsyncIterable<ModelChunk__Output>) {
      if (message.header) {
        const h = message.header;
        receiver = new PayloadReceiver({ tensors: h.tensors.map((t) => ({ name: t.name, shape: t.shape })), totalBytes: h.totalBytes, sha256: h.sha256, chunkSize: h.chunkSize }, { expected });
        weights = new Float32Array(bundleLength(receiver.header.tensors));
      } else if (message.data) {
        if (receiver === undefined || weights === undefined) throw new FedlhsError('DATA_LOSS', 'model stream sent data before its header');
        const { offset, values } = receiver.push(message.data);
        weights.set(values, offset);
        onProgress?.(receiver.receivedBytes / receiver.header.totalBytes);
      }
    }
  } catch (err) {
    call.cancel();
    throw err;
  }
  if (receiver === undefined || weights === undefined) throw new FedlhsError('DATA_LOSS', 'model stream ended without a header');
  return { weights, sha256: receiver.finish(), specs: receiver.header.tensors };
}

export interface UploadRequest {
  taskId: string;
  studyId: string;
  round: number;
  nodeId: string;
  baseModelSha256: Buffer;
  numExamples: number;
  trainMetrics: EvalMetrics;
  specs: readonly TensorSpec[];
  weights: Float32Array;
  chunkBytes: number;
  /** Adaptive DP clipping: the clinic's noisy clip indicator (proto UpdateHeader.dp_clip_indicator); absent otherwise. */
  dpClipIndicator?: number | undefined;
}

/** Streams an update with flow control: it waits for the transport to drain between chunks. */
export async function uploadUpdate(client: FederationClient, credential: string, u: UploadRequest, timeoutMs: number, onProgress?: Progress): Promise<UploadReceipt__Output> {
  const bytes = float32Bytes(u.weights);
  const sha256 = payloadDigest(u.weights);
  return new Promise<UploadReceipt__Output>((resolve, reject) => {
    let ended = false;
    const call = client.UploadUpdate(authMetadata(credential), { deadline: deadlineIn(timeoutMs) }, (err: grpc.ServiceError | null, receipt?: UploadReceipt__Output) => {
      // A client stream reports failure only here (never as 'error'): stop writing, or the
      // loop would wait for a drain that never comes while holding the whole model.
      ended = true;
      if (err !== null) {
        call.cancel();
        reject(err);
      } else resolve(receipt!);
    });
    const write = async (): Promise<void> => {
      call.write({
        header: {
          taskId: u.taskId, studyId: u.studyId, round: u.round, nodeId: u.nodeId, baseModelSha256: u.baseModelSha256, numExamples: u.numExamples,
          trainMetrics: { numExamples: u.trainMetrics.numExamples, loss: u.trainMetrics.loss, accuracy: u.trainMetrics.accuracy, ...(u.trainMetrics.auc === undefined ? {} : { auc: u.trainMetrics.auc }) },
          weights: { tensors: u.specs.map((s) => ({ name: s.name, shape: [...s.shape], dtype: 'DTYPE_FLOAT32' })), totalBytes: bytes.length, sha256, chunkSize: u.chunkBytes },
          ...(u.dpClipIndicator === undefined ? {} : { dpClipIndicator: u.dpClipIndicator }),
        },
      });
      let sent = 0;
      for (const chunk of payloadChunks(bytes, u.chunkBytes)) {
        if (ended) return;
        const ok = call.write({ data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
        sent += chunk.length;
        onProgress?.(sent / bytes.length);
        if (!ok) await waitForDrain(call);
      }
      call.end();
    };
    write().catch((err: unknown) => {
      call.cancel();
      reject(err instanceof Error ? err : new FedlhsError('INTERNAL', `upload failed: ${String(err)}`, { cause: err }));
    });
  });
}
