/**
 * @fedlhs/core: the pure parts of fedlhs — tensor codecs and digests, study manifests and
 * their canonical hash, federated averaging, the round state machine, metrics. No network,
 * no files, no logging, no TensorFlow.
 */

// Relevant to end users and applications.
export * from './errors.js';
export * from './manifest.js';
export * from './topology.js';
export * from './metrics.js';
export * from './performance.js';
export * from './comparison.js';

// Relevant to other fedlhs libraries and the apps.
export * from './tensors.js';
export * from './payload.js';
export * from './fedavg.js';
export * from './round-state.js';
export * from './split.js';
export * from './backoff.js';
export * from './random.js';
export * from './statistics.js';
export * from './study-statistics.js';
export * from './units.js';
export * from './cohort-spec.js';
export * from './wire-limits.js';
export * from './strategies/index.js';
export * from './dsse.js';
export * from './release-format.js';
export * from './release-bundle.js';
export * from './series.js';
export * from './secagg/index.js';
export * from './privacy/index.js';
