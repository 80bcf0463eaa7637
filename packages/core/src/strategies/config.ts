/**
 * Strategy names, their configurations and parameter rules. Every parameter is a number; the
 * rules below are the single source for validation messages, defaults and the list of accepted
 * parameters, so `validateStrategyConfig` and the types cannot drift apart.
 */

/** Every aggregation strategy fedlhs implements. */
export type StrategyName =
  | 'fedavg'
  | 'fedprox'
  | 'fedavgm'
  | 'fedadagrad'
  | 'fedadam'
  | 'fedyogi'
  | 'fedmedian'
  | 'trimmed-mean'
  | 'krum'
  | 'multi-krum'
  | 'bulyan';

/** The strategy names, in documentation order. */
export const STRATEGY_NAMES: readonly StrategyName[] = Object.freeze([
  'fedavg',
  'fedprox',
  'fedavgm',
  'fedadagrad',
  'fedadam',
  'fedyogi',
  'fedmedian',
  'trimmed-mean',
  'krum',
  'multi-krum',
  'bulyan',
] as const);

/** FedAvg (McMahan et al. 2017): Σ n_k·w_k / Σ n_k. No parameters. */
export interface FedAvgConfig { name: 'fedavg' }

/** FedProx (Li et al. 2020): aggregates like FedAvg; clinics add (mu/2)·‖w − global‖² to their loss. */
export interface FedProxConfig {
  name: 'fedprox';
  /** Proximal term weight, ≥ 0. Required: Li et al. tune it per task in {0.001, 0.01, 0.1, 1}. */
  mu: number;
}

/** FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient global − avg. */
export interface FedAvgMConfig {
  name: 'fedavgm';
  /** Server learning rate, > 0. Default 1 (Hsu et al., Flower). */
  serverLearningRate?: number;
  /** Server momentum, in [0, 1). Default 0.9 (Hsu et al.'s usual value; 0 would be plain FedAvg). */
  momentum?: number;
}

/** FedAdagrad (Reddi et al. 2021, Algorithm 2). */
export interface FedAdagradConfig {
  name: 'fedadagrad';
  /** Server learning rate, > 0. Default 0.1 (Flower). */
  eta?: number;
  /** First-moment decay, in [0, 1). Default 0.9 (Reddi et al.; Flower fixes 0). */
  beta1?: number;
  /** Adaptivity (added to √v), > 0. Default 1e-9 (Flower). */
  tau?: number;
}

/** FedAdam (Reddi et al. 2021, Algorithm 2, no bias correction). */
export interface FedAdamConfig {
  name: 'fedadam';
  /** Server learning rate, > 0. Default 0.1 (Flower). */
  eta?: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Second-moment decay, in [0, 1). Default 0.99. */
  beta2?: number;
  /** Adaptivity (added to √v), > 0. Default 1e-9 (Flower). */
  tau?: number;
}

/** FedYogi (Reddi et al. 2021, Algorithm 2). */
export interface FedYogiConfig {
  name: 'fedyogi';
  /** Server learning rate, > 0. Default 0.01 (Flower). */
  eta?: number;
  /** First-moment decay, in [0, 1). Default 0.9. */
  beta1?: number;
  /** Second-moment decay, in [0, 1). Default 0.99. */
  beta2?: number;
  /** Adaptivity (added to √v), > 0. Default 1e-3 (Flower). */
  tau?: number;
}

/** Coordinate-wise median, ignoring example counts. No parameters. */
export interface FedMedianConfig { name: 'fedmedian' }

/** Coordinate-wise trimmed mean (Yin et al. 2018), ignoring example counts. */
export interface TrimmedMeanConfig {
  name: 'trimmed-mean';
  /** Fraction trimmed at each end: floor(beta·n) lowest and highest values go. In [0, 0.5); default 0.1. */
  beta?: number;
}

/** Krum (Blanchard et al. 2017). */
export interface KrumConfig {
  name: 'krum';
  /** f, the number of byzantine updates to tolerate, an integer ≥ 0. Required (it is a threat model). */
  byzantine: number;
}

/** Multi-Krum (Blanchard et al. 2017). */
export interface MultiKrumConfig {
  name: 'multi-krum';
  /** f, the number of byzantine updates to tolerate, an integer ≥ 0. Required. */
  byzantine: number;
  /** m, how many lowest-scoring updates are averaged, an integer ≥ 1. Default n − f, per round. */
  toKeep?: number;
}

/** Bulyan (El Mhamdi et al. 2018). */
export interface BulyanConfig {
  name: 'bulyan';
  /** f, the number of byzantine updates to tolerate, an integer ≥ 0. Required. */
  byzantine: number;
}

/** A strategy and its parameters; parameters with a default may be omitted. */
export type StrategyConfig =
  | FedAvgConfig
  | FedProxConfig
  | FedAvgMConfig
  | FedAdagradConfig
  | FedAdamConfig
  | FedYogiConfig
  | FedMedianConfig
  | TrimmedMeanConfig
  | KrumConfig
  | MultiKrumConfig
  | BulyanConfig;

type Resolve<C> = C extends MultiKrumConfig ? C : C extends unknown ? Required<C> : never;

/** A configuration with every default filled in (multi-krum's toKeep stays optional: absent means n − f). */
export type ResolvedStrategyConfig = Resolve<StrategyConfig>;

/** How one numeric parameter is checked: a predicate and the phrase for "must be …". */
export interface ParameterRule {
  readonly test: (value: number) => boolean;
  readonly expected: string;
  /** Absent: the parameter is required, or (toKeep) its default depends on the round. */
  readonly default?: number;
  readonly required?: boolean;
}

const finitePositive = (v: number): boolean => Number.isFinite(v) && v > 0;
const unitInterval = (v: number): boolean => v >= 0 && v < 1;

const eta = (d: number): ParameterRule => ({ test: finitePositive, expected: 'a finite number > 0', default: d });
const beta = (d: number): ParameterRule => ({ test: unitInterval, expected: 'in [0, 1)', default: d });
const tau = (d: number): ParameterRule => ({ test: finitePositive, expected: 'a finite number > 0', default: d });
const byzantine: ParameterRule = { test: (v) => Number.isSafeInteger(v) && v >= 0, expected: 'an integer ≥ 0', required: true };

/** Accepted parameters of each strategy, in the order they are checked and listed in messages. */
export const STRATEGY_PARAMETERS: { readonly [N in StrategyName]: Readonly<Record<string, ParameterRule>> } = {
  fedavg: {},
  fedprox: { mu: { test: (v) => Number.isFinite(v) && v >= 0, expected: 'a finite number ≥ 0', required: true } },
  fedavgm: { serverLearningRate: eta(1), momentum: beta(0.9) },
  fedadagrad: { eta: eta(0.1), beta1: beta(0.9), tau: tau(1e-9) },
  fedadam: { eta: eta(0.1), beta1: beta(0.9), beta2: beta(0.99), tau: tau(1e-9) },
  fedyogi: { eta: eta(0.01), beta1: beta(0.9), beta2: beta(0.99), tau: tau(1e-3) },
  fedmedian: {},
  'trimmed-mean': { beta: { test: (v) => v >= 0 && v < 0.5, expected: 'in [0, 0.5)', default: 0.1 } },
  krum: { byzantine },
  'multi-krum': { byzantine, toKeep: { test: (v) => Number.isSafeInteger(v) && v >= 1, expected: 'an integer ≥ 1' } },
  bulyan: { byzantine },
};

/** Fills in defaults. The config must already be valid (see `validateStrategyConfig`). */
export function withDefaults(config: StrategyConfig): ResolvedStrategyConfig {
  const out: Record<string, unknown> = { name: config.name };
  const given = config as unknown as Record<string, unknown>;
  for (const [param, rule] of Object.entries(STRATEGY_PARAMETERS[config.name])) {
    const value = given[param] ?? rule.default;
    if (value !== undefined) out[param] = value;
  }
  return out as unknown as ResolvedStrategyConfig;
}
