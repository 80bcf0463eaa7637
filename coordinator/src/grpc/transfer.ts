/** Transfer memory bounds (design core-redesign §5); config keys transfer.*. */
export interface TransferOptions {
  /** Bytes all downloads together hold in flight; default max(4 MiB, the largest model served). */
  inFlightBytes?: number;
  /** Upload streams one node may have open at once; more are refused with RESOURCE_EXHAUSTED. Default 1. */
  uploadStreamsPerNode?: number;
  /** Messages a control session may have queued towards its agent; above it the session is dropped (slow_consumer). Default 64. */
  sessionQueueMessages?: number;
}
