/**
 * @fedlhs/model: the TensorFlow.js model runtime. Builds a study's allow-listed layers
 * topology, trains and evaluates it on flat Float32Array data, and moves weights in and out
 * as one flat vector in a stable, named order.
 */

// Relevant to end users and applications.
export { initBackend, currentBackend, type BackendName, type BackendSelection } from './backend.js';
export { createModelRuntime, initialWeights, type ModelSpec, type ModelRuntime, type FitOptions, type ProximalOptions } from './model.js';

// Relevant to other libraries: the initialiser allow-list a topology is checked against.
export { ALLOWED_INITIALIZERS, validateInitializers } from './initializers.js';
