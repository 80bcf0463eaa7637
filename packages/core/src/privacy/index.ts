/**
 * Differential privacy for fedlhs (issue 14, docs/design/privacy.md): special functions, the
 * Rényi-DP accountant of the subsampled Gaussian mechanism, and the DP-FedAvg mechanism pieces
 * (clipping, CSPRNG Gaussian noise, effective noise multiplier per placement, adaptive clipping).
 */
export { erfc, lgamma, logAdd, logErfc, logNdtr, logSub } from './special.js';
export { computeRdp, DEFAULT_ORDERS, rdpToEpsilon } from './rdp.js';
export {
  adaptiveClipNorm,
  clipL2,
  effectiveCountNoiseMultiplier,
  effectiveNoiseMultiplier,
  gaussianNoise,
  roundRdp,
  type MechanismContext,
} from './mechanism.js';
export {
  CLIP_NORM_FIELD,
  CLIP_NORM_RANGE,
  clipIndicatorNoiseStd,
  clipNormParameter,
  noisyClipIndicator,
  noisyUnclippedFraction,
  withClipNormParameter,
} from './adaptive-clip.js';
