/**
 * Chooses the TensorFlow.js backend for the process. All fedlhs models share one tfjs-core
 * engine, so the backend is a process-wide choice made once, before the first model is built.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FedlhsError } from '@fedlhs/core';

/**
 * A tfjs backend fedlhs can run on: 'tensorflow' (native libtensorflow via the optional
 * @tensorflow/tfjs-node), 'wasm' (portable, XNNPACK/SIMD) or 'cpu' (pure JavaScript).
 */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The backend in use and why better ones were passed over. */
export interface BackendSelection {
  backend: BackendName;
  /** Backends tried before `backend`, in order, with the reason each was unusable. */
  attempts: { backend: BackendName; error: string }[];
}

/** Fastest first: 'auto' takes the first one that loads and initialises. */
const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

interface State {
  preference: 'auto' | BackendName;
  selection: Promise<BackendSelection>;
}

let state: State | undefined;

/**
 * Selects and initialises the tfjs backend. 'auto' tries tensorflow (if @tensorflow/tfjs-node
 * is installed and its native binding loads), then wasm, then cpu, recording why each rejected
 * one failed. An explicit name tries only that backend and throws BACKEND_UNAVAILABLE if it is
 * unavailable. Idempotent: later calls return the first successful selection; asking for a
 * different explicit backend after one is chosen throws, since models built on the old
 * backend would silently move. Under 'auto' only, building a model that needs a kernel wasm
 * lacks (Conv1D training) moves the process to cpu; later calls then return that selection,
 * with the reason recorded as a wasm attempt.
 */
export async function initBackend(preference: 'auto' | BackendName = 'auto'): Promise<BackendSelection> {
  if (preference !== 'auto' && !AUTO_ORDER.includes(preference)) {
    throw new FedlhsError('INVALID_ARGUMENT', `unknown backend ${JSON.stringify(preference)}; expected auto, ${AUTO_ORDER.join(', ')}`);
  }
  if (state === undefined) {
    const current: State = { preference, selection: select(preference) };
    state = current;
    // A failed explicit request must not poison the process: let the caller try another.
    current.selection.catch(() => {
      if (state === current) state = undefined;
    });
  }
  const selection = await state.selection;
  if (preference !== 'auto' && preference !== selection.backend) {
    throw new FedlhsError('BACKEND_UNAVAILABLE', `backend '${selection.backend}' is already initialised; cannot switch to '${preference}' in this process`, {
      details: { backend: preference },
    });
  }
  // Once any caller pins the backend, an automatic fallback must not move it.
  if (preference !== 'auto' && state !== undefined) state.preference = preference;
  return selection;
}

/**
 * The backend tfjs is running on. Throws BACKEND_UNAVAILABLE before initBackend() has
 * completed (asking tfjs itself would silently initialise a default backend).
 */
export function currentBackend(): BackendName {
  const name: string | undefined = tf.engine().backendName;
  if (name === undefined || !(AUTO_ORDER as readonly string[]).includes(name)) {
    throw new FedlhsError('BACKEND_UNAVAILABLE', `no fedlhs backend is active (tfjs reports ${JSON.stringify(name)}); call initBackend() first`);
  }
  return name as BackendName;
}

/**
 * Moves the process from wasm to cpu after a model needed a kernel wasm lacks. Only done when
 * the caller asked for 'auto'; existing tensors migrate lazily (tfjs moves data on access).
 * Returns false if the caller pinned the backend, so the model must be refused instead.
 * @internal
 */
export async function fallBackToCpu(reason: string): Promise<boolean> {
  if (state === undefined || state.preference !== 'auto') return false;
  const previous = await state.selection;
  if (previous.backend !== 'wasm') return false;
  const error = await tryBackend('cpu');
  if (error !== undefined) return false;
  const selection: BackendSelection = { backend: 'cpu', attempts: [...previous.attempts, { backend: 'wasm', error: reason }] };
  state = { preference: 'auto', selection: Promise.resolve(selection) };
  return true;
}

async function select(preference: 'auto' | BackendName): Promise<BackendSelection> {
  const attempts: BackendSelection['attempts'] = [];
  for (const backend of preference === 'auto' ? AUTO_ORDER : [preference]) {
    const error = await tryBackend(backend);
    if (error === undefined) return { backend, attempts };
    attempts.push({ backend, error });
  }
  const detail = attempts.map((a) => `${a.backend}: ${a.error}`).join('; ');
  throw new FedlhsError('BACKEND_UNAVAILABLE', `no usable TensorFlow.js backend (${detail})`, { details: preference === 'auto' ? {} : { backend: preference } });
}

/** Loads and activates one backend; returns why it failed, or undefined on success. */
async function tryBackend(backend: BackendName): Promise<string | undefined> {
  try {
    await loadBackendModule(backend);
    // setBackend resolves false (and logs) rather than throwing when initialisation fails.
    if (!(await tf.setBackend(backend))) return `tf.setBackend('${backend}') failed to initialise the backend`;
    await tf.ready();
    // The wasm binary is fetched and compiled lazily; one real kernel proves it works.
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

async function loadBackendModule(backend: BackendName): Promise<void> {
  switch (backend) {
    case 'tensorflow': {
      // A variable specifier keeps TypeScript from requiring the optional package's types; it
      // is absent wherever its install script could not download libtensorflow.
      const specifier = '@tensorflow/tfjs-node';
      await import(specifier);
      return;
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the emscripten loader reads the .wasm files from disk; point it at the
      // package's dist directory, wherever npm placed it.
      const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
      try {
        wasm.setWasmPaths(`${dirname(main)}/`);
      } catch {
        // Already initialised by an earlier attempt or another copy of this module: the paths
        // it used still apply.
      }
      return;
    }
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      return;
  }
}
