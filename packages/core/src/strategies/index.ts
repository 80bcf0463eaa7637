/**
 * Server-side aggregation strategies: FedAvg and FedProx; the server optimizers FedAvgM,
 * FedAdagrad, FedAdam and FedYogi; and the byzantine-robust coordinate-wise median, trimmed
 * mean, Krum, Multi-Krum and Bulyan. Pure: no I/O, float64 sums, float32 results.
 */
import { withDefaults, type StrategyConfig } from './config.js';
import { createBulyanStrategy, createKrumStrategy, createMultiKrumStrategy } from './krum.js';
import { createMeanStrategy } from './mean.js';
import { createMedianStrategy, createTrimmedMeanStrategy } from './robust.js';
import { createServerOptimizer } from './server-optimizers.js';
import type { Strategy } from './types.js';
import { validateStrategyConfig } from './validate.js';

export {
  STRATEGY_NAMES,
  type StrategyName,
  type StrategyConfig,
  type ResolvedStrategyConfig,
  type FedAvgConfig,
  type FedProxConfig,
  type FedAvgMConfig,
  type FedAdagradConfig,
  type FedAdamConfig,
  type FedYogiConfig,
  type FedMedianConfig,
  type TrimmedMeanConfig,
  type KrumConfig,
  type MultiKrumConfig,
  type BulyanConfig,
} from './config.js';
export type { ClientUpdate, SliceRound, Strategy } from './types.js';
export { validateStrategyConfig } from './validate.js';
export { networkBackend, useJavaScriptNetwork } from './order-stats.js';

/**
 * Makes the strategy `config.name` selects, with defaults filled in (see each config type).
 * The config is validated first, as by `validateStrategyConfig`: FedlhsError INVALID_ARGUMENT
 * naming the parameter for an unknown name or parameter, a missing required one or a value
 * out of range. Each call returns an independent strategy (its own server state).
 */
export function createStrategy(config: StrategyConfig): Strategy {
  const c = withDefaults(validateStrategyConfig(config));
  switch (c.name) {
    case 'fedavg':
    case 'fedprox':
      return createMeanStrategy(c);
    case 'fedavgm':
    case 'fedadagrad':
    case 'fedadam':
    case 'fedyogi':
      return createServerOptimizer(c);
    case 'fedmedian':
      return createMedianStrategy(c);
    case 'trimmed-mean':
      return createTrimmedMeanStrategy(c);
    case 'krum':
      return createKrumStrategy(c);
    case 'multi-krum':
      return createMultiKrumStrategy(c);
    case 'bulyan':
      return createBulyanStrategy(c);
  }
}
