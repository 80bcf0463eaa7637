import { DEFAULT_ORDERS, validateManifest } from '@fedlhs/core';
import { describe, expect, it } from 'vitest';
import { DP_DELTA, clinicEpsilon, epsilonFor, medianUpdateNorm, noiseForEpsilon, parseEpsilons, privacySectionFor } from './dp-accounting.js';
import { t2dManifest } from './t2d-study.js';

describe('noiseForEpsilon', () => {
  it.each([
    [1, 10],
    [3, 10],
    [8, 10],
    [0.5, 1],
    [2, 100],
  ])('epsilon %s over %s rounds: the smallest z that meets the target', (target, rounds) => {
    const z = noiseForEpsilon(target, rounds, DP_DELTA);
    expect(epsilonFor(z, rounds, DP_DELTA)).toBeLessThanOrEqual(target);
    expect(epsilonFor(z, rounds, DP_DELTA)).toBeGreaterThan(target - 1e-6 * target * 10);
    expect(epsilonFor(z - 1e-6, rounds, DP_DELTA)).toBeGreaterThan(target);
  });

  it('falls as the target grows and rises with the rounds, and is the plain Gaussian bound at one round', () => {
    const zs = [0.5, 1, 2, 3, 5, 8, 16].map((e) => noiseForEpsilon(e, 10, DP_DELTA));
    zs.slice(1).forEach((z, i) => expect(z).toBeLessThan(zs[i]!));
    expect(noiseForEpsilon(3, 20, DP_DELTA)).toBeGreaterThan(noiseForEpsilon(3, 10, DP_DELTA));
    expect(noiseForEpsilon(3, 10, 1e-8)).toBeGreaterThan(noiseForEpsilon(3, 10, DP_DELTA));
    // T rounds at z compose like one round at z/√T (RDP T·α/2z²): the multiplier scales by √T.
    expect(noiseForEpsilon(2, 16, DP_DELTA) / noiseForEpsilon(2, 1, DP_DELTA)).toBeCloseTo(4, 6);
  });

  it('refuses what it cannot meet or does not understand', () => {
    expect(() => noiseForEpsilon(0, 10, DP_DELTA)).toThrow(/target epsilon/);
    expect(() => noiseForEpsilon(Number.NaN, 10, DP_DELTA)).toThrow(/target epsilon/);
    expect(() => noiseForEpsilon(1, 0, DP_DELTA)).toThrow(/rounds/);
    expect(() => noiseForEpsilon(1, 10, 0)).toThrow(/delta/);
    expect(() => noiseForEpsilon(1e-4, 1000, DP_DELTA)).toThrow(/above 1000/);
  });
});

describe('privacySectionFor', () => {
  const view = { clientsMin: 4, trustCoordinatorNoise: false };
  it('gives a manifest that validates and whose clinics account at most the target epsilon', () => {
    for (const placement of ['local', 'distributed'] as const) {
      for (const target of [1, 3, 8]) {
        const z = noiseForEpsilon(target, 10, DP_DELTA);
        const privacy = privacySectionFor(placement, z, 0.5, view);
        const manifest = validateManifest({ ...t2dManifest({ rounds: 10, clinics: 4, quorum: 2, seed: 1 }), privacy });
        expect(manifest.privacy).toEqual(privacy);
        const eps = clinicEpsilon(manifest.privacy!, manifest.rounds, DP_DELTA, view);
        expect(eps).toBeLessThanOrEqual(target);
        expect(eps).toBeGreaterThan(target * 0.999);
      }
    }
    // Distributed without secure aggregation: each clinic adds z/√m, so the manifest carries z·√4.
    const z = noiseForEpsilon(3, 10, DP_DELTA);
    expect(privacySectionFor('distributed', z, 1, view).dp!.noiseMultiplier).toBeCloseTo(2 * z, 12);
  });
  it('refuses central noise the clinics do not count, and a bad clipping norm', () => {
    expect(() => privacySectionFor('central', 3, 1, view)).toThrow(/trusts the coordinator/);
    expect(clinicEpsilon(privacySectionFor('central', noiseForEpsilon(3, 10, DP_DELTA), 1, { ...view, trustCoordinatorNoise: true }), 10, DP_DELTA, { ...view, trustCoordinatorNoise: true })).toBeLessThanOrEqual(3);
    expect(clinicEpsilon(privacySectionFor('central', 3, 1, { ...view, trustCoordinatorNoise: true }), 10, DP_DELTA, view)).toBe(Infinity);
    expect(() => privacySectionFor('local', 3, 0, view)).toThrow(/clipping norm/);
  });
  it('counts no protection without a DP section', () => {
    expect(clinicEpsilon({}, 10, DP_DELTA, view)).toBe(Infinity);
  });
});

describe('medianUpdateNorm and parseEpsilons', () => {
  it('takes the median of the accepted updates with a norm', () => {
    const c = (deltaNorm: number | null, accepted = true) => ({ accepted, deltaNorm });
    expect(medianUpdateNorm([c(3), c(1), c(2), c(100, false), c(null)])).toBe(2);
    expect(medianUpdateNorm([c(4), c(1), c(2), c(3)])).toBe(2.5);
    expect(medianUpdateNorm([c(null), c(5, false)])).toBeUndefined();
  });
  it('parses a list of epsilons, ascending, and names a bad item', () => {
    expect(parseEpsilons('8, 1,3')).toEqual([1, 3, 8]);
    expect(parseEpsilons('0.5')).toEqual([0.5]);
    expect(() => parseEpsilons('1,x')).toThrow(/"x" is not a number/);
    expect(() => parseEpsilons('1,0')).toThrow(/"0"/);
    expect(() => parseEpsilons('1,1')).toThrow(/repeats/);
    expect(() => parseEpsilons('1.5x')).toThrow(/"1.5x"/);
  });
});

it('uses the default orders of core', () => {
  expect(epsilonFor(5, 10, DP_DELTA)).toBe(epsilonFor(5, 10, DP_DELTA, DEFAULT_ORDERS));
});
