import { describe, expect, it } from 'vitest';
import { FedlhsError } from '../errors.js';
import { STRATEGY_NAMES, createStrategy, validateStrategyConfig, type StrategyConfig } from './index.js';

function rejection(value: unknown): string {
  try {
    validateStrategyConfig(value);
  } catch (err) {
    expect(err).toBeInstanceOf(FedlhsError);
    expect((err as FedlhsError).code).toBe('INVALID_ARGUMENT');
    // createStrategy validates the same way.
    expect(() => createStrategy(value as StrategyConfig)).toThrow((err as Error).message);
    return (err as FedlhsError).message;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be rejected`);
}

describe('STRATEGY_NAMES', () => {
  it('lists every strategy once, frozen', () => {
    expect(STRATEGY_NAMES).toEqual(['fedavg', 'fedprox', 'fedavgm', 'fedadagrad', 'fedadam', 'fedyogi', 'fedmedian', 'trimmed-mean', 'krum', 'multi-krum', 'bulyan']);
    expect(Object.isFrozen(STRATEGY_NAMES)).toBe(true);
  });
});

describe('validateStrategyConfig', () => {
  it('returns a copy with exactly the given parameters (defaults are createStrategy’s job)', () => {
    const input = { name: 'fedadam', beta1: 0.5 };
    const out = validateStrategyConfig(input);
    expect(out).toEqual({ name: 'fedadam', beta1: 0.5 });
    expect(out).not.toBe(input);
  });

  it('accepts the boundaries of every range', () => {
    for (const config of [
      { name: 'fedprox', mu: 0 },
      { name: 'fedavgm', serverLearningRate: 1e-9, momentum: 0 },
      { name: 'fedadagrad', eta: 5, beta1: 0, tau: 1e-12 },
      { name: 'fedadam', beta1: 0.999999, beta2: 0 },
      { name: 'fedyogi', beta2: 0.999999 },
      { name: 'trimmed-mean', beta: 0 },
      { name: 'trimmed-mean', beta: 0.49 },
      { name: 'krum', byzantine: 0 },
      { name: 'multi-krum', byzantine: 0, toKeep: 1 },
      { name: 'bulyan', byzantine: 3 },
    ]) {
      expect(validateStrategyConfig(config)).toEqual(config);
    }
  });

  it('rejects what is not a config or names no known strategy', () => {
    expect([rejection(null), rejection([]), rejection('fedavg'), rejection({}), rejection({ name: 'FedAvg' }), rejection({ name: 7 })]).toMatchInlineSnapshot(`
      [
        "strategy config must be an object with a "name", got null",
        "strategy config must be an object with a "name", got an array",
        "strategy config must be an object with a "name", got "fedavg"",
        "unknown strategy undefined (expected one of fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedmedian, trimmed-mean, krum, multi-krum, bulyan)",
        "unknown strategy "FedAvg" (expected one of fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedmedian, trimmed-mean, krum, multi-krum, bulyan)",
        "unknown strategy 7 (expected one of fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, fedmedian, trimmed-mean, krum, multi-krum, bulyan)",
      ]
    `);
  });

  it('rejects unknown parameters, listing the accepted ones', () => {
    expect([
      rejection({ name: 'fedavg', mu: 0.1 }),
      rejection({ name: 'fedadagrad', beta2: 0.99 }),
      rejection({ name: 'krum', byzantine: 1, toKeep: 2 }),
      rejection({ name: 'fedadam', learningRate: 0.1 }),
    ]).toMatchInlineSnapshot(`
      [
        "fedavg: unknown parameter "mu" (fedavg takes no parameters)",
        "fedadagrad: unknown parameter "beta2" (fedadagrad accepts eta, beta1, tau)",
        "krum: unknown parameter "toKeep" (krum accepts byzantine)",
        "fedadam: unknown parameter "learningRate" (fedadam accepts eta, beta1, beta2, tau)",
      ]
    `);
  });

  it('requires mu and byzantine', () => {
    expect([rejection({ name: 'fedprox' }), rejection({ name: 'krum' }), rejection({ name: 'multi-krum', toKeep: 3 }), rejection({ name: 'bulyan' })]).toMatchInlineSnapshot(`
      [
        "fedprox: mu is required (a finite number ≥ 0)",
        "krum: byzantine is required (an integer ≥ 0)",
        "multi-krum: byzantine is required (an integer ≥ 0)",
        "bulyan: byzantine is required (an integer ≥ 0)",
      ]
    `);
  });

  it('rejects non-numbers', () => {
    expect([rejection({ name: 'fedadam', eta: '0.1' }), rejection({ name: 'krum', byzantine: true }), rejection({ name: 'fedprox', mu: null })]).toMatchInlineSnapshot(`
      [
        "fedadam: eta must be a finite number > 0, got "0.1"",
        "krum: byzantine must be an integer ≥ 0, got true",
        "fedprox: mu must be a finite number ≥ 0, got null",
      ]
    `);
  });

  it.each([
    ['fedprox', 'mu', [-0.1, NaN, Infinity], 'a finite number ≥ 0'],
    ['fedavgm', 'serverLearningRate', [0, -1, NaN, Infinity], 'a finite number > 0'],
    ['fedavgm', 'momentum', [1, -0.1, 1.5, NaN], 'in [0, 1)'],
    ['fedadagrad', 'eta', [0, -0.1, Infinity], 'a finite number > 0'],
    ['fedadagrad', 'beta1', [1, -0.5], 'in [0, 1)'],
    ['fedadagrad', 'tau', [0, -1e-9, Infinity], 'a finite number > 0'],
    ['fedadam', 'eta', [0, NaN], 'a finite number > 0'],
    ['fedadam', 'beta1', [1, -0.01, NaN], 'in [0, 1)'],
    ['fedadam', 'beta2', [1, 2, -1], 'in [0, 1)'],
    ['fedadam', 'tau', [0, -1], 'a finite number > 0'],
    ['fedyogi', 'eta', [0, -1], 'a finite number > 0'],
    ['fedyogi', 'beta1', [1, -1], 'in [0, 1)'],
    ['fedyogi', 'beta2', [1, -1], 'in [0, 1)'],
    ['fedyogi', 'tau', [0, NaN], 'a finite number > 0'],
    ['trimmed-mean', 'beta', [0.5, -0.1, 1, NaN], 'in [0, 0.5)'],
    ['krum', 'byzantine', [-1, 1.5, NaN, Infinity], 'an integer ≥ 0'],
    ['multi-krum', 'byzantine', [-1, 0.5], 'an integer ≥ 0'],
    ['multi-krum', 'toKeep', [0, -1, 2.5, Infinity], 'an integer ≥ 1'],
    ['bulyan', 'byzantine', [-2, 1.1], 'an integer ≥ 0'],
  ] as const)('%s: %s rejects %o', (name, param, bad, expected) => {
    const required = name === 'krum' || name === 'multi-krum' || name === 'bulyan' ? { byzantine: 1 } : name === 'fedprox' ? { mu: 0 } : {};
    for (const value of bad) {
      expect(rejection({ name, ...required, [param]: value })).toBe(`${name}: ${param} must be ${expected}, got ${value}`);
    }
  });

  it('says exactly what is wrong, e.g. for beta1 = 1', () => {
    expect(rejection({ name: 'fedadam', beta1: 1 })).toMatchInlineSnapshot(`"fedadam: beta1 must be in [0, 1), got 1"`);
  });
});

describe('createStrategy', () => {
  it.each<[StrategyConfig, object, 'weighted-mean' | 'all-updates', number]>([
    [{ name: 'fedavg' }, { name: 'fedavg' }, 'weighted-mean', 1],
    [{ name: 'fedprox', mu: 0.01 }, { name: 'fedprox', mu: 0.01 }, 'weighted-mean', 1],
    [{ name: 'fedavgm', momentum: 0 }, { name: 'fedavgm', serverLearningRate: 1, momentum: 0 }, 'weighted-mean', 1],
    [{ name: 'fedadagrad' }, { name: 'fedadagrad', eta: 0.1, beta1: 0.9, tau: 1e-9 }, 'weighted-mean', 1],
    [{ name: 'fedadam', eta: 0.5 }, { name: 'fedadam', eta: 0.5, beta1: 0.9, beta2: 0.99, tau: 1e-9 }, 'weighted-mean', 1],
    [{ name: 'fedyogi' }, { name: 'fedyogi', eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }, 'weighted-mean', 1],
    [{ name: 'fedmedian' }, { name: 'fedmedian' }, 'all-updates', 1],
    [{ name: 'trimmed-mean' }, { name: 'trimmed-mean', beta: 0.1 }, 'all-updates', 1],
    [{ name: 'krum', byzantine: 2 }, { name: 'krum', byzantine: 2 }, 'all-updates', 7],
    [{ name: 'multi-krum', byzantine: 2 }, { name: 'multi-krum', byzantine: 2 }, 'all-updates', 7],
    [{ name: 'multi-krum', byzantine: 1, toKeep: 6 }, { name: 'multi-krum', byzantine: 1, toKeep: 6 }, 'all-updates', 7],
    [{ name: 'bulyan', byzantine: 2 }, { name: 'bulyan', byzantine: 2 }, 'all-updates', 11],
  ])('%o → config %o, input %s, minUpdates %i', (config, resolved, input, minUpdates) => {
    const s = createStrategy(config);
    expect(s.name).toBe(config.name);
    expect(s.config).toEqual(resolved);
    expect(s.input).toBe(input);
    expect(s.minUpdates).toBe(minUpdates);
  });

  it('gives every call its own server state', () => {
    const a = createStrategy({ name: 'fedavgm' });
    const b = createStrategy({ name: 'fedavgm' });
    a.aggregate([{ shape: [1], data: Float32Array.from([0]) }], [{ numExamples: 1, weights: [{ shape: [1], data: Float32Array.from([1]) }] }], 1);
    expect(a.exportState()).toHaveLength(1);
    expect(b.exportState()).toEqual([]);
  });
});
