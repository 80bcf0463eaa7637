import { describe, expect, it } from 'vitest';
import { neighbourhoods, thresholdFor, type GraphKind } from './graph.js';
import { thrown } from './test-support.js';


const seed = new Uint8Array(32).fill(7);
const otherSeed = new Uint8Array(32).fill(8);
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `node-${String(i).padStart(3, '0')}`);

function checkGraph(graph: Map<string, string[]>, nodes: readonly string[], k: number): void {
  expect([...graph.keys()].sort()).toEqual([...nodes].sort());
  for (const [id, ns] of graph) {
    expect(ns.length).toBe(k);
    expect(new Set(ns).size).toBe(k);
    expect(ns).not.toContain(id);
    for (const n of ns) expect(graph.get(n)).toContain(id);
  }
}

describe('neighbourhoods', () => {
  const cases: [GraphKind, number, number][] = [
    ['ring', 10, 4],
    ['ring', 10, 3],
    ['ring', 50, 8],
    ['ring', 5, 4],
    ['random-regular', 10, 4],
    ['random-regular', 10, 3],
    ['random-regular', 50, 10],
    ['random-regular', 51, 6],
    ['random-regular', 6, 5],
    ['random-regular', 200, 16],
  ];
  for (const [kind, n, k] of cases) {
    it(`${kind} on ${n} nodes, k = ${k}: symmetric, degree k, no self-loops, deterministic`, () => {
      const graph = neighbourhoods(ids(n), k, seed, kind);
      checkGraph(graph, ids(n), k);
      expect(neighbourhoods([...ids(n)].reverse(), k, seed, kind)).toEqual(graph);
    });
  }

  it('a ring links each node to k/2 on each side of one cycle', () => {
    const graph = neighbourhoods(ids(12), 4, seed, 'ring');
    // Recover the cycle by walking it, then every neighbourhood must be the window of ±2 on it.
    const start = ids(12)[0]!;
    const order = [start];
    let prev = '';
    let cur = start;
    for (let i = 1; i < 12; i++) {
      // The next node on the cycle: a neighbour sharing 2 neighbours with cur (distance 1 in C(12; 1, 2)).
      const next = graph.get(cur)!.find((n) => n !== prev && !order.includes(n) && graph.get(n)!.filter((m) => graph.get(cur)!.includes(m)).length === 2)!;
      order.push(next);
      prev = cur;
      cur = next;
    }
    for (let i = 0; i < 12; i++) {
      const expected = [-2, -1, 1, 2].map((d) => order[(i + d + 12) % 12]!).sort();
      expect(graph.get(order[i]!)).toEqual(expected);
    }
  });

  it('another seed gives another graph; random-regular is not the ring', () => {
    const n = ids(30);
    expect(neighbourhoods(n, 6, otherSeed, 'random-regular')).not.toEqual(neighbourhoods(n, 6, seed, 'random-regular'));
    expect(neighbourhoods(n, 6, otherSeed, 'ring')).not.toEqual(neighbourhoods(n, 6, seed, 'ring'));
    // A ring's neighbourhoods overlap heavily (a neighbour at distance 1 shares 4 of 6 neighbours); a random graph's barely.
    const overlap = (g: Map<string, string[]>): number => {
      let shared = 0;
      for (const [id, ns] of g) for (const m of ns) shared += g.get(m)!.filter((x) => x !== id && ns.includes(x)).length;
      return shared;
    };
    expect(overlap(neighbourhoods(n, 6, seed, 'random-regular'))).toBeLessThan(overlap(neighbourhoods(n, 6, seed, 'ring')) / 2);
  });

  it('refuses k ≥ n, odd k with odd n, k < 1, duplicate ids and a short seed', () => {
    expect(thrown(() => neighbourhoods(ids(5), 5, seed, 'ring')).message).toMatchInlineSnapshot(`"k: 5 neighbours need more than 5 nodes"`);
    expect(thrown(() => neighbourhoods(ids(4), 6, seed, 'random-regular')).details).toEqual({ field: 'k' });
    expect(thrown(() => neighbourhoods(ids(7), 3, seed, 'random-regular')).message).toMatchInlineSnapshot(`"k: no 3-regular graph on 7 nodes: k and n are both odd"`);
    expect(thrown(() => neighbourhoods(ids(7), 3, seed, 'ring')).details).toEqual({ field: 'k' });
    expect(thrown(() => neighbourhoods(ids(7), 0, seed, 'ring')).details).toEqual({ field: 'k' });
    expect(thrown(() => neighbourhoods(['a', 'b', 'a'], 1, seed, 'ring')).message).toContain('appears twice');
    expect(thrown(() => neighbourhoods(ids(6), 2, new Uint8Array(16), 'ring')).details).toEqual({ field: 'seed' });
  });

  it('thresholdFor(k) is the least strict majority of k', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 10].map(thresholdFor)).toEqual([1, 2, 2, 3, 3, 5, 5, 6]);
    for (let k = 1; k < 40; k++) {
      expect(2 * thresholdFor(k)).toBeGreaterThan(k);
      expect(2 * (thresholdFor(k) - 1)).toBeLessThanOrEqual(k);
    }
    expect(thrown(() => thresholdFor(0)).details).toEqual({ field: 'k' });
  });
});
