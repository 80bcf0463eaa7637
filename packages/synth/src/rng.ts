import { mulberry32 } from '@fedlhs/core';

/** A seeded random source with the few distributions the generator needs. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  /** Integer uniform in [min, max], both ends included. */
  int(min: number, max: number): number;
  /** Gaussian draw (Box-Muller). */
  normal(mean?: number, sd?: number): number;
  /** true with probability p. */
  bernoulli(p: number): boolean;
  /** Poisson draw (Knuth's method: fine for the small means used here). */
  poisson(lambda: number): number;
  /** A key of `weights` drawn with probability proportional to its weight (keys in sorted order, so the draw does not depend on how the record was written). */
  pick<K extends string>(weights: Readonly<Record<K, number>>): K;
  /** An element of a non-empty array. */
  choice<T>(items: readonly T[]): T;
}

/** An Rng over `mulberry32(seed)`. One stream per clinic: mulberry32 has a 32-bit state, so many short per-patient streams would overlap. */
export function createRng(seed: number): Rng {
  const next = mulberry32(seed);
  const rng: Rng = {
    next,
    uniform: (min, max) => min + (max - min) * next(),
    int: (min, max) => min + Math.floor((max - min + 1) * next()),
    normal: (mean = 0, sd = 1) => {
      // 1 - u keeps the logarithm finite (next() can return 0).
      const u = 1 - next();
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    bernoulli: (p) => next() < p,
    poisson: (lambda) => {
      const limit = Math.exp(-lambda);
      let k = 0;
      let product = next();
      while (product > limit) {
        k++;
        product *= next();
      }
      return k;
    },
    pick: <K extends string>(weights: Readonly<Record<K, number>>): K => {
      const keys = (Object.keys(weights) as K[]).sort();
      const total = keys.reduce((sum, k) => sum + weights[k], 0);
      let u = next() * total;
      for (const k of keys) {
        u -= weights[k];
        if (u < 0) return k;
      }
      return keys[keys.length - 1]!;
    },
    choice: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
  return rng;
}

/** A 32-bit hash of two integers (murmur3 finaliser), used to derive seeds. */
export function mixSeed(a: number, b: number): number {
  let h = Math.imul((a ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(b >>> 0, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const hex32 = (v: number): string =>
  HEX_BYTES[(v >>> 24) & 255]! + HEX_BYTES[(v >>> 16) & 255]! + HEX_BYTES[(v >>> 8) & 255]! + HEX_BYTES[v & 255]!;
const VARIANTS = ['8', '9', 'a', 'b'];

/**
 * UUID-like ids (version-4 layout). The random parts come from `rng`; the last group holds a
 * bijectively scrambled running counter, so ids are unique within a clinic whatever the PRNG does.
 */
export function createIdFactory(rng: Rng, seed: number): () => string {
  let counter = 0;
  const salt = mixSeed(seed, 0x5eed);
  return () => {
    counter++;
    const a = hex32(Math.floor(rng.next() * 0x100000000));
    const b = hex32(Math.floor(rng.next() * 0x100000000));
    const m = mixSeed(salt, counter);
    const c = hex32(m);
    // Multiplying by an odd constant mod 2^32 is a bijection, so the tail stays unique.
    const tail = hex32((Math.imul(counter, 0x9e3779b1) ^ salt) >>> 0);
    return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-${VARIANTS[m & 3]!}${c.slice(1, 4)}-${c.slice(4)}${tail}`;
  };
}
