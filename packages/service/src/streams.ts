import type { EventEmitter } from 'node:events';

/**
 * Waits until a writable gRPC stream can take more data, or has ended. Waiting on 'drain'
 * alone would hang forever (holding a file handle) if the peer went away meanwhile.
 */
export function waitForDrain(stream: EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const events = ['drain', 'close', 'error', 'cancelled', 'finish', 'status'];
    const done = (): void => {
      for (const e of events) stream.off(e, done);
      resolve();
    };
    for (const e of events) stream.once(e, done);
  });
}
