// Original file: /work/main/proto/fedlhs/v1/common.proto

import type { TensorSpec as _fedlhs_v1_TensorSpec, TensorSpec__Output as _fedlhs_v1_TensorSpec__Output } from '../../fedlhs/v1/TensorSpec.js';
import type { Long } from '@grpc/proto-loader';

/**
 * Describes a bundle of tensors sent as a sequence of raw byte chunks (the "model
 * manifest" of a transfer). Sent as the first message of every model download and update
 * upload; the data chunks follow.
 */
export interface TensorBundleHeader {
  /**
   * Tensors in payload order. At most 4096 in an update.
   */
  'tensors'?: (_fedlhs_v1_TensorSpec)[];
  /**
   * Exact payload length: sum over tensors of product(shape) * 4. A receiver rejects a
   * stream whose data chunks add up to any other length.
   */
  'totalBytes'?: (number | string | Long);
  /**
   * SHA-256 of the whole payload (32 bytes). The receiver recomputes it and rejects a
   * mismatch (DATA_LOSS). More than 32 bytes in an update is INVALID_ARGUMENT.
   */
  'sha256'?: (Buffer | Uint8Array | string);
  /**
   * Largest data chunk the sender will send, in bytes: a multiple of 4 between 1 MiB
   * (1048576) and 4 MiB - 64 KiB (4128768) so that each message stays under gRPC's default
   * 4 MiB limit. Every data chunk except the last has exactly this length; the last has
   * 1..chunk_size bytes. A payload smaller than 1 MiB is sent as one chunk. Because
   * chunk_size is a multiple of 4, no float32 value is ever split across chunks.
   * 0 means "the whole payload in exactly one data chunk": allowed iff total_bytes is at most
   * 4128768, and the one chunk then has exactly total_bytes bytes. A second chunk, or a first
   * one of another length, is rejected (BAD_HEADER). The coordinator itself always sends its
   * configured size, never 0.
   */
  'chunkSize'?: (number);
}

/**
 * Describes a bundle of tensors sent as a sequence of raw byte chunks (the "model
 * manifest" of a transfer). Sent as the first message of every model download and update
 * upload; the data chunks follow.
 */
export interface TensorBundleHeader__Output {
  /**
   * Tensors in payload order. At most 4096 in an update.
   */
  'tensors': (_fedlhs_v1_TensorSpec__Output)[];
  /**
   * Exact payload length: sum over tensors of product(shape) * 4. A receiver rejects a
   * stream whose data chunks add up to any other length.
   */
  'totalBytes': (number);
  /**
   * SHA-256 of the whole payload (32 bytes). The receiver recomputes it and rejects a
   * mismatch (DATA_LOSS). More than 32 bytes in an update is INVALID_ARGUMENT.
   */
  'sha256': (Buffer);
  /**
   * Largest data chunk the sender will send, in bytes: a multiple of 4 between 1 MiB
   * (1048576) and 4 MiB - 64 KiB (4128768) so that each message stays under gRPC's default
   * 4 MiB limit. Every data chunk except the last has exactly this length; the last has
   * 1..chunk_size bytes. A payload smaller than 1 MiB is sent as one chunk. Because
   * chunk_size is a multiple of 4, no float32 value is ever split across chunks.
   * 0 means "the whole payload in exactly one data chunk": allowed iff total_bytes is at most
   * 4128768, and the one chunk then has exactly total_bytes bytes. A second chunk, or a first
   * one of another length, is rejected (BAD_HEADER). The coordinator itself always sends its
   * configured size, never 0.
   */
  'chunkSize': (number);
}
