import { describe, expect, it } from 'vitest';
import type { Tensor } from '../tensors.js';
import { createStrategy, type ClientUpdate, type StrategyConfig } from './index.js';

// Honest clinics move the (zero) global model to about [1, −2, 0.5, 3]; one attacker sends
// either its update scaled by 1000 or sign-flipped and amplified (−10×), and claims ten times
// the examples of anyone else.
const center = [1, -2, 0.5, 3];
const honest = (k: number): number[] => center.map((c, i) => c + 0.1 * Math.sin(k * 2.3 + i * 1.7));
const update = (values: number[], numExamples: number): ClientUpdate => ({ numExamples, weights: [{ shape: [4], data: Float32Array.from(values) }] });
const distance = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.hypot(...Array.from(a, (x, i) => x - b[i]!));

const ATTACKS = {
  'scaled ×1000': (v: number[]) => v.map((x) => 1000 * x),
  'sign-flipped ×10': (v: number[]) => v.map((x) => -10 * x),
};

function round(config: StrategyConfig, honestCount: number, attack: (v: number[]) => number[]) {
  const good = Array.from({ length: honestCount }, (_, k) => honest(k));
  const mean = center.map((_, i) => good.reduce((s, v) => s + v[i]!, 0) / honestCount);
  const spread = Math.max(...good.map((v) => distance(v, mean)));
  const updates = good.map((v) => update(v, 10));
  updates.splice(2, 0, update(attack(good[0]!), 100));
  const global: Tensor[] = [{ shape: [4], data: new Float32Array(4) }];
  const [out] = createStrategy(config).aggregate(global, updates, 1);
  return { error: distance(out!.data, mean), spread };
}

describe.each(Object.entries(ATTACKS))('one poisoned update (%s) among honest ones', (_, attack) => {
  it('pulls fedavg far from the honest mean', () => {
    const { error, spread } = round({ name: 'fedavg' }, 5, attack);
    expect(spread).toBeLessThan(0.2);
    expect(error).toBeGreaterThan(10);
  });

  it.each<[StrategyConfig, number]>([
    [{ name: 'fedmedian' }, 5],
    [{ name: 'trimmed-mean', beta: 0.2 }, 5], // floor(0.2·6) = 1 trimmed per end
    [{ name: 'krum', byzantine: 1 }, 5],
    [{ name: 'multi-krum', byzantine: 1 }, 5],
    [{ name: 'bulyan', byzantine: 1 }, 6], // Bulyan needs n ≥ 4f + 3 = 7: six honest ones
  ])('leaves %o within the honest spread', (config, honestCount) => {
    const { error, spread } = round(config, honestCount, attack);
    expect(error).toBeLessThanOrEqual(spread);
  });
});
