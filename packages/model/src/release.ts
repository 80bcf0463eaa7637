/**
 * Returning a large model's dead arrays to the operating system before the next model-sized
 * allocation. A disposed tfjs tensor on the cpu backend is only an unreferenced Float32Array:
 * V8 frees it at its next major collection, and nothing makes that come before the process
 * allocates the next array of the same size (V8 does not collect for large ArrayBuffers until
 * an allocation fails), so a 1 GiB gradient dropped after a step was still resident while the
 * trained weights were read out. For models of LARGE_BYTES and more the runtime therefore asks
 * for a full collection at the few points where such an array has just died; it costs
 * milliseconds (the JavaScript heap is small; the arrays live outside it) beside steps that
 * take seconds, and smaller models never pay it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Models (or gradients) at least this large get their dead arrays collected promptly. */
export const LARGE_BYTES = 64 * 1024 * 1024;

let gc: (() => void) | undefined;

/** A full garbage collection now (global.gc when the process runs with --expose-gc, else V8's own, exposed once). */
export function collectGarbage(): void {
  if (gc === undefined) {
    const exposed = (globalThis as { gc?: unknown }).gc;
    if (typeof exposed === 'function') {
      gc = exposed as () => void;
    } else {
      // The documented way to reach V8's gc() without the command-line flag: set the flag, then
      // read the function from a fresh context, where V8 installs it.
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    }
  }
  gc();
}

/** Collects garbage when `bytes` (what just died, or the model's size) is LARGE_BYTES or more. */
export function releaseIfLarge(bytes: number): void {
  if (bytes >= LARGE_BYTES) collectGarbage();
}
